package metrics_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/skyflow-oss/skyflow/runtime/metrics"
)

func TestBoundedLabel(t *testing.T) {
	b := metrics.NewBoundedLabel(3)
	for _, v := range []string{"a", "b", "a", "c"} {
		if got := b.Value(v); got != v {
			t.Errorf("Value(%q) = %q within the bound", v, got)
		}
	}
	for _, v := range []string{"d", "e", "d"} {
		if got := b.Value(v); got != "other" {
			t.Errorf("Value(%q) = %q past the bound, want other", v, got)
		}
	}
	for _, v := range []string{"a", "b", "c"} {
		if got := b.Value(v); got != v {
			t.Errorf("Value(%q) = %q for a known value past the bound", v, got)
		}
	}
}

func TestBoundedLabelZero(t *testing.T) {
	b := metrics.NewBoundedLabel(0)
	if got := b.Value("a"); got != "other" {
		t.Errorf("Value = %q with max 0, want other", got)
	}
}

func TestBoundedLabelConcurrent(t *testing.T) {
	const limit, workers, values = 10, 16, 100
	b := metrics.NewBoundedLabel(limit)
	var (
		mu       sync.Mutex
		accepted = map[string]bool{}
		wg       sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < values; i++ {
				v := fmt.Sprintf("v%d", (i*7+w)%values)
				if got := b.Value(v); got != "other" {
					if got != v {
						t.Errorf("Value(%q) = %q", v, got)
					}
					mu.Lock()
					accepted[v] = true
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(accepted) != limit {
		t.Errorf("%d distinct values accepted, want %d: %v", len(accepted), limit, accepted)
	}
	// The accepted ones are still accepted; the rest are other.
	for i := 0; i < values; i++ {
		v := fmt.Sprintf("v%d", i)
		got := b.Value(v)
		if accepted[v] && got != v || !accepted[v] && got != "other" {
			t.Errorf("Value(%q) = %q after the race (accepted %v)", v, got, accepted[v])
		}
	}
}

func get(t *testing.T) (*http.Response, string) {
	t.Helper()
	srv := httptest.NewServer(metrics.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func TestHandlerServesRuntimeMetrics(t *testing.T) {
	res, body := get(t)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status = %d", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want the text format", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("not the text format: %v\n%s", err, body)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "go_gc_duration_seconds", "process_start_time_seconds"} {
		if fams[name] == nil {
			t.Errorf("no %s in /metrics", name)
		}
	}
}

func TestHandlerServesRegisteredMetrics(t *testing.T) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skyflow_metrics_test_total", Help: "Test counter.",
	}, []string{"type"})
	metrics.Registry.MustRegister(c)
	t.Cleanup(func() { metrics.Registry.Unregister(c) })
	label := metrics.NewBoundedLabel(1)
	c.WithLabelValues(label.Value("com.example.a")).Add(2)
	c.WithLabelValues(label.Value("com.example.b")).Inc()

	_, body := get(t)
	for _, line := range []string{
		`skyflow_metrics_test_total{type="com.example.a"} 2`,
		`skyflow_metrics_test_total{type="other"} 1`,
	} {
		if !strings.Contains(body, line) {
			t.Errorf("no %q in /metrics", line)
		}
	}
	if strings.Contains(body, "com.example.b") {
		t.Error("a value past the bound reached the labels")
	}
}
