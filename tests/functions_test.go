package tests

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/skyflow-oss/skyflow/local/platform"
	"github.com/skyflow-oss/skyflow/local/supervisor"
)

// A function idle past its scale-to-zero period is stopped; the next event
// starts it again and is delivered. The cold start is logged in ms.
func TestScaleToZeroThenColdStartOnTheNextEvent(t *testing.T) {
	p := startPlatform(t, options{idle: time.Second})
	first := uniqueID("warm")
	p.publish(t, "com.skyflow.test.record.scale", first, map[string]int{"n": 1})
	p.recorded(t, "recorder", first, 30*time.Second)
	pid := status(t, p.Platform, "recorder").PID

	deadline := time.Now().Add(20 * time.Second)
	for status(t, p.Platform, "recorder").State != supervisor.Stopped {
		if time.Now().After(deadline) {
			t.Fatalf("recorder still %v after being idle", status(t, p.Platform, "recorder").State)
		}
		time.Sleep(50 * time.Millisecond)
	}
	second := uniqueID("cold")
	p.publish(t, "com.skyflow.test.record.scale", second, map[string]int{"n": 2})
	p.recorded(t, "recorder", second, 30*time.Second)
	s := status(t, p.Platform, "recorder")
	if s.PID == pid || s.ColdStart <= 0 {
		t.Fatalf("no new process: pid %d (was %d), cold start %v", s.PID, pid, s.ColdStart)
	}
	t.Logf("recorder cold start (exec → ready): %d ms", s.ColdStart.Milliseconds())
}

func status(t testing.TB, p *platform.Platform, name string) supervisor.Status {
	t.Helper()
	for _, s := range p.Status() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no function %q", name)
	return supervisor.Status{}
}

// TC-SKY-ARCH-003: every function process (and the gateway, being one of
// them) exposes /metrics in the Prometheus text format with the host's
// metrics.
func TestTC_SKY_ARCH_003_EveryFunctionExposesPrometheusMetrics(t *testing.T) {
	p := startPlatform(t, options{})
	functions := p.Status()
	if len(functions) < 2 {
		t.Fatalf("only %d functions in the manifests", len(functions))
	}
	for _, fn := range functions {
		t.Run(fn.Name, func(t *testing.T) {
			resp, err := http.Get(fn.URL.String() + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/plain") {
				t.Fatalf("status %d, content type %q", resp.StatusCode, ct)
			}
			parser := expfmt.NewTextParser(model.UTF8Validation)
			families, err := parser.TextToMetricFamilies(resp.Body)
			if err != nil {
				t.Fatalf("not the Prometheus text format: %v", err)
			}
			for _, name := range []string{"skyflow_function_events_in_flight", "go_goroutines", "process_resident_memory_bytes"} {
				if _, ok := families[name]; !ok {
					t.Errorf("%s is missing", name)
				}
			}
			inFlight := families["skyflow_function_events_in_flight"]
			if inFlight != nil && inFlight.Metric[0].Label[0].GetValue() != fn.Name {
				t.Errorf("function label %q, want %q", inFlight.Metric[0].Label[0].GetValue(), fn.Name)
			}
		})
	}
	// The platform's own broker metrics are served too.
	resp, err := http.Get(p.AdminURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "go_goroutines") {
		t.Fatalf("platform metrics: %d", resp.StatusCode)
	}
}

// An invalid manifest stops the platform before anything starts, with an
// error that names the file and the field.
func TestInvalidManifestRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	bad := `apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: broken
spec:
  broker: default
  subscriber:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: recorder}
  delivery:
    backoffDelay: "half a second"
`
	file := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(file, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	r := root(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := platform.Start(ctx, platform.Config{
		Root:      r,
		DevDir:    t.TempDir(),
		Manifests: []string{filepath.Join(r, "knative"), filepath.Join(r, "eventing"), filepath.Join(r, "tests", "testdata", "platform"), dir},
		// Never reached: the manifests are checked first.
		DatabaseURL: "postgres://nobody@127.0.0.1:1/none",
		RedisURL:    "redis://127.0.0.1:1",
	})
	if err == nil {
		t.Fatal("the platform started with a broken manifest")
	}
	for _, want := range []string{file, `Trigger "broken"`, "spec.delivery.backoffDelay", "ISO-8601"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
