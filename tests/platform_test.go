// Package tests holds the end-to-end tests and benchmarks: they boot the
// local platform (real PostgreSQL, Redis, the Kafka protocol through kfake,
// function processes, real HTTP between them) on free ports.
package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/skyflow-oss/skyflow/local/manifest"
	"github.com/skyflow-oss/skyflow/local/platform"
	"github.com/skyflow-oss/skyflow/local/supervisor"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

// testPlatform is a running platform and where its test functions record
// the events they handle.
type testPlatform struct {
	*platform.Platform
	cfg     platform.Config
	records string
}

// options change the platform a test starts.
type options struct {
	devDir      string            // reuse a DevDir (Kafka data) across restarts
	databaseURL string            // reuse a database across restarts
	records     string            // reuse a record directory across restarts
	extra       []string          // more manifest directories
	env         map[string]string // more function environment
	idle        time.Duration
}

func root(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// startPlatform boots the real manifests plus the test functions and
// triggers, with its own database, Kafka data and ports.
func startPlatform(t testing.TB, o options) *testPlatform {
	t.Helper()
	r := root(t)
	if o.devDir == "" {
		o.devDir = t.TempDir()
	}
	if o.databaseURL == "" {
		o.databaseURL = testenv.Database(t)
	}
	if o.records == "" {
		o.records = t.TempDir()
	}
	if o.idle == 0 {
		o.idle = 30 * time.Second
	}
	env := map[string]string{"RECORD_DIR": o.records, "OUTBOX_SWEEP_OLDER_THAN": "0s",
		"SKYFLOW_EXTRA_ROUTES": filepath.Join(r, "tests", "testdata", "gateway-routes.yaml")}
	for k, v := range o.env {
		env[k] = v
	}
	// Every platform has its own Redis keys, deleted when the test ends:
	// the platforms of a test run share one Redis server, and the gateway
	// caches answers there (JWKS, OpenAPI, the VAPID key) that would
	// otherwise be another platform's.
	_, redisPrefix := testenv.Redis(t)
	logs := &testLog{t: t}
	cfg := platform.Config{
		Root:       r,
		DevDir:     o.devDir,
		Manifests:  append([]string{filepath.Join(r, "knative"), filepath.Join(r, "eventing"), filepath.Join(r, "tests", "testdata", "platform")}, o.extra...),
		PublicAddr: "127.0.0.1:0",
		// HTTPS on a free port too: make run holds 127.0.0.1:8443.
		PublicTLSAddr: "127.0.0.1:0",
		IdleAfter:     o.idle,
		DatabaseURL:   o.databaseURL,
		RedisURL:      testenv.RedisURL(t),
		RedisPrefix:   redisPrefix,
		FunctionEnv:   env,
		Logs:          logs,
		Logger:        slog.New(slog.NewTextHandler(logs, nil)),
	}
	// make test builds every function once for all test processes
	// (SKYFLOW_FUNCTION_BINARIES); alone, this process builds its own.
	if bins := os.Getenv("SKYFLOW_FUNCTION_BINARIES"); bins != "" {
		cfg.BinDir, cfg.Build = bins, supervisor.Prebuilt
	} else {
		cfg.BinDir, cfg.Build = functionBinaries.dir(t), functionBinaries.build
	}
	// The first platform of the process builds every function: minutes on
	// a cold build cache while other test packages compile beside it.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	p, err := platform.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("the platform did not start: %v", err)
	}
	tp := &testPlatform{Platform: p, cfg: cfg, records: o.records}
	t.Cleanup(func() { tp.stop(t) })
	return tp
}

func TestMain(m *testing.M) {
	code := m.Run()
	if functionBinaries.path != "" {
		os.RemoveAll(functionBinaries.path)
	}
	os.Exit(code)
}

// functionBinaries builds each function package once per test process,
// into one directory every platform of the process runs from: linking
// two dozen binaries for each of the tests' platforms would cost minutes.
var functionBinaries binaries

type binaries struct {
	mu    sync.Mutex
	path  string
	built map[string]bool // package → built
}

func (b *binaries) dir(t testing.TB) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.path == "" {
		dir, err := os.MkdirTemp("", "skyflow-test-bin-")
		if err != nil {
			t.Fatal(err)
		}
		b.path, b.built = dir, map[string]bool{}
	}
	return b.path
}

func (b *binaries) build(ctx context.Context, services []manifest.Service, binDir string, log io.Writer) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var missing []manifest.Service
	for _, s := range services {
		if !b.built[s.Package] {
			missing = append(missing, s)
		}
	}
	if err := supervisor.Build(ctx, missing, binDir, log); err != nil {
		return err
	}
	for _, s := range missing {
		b.built[s.Package] = true
	}
	return nil
}

var closed sync.Map // platforms already stopped by a test

func (p *testPlatform) stop(t testing.TB) {
	if _, done := closed.LoadOrStore(p, true); done {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Errorf("closing the platform: %v", err)
	}
}

// publish sends an event to the broker ingress, as a function's outbox does.
func (p *testPlatform) publish(t testing.TB, typ, id string, data any) {
	t.Helper()
	e := event.New()
	e.SetID(id)
	e.SetSource("/tests")
	e.SetType(typ)
	if err := e.SetData("application/json", data); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, p.SinkURL(), nil)
	if err := cehttp.WriteRequest(context.Background(), binding.ToMessage(&e), req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("publishing: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("the broker ingress answered %d: %s", resp.StatusCode, body)
	}
}

// recorded waits until the test function running as service has handled
// the event with the given id, and returns it.
func (p *testPlatform) recorded(t testing.TB, service, id string, within time.Duration) event.Event {
	t.Helper()
	name := filepath.Join(p.records, service, id+".json")
	deadline := time.Now().Add(within)
	for {
		b, err := os.ReadFile(name)
		if err == nil {
			var e event.Event
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("record %s: %v", name, err)
			}
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never received event %s within %v", service, id, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// recordCount is how many events the service has recorded so far.
func (p *testPlatform) recordCount(service string) int {
	entries, _ := os.ReadDir(filepath.Join(p.records, service))
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			n++
		}
	}
	return n
}

// testLog sends the platform's and the functions' output to the test log,
// which go test shows for failing tests.
type testLog struct {
	t  testing.TB
	mu sync.Mutex
}

func (w *testLog) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer func() { recover() }() // a line logged after the test ended is dropped
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func uniqueID(prefix string) string { return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()) }

// recordedEvents reads every event the service has recorded.
func (p *testPlatform) recordedEvents(t testing.TB, service string) []event.Event {
	t.Helper()
	dir := filepath.Join(p.records, service)
	entries, _ := os.ReadDir(dir)
	var out []event.Event
	for _, en := range entries {
		if !strings.HasSuffix(en.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, en.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var e event.Event
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}
