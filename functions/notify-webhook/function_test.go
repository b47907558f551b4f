package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
	"github.com/skyflow-oss/skyflow/domain/webhooks/delivery"
	"github.com/skyflow-oss/skyflow/eventing/catalog"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/metrics"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/runtime/sender"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

var admin = request.Principal{ID: functest.Admin[request.ExtPrincipal], Roles: []string{"admin"}}

const loopback = "127.0.0.0/8,::1/128"

// fixture is notify-webhook on real services, a management service to
// subscribe endpoints with (allowed to name local receivers), and the
// database.
type fixture struct {
	t    *testing.T
	env  *functest.Env
	f    *Function
	svc  *webhooks.Service
	pool *pgxpool.Pool
	ctx  context.Context
}

// setup starts notify-webhook with cfg over the environment's settings;
// the function may reach local receivers unless cfg says otherwise.
func setup(t *testing.T, cfg map[string]string) *fixture {
	t.Helper()
	env := functest.New(t)
	env.Config["SKYFLOW_WEBHOOK_ALLOWED_NETWORKS"] = loopback
	env.Config["SKYFLOW_WEBHOOK_JITTER_PERCENT"] = "0"
	env.Config["SKYFLOW_WEBHOOK_SWEEP_WAIT"] = "5s"
	for k, v := range cfg {
		env.Config[k] = v
	}
	return setupOn(t, env)
}

func setupOn(t *testing.T, env *functest.Env) *fixture {
	t.Helper()
	f := env.Start(New()).(*Function)
	mgmt := map[string]string{}
	for k, v := range env.Config {
		mgmt[k] = v
	}
	mgmt["SKYFLOW_WEBHOOK_ALLOWED_NETWORKS"] = loopback
	ctx := context.Background()
	b, err := webhooks.Connect(ctx, mgmt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Pool.Close)
	return &fixture{t: t, env: env, f: f, svc: webhooks.NewService(b, "/skyflow/functions/webhooks-subscribe"), pool: b.Pool, ctx: ctx}
}

func (fx *fixture) subscribe(url string, types ...string) *webhooks.NewEndpoint {
	fx.t.Helper()
	return fx.subscribeReq(webhooks.SubscribeRequest{URL: url, EventTypes: types})
}

func (fx *fixture) subscribeReq(req webhooks.SubscribeRequest) *webhooks.NewEndpoint {
	fx.t.Helper()
	ep, err := fx.svc.Subscribe(fx.ctx, admin, req)
	if err != nil {
		fx.t.Fatalf("subscribe: %v", err)
	}
	return ep
}

// publish hands e to notify-webhook as the broker does.
func (fx *fixture) publish(e event.Event) {
	fx.t.Helper()
	if _, err := fx.f.Handle(sender.NewContext(fx.ctx, sender.Broker), e); err != nil {
		fx.t.Fatalf("Handle(%s): %v", e.Type(), err)
	}
}

// ping is the PingSource's tick.
func (fx *fixture) ping() {
	fx.t.Helper()
	p := event.New()
	p.SetID(uuid.NewString())
	p.SetSource("/apis/v1/namespaces/skyflow/pingsources/notify-webhook")
	p.SetType(PingType)
	p.SetData(event.ApplicationJSON, map[string]string{"task": "notify-webhook"})
	if _, err := fx.f.Handle(sender.NewContext(fx.ctx, sender.Ping), p); err != nil {
		fx.t.Fatalf("ping: %v", err)
	}
}

// deliveries are the rows of an endpoint's delivery log.
func (fx *fixture) deliveries(endpoint string) []webhooks.Delivery {
	fx.t.Helper()
	d, err := fx.svc.ListDeliveries(fx.ctx, admin, endpoint, nil)
	if err != nil {
		fx.t.Fatal(err)
	}
	return d.Deliveries
}

func (fx *fixture) endpoint(id string) *webhooks.Endpoint {
	fx.t.Helper()
	e, err := fx.svc.Get(fx.ctx, admin, id)
	if err != nil {
		fx.t.Fatal(err)
	}
	return e
}

// emitted are the events notify-webhook published of one type, each
// checked against the catalog.
func (fx *fixture) emitted(typ string) []event.Event {
	fx.t.Helper()
	var out []event.Event
	for _, e := range fx.env.Sink.OfType(typ) {
		if err := catalog.Validate(e); err != nil {
			fx.t.Error(err)
		}
		out = append(out, e)
	}
	return out
}

var recordSource = "/skyflow/functions/records-insert"

// domainEvent is an event as a function's outbox publishes it.
func domainEvent(typ, vault string) event.Event {
	e := event.New()
	e.SetID(uuid.NewString())
	e.SetSource(recordSource)
	e.SetType(typ)
	e.SetTime(time.Now())
	id := uuid.NewString()
	e.SetSubject(id)
	e.SetExtension("principal", "sa:owner")
	if vault != "" {
		e.SetExtension("vaultid", vault)
		e.SetExtension("partitionkey", vault)
	}
	e.SetData(event.ApplicationJSON, map[string]string{"vault_id": vault, "table": "customers", "skyflow_id": id})
	return e
}

// receiver is a webhook receiver: it answers with a script of statuses
// (the last repeats) and keeps every request.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []received
	// script of answers; after it, the last repeats.
	script []int
	header http.Header // added to every answer
	delay  time.Duration
}

type received struct {
	header http.Header
	body   []byte
	at     time.Time
}

func newReceiver(t *testing.T, script ...int) *receiver {
	r := &receiver{script: script, header: http.Header{}}
	if len(r.script) == 0 {
		r.script = []int{200}
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		n := len(r.got)
		r.got = append(r.got, received{header: req.Header.Clone(), body: body, at: time.Now()})
		status := r.script[min(n, len(r.script)-1)]
		delay := r.delay
		for k, v := range r.header {
			w.Header()[k] = v
		}
		r.mu.Unlock()
		time.Sleep(delay)
		w.WriteHeader(status)
		fmt.Fprintf(w, "answer %d with a body that is never kept", status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) url() string { return r.srv.URL + "/hooks/skyflow" }

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// verify checks a request as a receiver would, with the reference
// library and the secret the API showed.
func verify(secret string, r received) error {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return err
	}
	return wh.Verify(r.body, r.header)
}

func wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metric is a counter's value in the process registry (0 when absent).
func metric(t *testing.T, name, label, value string) float64 {
	t.Helper()
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			ok := label == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					ok = true
				}
			}
			if ok {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				if g := m.GetGauge(); g != nil {
					return g.GetValue()
				}
			}
		}
	}
	return 0
}

// An event goes to every active endpoint whose patterns and vault it
// matches, once, as a signed POST that the reference library verifies,
// with the documented payload and headers; the delivery log shows it.
func TestDeliversSignedEventsToTheMatchingEndpoints(t *testing.T) {
	fx := setup(t, nil)
	vault := fx.env.Vault()
	prefix, exact, vaultOnly, other := newReceiver(t), newReceiver(t), newReceiver(t), newReceiver(t)
	epPrefix := fx.subscribe(prefix.url(), "com.skyflow.vault.record.*")
	fx.subscribe(exact.url(), "com.skyflow.vault.record.deleted")
	epVault := fx.subscribeReq(webhooks.SubscribeRequest{URL: vaultOnly.url(), EventTypes: []string{"com.skyflow.*"}, VaultID: vault})
	fx.subscribe(other.url(), "com.skyflow.user.*")
	before := metric(t, "skyflow_webhook_deliveries_total", "outcome", "succeeded")

	e := domainEvent("com.skyflow.vault.record.created", vault)
	fx.publish(e)
	elsewhere := domainEvent("com.skyflow.vault.record.created", strings.Repeat("a", 32))
	fx.publish(elsewhere)

	if n := len(exact.requests()) + len(other.requests()); n != 0 {
		t.Fatalf("endpoints that did not subscribe got %d deliveries", n)
	}
	if n := len(prefix.requests()); n != 2 {
		t.Fatalf("the prefix endpoint got %d deliveries, want 2", n)
	}
	got := vaultOnly.requests()
	if len(got) != 1 {
		t.Fatalf("the vault's endpoint got %d deliveries, want the one of its vault", len(got))
	}
	r := got[0]
	if err := verify(epVault.Secret, r); err != nil {
		t.Fatalf("the delivery does not verify with the endpoint's secret: %v", err)
	}
	if err := verify(epPrefix.Secret, r); err == nil {
		t.Fatal("the delivery verifies with another endpoint's secret")
	}
	if r.header.Get("Content-Type") != "application/json" || !strings.HasPrefix(r.header.Get("User-Agent"), "Skyflow-Webhooks/") {
		t.Errorf("headers %v", r.header)
	}
	if id := r.header.Get("webhook-id"); id != webhooks.MessageID(epVault.ID, e.Source(), e.ID()) {
		t.Errorf("webhook-id %q is not the message id of this event and endpoint", id)
	}
	ts, _ := strconv.ParseInt(r.header.Get("webhook-timestamp"), 10, 64)
	if d := time.Since(time.Unix(ts, 0)); d < -2*time.Second || d > 10*time.Second {
		t.Errorf("webhook-timestamp %d is %s away", ts, d)
	}
	var p delivery.Payload
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	var data map[string]string
	json.Unmarshal(p.Data, &data)
	if p.Type != e.Type() || p.ID != e.ID() || p.Source != e.Source() || p.Subject != e.Subject() || !p.Time.Equal(e.Time().UTC().Truncate(time.Microsecond)) && !p.Time.Equal(e.Time().UTC()) || data["vault_id"] != vault {
		t.Fatalf("payload %s does not carry the event %v", r.body, e)
	}
	var keys map[string]json.RawMessage
	json.Unmarshal(r.body, &keys)
	for k := range keys {
		if !strings.Contains(" type id source time subject data ", " "+k+" ") {
			t.Errorf("the payload has an undocumented field %q", k)
		}
	}

	log := fx.deliveries(epVault.ID)
	if len(log) != 1 || log[0].Status != webhooks.DeliverySucceeded || log[0].Attempts != 1 || log[0].LastResponseCode == nil ||
		*log[0].LastResponseCode != 200 || log[0].LatencyMs == nil || log[0].EventID != e.ID() || log[0].EventType != e.Type() ||
		log[0].NextAttemptAt != nil || log[0].FinishedAt == nil || log[0].LastError != "" {
		t.Fatalf("delivery log %+v", log)
	}
	raw, _ := json.Marshal(log)
	if strings.Contains(string(raw), "never kept") || strings.Contains(string(raw), "skyflow_id") {
		t.Fatalf("the delivery log shows a response body or the payload: %s", raw)
	}
	if after := metric(t, "skyflow_webhook_deliveries_total", "outcome", "succeeded"); after-before != 3 {
		t.Errorf("succeeded deliveries counted %v, want 3", after-before)
	}
	if metric(t, "skyflow_webhook_attempts_total", "result", "2xx") < 3 {
		t.Error("attempts are not counted")
	}
}

// A redelivered event (same source and id), even twice at once, makes no
// second delivery.
func TestRedeliveryMakesNoSecondDelivery(t *testing.T) {
	fx := setup(t, nil)
	rcv := newReceiver(t)
	ep := fx.subscribe(rcv.url(), "com.skyflow.vault.*")
	e := domainEvent("com.skyflow.vault.record.updated", "")
	fx.publish(e)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { fx.publish(e) })
	}
	wg.Wait()
	fx.ping()
	if n := len(rcv.requests()); n != 1 {
		t.Fatalf("the receiver got %d requests for one event", n)
	}
	if log := fx.deliveries(ep.ID); len(log) != 1 || log[0].Attempts != 1 {
		t.Fatalf("delivery log %+v", log)
	}
}

// A receiver answering 503 twice then 200 gets the delivery: retried on
// the schedule by the sweep, one success, the same webhook-id each time,
// every attempt signed afresh.
func TestRetriesUntilTheReceiverAnswers(t *testing.T) {
	fx := setup(t, map[string]string{"SKYFLOW_WEBHOOK_SCHEDULE": "50ms,50ms,50ms"})
	rcv := newReceiver(t, 503, 503, 200)
	ep := fx.subscribe(rcv.url(), "com.skyflow.vault.record.created")
	e := domainEvent("com.skyflow.vault.record.created", "")
	fx.publish(e)
	log := fx.deliveries(ep.ID)
	if len(log) != 1 || log[0].Status != webhooks.DeliveryPending || log[0].Attempts != 1 || *log[0].LastResponseCode != 503 || log[0].LastError != "HTTP 503" {
		t.Fatalf("after the first attempt: %+v", log)
	}
	if fx.endpoint(ep.ID).FailingSince == nil {
		t.Fatal("the endpoint is not marked failing")
	}
	fx.ping() // makes attempt 2 and waits for attempt 3, due 50ms later
	got := rcv.requests()
	if len(got) != 3 {
		t.Fatalf("the receiver got %d requests, want 3", len(got))
	}
	ok := 0
	for i, r := range got {
		if err := verify(ep.Secret, r); err != nil {
			t.Errorf("attempt %d does not verify: %v", i+1, err)
		}
		if r.header.Get("webhook-id") != got[0].header.Get("webhook-id") {
			t.Error("the webhook-id changed between attempts")
		}
		if i > 0 && r.at.Sub(got[i-1].at) < 50*time.Millisecond {
			t.Errorf("attempt %d came %s after the previous, before its schedule", i+1, r.at.Sub(got[i-1].at))
		}
	}
	log = fx.deliveries(ep.ID)
	if len(log) == 1 && log[0].Status == webhooks.DeliverySucceeded {
		ok++
	}
	if ok != 1 || log[0].Attempts != 3 || *log[0].LastResponseCode != 200 {
		t.Fatalf("delivery log %+v", log)
	}
	if h := fx.endpoint(ep.ID); h.FailingSince != nil || h.LastSuccessAt == nil {
		t.Fatalf("the endpoint's health after the success: %+v", h)
	}
	fx.ping()
	if n := len(rcv.requests()); n != 3 {
		t.Fatalf("another ping sent %d more", n-3)
	}
}

// A Retry-After on a 429 pushes the next attempt back.
func TestRetryAfterIsHonoured(t *testing.T) {
	fx := setup(t, map[string]string{"SKYFLOW_WEBHOOK_SCHEDULE": "10ms"})
	rcv := newReceiver(t, 429, 200)
	rcv.header.Set("Retry-After", "120")
	ep := fx.subscribe(rcv.url(), "com.skyflow.vault.*")
	fx.publish(domainEvent("com.skyflow.vault.record.created", ""))
	log := fx.deliveries(ep.ID)
	if len(log) != 1 || log[0].NextAttemptAt == nil || time.Until(*log[0].NextAttemptAt) < 110*time.Second {
		t.Fatalf("the next attempt is not 120s away: %+v", log)
	}
	fx.ping()
	if n := len(rcv.requests()); n != 1 {
		t.Fatalf("retried %d times before the Retry-After", n-1)
	}
}

// A receiver that always fails: each delivery is dead after its last
// attempt, with a com.skyflow.webhook.delivery.failed event; after two
// dead deliveries in a row the endpoint is disabled, with
// com.skyflow.webhook.disabled for its owner, and gets nothing more until
// it is enabled again.
func TestDeadLettersThenDisables(t *testing.T) {
	fx := setup(t, map[string]string{"SKYFLOW_WEBHOOK_SCHEDULE": "10ms", "SKYFLOW_WEBHOOK_DISABLE_AFTER_DEAD": "2", "SKYFLOW_WEBHOOK_DISABLE_AFTER": "0s"})
	rcv := newReceiver(t, 500)
	ep := fx.subscribe(rcv.url(), "com.skyflow.vault.*")
	disabledBefore := metric(t, "skyflow_webhook_endpoints_disabled_total", "reason", "dead_deliveries")
	first, second := domainEvent("com.skyflow.vault.record.created", ""), domainEvent("com.skyflow.vault.record.deleted", "")
	fx.publish(first)
	fx.ping()
	failed := fx.emitted(webhooks.DeliveryFailedType)
	if len(failed) != 1 {
		t.Fatalf("%d delivery.failed events after the first dead delivery", len(failed))
	}
	var d webhooks.DeliveryFailedData
	json.Unmarshal(failed[0].Data(), &d)
	if d.WebhookID != ep.ID || d.Owner != admin.ID || d.EventID != first.ID() || d.EventType != first.Type() || d.Attempts != 2 || d.LastStatus == nil || *d.LastStatus != 500 {
		t.Fatalf("delivery.failed %+v", d)
	}
	if fx.endpoint(ep.ID).Status != webhooks.StatusActive {
		t.Fatal("disabled after one dead delivery")
	}
	fx.publish(second)
	fx.ping()
	if n := len(fx.emitted(webhooks.DeliveryFailedType)); n != 2 {
		t.Fatalf("%d delivery.failed events", n)
	}
	h := fx.endpoint(ep.ID)
	if h.Status != webhooks.StatusDisabled || h.DisabledAt == nil || !strings.Contains(h.DisabledReason, "2 deliveries") {
		t.Fatalf("endpoint after two dead deliveries: %+v", h)
	}
	disabled := fx.emitted(webhooks.DisabledType)
	if len(disabled) != 1 {
		t.Fatalf("%d disabled events", len(disabled))
	}
	var dd map[string]any
	json.Unmarshal(disabled[0].Data(), &dd)
	if dd["webhook_id"] != ep.ID || dd["url"] != rcv.url() || dd["owner"] != admin.ID || dd["reason"] == "" {
		t.Fatalf("disabled event data %v", dd)
	}
	if metric(t, "skyflow_webhook_endpoints_disabled_total", "reason", "dead_deliveries")-disabledBefore != 1 {
		t.Error("the disabled endpoint is not counted")
	}
	for _, e := range fx.env.Sink.Events() {
		if strings.Contains(string(e.Data()), ep.Secret) || strings.Contains(string(e.Data()), "never kept") {
			t.Fatalf("event %s carries the secret or a response body", e.Type())
		}
	}
	seen := len(rcv.requests())
	fx.publish(domainEvent("com.skyflow.vault.record.created", ""))
	fx.ping()
	if n := len(rcv.requests()); n != seen {
		t.Fatalf("a disabled endpoint got %d more requests", n-seen)
	}
	if _, err := fx.svc.Enable(fx.ctx, admin, ep.ID); err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	rcv.script = []int{200}
	rcv.mu.Unlock()
	fx.publish(domainEvent("com.skyflow.vault.record.created", ""))
	if n := len(rcv.requests()); n != seen+1 {
		t.Fatalf("the enabled endpoint got %d requests, want 1", n-seen)
	}
}

// An endpoint whose every attempt has failed for DISABLE_AFTER is disabled.
func TestDisabledAfterFailingForLong(t *testing.T) {
	fx := setup(t, map[string]string{"SKYFLOW_WEBHOOK_SCHEDULE": "100ms,100ms,100ms", "SKYFLOW_WEBHOOK_DISABLE_AFTER": "150ms", "SKYFLOW_WEBHOOK_DISABLE_AFTER_DEAD": "0"})
	rcv := newReceiver(t, 502)
	ep := fx.subscribe(rcv.url(), "com.skyflow.vault.*")
	fx.publish(domainEvent("com.skyflow.vault.record.created", ""))
	fx.ping()
	h := fx.endpoint(ep.ID)
	if h.Status != webhooks.StatusDisabled || !strings.Contains(h.DisabledReason, "every delivery attempt has failed since") {
		t.Fatalf("endpoint %+v", h)
	}
	// The first attempt at least 150ms after the first failure disables it
	// (the third on an idle machine, 200ms after; the second on a busy one).
	got := rcv.requests()
	if n := len(got); n < 2 || n > 3 || got[n-1].at.Sub(got[0].at) < 140*time.Millisecond {
		t.Fatalf("%d attempts over %s before it was disabled", n, got[n-1].at.Sub(got[0].at))
	}
	if n := len(got); n == 3 && got[1].at.Sub(got[0].at) >= 160*time.Millisecond {
		t.Fatalf("not disabled at the second attempt, %s after the first failure", got[1].at.Sub(got[0].at))
	}
	if len(fx.emitted(webhooks.DisabledType)) != 1 || len(fx.emitted(webhooks.DeliveryFailedType)) != 0 {
		t.Fatal("want one disabled event and no dead delivery yet")
	}
	// The delivery waits, paused, and resumes when the endpoint is enabled.
	if log := fx.deliveries(ep.ID); log[0].Status != webhooks.DeliveryPending {
		t.Fatalf("the paused delivery: %+v", log[0])
	}
	rcv.mu.Lock()
	rcv.script = []int{200}
	rcv.mu.Unlock()
	fx.svc.Enable(fx.ctx, admin, ep.ID)
	fx.ping()
	if log := fx.deliveries(ep.ID); log[0].Status != webhooks.DeliverySucceeded || log[0].Attempts != len(got)+1 {
		t.Fatalf("after enabling: %+v", log[0])
	}
}

// 410 Gone: the receiver says the endpoint no longer exists: no retry,
// and the endpoint is disabled at once.
func TestGoneDisablesAtOnce(t *testing.T) {
	fx := setup(t, nil)
	rcv := newReceiver(t, 410)
	ep := fx.subscribe(rcv.url(), "com.skyflow.vault.*")
	fx.publish(domainEvent("com.skyflow.vault.record.created", ""))
	if log := fx.deliveries(ep.ID); log[0].Status != webhooks.DeliveryDead || log[0].Attempts != 1 {
		t.Fatalf("delivery %+v", log[0])
	}
	if h := fx.endpoint(ep.ID); h.Status != webhooks.StatusDisabled || !strings.Contains(h.DisabledReason, "410") {
		t.Fatalf("endpoint %+v", h)
	}
}

// A slow receiver times out (the attempt's limit), a redirect is a
// failure that is not followed, and a large response body is read only
// up to a limit and never kept.
func TestTimeoutsRedirectsAndBodies(t *testing.T) {
	fx := setup(t, map[string]string{"SKYFLOW_WEBHOOK_TIMEOUT": "300ms"})
	slow := newReceiver(t, 200)
	slow.delay = time.Second
	target := newReceiver(t, 200)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.url(), http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		chunk := []byte(strings.Repeat("x", 1<<16))
		for range 160 { // 10 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer big.Close()
	epSlow := fx.subscribe(slow.url(), "com.skyflow.vault.*")
	epRedirect := fx.subscribe(redirect.URL+"/old", "com.skyflow.vault.*")
	epBig := fx.subscribe(big.URL, "com.skyflow.vault.*")
	start := time.Now()
	fx.publish(domainEvent("com.skyflow.vault.record.created", ""))
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("the event took %s: attempts are not bounded by the timeout", d)
	}
	if l := fx.deliveries(epSlow.ID)[0]; l.Status != webhooks.DeliveryPending || !strings.Contains(l.LastError, "timed out after 300ms") || l.LastResponseCode != nil {
		t.Errorf("slow: %+v", l)
	}
	if l := fx.deliveries(epRedirect.ID)[0]; l.Status != webhooks.DeliveryPending || *l.LastResponseCode != 307 || !strings.Contains(l.LastError, "redirects are not followed") {
		t.Errorf("redirect: %+v", l)
	}
	if n := len(target.requests()); n != 0 {
		t.Errorf("the redirect was followed (%d requests)", n)
	}
	if l := fx.deliveries(epBig.ID)[0]; l.Status != webhooks.DeliverySucceeded {
		t.Errorf("big body: %+v", l)
	}
}

// SSRF at delivery time: an endpoint subscribed while an internal network
// was allowed (or a name that now resolves inside) is refused at connect
// time by a notify-webhook that does not allow it: nothing reaches the
// receiver, and the log says why.
func TestRefusesInternalAddressesAtDeliveryTime(t *testing.T) {
	env := functest.New(t)
	env.Config["SKYFLOW_WEBHOOK_SCHEDULE"] = "10ms"
	fx := setupOn(t, env) // notify-webhook allows no internal network
	rcv := newReceiver(t)
	byAddr := fx.subscribe(rcv.url(), "com.skyflow.vault.*")
	byName := fx.subscribe(strings.Replace(rcv.url(), "127.0.0.1", "localhost", 1), "com.skyflow.vault.*")
	fx.publish(domainEvent("com.skyflow.vault.record.created", ""))
	fx.ping()
	if n := len(rcv.requests()); n != 0 {
		t.Fatalf("the internal receiver got %d requests", n)
	}
	for _, ep := range []*webhooks.NewEndpoint{byAddr, byName} {
		l := fx.deliveries(ep.ID)[0]
		if l.Status != webhooks.DeliveryDead || !strings.Contains(l.LastError, "refused") || !strings.Contains(l.LastError, "loopback") || l.LastResponseCode != nil {
			t.Errorf("%s: %+v", ep.URL, l)
		}
	}
	if metric(t, "skyflow_webhook_attempts_total", "result", "refused") < 4 {
		t.Error("refused attempts are not counted")
	}
}

// A secret rotation: deliveries carry both signatures while the previous
// secret overlaps, each verifying with its secret; after the overlap only
// the new one signs.
func TestRotatedSecretSignsBesideThePreviousOne(t *testing.T) {
	fx := setup(t, nil)
	rcv := newReceiver(t)
	ep := fx.subscribe(rcv.url(), "com.skyflow.vault.*")
	rotated, err := fx.svc.RotateSecret(fx.ctx, admin, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Secret == ep.Secret || rotated.SecretVersion != 2 || time.Until(rotated.PreviousSecretExpiresAt) < 23*time.Hour {
		t.Fatalf("rotation %+v", rotated)
	}
	fx.publish(domainEvent("com.skyflow.vault.record.created", ""))
	r := rcv.requests()[0]
	if sigs := strings.Fields(r.header.Get("webhook-signature")); len(sigs) != 2 {
		t.Fatalf("signature header %q: want two signatures during the overlap", r.header.Get("webhook-signature"))
	}
	for _, s := range []string{ep.Secret, rotated.Secret} {
		if err := verify(s, r); err != nil {
			t.Errorf("a receiver with one of the secrets: %v", err)
		}
	}
	short := webhooks.NewService(fx.svc.Backend, "/skyflow/functions/webhooks-rotate-secret")
	short.SecretOverlap = time.Millisecond
	third, err := short.RotateSecret(fx.ctx, admin, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	fx.publish(domainEvent("com.skyflow.vault.record.created", ""))
	r = rcv.requests()[1]
	if sigs := strings.Fields(r.header.Get("webhook-signature")); len(sigs) != 1 || verify(third.Secret, r) != nil || verify(rotated.Secret, r) == nil {
		t.Fatalf("after the overlap: %q", r.header.Get("webhook-signature"))
	}
	if fx.endpoint(ep.ID).PreviousSecretExpiresAt != nil {
		t.Error("the endpoint still shows a previous secret after it expired")
	}
}

// The test event goes to the endpoint it tests only, even a disabled one
// and whatever its event types.
func TestTestEventGoesToItsEndpointOnly(t *testing.T) {
	fx := setup(t, nil)
	tested, bystander := newReceiver(t), newReceiver(t)
	ep := fx.subscribe(tested.url(), "com.skyflow.user.registered")
	fx.subscribe(bystander.url(), "com.skyflow.*")
	fx.pool.Exec(fx.ctx, `UPDATE webhook_endpoints SET status = 'disabled' WHERE id = $1`, ep.ID)
	sent, err := webhooks.NewService(fx.svc.Backend, "/skyflow/functions/webhooks-test").Test(fx.ctx, admin, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	var testEvent event.Event
	for _, e := range fx.env.Sink.OfType(webhooks.TestedType) {
		if e.ID() == sent.EventID {
			testEvent = e
		}
	}
	if testEvent.ID() == "" {
		t.Fatal("no tested event was published")
	}
	fx.publish(testEvent)
	got := tested.requests()
	if len(got) != 1 || verify(ep.Secret, got[0]) != nil || got[0].header.Get("webhook-id") != sent.MessageID {
		t.Fatalf("the tested endpoint got %d requests", len(got))
	}
	if n := len(bystander.requests()); n != 0 {
		t.Fatalf("another endpoint got the test (%d)", n)
	}
}

// Loops: an endpoint never gets the events about its own failures (which
// would fail again), replies are never delivered, client requests are
// refused, and a failed delivery of a failure event emits no further one.
func TestNoLoops(t *testing.T) {
	fx := setup(t, map[string]string{"SKYFLOW_WEBHOOK_SCHEDULE": "none"})
	failing, watcher := newReceiver(t, 500), newReceiver(t, 500)
	epFailing := fx.subscribe(failing.url(), "com.skyflow.*")
	epWatcher := fx.subscribe(watcher.url(), "com.skyflow.webhook.*")
	fx.publish(domainEvent("com.skyflow.vault.record.created", "")) // one attempt: dead at once
	failed := fx.emitted(webhooks.DeliveryFailedType)
	if len(failed) != 1 {
		t.Fatalf("%d delivery.failed events", len(failed))
	}
	fx.publish(failed[0]) // the broker brings it back
	if n := len(failing.requests()); n != 1 {
		t.Fatalf("the failing endpoint got its own failure (%d requests)", n)
	}
	if n := len(watcher.requests()); n != 1 {
		t.Fatalf("the watcher got %d requests, want the failure event", n)
	}
	// The watcher fails too: its dead delivery of a failure event emits
	// nothing more, so two failing endpoints cannot feed each other.
	if n := len(fx.emitted(webhooks.DeliveryFailedType)); n != 1 {
		t.Fatalf("%d delivery.failed events: a failure of a failure event was announced", n)
	}
	if l := fx.deliveries(epWatcher.ID); len(l) != 1 || l[0].Status != webhooks.DeliveryDead {
		t.Fatalf("watcher log %+v", l)
	}
	fx.publish(domainEvent("com.skyflow.vault.records.insert.response", ""))
	if n := len(fx.deliveries(epFailing.ID)); n != 1 {
		t.Fatal("a reply was delivered")
	}
	ctx := sender.NewContext(fx.ctx, sender.Broker)
	req := domainEvent("com.skyflow.vault.records.insert", "")
	req.SetSource("/skyflow/functions/gateway")
	var ae *apierr.Error
	if _, err := fx.f.Handle(ctx, req); !errors.As(err, &ae) || ae.HTTPCode != 400 {
		t.Fatalf("a client request on the broker: %v", err)
	}
	other := domainEvent("dev.example.other", "")
	if _, err := fx.f.Handle(ctx, other); !errors.As(err, &ae) || ae.HTTPCode != 400 {
		t.Fatalf("a foreign event: %v", err)
	}
}

// Each event type is accepted only from its sender.
func TestAcceptsEachEventOnlyFromItsSender(t *testing.T) {
	fx := setup(t, nil)
	ping := event.New()
	ping.SetID("p")
	ping.SetSource("/ping")
	ping.SetType(PingType)
	for name, c := range map[string]struct {
		from string
		e    event.Event
	}{
		"an event from the gateway": {sender.Gateway, domainEvent("com.skyflow.vault.record.created", "")},
		"an event from the ping":    {sender.Ping, domainEvent("com.skyflow.vault.record.created", "")},
		"a ping from the broker":    {sender.Broker, ping},
		"a ping from the gateway":   {sender.Gateway, ping},
	} {
		_, err := fx.f.Handle(sender.NewContext(fx.ctx, c.from), c.e)
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.HTTPCode != 403 {
			t.Errorf("%s: %v, want a 403", name, err)
		}
	}
}

// Several replicas sweeping at once never send the same attempt twice:
// attempts are claimed with FOR UPDATE SKIP LOCKED.
func TestConcurrentSweepsSendEachAttemptOnce(t *testing.T) {
	fx := setup(t, map[string]string{"SKYFLOW_WEBHOOK_SCHEDULE": "1ms,1ms", "SKYFLOW_WEBHOOK_CONCURRENCY": "4", "SKYFLOW_WEBHOOK_SWEEP_WAIT": "0s"})
	var mu sync.Mutex
	perMessage := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		perMessage[r.Header.Get("webhook-id")]++
		n := perMessage[r.Header.Get("webhook-id")]
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		if n == 1 {
			w.WriteHeader(503) // the first attempt, made while handling the event, fails
			return
		}
		w.WriteHeader(204)
	}))
	defer srv.Close()
	fx.subscribe(srv.URL, "com.skyflow.vault.*")
	const events = 40
	for range events {
		fx.publish(domainEvent("com.skyflow.vault.record.created", ""))
	}
	time.Sleep(5 * time.Millisecond)
	replicas := []*Function{fx.f}
	for range 2 {
		f := New()
		if err := f.Start(fx.ctx, fx.env.Config); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Stop(context.Background()) })
		replicas = append(replicas, f)
	}
	var wg sync.WaitGroup
	for _, f := range replicas {
		for range 2 {
			wg.Go(func() {
				p := event.New()
				p.SetID(uuid.NewString())
				p.SetSource("/ping")
				p.SetType(PingType)
				if _, err := f.Handle(sender.NewContext(fx.ctx, sender.Ping), p); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(perMessage) != events {
		t.Fatalf("%d messages reached the receiver, want %d", len(perMessage), events)
	}
	for id, n := range perMessage {
		if n != 2 {
			t.Errorf("message %s was sent %d times, want 2 (one failure, one retry)", id, n)
		}
	}
	var pending, succeeded int
	fx.pool.QueryRow(fx.ctx, `SELECT count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'succeeded' AND attempts = 2) FROM webhook_deliveries`).Scan(&pending, &succeeded)
	if pending != 0 || succeeded != events {
		t.Fatalf("%d pending, %d succeeded on the second attempt", pending, succeeded)
	}
}

// A delivery whose endpoint is deleted is never attempted again, and its
// log goes with it.
func TestDeletedEndpointGetsNothingMore(t *testing.T) {
	fx := setup(t, map[string]string{"SKYFLOW_WEBHOOK_SCHEDULE": "10ms"})
	rcv := newReceiver(t, 503, 200)
	ep := fx.subscribe(rcv.url(), "com.skyflow.vault.*")
	fx.publish(domainEvent("com.skyflow.vault.record.created", ""))
	if _, err := webhooks.NewService(fx.svc.Backend, "/skyflow/functions/webhooks-delete").Delete(fx.ctx, admin, ep.ID); err != nil {
		t.Fatal(err)
	}
	fx.ping()
	if n := len(rcv.requests()); n != 1 {
		t.Fatalf("a deleted endpoint got %d more requests", n-1)
	}
	var rows int
	fx.pool.QueryRow(fx.ctx, `SELECT count(*) FROM webhook_deliveries`).Scan(&rows)
	if rows != 0 {
		t.Fatalf("%d delivery rows outlive their endpoint", rows)
	}
}

// Finished deliveries leave the log after the retention.
func TestRetention(t *testing.T) {
	fx := setup(t, map[string]string{"SKYFLOW_WEBHOOK_RETENTION": "1ms"})
	rcv := newReceiver(t)
	ep := fx.subscribe(rcv.url(), "com.skyflow.vault.*")
	fx.publish(domainEvent("com.skyflow.vault.record.created", ""))
	time.Sleep(5 * time.Millisecond)
	fx.ping()
	if l := fx.deliveries(ep.ID); len(l) != 0 {
		t.Fatalf("the log still has %d finished deliveries", len(l))
	}
}

func TestStartRefusesBadSettings(t *testing.T) {
	for name, cfg := range map[string]map[string]string{
		"schedule":         {"SKYFLOW_WEBHOOK_SCHEDULE": "5s,soon"},
		"jitter":           {"SKYFLOW_WEBHOOK_JITTER_PERCENT": "150"},
		"timeout":          {"SKYFLOW_WEBHOOK_TIMEOUT": "0s"},
		"allowed networks": {"SKYFLOW_WEBHOOK_ALLOWED_NETWORKS": "10.0.0.0/99"},
		"concurrency":      {"SKYFLOW_WEBHOOK_CONCURRENCY": "0"},
	} {
		env := functest.New(t)
		for k, v := range cfg {
			env.Config[k] = v
		}
		f := New()
		if err := f.Start(context.Background(), env.Config); err == nil {
			f.Stop(context.Background())
			t.Errorf("%s: started", name)
		}
	}
}
