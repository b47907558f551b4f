package webhooks

import (
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
)

// Event types about endpoints and deliveries; each has a schema in
// eventing/catalog. They carry identifiers (and the endpoint's URL where
// its owner must be told about it), never a secret, a payload or a
// response body.
const (
	SubscribedType     = "com.skyflow.webhook.subscribed"
	DeletedType        = "com.skyflow.webhook.deleted"
	SecretRotatedType  = "com.skyflow.webhook.secret.rotated"
	EnabledType        = "com.skyflow.webhook.enabled"
	DisabledType       = "com.skyflow.webhook.disabled"
	TestedType         = "com.skyflow.webhook.tested"
	DeliveryFailedType = "com.skyflow.webhook.delivery.failed"
)

// Data of the events.

type subscribedData struct {
	WebhookID  string   `json:"webhook_id"`
	Owner      string   `json:"owner"`
	URL        string   `json:"url"`
	EventTypes []string `json:"event_types"`
	VaultID    string   `json:"vault_id,omitempty"`
}

type endpointData struct {
	WebhookID string `json:"webhook_id"`
	Owner     string `json:"owner,omitempty"`
	URL       string `json:"url,omitempty"`
}

type rotatedData struct {
	WebhookID         string    `json:"webhook_id"`
	Owner             string    `json:"owner"`
	SecretVersion     int       `json:"secret_version"`
	PreviousExpiresAt time.Time `json:"previous_expires_at"`
}

// DisabledData is the data of a com.skyflow.webhook.disabled event: what
// the owner is told (notify-email mails them).
type DisabledData struct {
	WebhookID    string     `json:"webhook_id"`
	URL          string     `json:"url"`
	Owner        string     `json:"owner"`
	Reason       string     `json:"reason"`
	FailingSince *time.Time `json:"failing_since,omitempty"`
}

// DeliveryFailedData is the data of a com.skyflow.webhook.delivery.failed
// event: the dead-letter record of a delivery that ran out of attempts.
type DeliveryFailedData struct {
	WebhookID   string `json:"webhook_id"`
	Owner       string `json:"owner"`
	DeliveryID  string `json:"delivery_id"`
	EventSource string `json:"event_source"`
	EventID     string `json:"event_id"`
	EventType   string `json:"event_type"`
	MessageID   string `json:"message_id"`
	Attempts    int    `json:"attempts"`
	LastStatus  *int   `json:"last_status,omitempty"`
	LastError   string `json:"last_error,omitempty"`
}

// NewEvent makes an event about endpoint webhookID; actor is the principal
// who caused it ("" for the platform's own).
func NewEvent(source, typ, actor, webhookID string, at time.Time, data any) event.Event {
	e := event.New()
	e.SetID(uuid.NewString())
	e.SetSource(source)
	e.SetType(typ)
	e.SetTime(at)
	e.SetSubject(webhookID)
	if actor != "" {
		e.SetExtension("principal", actor)
	}
	e.SetExtension("partitionkey", webhookID)
	_ = e.SetData(event.ApplicationJSON, data)
	return e
}
