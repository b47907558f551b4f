package tests

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// webhookReceiver is an application's webhook endpoint on this machine: it
// verifies every delivery with the secrets it was given, as a receiver
// following Standard Webhooks does, and keeps what verified.
type webhookReceiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	secrets  []string
	verified []webhookDelivery
	failed   []string // why deliveries did not verify
}

type webhookDelivery struct {
	header  http.Header
	payload struct {
		Type    string          `json:"type"`
		ID      string          `json:"id"`
		Source  string          `json:"source"`
		Time    time.Time       `json:"time"`
		Subject string          `json:"subject"`
		Data    json.RawMessage `json:"data"`
	}
	body []byte
	at   time.Time
}

func newWebhookReceiver(t testing.TB) *webhookReceiver {
	r := &webhookReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		d := webhookDelivery{header: req.Header.Clone(), body: body, at: time.Now()}
		r.mu.Lock()
		defer r.mu.Unlock()
		var why string
		for _, s := range r.secrets {
			wh, err := standardwebhooks.NewWebhook(s)
			if err != nil {
				why = err.Error()
				continue
			}
			if err := wh.Verify(body, req.Header); err != nil {
				why = err.Error()
				continue
			}
			why = ""
			break
		}
		if why != "" || len(r.secrets) == 0 {
			r.failed = append(r.failed, why)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		json.Unmarshal(body, &d.payload)
		r.verified = append(r.verified, d)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *webhookReceiver) trust(secret string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets = []string{secret}
}

// await waits for a verified delivery of an event of type typ.
func (r *webhookReceiver) await(t testing.TB, typ string, within time.Duration) webhookDelivery {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r.mu.Lock()
		for _, d := range r.verified {
			if d.payload.Type == typ {
				r.mu.Unlock()
				return d
			}
		}
		failed := append([]string(nil), r.failed...)
		r.mu.Unlock()
		if len(failed) > 0 {
			t.Fatalf("deliveries that did not verify: %v", failed)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no verified %s delivery within %s", typ, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// webhookVaultSchema is a vault whose policy lets the administrator's own
// role insert, so the administrator's API key can store a record.
const webhookVaultSchema = `{"name": "hooks",
 "tables": [{"name": "customers", "columns": [
   {"name": "email", "data_type": "string", "token_type": "DETERMINISTIC_UUID", "unique": true, "validation": {"kind": "EMAIL"}}]}],
 "policy": {"roles": {"admin": {"tables": {"customers": {"insert": true}}}}}}`

// Webhooks through the gateway on the local platform: an administrator
// subscribes a local receiver (the platform allows loopback), creates a
// vault and stores a record; the receiver gets signed
// com.skyflow.vault.created and com.skyflow.vault.record.created
// deliveries that verify with the secret shown at subscription, carrying
// identifiers only. Subscriptions to the metadata service or a private
// address are refused with 400. The delivery log, a test event, a secret
// rotation and a deletion work through the gateway too.
func TestWebhooksEndToEnd(t *testing.T) {
	p := startPlatform(t, options{})
	gw := &gatewayClient{base: p.GatewayURL(), client: &http.Client{Timeout: time.Minute}}
	admin := p.AdminAPIKey()
	rcv := newWebhookReceiver(t)

	// SSRF: internal destinations are refused when subscribing.
	for url, why := range map[string]string{
		"http://169.254.169.254/latest/meta-data/iam/": "link-local",
		"https://10.0.0.1/hooks":                       "private",
	} {
		a := gw.want(t, 400, "POST", "/v1/webhooks", admin, map[string]any{"url": url, "eventTypes": []string{"com.skyflow.vault.*"}}, nil)
		if !strings.Contains(string(a.body), why) || strings.Contains(string(a.body), "/latest/meta-data") {
			t.Errorf("subscribing %s: %s, want a message saying it is %s (without the URL)", url, a.body, why)
		}
	}

	var ep struct {
		ID         string   `json:"id"`
		Secret     string   `json:"secret"`
		EventTypes []string `json:"eventTypes"`
		Status     string   `json:"status"`
		Owner      string   `json:"owner"`
	}
	gw.want(t, 200, "POST", "/v1/webhooks", admin, map[string]any{"url": rcv.srv.URL + "/skyflow", "eventTypes": []string{"com.skyflow.vault.*"},
		"description": "end-to-end"}, &ep)
	if ep.ID == "" || !strings.HasPrefix(ep.Secret, "whsec_") || ep.Status != "active" || !strings.HasPrefix(ep.Owner, "sa:") {
		t.Fatalf("subscribed %+v", ep)
	}
	rcv.trust(ep.Secret)
	list := gw.want(t, 200, "GET", "/v1/webhooks", admin, nil, nil)
	if !strings.Contains(string(list.body), ep.ID) || strings.Contains(string(list.body), strings.TrimPrefix(ep.Secret, "whsec_")) {
		t.Fatalf("the list: %s", list.body)
	}

	var vault struct {
		ID string `json:"id"`
	}
	gw.want(t, 200, "POST", "/v1/management/vaults", admin, json.RawMessage(webhookVaultSchema), &vault)
	const email = "grace.hopper@example.com"
	var inserted struct {
		Records []struct {
			SkyflowID string `json:"skyflow_id"`
		} `json:"records"`
	}
	gw.want(t, 200, "POST", "/v1/vaults/"+vault.ID+"/customers", admin, map[string]any{
		"records": []any{map[string]any{"fields": map[string]any{"email": email}}}, "tokenization": true}, &inserted)
	if len(inserted.Records) != 1 {
		t.Fatalf("inserted %+v", inserted)
	}

	created := rcv.await(t, "com.skyflow.vault.created", 60*time.Second)
	record := rcv.await(t, "com.skyflow.vault.record.created", 60*time.Second)
	var data struct {
		VaultID   string `json:"vault_id"`
		Table     string `json:"table"`
		SkyflowID string `json:"skyflow_id"`
	}
	json.Unmarshal(record.payload.Data, &data)
	if data.VaultID != vault.ID || data.Table != "customers" || data.SkyflowID != inserted.Records[0].SkyflowID || record.payload.ID == "" ||
		!strings.HasPrefix(record.payload.Source, "/skyflow/functions/records-") {
		t.Fatalf("record.created delivery %s", record.body)
	}
	if strings.Contains(string(record.body), email) || strings.Contains(string(created.body), email) {
		t.Fatal("a delivery carries the stored value")
	}
	if id := record.header.Get("webhook-id"); !strings.HasPrefix(id, "msg_") || record.header.Get("User-Agent") == "" {
		t.Fatalf("headers %v", record.header)
	}

	// The delivery log through the gateway.
	var log struct {
		Deliveries []struct {
			EventID          string `json:"eventID"`
			EventType        string `json:"eventType"`
			Status           string `json:"status"`
			Attempts         int    `json:"attempts"`
			LastResponseCode int    `json:"lastResponseCode"`
		} `json:"deliveries"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		gw.want(t, 200, "GET", "/v1/webhooks/"+ep.ID+"/deliveries?page_size=10", admin, nil, &log)
		done := 0
		for _, d := range log.Deliveries {
			if d.EventID == record.payload.ID && d.Status == "succeeded" && d.Attempts == 1 && d.LastResponseCode == 204 {
				done++
			}
		}
		if done == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the delivery log does not show the record's delivery: %+v", log)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A test event reaches this endpoint; after a rotation deliveries carry
	// the new and the previous signature.
	var rotated struct {
		Secret string `json:"secret"`
	}
	gw.want(t, 200, "POST", "/v1/webhooks/"+ep.ID+"/secret/rotate", admin, nil, &rotated)
	rcv.trust(rotated.Secret)
	var sent struct {
		EventID   string `json:"eventID"`
		MessageID string `json:"messageID"`
	}
	gw.want(t, 200, "POST", "/v1/webhooks/"+ep.ID+"/test", admin, nil, &sent)
	tested := rcv.await(t, "com.skyflow.webhook.tested", 60*time.Second)
	if tested.payload.ID != sent.EventID || tested.header.Get("webhook-id") != sent.MessageID {
		t.Fatalf("the test delivery %s does not match %+v", tested.body, sent)
	}
	if sigs := strings.Fields(tested.header.Get("webhook-signature")); len(sigs) != 2 {
		t.Fatalf("after the rotation: %d signatures, want the new and the previous", len(sigs))
	}
	old, _ := standardwebhooks.NewWebhook(ep.Secret)
	if err := old.Verify(tested.body, tested.header); err != nil {
		t.Fatalf("a receiver still holding the previous secret: %v", err)
	}

	// Unknown endpoints are 404s; the administrator's routes only.
	gw.want(t, 404, "POST", "/v1/webhooks/00000000-0000-4000-8000-000000000000/enable", admin, nil, nil)
	gw.want(t, 200, "DELETE", "/v1/webhooks/"+ep.ID, admin, nil, nil)
	gw.want(t, 404, "GET", "/v1/webhooks/"+ep.ID+"/deliveries", admin, nil, nil)
}
