package delivery

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
)

// aboutEndpointHealth are the events about an endpoint's own deliveries:
// never delivered to the endpoint they are about, and a failure to
// deliver one of them to another endpoint emits no further
// delivery.failed event, so failing endpoints cannot feed each other.
func aboutEndpointHealth(eventType string) bool {
	return eventType == webhooks.DeliveryFailedType || eventType == webhooks.DisabledType
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
