package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/mail"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/domain/identity/passwords"
	"github.com/skyflow-oss/skyflow/domain/identity/signing"
	"github.com/skyflow-oss/skyflow/domain/identity/throttle"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// VerificationTTL is how long an email verification link works.
const VerificationTTL = 24 * time.Hour

// UserPrincipal is the principal id of a user.
func UserPrincipal(id uuid.UUID) string { return "user:" + id.String() }

// userOf returns the user id of a user principal.
func userOf(p request.Principal) (uuid.UUID, error) {
	id, ok := strings.CutPrefix(p.ID, "user:")
	u, err := uuid.Parse(id)
	if !ok || err != nil {
		return uuid.UUID{}, apierr.PermissionDenied("this operation is for users; log in as a user")
	}
	return u, nil
}

// normalizeEmail checks an address and returns it lower-cased.
func normalizeEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || len(s) > 254 || !strings.Contains(s[strings.LastIndex(s, "@"):], ".") {
		return "", apierr.InvalidArgument("email must be an email address such as ada@example.com")
	}
	return s, nil
}

func checkDisplayName(s string) error {
	n := utf8.RuneCountInString(s)
	if strings.TrimSpace(s) == "" || n > 100 || !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return apierr.InvalidArgument("displayName must be 1 to 100 characters, without control characters")
	}
	return nil
}

// Register makes an unverified account and announces it; the notification
// service sends the verification email (IssueVerification makes the link).
func (s *Service) Register(ctx context.Context, req RegisterRequest) (*User, error) {
	email, err := normalizeEmail(req.Email)
	if err != nil {
		return nil, err
	}
	if err := checkDisplayName(req.DisplayName); err != nil {
		return nil, err
	}
	if err := passwords.Check(req.Password); err != nil {
		return nil, err
	}
	hash, err := passwords.Hash(req.Password, passwords.Default)
	if err != nil {
		return nil, apierr.Internal("the password could not be hashed")
	}
	u := &User{ID: uuid.NewString(), Email: email, DisplayName: req.DisplayName, Roles: []string{}, CreatedAt: s.Now().UTC()}
	err = s.transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		_, err := tx.Exec(ctx, `INSERT INTO users (id, email, password_hash, display_name, created_at) VALUES ($1, $2, $3, $4, $5)`,
			u.ID, email, hash, req.DisplayName, u.CreatedAt)
		if isUniqueViolation(err) {
			return nil, apierr.AlreadyExists("an account with this email address exists already: log in, or reset its password")
		}
		if err != nil {
			return nil, err
		}
		return []event.Event{s.event(UserRegisteredType, "", "user:"+u.ID, map[string]string{"user_id": u.ID})}, nil
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// IssueVerification makes a one-time email verification token for a user
// and stores its hash; the caller puts it in the link it emails.
func (s *Service) IssueVerification(ctx context.Context, userID string) (string, error) {
	tok, hash := newSecret()
	_, err := s.Pool.Exec(ctx, `INSERT INTO email_verifications (token_hash, user_id, expires_at) VALUES ($1, $2, $3)`,
		hash, userID, s.Now().Add(VerificationTTL))
	if err != nil {
		return "", dbError(err)
	}
	return tok, nil
}

// VerifyEmail spends a verification token and marks the email verified.
func (s *Service) VerifyEmail(ctx context.Context, req VerifyEmailRequest) (*User, error) {
	invalid := apierr.InvalidArgument("the verification link is not valid or has expired: ask for a new one")
	if req.Token == "" || len(req.Token) > 128 {
		return nil, invalid
	}
	hash := sha256.Sum256([]byte(req.Token))
	var userID uuid.UUID
	err := s.transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		err := tx.QueryRow(ctx, `
			UPDATE email_verifications SET used_at = now()
			WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING user_id`, hash[:], s.Now()).Scan(&userID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, invalid
		}
		if err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET email_verified_at = coalesce(email_verified_at, now()), updated_at = now() WHERE id = $1`, userID); err != nil {
			return nil, err
		}
		return []event.Event{s.event(UserEmailVerifiedType, UserPrincipal(userID), UserPrincipal(userID), map[string]string{"user_id": userID.String()})}, nil
	})
	if err != nil {
		return nil, err
	}
	return s.user(ctx, userID)
}

// errLogin is the one answer to a wrong email or a wrong password.
func errLogin() error {
	return apierr.Unauthenticated("the email address or the password is wrong")
}

// Login checks a password and opens a session: a short-lived access token
// and a refresh token. It takes the same time whether or not the email
// has an account, slows down after failures and locks for a while after
// many, per account and per client address.
func (s *Service) Login(ctx context.Context, req LoginRequest, address string) (*Session, error) {
	email, err := normalizeEmail(req.Email)
	if err != nil {
		return nil, errLogin()
	}
	if len(req.Password) > passwords.MaxLength {
		return nil, errLogin()
	}
	wait, err := s.Throttle.Before(ctx, email, address)
	if err != nil {
		return nil, throttleError(err)
	}
	if wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, apierr.Unavailable("the login was cancelled")
		}
	}
	var (
		id       uuid.UUID
		hash     string
		verified *time.Time
	)
	err = s.Pool.QueryRow(ctx, `SELECT id, password_hash, email_verified_at FROM users WHERE email = $1`, email).Scan(&id, &hash, &verified)
	known := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, dbError(err)
	}
	ok, rehash := false, false
	if known {
		ok, rehash, err = passwords.Verify(req.Password, hash)
		if err != nil {
			return nil, apierr.Internal("a stored password hash is malformed")
		}
	} else {
		passwords.VerifyDummy(req.Password)
	}
	if !ok {
		return nil, s.loginFailed(ctx, email, address, id, known)
	}
	if err := s.Throttle.Succeeded(ctx, email); err != nil {
		return nil, throttleError(err)
	}
	if verified == nil {
		return nil, apierr.PermissionDenied("verify your email address first: follow the link in the email we sent")
	}
	if rehash {
		if newHash, err := passwords.Hash(req.Password, passwords.Default); err == nil {
			_, _ = s.Pool.Exec(ctx, `UPDATE users SET password_hash = $2 WHERE id = $1`, id, newHash)
		}
	}
	var sess *Session
	err = s.transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		var err error
		sess, err = s.openSession(ctx, tx, id, uuid.New())
		return nil, err
	})
	return sess, err
}

// loginFailed counts a failure and announces a lock of an existing account.
func (s *Service) loginFailed(ctx context.Context, email, address string, id uuid.UUID, known bool) error {
	accountLocked, _, err := s.Throttle.Failed(ctx, email, address)
	if err != nil {
		return throttleError(err)
	}
	if accountLocked && known {
		until := s.Now().Add(s.Settings.Account.LockFor).UTC()
		e := s.event(UserLoginLockedType, "", UserPrincipal(id), map[string]string{"user_id": id.String(), "until": until.Format(time.RFC3339)})
		if err := s.Publisher.Transact(ctx, func(pgx.Tx) ([]event.Event, error) { return []event.Event{e}, nil }); err != nil {
			return dbError(err)
		}
	}
	return errLogin()
}

func throttleError(err error) error {
	var locked *throttle.Locked
	if errors.As(err, &locked) {
		return locked.APIError()
	}
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return ae
	}
	return apierr.Unavailable("logins are not possible right now; try again")
}

// openSession issues an access token and a refresh token of family.
func (s *Service) openSession(ctx context.Context, tx pgx.Tx, userID, family uuid.UUID) (*Session, error) {
	roles, err := rolesOf(ctx, tx, UserPrincipal(userID))
	if err != nil {
		return nil, err
	}
	access, claims, err := s.Keys.Issue(ctx, signing.Claims{Roles: roles, Kind: "user", RegisteredClaims: subject(UserPrincipal(userID))}, s.Settings.AccessTTL)
	if err != nil {
		return nil, dbError(err)
	}
	refresh, hash := newSecret()
	if _, err := tx.Exec(ctx, `
		INSERT INTO refresh_tokens (token_hash, family_id, user_id, access_jti, access_exp, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, hash, family, userID, claims.ID, claims.ExpiresAt.Time, s.Now().Add(s.Settings.RefreshTTL)); err != nil {
		return nil, err
	}
	return &Session{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(s.Settings.AccessTTL.Seconds()), RefreshToken: refresh}, nil
}

// Refresh spends a refresh token for a new session of the same family. A
// token spent before means it was stolen (or the client is broken): the
// whole family is revoked, access tokens included.
func (s *Service) Refresh(ctx context.Context, req RefreshRequest) (*Session, error) {
	invalid := apierr.Unauthenticated("the refresh token is not valid: log in again")
	if req.RefreshToken == "" || len(req.RefreshToken) > 128 {
		return nil, invalid
	}
	hash := sha256.Sum256([]byte(req.RefreshToken))
	var (
		sess    *Session
		reused  bool
		userID  uuid.UUID
		family  uuid.UUID
		revoked []denial
	)
	err := s.transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		var used, revokedAt *time.Time
		var expires time.Time
		err := tx.QueryRow(ctx, `
			SELECT user_id, family_id, used_at, revoked_at, expires_at FROM refresh_tokens
			WHERE token_hash = $1 FOR UPDATE`, hash[:]).Scan(&userID, &family, &used, &revokedAt, &expires)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, invalid
		}
		if err != nil {
			return nil, err
		}
		if revokedAt != nil || !expires.After(s.Now()) {
			return nil, invalid
		}
		if used != nil {
			reused = true
			if revoked, err = revokeFamily(ctx, tx, family); err != nil {
				return nil, err
			}
			return []event.Event{s.event(UserSessionRevokedType, UserPrincipal(userID), UserPrincipal(userID),
				map[string]string{"user_id": userID.String(), "reason": "refresh_token_reuse"})}, nil
		}
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1`, hash[:]); err != nil {
			return nil, err
		}
		sess, err = s.openSession(ctx, tx, userID, family)
		return nil, err
	})
	if err != nil {
		return nil, err
	}
	if reused {
		if err := s.deny(ctx, revoked); err != nil {
			return nil, err
		}
		return nil, apierr.Unauthenticated("this refresh token was used before, so the session has been revoked: log in again")
	}
	return sess, nil
}

// Logout ends the session of a refresh token of the calling user: its
// family is revoked and its access tokens are denied until they expire.
func (s *Service) Logout(ctx context.Context, p request.Principal, req RefreshRequest) (map[string]bool, error) {
	userID, err := userOf(p)
	if err != nil {
		return nil, err
	}
	hash := sha256.Sum256([]byte(req.RefreshToken))
	var revoked []denial
	err = s.transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		var family uuid.UUID
		err := tx.QueryRow(ctx, `SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND user_id = $2`, hash[:], userID).Scan(&family)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, apierr.Unauthenticated("the refresh token is not one of your sessions")
		}
		if err != nil {
			return nil, err
		}
		if revoked, err = revokeFamily(ctx, tx, family); err != nil {
			return nil, err
		}
		return []event.Event{s.event(UserSessionRevokedType, p.ID, p.ID, map[string]string{"user_id": userID.String(), "reason": "logout"})}, nil
	})
	if err != nil {
		return nil, err
	}
	if err := s.deny(ctx, revoked); err != nil {
		return nil, err
	}
	return map[string]bool{"loggedOut": true}, nil
}

// denial is an access token to deny until it expires.
type denial struct {
	jti string
	exp time.Time
}

// revokeFamily revokes a family's refresh tokens and returns its access
// tokens that have not expired yet.
func revokeFamily(ctx context.Context, tx pgx.Tx, family uuid.UUID) ([]denial, error) {
	if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL`, family); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT access_jti, access_exp FROM refresh_tokens WHERE family_id = $1 AND access_exp > now()`, family)
	if err != nil {
		return nil, err
	}
	var out []denial
	var d denial
	_, err = pgx.ForEachRow(rows, []any{&d.jti, &d.exp}, func() error { out = append(out, d); return nil })
	return out, err
}

// deny puts access tokens on the deny list the gateway checks, each until
// it expires.
func (s *Service) deny(ctx context.Context, ds []denial) error {
	for _, d := range ds {
		ttl := time.Until(d.exp)
		if ttl <= 0 {
			continue
		}
		if err := s.Redis.Set(ctx, s.deniedKey(d.jti), "1", ttl+time.Minute).Err(); err != nil {
			return apierr.Unavailable("the session could not be revoked completely; try again")
		}
	}
	return nil
}

func (b *Backend) deniedKey(jti string) string { return b.Settings.RedisPrefix + "deny:jti:" + jti }

// Denied reports whether an access token was revoked (logged out, or its
// session's refresh token was reused). The gateway asks this.
func (b *Backend) Denied(ctx context.Context, jti string) (bool, error) {
	n, err := b.Redis.Exists(ctx, b.deniedKey(jti)).Result()
	return n > 0, err
}

// Profile returns the calling user.
func (s *Service) Profile(ctx context.Context, p request.Principal) (*User, error) {
	id, err := userOf(p)
	if err != nil {
		return nil, err
	}
	return s.user(ctx, id)
}

// UpdateProfile changes the calling user's display name.
func (s *Service) UpdateProfile(ctx context.Context, p request.Principal, req ProfileUpdate) (*User, error) {
	id, err := userOf(p)
	if err != nil {
		return nil, err
	}
	if req.DisplayName == nil {
		return nil, apierr.InvalidArgument("nothing to change: give displayName")
	}
	if err := checkDisplayName(*req.DisplayName); err != nil {
		return nil, err
	}
	err = s.transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		if _, err := tx.Exec(ctx, `UPDATE users SET display_name = $2, updated_at = now() WHERE id = $1`, id, *req.DisplayName); err != nil {
			return nil, err
		}
		return []event.Event{s.event(UserProfileUpdatedType, p.ID, p.ID, map[string]string{"user_id": id.String()})}, nil
	})
	if err != nil {
		return nil, err
	}
	return s.user(ctx, id)
}

func (s *Service) user(ctx context.Context, id uuid.UUID) (*User, error) {
	u := &User{ID: id.String()}
	err := s.Pool.QueryRow(ctx, `SELECT email, display_name, email_verified_at, created_at FROM users WHERE id = $1`, id).
		Scan(&u.Email, &u.DisplayName, &u.VerifiedAt, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, apierr.NotFound("no such user")
	}
	if err != nil {
		return nil, dbError(err)
	}
	u.EmailVerified = u.VerifiedAt != nil
	if u.Roles, err = rolesOf(ctx, s.Pool, UserPrincipal(id)); err != nil {
		return nil, dbError(err)
	}
	return u, nil
}

// Notification channels and event kinds.
var (
	channels  = map[string]bool{"email": true, "push": true, "webhook": true}
	eventKind = regexp.MustCompile(`^[a-z][a-z0-9_.]{0,63}$`)
)

// DefaultPreferences are a new user's: security notices (an account
// locked after failed logins, a new API key on an account the user made)
// and webhook notices (an endpoint of the user's was disabled) by email.
// The notification functions (domain/notify) fall back to these for a kind
// a user's preferences do not name; a kind mapped to an empty list is
// opted out of. The verification email is always sent.
var DefaultPreferences = Preferences{Channels: map[string][]string{"security": {"email"}, "webhooks": {"email"}}}

// GetPreferences returns the calling user's notification preferences.
func (s *Service) GetPreferences(ctx context.Context, p request.Principal) (*Preferences, error) {
	id, err := userOf(p)
	if err != nil {
		return nil, err
	}
	var prefs Preferences
	err = s.Pool.QueryRow(ctx, `SELECT preferences FROM users WHERE id = $1`, id).Scan(&prefs.Channels)
	if err != nil {
		return nil, dbError(err)
	}
	if len(prefs.Channels) == 0 {
		return &DefaultPreferences, nil
	}
	return &prefs, nil
}

// SetPreferences replaces the calling user's notification preferences.
func (s *Service) SetPreferences(ctx context.Context, p request.Principal, prefs Preferences) (*Preferences, error) {
	id, err := userOf(p)
	if err != nil {
		return nil, err
	}
	if prefs.Channels == nil || len(prefs.Channels) > 50 {
		return nil, apierr.InvalidArgument("channels must map up to 50 event kinds to channels, e.g. {\"security\": [\"email\", \"push\"]}")
	}
	for kind, chs := range prefs.Channels {
		if !eventKind.MatchString(kind) {
			return nil, apierr.InvalidArgument("channels: %q is not an event kind: use lower-case letters, digits, _ and .", kind)
		}
		seen := map[string]bool{}
		for _, ch := range chs {
			if !channels[ch] || seen[ch] {
				return nil, apierr.InvalidArgument("channels.%s: each channel is email, push or webhook, once", kind)
			}
			seen[ch] = true
		}
		sort.Strings(chs)
	}
	if _, err := s.Pool.Exec(ctx, `UPDATE users SET preferences = $2, updated_at = now() WHERE id = $1`, id, prefs.Channels); err != nil {
		return nil, dbError(err)
	}
	return &prefs, nil
}

// newSecret returns a random token (base64url of 32 bytes) and its
// SHA-256, which is what is stored: the tokens are random, so a fast hash
// is enough to make a stolen table useless.
func newSecret() (token string, hash []byte) {
	b := make([]byte, 32)
	rand.Read(b)
	token = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(token))
	return token, sum[:]
}
