package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
	"github.com/skyflow-oss/skyflow/domain/webhooks/delivery"
	"github.com/skyflow-oss/skyflow/domain/webhooks/webhookstest"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/runtime/sender"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

// The delivery log: newest first, paged, by status; event, status,
// attempts, latency, last response code and error, next attempt; never
// the payload or what the receiver answered.
func TestDeliveryLog(t *testing.T) {
	env := functest.New(t)
	env.Config["SKYFLOW_WEBHOOK_ALLOWED_NETWORKS"] = "127.0.0.0/8"
	f := env.Start(New())
	var n atomic.Int64
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			w.WriteHeader(503)
		}
		fmt.Fprint(w, "receiver-private-answer")
	}))
	defer rcv.Close()
	s := webhookstest.Service(env)
	ep, err := s.Subscribe(context.Background(), webhookstest.Admin, webhooks.SubscribeRequest{URL: rcv.URL, EventTypes: []string{"com.skyflow.vault.*"}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := delivery.NewDispatcher(s.Backend, "/skyflow/functions/notify-webhook")
	if err != nil {
		t.Fatal(err)
	}
	var sent []event.Event
	for i := range 4 {
		e := event.New()
		e.SetID(uuid.NewString())
		e.SetSource("/skyflow/functions/records-insert")
		e.SetType("com.skyflow.vault.record.created")
		e.SetData(event.ApplicationJSON, map[string]string{"skyflow_id": fmt.Sprintf("secret-looking-payload-%d", i)})
		if _, err := d.Dispatch(sender.NewContext(context.Background(), sender.Broker), e); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, e)
		time.Sleep(2 * time.Millisecond)
	}
	var page1, page2 webhooks.Deliveries
	env.Call(f, functest.Event(RequestType, nil, functest.Admin, webhookstest.WithID(ep.ID), map[string]string{request.ExtQuery: "page_size=3"}), ReplyType, &page1)
	if len(page1.Deliveries) != 3 || page1.NextPageToken == "" {
		t.Fatalf("page 1: %+v", page1)
	}
	env.Call(f, functest.Event(RequestType, nil, functest.Admin, webhookstest.WithID(ep.ID), map[string]string{request.ExtQuery: "page_size=3&page_token=" + page1.NextPageToken}), ReplyType, &page2)
	all := append(page1.Deliveries, page2.Deliveries...)
	if len(all) != 4 || page2.NextPageToken != "" {
		t.Fatalf("pages: %+v %+v", page1, page2)
	}
	for i, dl := range all {
		e := sent[3-i]
		if dl.EventID != e.ID() || dl.EventType != e.Type() || dl.EventSource != e.Source() || dl.Attempts != 1 || dl.LatencyMs == nil || dl.LastResponseCode == nil {
			t.Fatalf("delivery %d: %+v, want event %s (newest first)", i, dl, e.ID())
		}
		switch *dl.LastResponseCode {
		case 200:
			if dl.Status != webhooks.DeliverySucceeded || dl.NextAttemptAt != nil || dl.FinishedAt == nil {
				t.Errorf("a 200: %+v", dl)
			}
		case 503:
			if dl.Status != webhooks.DeliveryPending || dl.NextAttemptAt == nil || dl.LastError != "HTTP 503" {
				t.Errorf("a 503: %+v", dl)
			}
		}
	}
	raw, _ := json.Marshal(all)
	if strings.Contains(string(raw), "receiver-private-answer") || strings.Contains(string(raw), "secret-looking-payload") {
		t.Fatalf("the log shows a payload or a response body: %s", raw)
	}
	var pending webhooks.Deliveries
	env.Call(f, functest.Event(RequestType, nil, functest.Admin, webhookstest.WithID(ep.ID), map[string]string{request.ExtQuery: "status=pending"}), ReplyType, &pending)
	if len(pending.Deliveries) != 2 {
		t.Fatalf("%d pending, want 2", len(pending.Deliveries))
	}
	env.Refuses(f, functest.Event(RequestType, nil, functest.Admin, webhookstest.WithID(ep.ID), map[string]string{request.ExtQuery: "status=lost"}), 400)
	env.Refuses(f, functest.Event(RequestType, nil, functest.Admin, webhookstest.WithID("00000000-0000-4000-8000-000000000000")), 404)
	env.Refuses(f, functest.Event(RequestType, nil, functest.Owner, webhookstest.WithID(ep.ID)), 403)
}
