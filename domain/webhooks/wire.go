package webhooks

import "time"

// Request and response bodies of the webhooks API (ours, in the style of
// the user service's: camelCase).

// SubscribeRequest is POST /v1/webhooks.
type SubscribeRequest struct {
	URL         string   `json:"url"`
	EventTypes  []string `json:"eventTypes"`
	Description string   `json:"description"`
	VaultID     string   `json:"vaultID"`
}

// Endpoint statuses.
const (
	StatusActive   = "active"
	StatusDisabled = "disabled"
)

// Endpoint is a webhook endpoint as the API shows it: never its secret.
type Endpoint struct {
	ID                      string     `json:"id"`
	URL                     string     `json:"url"`
	Description             string     `json:"description"`
	EventTypes              []string   `json:"eventTypes"`
	VaultID                 string     `json:"vaultID,omitempty"`
	Status                  string     `json:"status"`
	Owner                   string     `json:"owner"`
	SecretVersion           int        `json:"secretVersion"`
	PreviousSecretExpiresAt *time.Time `json:"previousSecretExpiresAt,omitempty"`
	FailingSince            *time.Time `json:"failingSince,omitempty"`
	LastSuccessAt           *time.Time `json:"lastSuccessAt,omitempty"`
	DisabledAt              *time.Time `json:"disabledAt,omitempty"`
	DisabledReason          string     `json:"disabledReason,omitempty"`
	CreatedAt               time.Time  `json:"createdAt"`
	UpdatedAt               time.Time  `json:"updatedAt"`
}

// NewEndpoint answers a subscription: the only time the secret is shown.
type NewEndpoint struct {
	Endpoint
	Secret string `json:"secret"`
}

// Endpoints is a page of endpoints, newest first.
type Endpoints struct {
	Webhooks      []Endpoint `json:"webhooks"`
	NextPageToken string     `json:"nextPageToken"`
}

// RotatedSecret answers a rotation: the new secret, shown once, and until
// when the previous one still signs.
type RotatedSecret struct {
	ID                      string    `json:"id"`
	Secret                  string    `json:"secret"`
	SecretVersion           int       `json:"secretVersion"`
	PreviousSecretExpiresAt time.Time `json:"previousSecretExpiresAt"`
}

// Deleted answers a deletion.
type Deleted struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

// TestSent answers POST …/test: the event that notify-webhook delivers to
// this endpoint only, and the webhook-id its delivery carries (find it in
// the delivery log).
type TestSent struct {
	WebhookID string `json:"webhookID"`
	EventID   string `json:"eventID"`
	EventType string `json:"eventType"`
	MessageID string `json:"messageID"`
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliverySucceeded = "succeeded"
	DeliveryDead      = "dead"
)

// Delivery is one event's delivery to an endpoint, as the delivery log
// shows it: never the payload or a response body.
type Delivery struct {
	ID               string     `json:"id"`
	EventID          string     `json:"eventID"`
	EventSource      string     `json:"eventSource"`
	EventType        string     `json:"eventType"`
	MessageID        string     `json:"messageID"`
	Status           string     `json:"status"`
	Attempts         int        `json:"attempts"`
	LatencyMs        *int       `json:"latencyMs,omitempty"`
	LastResponseCode *int       `json:"lastResponseCode,omitempty"`
	LastError        string     `json:"lastError,omitempty"`
	LastAttemptAt    *time.Time `json:"lastAttemptAt,omitempty"`
	NextAttemptAt    *time.Time `json:"nextAttemptAt,omitempty"`
	CreatedAt        time.Time  `json:"createdAt"`
	UpdatedAt        time.Time  `json:"updatedAt"`
	FinishedAt       *time.Time `json:"finishedAt,omitempty"`
}

// Deliveries is a page of an endpoint's delivery log, newest first.
type Deliveries struct {
	Deliveries    []Delivery `json:"deliveries"`
	NextPageToken string     `json:"nextPageToken"`
}
