package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skyflow-oss/skyflow/local/manifest"
)

// fnPkg is the test function; go builds packages under testdata when they
// are named explicitly.
const fnPkg = "github.com/skyflow-oss/skyflow/local/supervisor/testdata/fn"

// binDir holds the fn binary, built once for every test by Build.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "supervisor-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	err = Build(ctx, []manifest.Service{fnService("fn")}, binDir, os.Stderr)
	cancel()
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(binDir)
	os.Exit(code)
}

// fnService is a cluster-local, scale-to-zero Service running fn.
func fnService(name string, opts ...func(*manifest.Service)) manifest.Service {
	svc := manifest.Service{
		Meta:          manifest.Meta{File: "knative/" + name + ".yaml", Name: name, Namespace: "skyflow"},
		Image:         "ko://" + fnPkg,
		Package:       fnPkg,
		ClusterLocal:  true,
		ReadinessPath: "/health/readiness",
		LivenessPath:  "/health/liveness",
	}
	for _, o := range opts {
		o(&svc)
	}
	return svc
}

func minScale(n int) func(*manifest.Service) {
	return func(s *manifest.Service) { s.MinScale = n }
}

func withEnv(kv ...string) func(*manifest.Service) {
	return func(s *manifest.Service) {
		for i := 0; i+1 < len(kv); i += 2 {
			s.Env = append(s.Env, manifest.EnvVar{Name: kv[i], Value: kv[i+1]})
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is a started Supervisor with its process output and log captured.
type harness struct {
	*Supervisor
	logs, events *syncBuffer
}

// start creates and starts a Supervisor; Close runs at cleanup.
func start(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := newHarness(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return h
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{logs: &syncBuffer{}, events: &syncBuffer{}}
	cfg.BinDir = binDir
	cfg.Logs = h.logs
	cfg.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(h.events, testWriter{t}), nil))
	if cfg.PublicAddr == "" {
		cfg.PublicAddr = "127.0.0.1:0"
	}
	sup, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.Supervisor = sup
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := sup.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

// testWriter sends the supervisor's log to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (h *harness) status(t *testing.T, name string) Status {
	t.Helper()
	for _, st := range h.Status() {
		if st.Name == name {
			return st
		}
	}
	t.Fatalf("no Service %q in Status", name)
	return Status{}
}

// reply is what fn answers.
type reply struct {
	PID      int               `json:"pid"`
	Env      map[string]string `json:"env"`
	Host     string            `json:"host"`
	Inflight int               `json:"inflight"`
	Proto    string            `json:"proto"` // X-Forwarded-Proto
	TLS      bool              `json:"tls"`   // the process itself was reached over TLS
}

var client = &http.Client{Timeout: 20 * time.Second}

// get requests path from the named Service and decodes fn's reply on 200.
func (h *harness) get(t *testing.T, name, path string) (int, reply, string) {
	t.Helper()
	u, ok := h.URL(name)
	if !ok {
		t.Fatalf("no URL for %q", name)
	}
	resp, err := client.Get(u.String() + path)
	if err != nil {
		t.Fatalf("GET %s%s: %v", name, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r reply
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("GET %s%s: %v in %q", name, path, err, body)
		}
	}
	return resp.StatusCode, r, string(body)
}

// mustGet is get that expects 200.
func (h *harness) mustGet(t *testing.T, name, path string) reply {
	t.Helper()
	code, r, body := h.get(t, name, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s%s: %d %s", name, path, code, body)
	}
	return r
}

// waitFor polls cond every 5 ms until it holds, failing after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// alive reports whether a process with this pid exists (our children are
// reaped by the supervisor, so an exited one does not linger as a zombie).
func alive(pid int) bool {
	return pid > 0 && !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
