package supervisor

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/skyflow-oss/skyflow/local/manifest"
)

func TestCrashOnDemand(t *testing.T) {
	t.Parallel()
	h := start(t, Config{Services: []manifest.Service{fnService("tokens-detokenize")}})
	first := h.mustGet(t, "tokens-detokenize", "/").PID

	code, _, body := h.get(t, "tokens-detokenize", "/crash")
	if code != http.StatusBadGateway || !strings.Contains(body, "crashed") || !strings.Contains(body, "exit status 3") {
		t.Fatalf("request that crashed the process: %d %q, want 502 saying it crashed", code, body)
	}
	if st := h.status(t, "tokens-detokenize"); st.State != Crashed || st.Restarts != 1 || st.PID != 0 {
		t.Errorf("after the crash: %+v, want crashed, 1 restart, no pid", st)
	}
	if alive(first) {
		t.Errorf("crashed pid %d is still alive", first)
	}

	// MinScale 0: the next request starts it again.
	if second := h.mustGet(t, "tokens-detokenize", "/").PID; second == first {
		t.Fatalf("after the crash the request reached the old pid %d", first)
	}
	if !strings.Contains(h.events.String(), "tokens-detokenize exited unexpectedly") {
		t.Errorf("the crash is not logged:\n%s", h.events)
	}
}

func TestCrashMinScaleRestarts(t *testing.T) {
	t.Parallel()
	h := start(t, Config{Services: []manifest.Service{fnService("gateway", minScale(1))}})
	first := h.status(t, "gateway").PID

	if code, _, body := h.get(t, "gateway", "/crash"); code != http.StatusBadGateway {
		t.Fatalf("crash: %d %q, want 502", code, body)
	}
	// Restarted without a request.
	waitFor(t, 5*time.Second, "gateway to run again", func() bool {
		st := h.status(t, "gateway")
		return st.State == Running && st.PID != first && st.PID != 0
	})
	if st := h.status(t, "gateway"); st.Restarts != 1 {
		t.Errorf("restarts = %d, want 1", st.Restarts)
	}
	h.mustGet(t, "gateway", "/")
}

func TestCrashLoopBacksOff(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{
		Services: []manifest.Service{
			fnService("broken", minScale(1), withEnv("FN_EXIT_AT_START", "1")),
			fnService("broken-on-demand", withEnv("FN_EXIT_AT_START", "1")),
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := h.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "broken: exited before it was ready: exit status 1") {
		t.Fatalf("Start: %v, want the exit of broken", err)
	}

	// A request to a Service that cannot start fails fast, and is not retried.
	code, _, body := h.get(t, "broken-on-demand", "/")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "exited before it was ready") {
		t.Errorf("request to a Service that cannot start: %d %q, want 503", code, body)
	}
	if st := h.status(t, "broken-on-demand"); st.Restarts != 1 {
		t.Errorf("broken-on-demand restarts = %d, want 1 (only requests start it)", st.Restarts)
	}

	time.Sleep(1500 * time.Millisecond)
	// Backoff 0, 0.1, 0.2, 0.4, 0.8 s: about 5 starts in 1.5 s, not hundreds.
	st := h.status(t, "broken")
	if st.Restarts < 3 || st.Restarts > 8 {
		t.Errorf("broken restarted %d times in 1.5 s, want a few with backoff", st.Restarts)
	}
	if !strings.Contains(h.events.String(), "broken is crash looping") {
		t.Errorf("the crash loop is not logged:\n%s", h.events)
	}
	if !strings.Contains(h.logs.String(), "[broken] exiting at start as asked") {
		t.Errorf("the crashing process's output is missing:\n%s", h.logs)
	}
}

func TestNeverReady(t *testing.T) {
	t.Parallel()
	h := start(t, Config{
		ReadyTimeout: 300 * time.Millisecond,
		Services:     []manifest.Service{fnService("unready", func(s *manifest.Service) { s.ReadinessPath = "/not-found" })},
	})
	begin := time.Now()
	code, _, body := h.get(t, "unready", "/")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "not ready within 300ms (GET /not-found)") {
		t.Errorf("request to a process that never gets ready: %d %q, want 503", code, body)
	}
	if took := time.Since(begin); took > 3*time.Second {
		t.Errorf("the request waited %v", took)
	}
	waitFor(t, 5*time.Second, "the unready process to be killed", func() bool {
		st := h.status(t, "unready")
		return st.State == Crashed && st.PID == 0 && st.Restarts == 1
	})
}
