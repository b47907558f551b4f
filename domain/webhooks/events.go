package webhooks

import (
	"encoding/json"
	"strings"
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

// aboutEndpointHealth are the events about an endpoint's own deliveries:
// never delivered to the endpoint they are about, and a failure to
// deliver one of them to another endpoint emits no further
// delivery.failed event, so failing endpoints cannot feed each other.
func aboutEndpointHealth(eventType string) bool {
	return eventType == DeliveryFailedType || eventType == DisabledType
}

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

// newEvent makes an event about endpoint webhookID; actor is the principal
// who caused it ("" for the platform's own).
func newEvent(source, typ, actor, webhookID string, at time.Time, data any) event.Event {
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

// webhookOf is the endpoint a com.skyflow.webhook.* event is about: its
// data's webhook_id, else its subject.
func webhookOf(e event.Event) string {
	if !strings.HasPrefix(e.Type(), "com.skyflow.webhook.") {
		return ""
	}
	var d struct {
		WebhookID string `json:"webhook_id"`
	}
	if json.Unmarshal(e.Data(), &d) == nil && d.WebhookID != "" {
		return d.WebhookID
	}
	return e.Subject()
}

// Payload is the body of every delivery: the event's identity and data,
// as JSON. It is stable: fields are only ever added.
//
//	{"type":"com.skyflow.vault.record.created","id":"…","source":"/skyflow/functions/records-insert",
//	 "time":"2026-11-24T10:00:00.123456Z","subject":"…","data":{…}}
type Payload struct {
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Source  string          `json:"source"`
	Time    time.Time       `json:"time"`
	Subject string          `json:"subject,omitempty"`
	Data    json.RawMessage `json:"data"`
	// DataBase64 carries data that is not JSON (no Skyflow event has any).
	DataBase64 []byte `json:"data_base64,omitempty"`
}

// PayloadOf renders the body delivered for e; now stands in for a missing
// event time.
func PayloadOf(e event.Event, now time.Time) ([]byte, error) {
	p := Payload{Type: e.Type(), ID: e.ID(), Source: e.Source(), Time: e.Time().UTC(), Subject: e.Subject()}
	if p.Time.IsZero() {
		p.Time = now.UTC()
	}
	switch data := e.Data(); {
	case len(data) == 0:
		p.Data = json.RawMessage("null")
	case json.Valid(data):
		p.Data = data
	default:
		p.Data = json.RawMessage("null")
		p.DataBase64 = data
	}
	return json.Marshal(p)
}
