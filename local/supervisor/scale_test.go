package supervisor

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skyflow-oss/skyflow/local/manifest"
)

func TestStartOnDemand(t *testing.T) {
	t.Parallel()
	h := start(t, Config{Services: []manifest.Service{fnService("records-insert")}})
	if st := h.status(t, "records-insert"); st.State != Stopped || st.PID != 0 || st.ColdStart != 0 {
		t.Fatalf("before any request: %+v, want stopped with no pid", st)
	}

	// Concurrent first requests share one start.
	const n = 10
	pids := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { pids <- h.mustGet(t, "records-insert", "/").PID })
	}
	wg.Wait()
	close(pids)
	first := 0
	for pid := range pids {
		if first == 0 {
			first = pid
		}
		if pid != first {
			t.Errorf("requests reached pids %d and %d, want one process", first, pid)
		}
	}

	st := h.status(t, "records-insert")
	if st.State != Running || st.PID != first || st.ColdStart <= 0 {
		t.Fatalf("after the first requests: %+v, want running pid %d with a cold start", st, first)
	}
	t.Logf("cold start (exec to ready): %v", st.ColdStart)
	if !strings.Contains(h.events.String(), "records-insert cold start ") {
		t.Errorf("the cold start is not logged:\n%s", h.events)
	}
}

func TestScaleToZero(t *testing.T) {
	t.Parallel()
	h := start(t, Config{
		IdleAfter: 300 * time.Millisecond,
		Services: []manifest.Service{
			fnService("idle"),
			// A longer retention period wins over IdleAfter.
			fnService("retained", func(s *manifest.Service) { s.RetentionPeriod = 5 * time.Second }),
		},
	})
	first := h.mustGet(t, "idle", "/").PID
	retained := h.mustGet(t, "retained", "/").PID

	waitFor(t, 5*time.Second, "idle to scale to zero", func() bool { return h.status(t, "idle").State == Stopped })
	waitFor(t, 2*time.Second, "the idle process to exit", func() bool { return !alive(first) })
	if st := h.status(t, "retained"); st.State != Running || st.PID != retained {
		t.Errorf("retained: %+v, want still running pid %d", st, retained)
	}
	if !strings.Contains(h.logs.String(), "[idle] SIGTERM: draining") {
		t.Errorf("idle was not stopped with SIGTERM:\n%s", h.logs)
	}

	second := h.mustGet(t, "idle", "/").PID
	if second == first {
		t.Fatalf("after scale to zero the request reached the old pid %d", first)
	}
	t.Logf("cold start after scale to zero: %v", h.status(t, "idle").ColdStart)
}

func TestRequestWhileStopping(t *testing.T) {
	t.Parallel()
	h := start(t, Config{
		IdleAfter: 100 * time.Millisecond,
		Services:  []manifest.Service{fnService("slow-stop", withEnv("FN_STOP_DELAY_MS", "400"))},
	})
	first := h.mustGet(t, "slow-stop", "/").PID
	waitFor(t, 5*time.Second, "the stop to begin", func() bool { return h.status(t, "slow-stop").State == Stopping })
	// The request waits for the old process to exit, then starts a new one.
	second := h.mustGet(t, "slow-stop", "/").PID
	if second == first || alive(first) {
		t.Fatalf("request during stop reached pid %d (old %d, alive %v)", second, first, alive(first))
	}
}

func TestMinScaleStartsAtOnceAndStays(t *testing.T) {
	t.Parallel()
	h := start(t, Config{
		IdleAfter: 100 * time.Millisecond,
		Services:  []manifest.Service{fnService("gateway", minScale(1), func(s *manifest.Service) { s.ClusterLocal = false })},
	})
	st := h.status(t, "gateway")
	if st.State != Running || st.PID == 0 || st.ColdStart <= 0 || !st.Public || st.MinScale != 1 {
		t.Fatalf("after Start: %+v, want a running public process", st)
	}
	h.mustGet(t, "gateway", "/")
	time.Sleep(500 * time.Millisecond) // five idle periods
	if now := h.status(t, "gateway"); now.State != Running || now.PID != st.PID {
		t.Fatalf("after idling: %+v, want pid %d still running", now, st.PID)
	}
}

func TestURLs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{
		PublicAddr: ":0",
		Services: []manifest.Service{
			fnService("gateway", func(s *manifest.Service) { s.ClusterLocal = false }),
			fnService("records-get"),
		},
	})
	pub, ok := h.URL("gateway")
	if !ok || pub.Scheme != "http" || pub.Hostname() != "127.0.0.1" || pub.Port() == "0" {
		t.Errorf("public URL %v, want http://127.0.0.1:<port> for a wildcard address", pub)
	}
	priv, ok := h.URL("records-get")
	if !ok || priv.Hostname() != "127.0.0.1" || priv.Port() == pub.Port() {
		t.Errorf("cluster-local URL %v, want its own loopback port", priv)
	}
	if _, ok := h.URL("nope"); ok {
		t.Error("URL of an unknown Service is ok")
	}
	// The URL is stable from New on: its port is held before Start.
	if ln, err := net.Listen("tcp", priv.Host); err == nil {
		ln.Close()
		t.Error("the front port is not held before Start")
	}
	pub.Host = "changed"
	if again, _ := h.URL("gateway"); again.Host == "changed" {
		t.Error("URL returns a shared value")
	}
}
