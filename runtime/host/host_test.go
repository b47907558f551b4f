package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	promdto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/sender"
)

// gateway signs the tests' events; the hosts under test trust it.
var gateway = func() *sender.Signer {
	s, err := sender.GenerateSigner(sender.Gateway)
	if err != nil {
		panic(err)
	}
	return s
}()

// settings are a test host's settings: it trusts the test gateway.
func settings(maxBody int64, timeout time.Duration) Settings {
	return Settings{Function: "host-test", MaxBodyBytes: maxBody, EventTimeout: timeout, DrainTimeout: timeout, Senders: sender.NewVerifier(gateway)}
}

// testFunction replies to "echo", panics on "panic" and fails on "missing".
type testFunction struct {
	started chan struct{} // closed to let Start finish; nil: start at once
	calls   atomic.Int64
}

func (f *testFunction) Start(ctx context.Context, cfg map[string]string) error {
	if f.started != nil {
		<-f.started
	}
	return nil
}

func (f *testFunction) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	f.calls.Add(1)
	switch e.Type() {
	case "test.echo":
		r := event.New()
		r.SetType("test.echoed")
		r.SetData(e.DataContentType(), e.Data())
		return &r, nil
	case "test.panic":
		panic("boom")
	case "test.missing":
		return nil, apierr.NotFound("No record with that id.")
	case "test.internal":
		return nil, errors.New("password=hunter2 leaked into an error")
	case "test.sender":
		r := event.New()
		r.SetType("test.sender")
		r.SetData("text/plain", sender.From(ctx))
		return &r, nil
	}
	return nil, nil
}

// serve runs a host on a free port and returns its base URL.
func serve(t *testing.T, f Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	s := settings(64<<10, 5*time.Second)
	go func() { done <- Serve(ctx, ln, f, s, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	base := "http://" + ln.Addr().String()
	waitReady(t, base)
	return base
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/health/readiness"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the host never became ready")
}

func newEvent(typ, data string) event.Event {
	e := event.New()
	e.SetID("evt-1")
	e.SetSource("/test")
	e.SetType(typ)
	e.SetData("application/json", json.RawMessage(data))
	return e
}

// postBinary sends e in binary mode, signed by the test gateway for the
// host under test, and returns the response.
func postBinary(t *testing.T, base string, e event.Event) *http.Response {
	t.Helper()
	return postSigned(t, base, e, "host-test")
}

func postSigned(t *testing.T, base string, e event.Event, function string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/", nil)
	if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&e), req); err != nil {
		t.Fatal(err)
	}
	if function != "" {
		if err := gateway.Authorize(req, e, function); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func post(t *testing.T, base, contentType string, body []byte, headers map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func replyOf(t *testing.T, resp *http.Response) *event.Event {
	t.Helper()
	e, err := binding.ToEvent(context.Background(), cehttp.NewMessageFromHttpResponse(resp))
	if err != nil {
		t.Fatalf("the response is not a CloudEvent: %v", err)
	}
	return e
}

func envelopeOf(t *testing.T, resp *http.Response) *apierr.Error {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	e, ok := apierr.Parse(b)
	if !ok {
		t.Fatalf("the body is not the error envelope: %s", b)
	}
	return e
}

func TestBinaryModeEventGetsBinaryModeReply(t *testing.T) {
	base := serve(t, &testFunction{})
	resp := postBinary(t, base, newEvent("test.echo", `{"n":1}`))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if resp.Header.Get("Ce-Type") != "test.echoed" {
		t.Fatalf("the reply is not in binary mode: headers %v", resp.Header)
	}
	r := replyOf(t, resp)
	if string(r.Data()) != `{"n":1}` || r.ID() == "" || r.Source() != "/skyflow/functions/host-test" || r.Time().IsZero() {
		t.Fatalf("reply not completed: %s", r)
	}
}

func TestStructuredModeEventIsHandled(t *testing.T) {
	base := serve(t, &testFunction{})
	body := `{"specversion":"1.0","id":"s-1","source":"/test","type":"test.echo","datacontenttype":"application/json","data":{"n":2}}`
	var e event.Event
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatal(err)
	}
	token, _ := gateway.Sign(e, "host-test", time.Now())
	resp := post(t, base, "application/cloudevents+json", []byte(body), map[string]string{"Authorization": "Bearer " + token})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if r := replyOf(t, resp); string(r.Data()) != `{"n":2}` {
		t.Fatalf("reply data %s", r.Data())
	}
}

func TestEventWithoutReplyIsAccepted(t *testing.T) {
	base := serve(t, &testFunction{})
	if resp := postBinary(t, base, newEvent("test.nothing", `{}`)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202", resp.StatusCode)
	}
}

func TestPanickingHandlerAnswers500AndTheHostLives(t *testing.T) {
	f := &testFunction{}
	base := serve(t, f)
	resp := postBinary(t, base, newEvent("test.panic", `{}`))
	if resp.StatusCode != 500 {
		t.Fatalf("status %d, want 500", resp.StatusCode)
	}
	if e := envelopeOf(t, resp); e.HTTPCode != 500 || strings.Contains(e.Message, "boom") {
		t.Fatalf("envelope %+v", e)
	}
	if resp := postBinary(t, base, newEvent("test.echo", `{}`)); resp.StatusCode != 200 {
		t.Fatalf("after the panic: status %d", resp.StatusCode)
	}
	if f.calls.Load() != 2 {
		t.Fatalf("calls %d", f.calls.Load())
	}
}

func TestHandlerErrorsMapToTheEnvelope(t *testing.T) {
	base := serve(t, &testFunction{})
	resp := postBinary(t, base, newEvent("test.missing", `{}`))
	if resp.StatusCode != 404 || resp.Header.Get("X-Request-Id") != "evt-1" {
		t.Fatalf("status %d, request id %q", resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}
	e := envelopeOf(t, resp)
	if e.HTTPCode != 404 || e.Message != "No record with that id." {
		t.Fatalf("envelope %+v", e)
	}
	// An unexpected error's text never reaches the caller.
	resp = postBinary(t, base, newEvent("test.internal", `{}`))
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 500 || bytes.Contains(b, []byte("hunter2")) {
		t.Fatalf("status %d body %s", resp.StatusCode, b)
	}
}

func TestBadInputGetsClientErrors(t *testing.T) {
	base := serve(t, &testFunction{})
	cases := []struct {
		name        string
		contentType string
		body        []byte
		headers     map[string]string
		want        int
	}{
		{"plain text is not a CloudEvent", "text/plain", []byte("hello"), nil, 415},
		{"malformed structured JSON", "application/cloudevents+json", []byte(`{"specversion":"1.0",`), nil, 400},
		{"structured without an id", "application/cloudevents+json", []byte(`{"specversion":"1.0","source":"/x","type":"t"}`), nil, 400},
		{"binary without a type", "application/json", []byte(`{}`), map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "1", "Ce-Source": "/x"}, 400},
		{"unknown spec version", "application/json", []byte(`{}`), map[string]string{"Ce-Specversion": "9.9", "Ce-Id": "1", "Ce-Source": "/x", "Ce-Type": "t"}, 400},
		{"oversize body", "application/cloudevents+json", bytes.Repeat([]byte("x"), 65<<10), nil, 413},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := post(t, base, c.contentType, c.body, c.headers)
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.want)
			}
			if e := envelopeOf(t, resp); e.HTTPCode != c.want || e.Message == "" {
				t.Fatalf("envelope %+v", e)
			}
		})
	}
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /: status %d", resp.StatusCode)
	}
}

// SKY-ARCH-001 at the host: an event without the sender's assertion, or
// with one made for another function, never reaches Handle; a valid one
// tells Handle who sent it.
func TestEventsNeedAValidSenderAssertion(t *testing.T) {
	f := &testFunction{}
	base := serve(t, f)
	for name, function := range map[string]string{"unsigned": "", "signed for another function": "records-insert"} {
		resp := postSigned(t, base, newEvent("test.echo", `{}`), function)
		if resp.StatusCode != 401 {
			t.Fatalf("%s: status %d, want 401", name, resp.StatusCode)
		}
		if e := envelopeOf(t, resp); e.HTTPCode != 401 || !strings.Contains(e.Message, "assertion") {
			t.Fatalf("%s: envelope %+v", name, e)
		}
	}
	if f.calls.Load() != 0 {
		t.Fatalf("Handle ran %d times for refused events", f.calls.Load())
	}
	if r := replyOf(t, postBinary(t, base, newEvent("test.sender", `{}`))); string(r.Data()) != sender.Gateway {
		t.Fatalf("Handle saw sender %q", r.Data())
	}
}

func TestReadinessWaitsForStart(t *testing.T) {
	f := &testFunction{started: make(chan struct{})}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := settings(1<<20, time.Second)
	go Serve(ctx, ln, f, s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	base := "http://" + ln.Addr().String()
	var status int
	for range 100 {
		if resp, err := http.Get(base + "/health/readiness"); err == nil {
			status = resp.StatusCode
			resp.Body.Close()
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if status != 503 {
		t.Fatalf("readiness before Start finished: %d, want 503", status)
	}
	if resp := postBinary(t, base, newEvent("test.echo", `{}`)); resp.StatusCode != 503 {
		t.Fatalf("event before Start finished: %d, want 503", resp.StatusCode)
	}
	close(f.started)
	waitReady(t, base)
}

func TestTraceContextTravelsInTheEventExtension(t *testing.T) {
	base := serve(t, &testFunction{})
	in := newEvent("test.echo", `{}`)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	in.SetExtension("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	r := replyOf(t, postBinary(t, base, in))
	tp, _ := r.Extensions()["traceparent"].(string)
	if !strings.Contains(tp, traceID) || strings.Contains(tp, "00f067aa0ba902b7") {
		t.Fatalf("reply traceparent %q: want the same trace with the function's own span", tp)
	}
}

func TestMetricsCountEventsAndErrors(t *testing.T) {
	base := serve(t, &testFunction{})
	before := scrape(t, base)
	postBinary(t, base, newEvent("test.echo", `{}`))
	postBinary(t, base, newEvent("test.echo", `{}`))
	postBinary(t, base, newEvent("test.missing", `{}`))
	post(t, base, "text/plain", []byte("x"), nil)
	after := scrape(t, base)

	delta := func(name string, labels map[string]string) float64 {
		return value(after, name, labels) - value(before, name, labels)
	}
	if d := delta("skyflow_function_events_received_total", map[string]string{"type": "test.echo"}); d != 2 {
		t.Errorf("received test.echo grew by %v, want 2", d)
	}
	if d := delta("skyflow_function_event_errors_total", map[string]string{"type": "test.missing", "code": "404"}); d != 1 {
		t.Errorf("404 errors grew by %v, want 1", d)
	}
	if d := delta("skyflow_function_event_errors_total", map[string]string{"type": "invalid", "code": "415"}); d != 1 {
		t.Errorf("415 errors grew by %v, want 1", d)
	}
	if _, ok := after["skyflow_function_event_duration_seconds"]; !ok {
		t.Error("no latency histogram")
	}
	if _, ok := after["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	if _, ok := after["skyflow_function_events_in_flight"]; !ok {
		t.Error("no in-flight gauge")
	}
}

func scrape(t *testing.T, base string) map[string]*dto {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not the Prometheus text format: %v", err)
	}
	return families
}

func TestPortInUseIsAClearError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := settings(1, time.Second)
	s.Addr = ln.Addr().String()
	err = Run(context.Background(), &testFunction{}, s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "port in use") {
		t.Fatalf("err = %v", err)
	}
}

// TestSIGTERMDrainsAnInFlightEvent runs a real function process and signals
// it while an event is being handled: the event is answered, then the
// process exits 0.
func TestSIGTERMDrainsAnInFlightEvent(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "echo")
	build := exec.Command("go", "build", "-o", bin, "github.com/skyflow-oss/skyflow/tests/functions/echo")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port), "K_SERVICE=echo", "SKYFLOW_TRUSTED_SENDERS="+sender.NewVerifier(gateway).Trusted())
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitReady(t, base)

	answered := make(chan int, 1)
	go func() {
		e := newEvent("com.skyflow.test.sleep", `{"ms":600}`)
		req, _ := http.NewRequest(http.MethodPost, base+"/", nil)
		cehttp.WriteRequest(context.Background(), binding.ToMessage(&e), req)
		gateway.Authorize(req, e, "echo")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- -1
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	time.Sleep(150 * time.Millisecond) // the event is in the handler now
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-answered:
		if code != 200 {
			t.Fatalf("the in-flight event got %d, want 200\n%s", code, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the in-flight event was never answered")
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the process did not exit after SIGTERM")
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Fatalf("no JSON log line for the stop:\n%s", logs.String())
	}
}

// FuzzStructuredEvent: whatever arrives, the host answers without a 5xx and
// without dying.
func FuzzStructuredEvent(f *testing.F) {
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"/x","type":"test.echo","data":{}}`), "application/cloudevents+json")
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"/x","type":"test.echo","data_base64":"AAEC"}`), "application/cloudevents+json")
	f.Add([]byte(`[{"specversion":"1.0"}]`), "application/cloudevents-batch+json")
	f.Add([]byte(`{}`), "application/json")
	h := newHTTPHandler(&testFunction{}, settings(1<<16, time.Second), slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.started.Store(true)
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		req, _ := http.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q (%s)", w.Code, body, contentType)
		}
	})
}

type dto = promdto.MetricFamily

// value sums the samples of a counter or gauge whose labels include labels.
func value(families map[string]*dto, name string, labels map[string]string) float64 {
	f, ok := families[name]
	if !ok {
		return 0
	}
	var sum float64
next:
	for _, m := range f.Metric {
		for k, v := range labels {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return sum
}
