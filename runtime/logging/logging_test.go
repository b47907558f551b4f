package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/skyflow-oss/skyflow/runtime/logging"
)

// lines decodes each JSON line written to buf.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func one(t *testing.T, buf *bytes.Buffer) map[string]any {
	t.Helper()
	ls := lines(t, buf)
	if len(ls) != 1 {
		t.Fatalf("got %d lines, want 1: %q", len(ls), buf.String())
	}
	return ls[0]
}

// spanContext starts a real span with the SDK and returns its context.
func spanContext(t *testing.T) (context.Context, trace.SpanContext) {
	t.Helper()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("logging_test").Start(context.Background(), "op")
	t.Cleanup(func() { span.End() })
	sc := span.SpanContext()
	if !sc.IsValid() {
		t.Fatal("SDK span has an invalid span context")
	}
	return ctx, sc
}

func TestJSONLineWithFunction(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, "tokenize", "info")
	log.Info("hello", "count", 3)
	m := one(t, &buf)
	if m["function"] != "tokenize" || m["msg"] != "hello" || m["level"] != "INFO" || m["count"] != 3.0 {
		t.Errorf("record = %v", m)
	}
	if _, ok := m["time"]; !ok {
		t.Errorf("no time: %v", m)
	}
	for _, k := range []string{"request_id", "trace_id", "span_id"} {
		if _, ok := m[k]; ok {
			t.Errorf("%s present without context: %v", k, m)
		}
	}
}

func TestContextIDs(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, "detokenize", "debug")
	ctx, sc := spanContext(t)
	ctx = logging.WithRequestID(ctx, "req-123")
	if got := logging.RequestID(ctx); got != "req-123" {
		t.Fatalf("RequestID = %q", got)
	}
	log.InfoContext(ctx, "done")
	m := one(t, &buf)
	if m["request_id"] != "req-123" {
		t.Errorf("request_id = %v", m["request_id"])
	}
	if m["trace_id"] != sc.TraceID().String() {
		t.Errorf("trace_id = %v, want %s", m["trace_id"], sc.TraceID())
	}
	if m["span_id"] != sc.SpanID().String() {
		t.Errorf("span_id = %v, want %s", m["span_id"], sc.SpanID())
	}
	if m["function"] != "detokenize" {
		t.Errorf("function = %v", m["function"])
	}
}

func TestOnlyWhatContextHas(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, "f", "info")

	log.InfoContext(logging.WithRequestID(context.Background(), "r1"), "a")
	m := one(t, &buf)
	if m["request_id"] != "r1" {
		t.Errorf("request_id = %v", m["request_id"])
	}
	if _, ok := m["trace_id"]; ok {
		t.Errorf("trace_id without span: %v", m)
	}

	buf.Reset()
	ctx, sc := spanContext(t)
	log.InfoContext(ctx, "b")
	m = one(t, &buf)
	if _, ok := m["request_id"]; ok {
		t.Errorf("request_id without one: %v", m)
	}
	if m["trace_id"] != sc.TraceID().String() || m["span_id"] != sc.SpanID().String() {
		t.Errorf("record = %v", m)
	}

	if got := logging.RequestID(context.Background()); got != "" {
		t.Errorf("RequestID of empty context = %q", got)
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{
		"debug": slog.LevelDebug, "DEBUG": slog.LevelDebug,
		"info": slog.LevelInfo, "": slog.LevelInfo, "verbose": slog.LevelInfo,
		"warn": slog.LevelWarn, "Warning": slog.LevelWarn,
		"error": slog.LevelError, "ERROR": slog.LevelError,
	} {
		if got := logging.ParseLevel(in); got != want {
			t.Errorf("ParseLevel(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestLevelFilters(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, "f", "warn")
	log.Debug("d")
	log.Info("i")
	log.Warn("w")
	log.Error("e")
	ls := lines(t, &buf)
	if len(ls) != 2 || ls[0]["msg"] != "w" || ls[1]["msg"] != "e" {
		t.Errorf("warn logger wrote %v", ls)
	}

	buf.Reset()
	log = logging.New(&buf, "f", "debug")
	log.Debug("d")
	if ls := lines(t, &buf); len(ls) != 1 || ls[0]["level"] != "DEBUG" {
		t.Errorf("debug logger wrote %v", ls)
	}

	buf.Reset()
	log = logging.New(&buf, "f", "nonsense")
	log.Debug("d")
	log.Info("i")
	if ls := lines(t, &buf); len(ls) != 1 || ls[0]["msg"] != "i" {
		t.Errorf("default-level logger wrote %v", ls)
	}
}

func TestWithKeepsContextAttrs(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, "f", "info").With("table", "cards")
	ctx, sc := spanContext(t)
	ctx = logging.WithRequestID(ctx, "req-w")
	log.InfoContext(ctx, "x")
	m := one(t, &buf)
	if m["table"] != "cards" || m["function"] != "f" || m["request_id"] != "req-w" ||
		m["trace_id"] != sc.TraceID().String() || m["span_id"] != sc.SpanID().String() {
		t.Errorf("record = %v", m)
	}
}

func TestWithGroupKeepsContextAttrs(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, "f", "info").With("top", "t").WithGroup("g").With("k", "v").WithGroup("h")
	ctx, sc := spanContext(t)
	ctx = logging.WithRequestID(ctx, "req-g")
	log.InfoContext(ctx, "x", "n", 1)
	m := one(t, &buf)
	if m["function"] != "f" || m["top"] != "t" {
		t.Errorf("record = %v", m)
	}
	// The ids stay at the top level, where log queries look for them.
	if m["request_id"] != "req-g" || m["trace_id"] != sc.TraceID().String() || m["span_id"] != sc.SpanID().String() {
		t.Errorf("context ids not at the top level: %v", m)
	}
	g, ok := m["g"].(map[string]any)
	if !ok {
		t.Fatalf("no group g: %v", m)
	}
	h, ok := g["h"].(map[string]any)
	if !ok || g["k"] != "v" || h["n"] != 1.0 || len(g) != 2 || len(h) != 1 {
		t.Errorf("group g = %v", g)
	}

	// Without ids in the context the groups are as they were.
	buf.Reset()
	log.Info("y", "n", 2)
	m = one(t, &buf)
	if _, ok := m["request_id"]; ok {
		t.Errorf("request_id without one: %v", m)
	}
	if g, ok := m["g"].(map[string]any); !ok || g["k"] != "v" || g["h"].(map[string]any)["n"] != 2.0 {
		t.Errorf("record = %v", m)
	}

	// Sibling loggers made from one parent do not share groups or attributes.
	buf.Reset()
	parent := logging.New(&buf, "f", "info").WithGroup("p")
	a := parent.With("a", 1)
	b := parent.With("b", 2)
	a.InfoContext(ctx, "a")
	b.InfoContext(ctx, "b")
	ls := lines(t, &buf)
	if len(ls) != 2 {
		t.Fatalf("lines = %v", ls)
	}
	pa, _ := ls[0]["p"].(map[string]any)
	pb, _ := ls[1]["p"].(map[string]any)
	if pa["a"] != 1.0 || pa["b"] != nil || pb["b"] != 2.0 || pb["a"] != nil ||
		ls[0]["request_id"] != "req-g" || ls[1]["request_id"] != "req-g" {
		t.Errorf("lines = %v", ls)
	}
}
