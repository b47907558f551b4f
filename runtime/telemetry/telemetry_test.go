package telemetry_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/skyflow-oss/skyflow/runtime/telemetry"
)

func newEvent() event.Event {
	e := event.New()
	e.SetID("evt-1")
	e.SetSource("/skyflow/test")
	e.SetType("com.skyflow.test")
	return e
}

// restoreGlobals puts back the global tracer provider and propagator that
// Setup replaces.
func restoreGlobals(t *testing.T) {
	tp, prop := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	t.Cleanup(func() {
		otel.SetTracerProvider(tp)
		otel.SetTextMapPropagator(prop)
	})
}

func sdkSpan(t *testing.T) (context.Context, trace.SpanContext) {
	t.Helper()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("telemetry_test").Start(context.Background(), "op")
	t.Cleanup(func() { span.End() })
	return ctx, span.SpanContext()
}

func TestInjectExtractRoundTrip(t *testing.T) {
	ctx, sc := sdkSpan(t)
	e := newEvent()
	telemetry.InjectEvent(ctx, &e)

	tp, ok := e.Extensions()["traceparent"].(string)
	if !ok {
		t.Fatalf("no traceparent extension: %v", e.Extensions())
	}
	if want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"; tp != want {
		t.Errorf("traceparent = %q, want %q", tp, want)
	}
	if err := e.Validate(); err != nil {
		t.Errorf("event invalid after inject: %v", err)
	}

	got := trace.SpanContextFromContext(telemetry.ExtractEvent(context.Background(), &e))
	if !got.IsValid() || !got.IsRemote() {
		t.Fatalf("extracted span context = %+v, want valid and remote", got)
	}
	if got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() || got.TraceFlags() != sc.TraceFlags() {
		t.Errorf("extracted %s/%s/%s, want %s/%s/%s",
			got.TraceID(), got.SpanID(), got.TraceFlags(), sc.TraceID(), sc.SpanID(), sc.TraceFlags())
	}
}

func TestRoundTripThroughJSONWithTraceState(t *testing.T) {
	ts, err := trace.ParseTraceState("vendor=abc,other=xyz")
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		TraceFlags: trace.FlagsSampled,
		TraceState: ts,
	})
	e := newEvent()
	telemetry.InjectEvent(trace.ContextWithSpanContext(context.Background(), sc), &e)
	if got := e.Extensions()["tracestate"]; got != "vendor=abc,other=xyz" {
		t.Errorf("tracestate = %v", got)
	}

	// Through the wire (structured JSON) and back.
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var back event.Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	got := trace.SpanContextFromContext(telemetry.ExtractEvent(context.Background(), &back))
	if got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() || !got.IsSampled() {
		t.Errorf("extracted %+v, want %+v", got, sc)
	}
	if got.TraceState().String() != "vendor=abc,other=xyz" {
		t.Errorf("tracestate = %q", got.TraceState().String())
	}
}

func TestInjectWithoutSpanSetsNothing(t *testing.T) {
	e := newEvent()
	telemetry.InjectEvent(context.Background(), &e)
	if _, ok := e.Extensions()["traceparent"]; ok {
		t.Errorf("traceparent set without a span: %v", e.Extensions())
	}
}

func TestExtractWithoutExtension(t *testing.T) {
	e := newEvent()
	if sc := trace.SpanContextFromContext(telemetry.ExtractEvent(context.Background(), &e)); sc.IsValid() {
		t.Errorf("span context from an event without traceparent: %+v", sc)
	}
	e.SetExtension("traceparent", "00-garbage")
	if sc := trace.SpanContextFromContext(telemetry.ExtractEvent(context.Background(), &e)); sc.IsValid() {
		t.Errorf("span context from a malformed traceparent: %+v", sc)
	}
	e.SetExtension("traceparent", "00-00000000000000000000000000000000-0000000000000000-01")
	if sc := trace.SpanContextFromContext(telemetry.ExtractEvent(context.Background(), &e)); sc.IsValid() {
		t.Errorf("span context from an all-zero traceparent: %+v", sc)
	}
}

func TestSetupWithoutExporter(t *testing.T) {
	restoreGlobals(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	ctx := context.Background()
	shutdown, err := telemetry.Setup(ctx, "test-service")
	if err != nil {
		t.Fatal(err)
	}
	if shutdown == nil {
		t.Fatal("nil shutdown")
	}
	// Spans are still made, so trace ids propagate.
	sctx, span := otel.Tracer("t").Start(ctx, "op")
	if !span.SpanContext().IsValid() || !span.SpanContext().IsSampled() {
		t.Errorf("span context = %+v, want valid and sampled", span.SpanContext())
	}
	// The global propagator speaks W3C trace context.
	carrier := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(sctx, carrier)
	if carrier.Get("traceparent") == "" {
		t.Errorf("global propagator wrote no traceparent: %v", carrier)
	}
	span.End()
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := shutdown(sctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func TestSetupExportsOverOTLPHTTP(t *testing.T) {
	restoreGlobals(t)
	type req struct {
		method, path, contentType string
		size                      int
	}
	var (
		mu   sync.Mutex
		reqs []req
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, req{r.Method, r.URL.Path, r.Header.Get("Content-Type"), len(b)})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	shutdown, err := telemetry.Setup(ctx, "test-service")
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("t").Start(ctx, "exported-op")
	span.End()
	if err := shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	var got bool
	for _, r := range reqs {
		if r.method == http.MethodPost && r.path == "/v1/traces" && r.size > 0 {
			got = true
			if r.contentType != "application/x-protobuf" {
				t.Errorf("Content-Type = %q, want application/x-protobuf", r.contentType)
			}
		}
	}
	if !got {
		t.Errorf("no OTLP POST to /v1/traces; requests: %+v", reqs)
	}
}
