package identity

import "time"

// Request and response bodies of the user service's API (ours, in the
// style of the Skyflow API: camelCase like its token exchange).

// RegisterRequest is POST /v1/users.
type RegisterRequest struct {
	Email       string `json:"email"`
	Password    string `json:"password"`
	DisplayName string `json:"displayName"`
}

// User is a user as the API shows it.
type User struct {
	ID            string     `json:"id"`
	Email         string     `json:"email"`
	DisplayName   string     `json:"displayName"`
	EmailVerified bool       `json:"emailVerified"`
	Roles         []string   `json:"roles"`
	CreatedAt     time.Time  `json:"createdAt"`
	VerifiedAt    *time.Time `json:"verifiedAt,omitempty"`
}

// VerifyEmailRequest is POST /v1/users/verify-email.
type VerifyEmailRequest struct {
	Token string `json:"token"`
}

// LoginRequest is POST /v1/auth/login.
type LoginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// Session is the answer to a log in or a refresh.
type Session struct {
	AccessToken  string `json:"accessToken"`
	TokenType    string `json:"tokenType"`
	ExpiresIn    int    `json:"expiresIn"` // seconds
	RefreshToken string `json:"refreshToken"`
}

// RefreshRequest is POST /v1/auth/refresh, and POST /v1/auth/logout.
type RefreshRequest struct {
	RefreshToken string `json:"refreshToken"`
}

// ProfileUpdate is PATCH /v1/users/me.
type ProfileUpdate struct {
	DisplayName *string `json:"displayName"`
}

// Preferences are a user's notification channels per event kind
// (GET/PUT /v1/users/me/preferences).
type Preferences struct {
	Channels map[string][]string `json:"channels"`
}

// RolesRequest sets a principal's roles (PUT …/roles).
type RolesRequest struct {
	Roles []string `json:"roles"`
}

// ServiceAccountRequest is POST /v1/serviceaccounts.
type ServiceAccountRequest struct {
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
}

// ServiceAccount is a service account as listed.
type ServiceAccount struct {
	ClientID  string     `json:"clientID"`
	Name      string     `json:"name"`
	Roles     []string   `json:"roles"`
	CreatedBy string     `json:"createdBy"`
	CreatedAt time.Time  `json:"createdAt"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
}

// ServiceAccounts is a list of service accounts.
type ServiceAccounts struct {
	ServiceAccounts []ServiceAccount `json:"serviceAccounts"`
}

// TokenRequest is POST /v1/auth/sa/oauth/token, as Skyflow SDKs send it.
type TokenRequest struct {
	GrantType string `json:"grant_type"`
	Assertion string `json:"assertion"`
	Scope     string `json:"scope"`
}

// TokenResponse answers a token exchange, as Skyflow SDKs read it.
type TokenResponse struct {
	AccessToken string `json:"accessToken"`
	TokenType   string `json:"tokenType"`
}

// APIKeyRequest is POST /v1/apikeys: a key that acts as a service account.
type APIKeyRequest struct {
	Name             string `json:"name"`
	ServiceAccountID string `json:"serviceAccountID"`
}

// APIKey is an API key as listed: never the key itself.
type APIKey struct {
	ID        string     `json:"id"`
	Prefix    string     `json:"prefix"`
	Name      string     `json:"name"`
	Principal string     `json:"principal"`
	CreatedBy string     `json:"createdBy"`
	CreatedAt time.Time  `json:"createdAt"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
}

// NewAPIKey answers the creation of a key: the only time the key is shown.
type NewAPIKey struct {
	APIKey
	Key string `json:"apiKey"`
}

// APIKeys is a list of API keys.
type APIKeys struct {
	APIKeys []APIKey `json:"apiKeys"`
}
