package supervisor

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skyflow-oss/skyflow/local/manifest"
)

func TestContainerConcurrency(t *testing.T) {
	t.Parallel()
	h := start(t, Config{Services: []manifest.Service{
		fnService("serial", minScale(1), func(s *manifest.Service) { s.ContainerConcurrency = 1 }),
		fnService("parallel", minScale(1)),
	}})
	// maxInflight sends n concurrent sleeps and returns the most that fn saw at once.
	maxInflight := func(name string, n int) int {
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			most int
		)
		for range n {
			wg.Go(func() {
				r := h.mustGet(t, name, "/sleep?ms=150")
				mu.Lock()
				most = max(most, r.Inflight)
				mu.Unlock()
			})
		}
		wg.Wait()
		return most
	}
	begin := time.Now()
	if got := maxInflight("serial", 3); got != 1 {
		t.Errorf("containerConcurrency 1: fn saw %d requests at once", got)
	}
	if took := time.Since(begin); took < 450*time.Millisecond {
		t.Errorf("3 serialised requests of 150 ms took %v", took)
	}
	if got := maxInflight("parallel", 3); got < 2 {
		t.Errorf("no limit: fn saw at most %d requests at once, want them to overlap", got)
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	h := start(t, Config{Services: []manifest.Service{
		fnService("slow", minScale(1), func(s *manifest.Service) { s.TimeoutSeconds = 1 }),
	}})
	begin := time.Now()
	code, _, body := h.get(t, "slow", "/sleep?ms=5000")
	took := time.Since(begin)
	if code != http.StatusGatewayTimeout || !strings.Contains(body, "did not answer within 1s") {
		t.Errorf("slow request: %d %q, want 504", code, body)
	}
	if took < time.Second || took > 3*time.Second {
		t.Errorf("timed out after %v, want about 1s", took)
	}
	h.mustGet(t, "slow", "/sleep?ms=10") // the process is fine
}

func TestPortInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	_, err = New(Config{
		BinDir:     binDir,
		PublicAddr: ln.Addr().String(),
		Services: []manifest.Service{
			fnService("records-get"),
			fnService("gateway", func(s *manifest.Service) { s.ClusterLocal = false }),
		},
	})
	if err == nil {
		t.Fatal("New on a busy port: no error")
	}
	want := "port " + port + " is in use by another program; stop it or set another public address"
	if !strings.Contains(err.Error(), want) || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error %q, want it to say %q and wrap EADDRINUSE", err, want)
	}
}

func TestLogPrefix(t *testing.T) {
	t.Parallel()
	h := start(t, Config{Services: []manifest.Service{fnService("audit-record", minScale(1))}})
	h.mustGet(t, "audit-record", "/")
	waitFor(t, 2*time.Second, "the request log line", func() bool {
		return strings.Contains(h.logs.String(), "[audit-record] handled GET /\n")
	})
	for _, want := range []string{"[audit-record] listening on 127.0.0.1:", "[audit-record] stderr is captured too\n"} {
		if !strings.Contains(h.logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, h.logs)
		}
	}
	for line := range strings.Lines(h.logs.String()) {
		if !strings.HasPrefix(line, "[audit-record] ") {
			t.Errorf("line without the prefix: %q", line)
		}
	}
}

func TestLineWriter(t *testing.T) {
	var out syncBuffer
	w := newLineWriter(&logSink{w: &out}, "fn")
	for _, s := range []string{"one\ntw", "o\n", "", "three\nfour\nfi", "ve"} {
		w.Write([]byte(s))
	}
	w.Flush()
	want := "[fn] one\n[fn] two\n[fn] three\n[fn] four\n[fn] five\n"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}
