package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/skyflow-oss/skyflow/runtime/sender"
)

// BenchmarkWebhookDelivery measures an event's way to a webhook receiver
// on the local platform: published to the broker ingress (Kafka, fsynced),
// delivered by its Trigger to notify-webhook, which records the delivery,
// signs it and POSTs it to a receiver on this machine, then records the
// result. Latency: publish → the receiver has the request, p50 and p99,
// against a plain HTTP POST of the same body to the same receiver,
// alternating the two; of which the ingress's answer and notify-webhook's
// own handling. notify-webhook alone: the event POSTed to it as the
// broker delivers it (function-*). Throughput: deliveries per second when
// 8 publishers send at once (through the broker, and to notify-webhook
// alone), against 8 clients POSTing straight to the receiver.
func BenchmarkWebhookDelivery(b *testing.B) {
	p := startPlatform(b, options{env: map[string]string{"RECORD_DIR": "", "LOG_LEVEL": "warn"}})
	ctx := b.Context()

	type arrival struct {
		id string
		at time.Time
	}
	arrivals := make(chan arrival, 4096)
	var received atomic.Int64
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		at := time.Now()
		var payload struct {
			ID string `json:"id"`
		}
		json.Unmarshal(body, &payload)
		w.WriteHeader(http.StatusNoContent)
		received.Add(1)
		select {
		case arrivals <- arrival{payload.ID, at}:
		default:
		}
	}))
	b.Cleanup(rcv.Close)

	var ep struct {
		ID string `json:"id"`
	}
	if status, raw := benchAdminCall(b, p, "POST", "/v1/webhooks", map[string]any{"url": rcv.URL + "/hooks", "eventTypes": []string{"com.skyflow.bench.webhook.*"}}); status != 200 || json.Unmarshal(raw, &ep) != nil || ep.ID == "" {
		b.Fatalf("subscribing: %d %s", status, raw)
	}

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}
	body := func(id string) []byte {
		return fmt.Appendf(nil, `{"order_id":"%s","status":"paid","amount_token":"tok_5f2b"}`, id)
	}
	var acks []time.Duration
	var acksMu sync.Mutex
	publish := func(id string) {
		start := time.Now()
		defer func() {
			acksMu.Lock()
			acks = append(acks, time.Since(start))
			acksMu.Unlock()
		}()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.SinkURL(), bytes.NewReader(body(id)))
		req.Header.Set("Ce-Specversion", "1.0")
		req.Header.Set("Ce-Id", id)
		req.Header.Set("Ce-Source", "/tests/bench")
		req.Header.Set("Ce-Type", "com.skyflow.bench.webhook.sent")
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatalf("publishing: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			b.Fatalf("the ingress answered %d", resp.StatusCode)
		}
	}
	// notify-webhook alone: the event POSTed to its Service as the broker
	// delivers it (signed with the broker's key), without Kafka.
	fnURL, ok := p.ServiceURL("notify-webhook")
	if !ok {
		b.Fatal("no notify-webhook Service")
	}
	toFunction := func(id string) {
		e := event.New()
		e.SetID(id)
		e.SetSource("/tests/bench")
		e.SetType("com.skyflow.bench.webhook.sent")
		e.SetData(event.ApplicationJSON, json.RawMessage(body(id)))
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, fnURL.String(), nil)
		if err := cehttp.WriteRequest(ctx, binding.ToMessage(&e), req); err != nil {
			b.Fatal(err)
		}
		if err := p.Signer(sender.Broker).Authorize(req, e, "notify-webhook"); err != nil {
			b.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatalf("POST to notify-webhook: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			b.Fatalf("notify-webhook answered %d", resp.StatusCode)
		}
	}
	// The baseline: the same body POSTed straight to the receiver, as a
	// plain webhook sender without a broker, a log or a signature would.
	direct := func(id string) {
		wrapped := fmt.Appendf(nil, `{"type":"com.skyflow.bench.webhook.sent","id":"%s","data":%s}`, id, body(id))
		resp, err := client.Post(rcv.URL+"/hooks", "application/json", bytes.NewReader(wrapped))
		if err != nil {
			b.Fatalf("direct POST: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	arrived := func(id string, within time.Duration) time.Time {
		timeout := time.After(within)
		for {
			select {
			case a := <-arrivals:
				if a.id == id {
					return a.at
				}
			case <-timeout:
				b.Fatalf("%s did not reach the receiver within %s", id, within)
			}
		}
	}

	// Warm: notify-webhook starts on the first event and its Trigger joins
	// the consumer group; connections open.
	for i := range 10 {
		id := fmt.Sprintf("warm-%d", i)
		publish(id)
		arrived(id, 2*time.Minute)
		direct(id + "-direct")
		arrived(id+"-direct", 10*time.Second)
		toFunction(id + "-fn")
		arrived(id+"-fn", 10*time.Second)
	}

	var viaWebhook, straight, viaFunction []time.Duration
	acks = nil
	handledSum, handledCount := benchWebhookHandled(b, p)
	run := 0
	one := func() {
		id := fmt.Sprintf("lat-%d", run)
		start := time.Now()
		publish(id)
		viaWebhook = append(viaWebhook, arrived(id, 30*time.Second).Sub(start))
		fid := id + "-fn"
		id += "-direct"
		start = time.Now()
		direct(id)
		straight = append(straight, arrived(id, 10*time.Second).Sub(start))
		start = time.Now()
		toFunction(fid)
		viaFunction = append(viaFunction, arrived(fid, 10*time.Second).Sub(start))
		run++
	}
	for b.Loop() {
		one()
	}
	for len(viaWebhook) < 50 { // enough samples for a p99 whatever -benchtime says
		one()
	}

	// Of which: the ingress's answer (Kafka has the event on disk), and
	// notify-webhook's own handling (its metrics: match, record, sign,
	// POST, record the result), both in the latency loop.
	ackP50 := percentile(acks, 0.50)
	sum, count := benchWebhookHandled(b, p)
	handleMean := 0.0
	if count > handledCount {
		handleMean = (sum - handledSum) / (count - handledCount) * 1000
	}

	// Throughput: 8 publishers, n events, until the receiver has them all.
	const workers, n = 8, 400
	rate := func(send func(id string)) float64 {
		before := received.Load()
		var next atomic.Int64
		start := time.Now()
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for {
					i := next.Add(1)
					if i > n {
						return
					}
					send(fmt.Sprintf("tp-%d-%d", start.UnixNano(), i))
				}
			})
		}
		wg.Wait()
		deadline := time.Now().Add(2 * time.Minute)
		for received.Load()-before < n {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d deliveries after 2 minutes", received.Load()-before, n)
			}
			time.Sleep(time.Millisecond)
		}
		return n / time.Since(start).Seconds()
	}
	for len(arrivals) > 0 {
		<-arrivals
	}
	perSecond := rate(publish)
	fnPerSecond := rate(toFunction)
	basePerSecond := rate(direct)

	reportLatencies(b, viaWebhook, straight, "ratio-vs-direct-post")
	b.ReportMetric(ackP50, "ingress-ack-p50-ms")
	b.ReportMetric(handleMean, "notify-webhook-handle-mean-ms")
	b.ReportMetric(perSecond, "deliveries/s")
	b.ReportMetric(basePerSecond, "baseline-posts/s")
	b.ReportMetric(perSecond/basePerSecond, "throughput-ratio")
	b.ReportMetric(percentile(viaFunction, 0.50), "function-p50-ms")
	b.ReportMetric(percentile(viaFunction, 0.99), "function-p99-ms")
	b.ReportMetric(fnPerSecond, "function-deliveries/s")

	// Every delivery of the run is in the log, succeeded on its first attempt.
	var log struct {
		Deliveries []struct {
			Status   string `json:"status"`
			Attempts int    `json:"attempts"`
		} `json:"deliveries"`
	}
	status, raw := benchAdminCall(b, p, "GET", "/v1/webhooks/"+ep.ID+"/deliveries?page_size=200", nil)
	if json.Unmarshal(raw, &log) != nil || len(log.Deliveries) == 0 {
		b.Fatalf("the delivery log: %d %s", status, raw)
	}
	for _, d := range log.Deliveries {
		if d.Status != "succeeded" || d.Attempts != 1 {
			b.Fatalf("a delivery %+v", d)
		}
	}
}

// benchWebhookHandled sums notify-webhook's handling time (seconds) and
// count of the benchmark's events, from its process's /metrics.
func benchWebhookHandled(b *testing.B, p *testPlatform) (sum, count float64) {
	b.Helper()
	var u string
	for _, s := range p.Status() {
		if s.Name == "notify-webhook" && s.ProcessURL != nil {
			u = s.ProcessURL.String() + "/metrics"
		}
	}
	if u == "" {
		b.Fatal("notify-webhook is not running")
	}
	resp, err := http.Get(u)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(text)) {
		name, rest, ok := strings.Cut(line, "{")
		if !ok || !strings.Contains(rest, `type="com.skyflow.bench.webhook.sent"`) {
			continue
		}
		_, value, _ := strings.Cut(rest, "} ")
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch name {
		case "skyflow_function_event_duration_seconds_sum":
			sum += v
		case "skyflow_function_event_duration_seconds_count":
			count += v
		}
	}
	return sum, count
}

// benchAdminCall calls the gateway with the administrator's API key.
func benchAdminCall(b *testing.B, p *testPlatform, method, path string, body any) (int, []byte) {
	b.Helper()
	var r io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, p.GatewayURL()+path, r)
	req.Header.Set("Authorization", "Bearer "+p.AdminAPIKey())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}
