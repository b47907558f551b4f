package broker

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// post sends a raw request to the ingress and returns status and body.
func post(t *testing.T, method, url string, header map[string]string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var binaryHeaders = map[string]string{
	"Ce-Specversion":  "1.0",
	"Ce-Id":           "evt-1",
	"Ce-Source":       "/gateway",
	"Ce-Type":         "com.skyflow.vault.record.created",
	"Ce-Time":         "2026-03-04T05:06:07Z",
	"Ce-Partitionkey": "tenant-1",
	"Content-Type":    "application/json",
}

// topicRecords reads every record of the Broker's topic.
func topicRecords(t *testing.T, seeds []string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(newSet().Brokers[0].Topic()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := ctxWithWait(t)
	var recs []*kgo.Record
	for len(recs) < want {
		f := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("topic has %d records, want %d", len(recs), want)
		}
		recs = append(recs, f.Records()...)
	}
	return recs
}

func TestIngressStoresBinaryAndStructuredEventsInBinaryContentMode(t *testing.T) {
	c := startKafka(t, t.TempDir())
	b := startBroker(t, c, newSet(), nil)
	url := b.IngressURL(ns, brokerName)

	if code, body := post(t, http.MethodPost, url, binaryHeaders, []byte(`{"token":"tok_1"}`)); code != http.StatusAccepted {
		t.Fatalf("binary event: %d %s", code, body)
	}
	structured := `{"specversion":"1.0","id":"evt-2","source":"/gateway","type":"com.skyflow.vault.record.updated","data":{"token":"tok_2"}}`
	if code, body := post(t, http.MethodPost, url, map[string]string{"Content-Type": "application/cloudevents+json"}, []byte(structured)); code != http.StatusAccepted {
		t.Fatalf("structured event: %d %s", code, body)
	}

	recs := topicRecords(t, c.Seeds(), 2)
	byID := map[string]*kgo.Record{}
	for _, r := range recs {
		for _, h := range r.Headers {
			if h.Key == "ce_id" {
				byID[string(h.Value)] = r
			}
		}
	}
	r1 := byID["evt-1"]
	if r1 == nil || string(r1.Key) != "tenant-1" || string(r1.Value) != `{"token":"tok_1"}` {
		t.Fatalf("binary event stored as %+v", r1)
	}
	h1 := headerMap(r1)
	for k, v := range map[string]string{"ce_specversion": "1.0", "ce_source": "/gateway", "ce_type": "com.skyflow.vault.record.created",
		"ce_time": "2026-03-04T05:06:07Z", "ce_partitionkey": "tenant-1", "content-type": "application/json"} {
		if h1[k] != v {
			t.Errorf("header %s = %q, want %q", k, h1[k], v)
		}
	}
	r2 := byID["evt-2"]
	if r2 == nil || r2.Key != nil || string(r2.Value) != `{"token":"tok_2"}` {
		t.Fatalf("structured event stored as %+v", r2)
	}
	if ct := headerMap(r2)["content-type"]; ct != "application/json" {
		t.Errorf("structured JSON event stored with content-type %q, want application/json", ct)
	}
}

func headerMap(r *kgo.Record) map[string]string {
	m := map[string]string{}
	for _, h := range r.Headers {
		m[h.Key] = string(h.Value)
	}
	return m
}

func TestIngressRejectsBadInput(t *testing.T) {
	c := startKafka(t, t.TempDir())
	b := startBroker(t, c, newSet(), nil)
	url := b.IngressURL(ns, brokerName)
	without := func(drop string) map[string]string {
		h := map[string]string{}
		for k, v := range binaryHeaders {
			if k != drop {
				h[k] = v
			}
		}
		return h
	}
	with := func(k, v string) map[string]string {
		h := without("")
		h[k] = v
		return h
	}
	tests := []struct {
		name     string
		method   string
		url      string
		header   map[string]string
		body     []byte
		want     int
		wantText string
	}{
		{"binary event without an id", http.MethodPost, url, without("Ce-Id"), []byte(`{}`), 400, "id"},
		{"binary event with a bad time", http.MethodPost, url, with("Ce-Time", "yesterday"), []byte(`{}`), 400, "time"},
		{"unknown specversion", http.MethodPost, url, with("Ce-Specversion", "9.9"), []byte(`{}`), 400, "specversion"},
		{"structured event that is not JSON", http.MethodPost, url, map[string]string{"Content-Type": "application/cloudevents+json"}, []byte(`{"specversion":`), 400, "malformed"},
		{"structured event without a type", http.MethodPost, url, map[string]string{"Content-Type": "application/cloudevents+json"},
			[]byte(`{"specversion":"1.0","id":"1","source":"/s"}`), 400, "type"},
		{"plain JSON is not a CloudEvent", http.MethodPost, url, map[string]string{"Content-Type": "application/json"}, []byte(`{}`), 415, "binary mode"},
		{"unsupported structured format", http.MethodPost, url, map[string]string{"Content-Type": "application/cloudevents+xml"}, []byte(`<e/>`), 415, "not a CloudEvent"},
		{"batch", http.MethodPost, url, map[string]string{"Content-Type": "application/cloudevents-batch+json"}, []byte(`[]`), 415, "batch"},
		{"body over the limit", http.MethodPost, url, binaryHeaders, bytes.Repeat([]byte("a"), DefaultMaxEventBytes+1), 413, "larger"},
		{"unknown broker", http.MethodPost, b.IngressURL(ns, "nope"), binaryHeaders, []byte(`{}`), 404, "nope"},
		{"unknown namespace", http.MethodPost, b.IngressURL("other", brokerName), binaryHeaders, []byte(`{}`), 404, "other"},
		{"GET", http.MethodGet, url, nil, nil, 405, "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := post(t, tt.method, tt.url, tt.header, tt.body)
			if code != tt.want || !strings.Contains(body, tt.wantText) {
				t.Fatalf("got %d %q, want %d mentioning %q", code, body, tt.want, tt.wantText)
			}
		})
	}
	if code, _ := post(t, http.MethodGet, strings.TrimSuffix(url, "/"+ns+"/"+brokerName)+"/healthz", nil, nil); code != http.StatusOK {
		t.Errorf("healthz: %d", code)
	}
	if n := counterValue(t, b.metrics.ingested.WithLabelValues(ns, brokerName)); n != 0 {
		t.Errorf("%v events ingested from bad input", n)
	}
}

func TestIngressAnswers503WhenKafkaDoesNotAcknowledge(t *testing.T) {
	c := startKafka(t, t.TempDir())
	b := startBroker(t, c, newSet(), nil)
	c.Close()
	code, body := post(t, http.MethodPost, b.IngressURL(ns, brokerName), binaryHeaders, []byte(`{}`))
	if code != http.StatusServiceUnavailable {
		t.Fatalf("got %d %q, want 503 so that the sender retries", code, body)
	}
}
