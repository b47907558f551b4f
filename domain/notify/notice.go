package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// The event types that make notices.
const (
	UserRegisteredType  = "com.skyflow.user.registered"
	UserLoginLockedType = "com.skyflow.user.login.locked"
	APIKeyCreatedType   = "com.skyflow.apikey.created"
	// WebhookDisabledType is emitted by notify-webhook when it gives up on
	// an endpoint; data: webhook_id, url, owner (a principal), reason.
	WebhookDisabledType = "com.skyflow.webhook.disabled"
)

// Notice names: each has its email templates (functions/notify-email).
const (
	NoticeVerifyEmail     = "verify-email"
	NoticeLoginLocked     = "login-locked"
	NoticeAPIKeyCreated   = "apikey-created"
	NoticeWebhookDisabled = "webhook-disabled"
)

// Notice is what one event tells people.
type Notice struct {
	Name string // NoticeVerifyEmail, …
	Kind string // KindAccount, KindSecurity, KindWebhooks
	// The event it comes from: its source and id are the idempotency key.
	EventID, EventSource, EventType string
	Time                            time.Time
	// Users are the recipients, without duplicates.
	Users []uuid.UUID
	// Title is a plain subject line (the email's subject, the push's
	// title); Body one or two plain sentences (the push's body).
	Title, Body string
	Details     Details
	// Push delivery: how long a push service may keep it for an offline
	// device, and how urgently to deliver it (RFC 8030: high, normal, low).
	TTL     time.Duration
	Urgency string
}

// Details are the facts the templates may show: identifiers and names.
type Details struct {
	UserID string
	// login-locked
	Until time.Time
	// apikey-created
	KeyID, KeyName, KeyPrefix            string
	ServiceAccountID, ServiceAccountName string
	CreatedBy                            string // a display name and principal, or a principal
	// webhook-disabled
	WebhookID, WebhookOrigin, Reason string
}

// Querier is what FromEvent reads with (a pool or a transaction).
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ErrNotHandled is returned (as a 400, which the broker does not retry)
// for an event type that makes no notice.
func notHandled(typ string) error {
	return apierr.InvalidArgument("event type %q makes no notification: subscribe this function to %s, %s, %s or %s",
		typ, UserRegisteredType, UserLoginLockedType, APIKeyCreatedType, WebhookDisabledType)
}

// Handles reports whether events of typ make notices.
func Handles(typ string) bool {
	switch typ {
	case UserRegisteredType, UserLoginLockedType, APIKeyCreatedType, WebhookDisabledType:
		return true
	}
	return false
}

// FromEvent maps a domain event to its notice, reading the names it shows
// with q. An event type that makes no notice, or whose data is malformed,
// is a 400 (not retried: the broker would only fail again); a database
// error is returned as is (retried).
func FromEvent(ctx context.Context, q Querier, e event.Event) (*Notice, error) {
	if !Handles(e.Type()) {
		return nil, notHandled(e.Type())
	}
	n := &Notice{EventID: e.ID(), EventSource: e.Source(), EventType: e.Type(), Time: e.Time().UTC()}
	if n.Time.IsZero() {
		n.Time = time.Now().UTC()
	}
	var err error
	switch e.Type() {
	case UserRegisteredType:
		err = n.registered(e)
	case UserLoginLockedType:
		err = n.locked(e)
	case APIKeyCreatedType:
		err = n.apiKeyCreated(ctx, q, e)
	case WebhookDisabledType:
		err = n.webhookDisabled(e)
	}
	if err != nil {
		return nil, err
	}
	return n, nil
}

func decode(e event.Event, v any) error {
	if err := json.Unmarshal(e.Data(), v); err != nil {
		return apierr.InvalidArgument("%s: the event's data is not the JSON object its schema describes", e.Type())
	}
	return nil
}

func malformed(e event.Event, field string) error {
	return apierr.InvalidArgument("%s: data.%s is missing or malformed", e.Type(), field)
}

func (n *Notice) registered(e event.Event) error {
	var d struct {
		UserID string `json:"user_id"`
	}
	if err := decode(e, &d); err != nil {
		return err
	}
	id, err := uuid.Parse(d.UserID)
	if err != nil {
		return malformed(e, "user_id")
	}
	n.Name, n.Kind, n.Users = NoticeVerifyEmail, KindAccount, []uuid.UUID{id}
	n.Title = "Verify your email address for Skyflow"
	n.Body = "Confirm your email address to finish setting up your Skyflow account."
	n.Details.UserID = id.String()
	return nil
}

func (n *Notice) locked(e event.Event) error {
	var d struct {
		UserID string    `json:"user_id"`
		Until  time.Time `json:"until"`
	}
	if err := decode(e, &d); err != nil {
		return err
	}
	id, err := uuid.Parse(d.UserID)
	if err != nil {
		return malformed(e, "user_id")
	}
	if d.Until.IsZero() {
		return malformed(e, "until")
	}
	n.Name, n.Kind, n.Users = NoticeLoginLocked, KindSecurity, []uuid.UUID{id}
	n.Details.UserID, n.Details.Until = id.String(), d.Until.UTC()
	n.Title = "Security alert: your Skyflow account is locked"
	n.Body = fmt.Sprintf("Too many failed sign-ins: sign-in is locked until %s UTC. If this was not you, change your password.",
		n.Details.Until.Format("2006-01-02 15:04"))
	// Worth delivering after the lock ends too: someone tried the password.
	n.TTL, n.Urgency = 24*time.Hour, "high"
	return nil
}

// userID returns the user of a principal "user:<uuid>"; ok is false for
// any other principal (a service account has no mailbox).
func userID(principal string) (uuid.UUID, bool) {
	s, ok := strings.CutPrefix(principal, "user:")
	if !ok {
		return uuid.UUID{}, false
	}
	id, err := uuid.Parse(s)
	return id, err == nil
}

func (n *Notice) addUser(id uuid.UUID) {
	for _, u := range n.Users {
		if u == id {
			return
		}
	}
	n.Users = append(n.Users, id)
}

func (n *Notice) apiKeyCreated(ctx context.Context, q Querier, e event.Event) error {
	var d struct {
		KeyID     string `json:"key_id"`
		Principal string `json:"principal"`
	}
	if err := decode(e, &d); err != nil {
		return err
	}
	keyID, err := uuid.Parse(d.KeyID)
	if err != nil {
		return malformed(e, "key_id")
	}
	clientID, ok := strings.CutPrefix(d.Principal, "sa:")
	if !ok || clientID == "" {
		return malformed(e, "principal")
	}
	n.Name, n.Kind = NoticeAPIKeyCreated, KindSecurity
	n.Details.KeyID, n.Details.ServiceAccountID = keyID.String(), clientID
	n.TTL, n.Urgency = 24*time.Hour, "high"
	// The user who made the key, and the user who made its service account.
	actor, _ := e.Extensions()["principal"].(string)
	if id, ok := userID(actor); ok {
		n.addUser(id)
	}
	n.Details.CreatedBy = actor
	var saCreator string
	err = q.QueryRow(ctx, `
		SELECT k.name, k.prefix, coalesce(s.name, ''), coalesce(s.created_by, '')
		FROM api_keys k LEFT JOIN service_accounts s ON s.client_id = $2
		WHERE k.id = $1`, keyID, clientID).Scan(&n.Details.KeyName, &n.Details.KeyPrefix, &n.Details.ServiceAccountName, &saCreator)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		// Gone already: the ids still tell the story.
	case err != nil:
		return err
	}
	if id, ok := userID(saCreator); ok {
		n.addUser(id)
	}
	if id, ok := userID(actor); ok {
		var name string
		if err := q.QueryRow(ctx, `SELECT display_name FROM users WHERE id = $1`, id).Scan(&name); err == nil && name != "" {
			n.Details.CreatedBy = name + " (" + actor + ")"
		} else if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
	}
	if n.Details.CreatedBy == "" {
		n.Details.CreatedBy = "an unknown principal"
	}
	n.Title = "Security alert: a new API key was created"
	key := n.Details.KeyID
	if n.Details.KeyName != "" {
		key = fmt.Sprintf("%q (%s…)", n.Details.KeyName, n.Details.KeyPrefix)
	}
	account := n.Details.ServiceAccountID
	if n.Details.ServiceAccountName != "" {
		account = fmt.Sprintf("%q", n.Details.ServiceAccountName)
	}
	n.Body = fmt.Sprintf("The API key %s was created for the service account %s. If you did not expect it, revoke it.", key, account)
	return nil
}

func (n *Notice) webhookDisabled(e event.Event) error {
	var d struct {
		WebhookID string `json:"webhook_id"`
		URL       string `json:"url"`
		Owner     string `json:"owner"`
		Reason    string `json:"reason"`
	}
	if err := decode(e, &d); err != nil {
		return err
	}
	if d.WebhookID == "" || len(d.WebhookID) > 100 || safeText(d.WebhookID, 100, "") == "" {
		return malformed(e, "webhook_id")
	}
	n.Name, n.Kind = NoticeWebhookDisabled, KindWebhooks
	n.Details.WebhookID = d.WebhookID
	n.Details.WebhookOrigin = Origin(d.URL)
	n.Details.Reason = safeText(d.Reason, 200, "repeated delivery failures (see the webhook's delivery log)")
	if id, ok := userID(d.Owner); ok {
		n.addUser(id)
	}
	n.TTL, n.Urgency = 24*time.Hour, "normal"
	n.Title = "Your Skyflow webhook endpoint was disabled"
	n.Body = fmt.Sprintf("Deliveries to %s stopped: %s. Fix the endpoint, then enable the webhook again.", n.Details.WebhookOrigin, n.Details.Reason)
	return nil
}

// Origin is scheme://host[:port] of a URL, without its user information,
// path and query (which may hold a secret), or "the endpoint" when raw is
// not an absolute http(s) URL.
func Origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "the endpoint"
	}
	return u.Scheme + "://" + u.Host
}

// VerifyEmailPath is the page of the web application (at the public URL,
// SKYFLOW_PUBLIC_URL) that finishes an email verification: it reads the
// token from the link's fragment and sends it to POST
// /v1/users/verify-email as {"token": "…"}. A fragment never reaches a
// server, so the token stays out of access logs and Referer headers.
const VerifyEmailPath = "/verify-email"

// VerificationLink is the link a verification email carries:
// <publicURL>/verify-email#token=<token>.
func VerificationLink(publicURL, token string) string {
	return strings.TrimRight(publicURL, "/") + VerifyEmailPath + "#token=" + url.QueryEscape(token)
}

// TokenOfLink reads the token back from a verification link (what the
// web application's page does), or "" when there is none.
func TokenOfLink(link string) string {
	u, err := url.Parse(link)
	if err != nil {
		return ""
	}
	v, err := url.ParseQuery(u.Fragment)
	if err != nil {
		return ""
	}
	return v.Get("token")
}
