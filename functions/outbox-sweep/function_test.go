package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/outbox"
	"github.com/skyflow-oss/skyflow/runtime/sender"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

const (
	testSource = "/skyflow/test/outbox-sweep"
	testType   = "com.skyflow.test.thing.created"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// sink is a broker ingress that takes binary-mode CloudEvents.
type sink struct {
	mu      sync.Mutex
	events  []event.Event
	binary  []bool
	badReqs []string
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e, err := cehttp.NewEventFromHTTPRequest(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.badReqs = append(s.badReqs, err.Error())
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.events = append(s.events, *e)
	s.binary = append(s.binary, r.Header.Get("Ce-Id") != "")
	w.WriteHeader(http.StatusAccepted)
}

func (s *sink) received() ([]event.Event, []bool, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event.Event(nil), s.events...), append([]bool(nil), s.binary...), append([]string(nil), s.badReqs...)
}

func pingEvent() event.Event {
	e := event.New()
	e.SetID("ping-1")
	e.SetSource("/apis/v1/namespaces/skyflow/pingsources/outbox-sweep")
	e.SetType(PingType)
	return e
}

func started(t *testing.T, cfg map[string]string) *Function {
	t.Helper()
	f := New()
	if err := f.Start(testContext(t), cfg); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := f.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return f
}

func TestStartNamesEveryMissingSetting(t *testing.T) {
	err := New().Start(testContext(t), map[string]string{})
	if err == nil {
		t.Fatal("Start without settings succeeded")
	}
	for _, name := range []string{"DATABASE_URL", "K_SINK"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func TestStartRejectsBadSettings(t *testing.T) {
	err := New().Start(testContext(t), map[string]string{
		"DATABASE_URL":            "postgres://u:p@127.0.0.1:1/db",
		"K_SINK":                  "ftp://u:s3cret@broker/",
		"OUTBOX_SWEEP_OLDER_THAN": "soon",
	})
	if err == nil {
		t.Fatal("Start with bad settings succeeded")
	}
	for _, name := range []string{"K_SINK", "OUTBOX_SWEEP_OLDER_THAN"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error leaks the sink's password: %v", err)
	}
}

func TestSweepResendsUnsentEvent(t *testing.T) {
	ctx := sender.NewContext(testContext(t), sender.Ping)
	dbURL := testenv.Database(t)
	s := &sink{}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)

	// A function committed an event but never sent it.
	pool, err := db.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e := event.New()
	e.SetID("thing-42")
	e.SetSource(testSource)
	e.SetType(testType)
	if err := e.SetData(event.ApplicationJSON, map[string]string{"thing": "42"}); err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := outbox.Add(ctx, tx, e); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if sentAt(t, ctx, pool, e.ID()) != nil {
		t.Fatal("row sent before the sweep")
	}

	f := started(t, map[string]string{
		"DATABASE_URL":            dbURL,
		"K_SINK":                  srv.URL,
		"OUTBOX_SWEEP_OLDER_THAN": "0s",
	})
	if ok, err := f.Ready(ctx); !ok || err != nil {
		t.Fatalf("Ready = %v, %v with the database up", ok, err)
	}
	reply, err := f.Handle(ctx, pingEvent())
	if err != nil {
		t.Fatalf("Handle(ping): %v", err)
	}
	if reply != nil {
		t.Errorf("Handle replied %v, want no reply", reply)
	}

	got, binary, bad := s.received()
	if len(bad) > 0 {
		t.Errorf("sink got undecodable requests: %v", bad)
	}
	if len(got) != 1 {
		t.Fatalf("sink got %d events, want 1: %v", len(got), got)
	}
	g := got[0]
	if g.ID() != e.ID() || g.Source() != e.Source() || g.Type() != e.Type() {
		t.Errorf("sink got %s/%s/%s, want %s/%s/%s", g.Source(), g.ID(), g.Type(), e.Source(), e.ID(), e.Type())
	}
	if string(g.Data()) != `{"thing":"42"}` {
		t.Errorf("data = %s", g.Data())
	}
	if !binary[0] {
		t.Error("event not sent in binary content mode")
	}
	if sentAt(t, ctx, pool, e.ID()) == nil {
		t.Error("sent_at not set after the sweep")
	}

	// A second ping sends nothing more.
	if _, err := f.Handle(ctx, pingEvent()); err != nil {
		t.Fatalf("second Handle(ping): %v", err)
	}
	if got, _, _ := s.received(); len(got) != 1 {
		t.Errorf("sink got %d events after a second sweep, want 1", len(got))
	}
}

func TestSweepLeavesRecentEvents(t *testing.T) {
	ctx := sender.NewContext(testContext(t), sender.Ping)
	dbURL := testenv.Database(t)
	s := &sink{}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	pool, err := db.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e := event.New()
	e.SetID("thing-recent")
	e.SetSource(testSource)
	e.SetType(testType)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := outbox.Add(ctx, tx, e); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	// Default OUTBOX_SWEEP_OLDER_THAN (30s): the event's own sender may
	// still be sending it.
	f := started(t, map[string]string{"DATABASE_URL": dbURL, "K_SINK": srv.URL})
	if _, err := f.Handle(ctx, pingEvent()); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.received(); len(got) != 0 {
		t.Errorf("sink got %d events younger than the default wait", len(got))
	}
	if sentAt(t, ctx, pool, e.ID()) != nil {
		t.Error("recent row marked sent")
	}
}

func TestHandleRejectsOtherEvents(t *testing.T) {
	ctx := sender.NewContext(testContext(t), sender.Ping)
	srv := httptest.NewServer(&sink{})
	t.Cleanup(srv.Close)
	f := started(t, map[string]string{"DATABASE_URL": testenv.Database(t), "K_SINK": srv.URL})

	e := event.New()
	e.SetID("x")
	e.SetSource("/elsewhere")
	e.SetType("com.example.other")
	reply, err := f.Handle(ctx, e)
	if reply != nil {
		t.Errorf("reply = %v", reply)
	}
	var ae *apierr.Error
	if !errors.As(err, &ae) {
		t.Fatalf("Handle error = %v (%T), want *apierr.Error", err, err)
	}
	if ae.HTTPCode != http.StatusBadRequest {
		t.Errorf("HTTPCode = %d, want 400", ae.HTTPCode)
	}
	if !strings.Contains(ae.Message, PingType) {
		t.Errorf("message %q does not say which type is handled", ae.Message)
	}
}

func TestReadyFalseWithDatabaseDown(t *testing.T) {
	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	f := started(t, map[string]string{
		"DATABASE_URL": "postgres://u:p@" + addr + "/db?sslmode=disable&connect_timeout=2",
		"K_SINK":       "http://127.0.0.1:1/",
	})
	ok, err := f.Ready(testContext(t))
	if ok {
		t.Error("Ready = true with no database")
	}
	if err != nil {
		t.Errorf("Ready error = %v; readiness is a boolean", err)
	}
}

// sentAt is the row's sent_at, nil while unsent.
func sentAt(t *testing.T, ctx context.Context, pool *pgxpool.Pool, id string) *time.Time {
	t.Helper()
	var at *time.Time
	if err := pool.QueryRow(ctx, `SELECT sent_at FROM outbox WHERE source = $1 AND id = $2`, testSource, id).Scan(&at); err != nil {
		t.Fatalf("outbox row %q: %v", id, err)
	}
	return at
}
