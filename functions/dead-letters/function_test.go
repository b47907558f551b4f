package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/skyflow-oss/skyflow/domain/deadletters"
	"github.com/skyflow-oss/skyflow/eventing/catalog"
	"github.com/skyflow-oss/skyflow/runtime/sender"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

// sink is a broker ingress stand-in: a real HTTP server that decodes the
// CloudEvents it is sent.
type sink struct {
	mu     sync.Mutex
	events []event.Event
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e, err := cehttp.NewEventFromHTTPRequest(r)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	s.mu.Lock()
	s.events = append(s.events, *e)
	s.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

func (s *sink) received() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event.Event(nil), s.events...)
}

var newOnce sync.Once
var shared *Function

// start returns a started function on a fresh database; New registers
// metrics, so the process has one Function.
func start(t *testing.T) (*Function, *sink, *pgxpool.Pool) {
	t.Helper()
	newOnce.Do(func() { shared = New() })
	s := &sink{}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	dbURL := testenv.Database(t)
	f := &Function{received: shared.received, types: shared.types}
	if err := f.Start(context.Background(), map[string]string{"DATABASE_URL": dbURL, "K_SINK": srv.URL}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Stop(context.Background()) })
	p, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return f, s, p
}

func deadLetter(id, typ string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("/skyflow/functions/records-insert")
	e.SetType(typ)
	e.SetExtension("knativeerrordest", "http://webhooks.skyflow.svc/")
	e.SetExtension("knativeerrorcode", "503")
	e.SetData(event.ApplicationJSON, map[string]string{"skyflow_id": "7b0c…", "token": "tok_1"})
	return e
}

func TestDeadLetterIsKeptOnceAndAnnouncedWithACatalogEvent(t *testing.T) {
	f, s, pool := start(t)
	ctx := sender.NewContext(context.Background(), sender.Broker)
	before := testutil.ToFloat64(f.received.WithLabelValues("com.skyflow.vault.record.created"))
	in := deadLetter("evt-1", "com.skyflow.vault.record.created")
	for range 2 { // a redelivery is the same dead letter
		if reply, err := f.Handle(ctx, in); err != nil || reply != nil {
			t.Fatalf("Handle = %v, %v", reply, err)
		}
	}
	var (
		rows   int
		status int
		dest   string
		stored []byte
	)
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM dead_letters`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT status, destination, event FROM dead_letters WHERE source = $1 AND id = $2`,
		in.Source(), in.ID()).Scan(&status, &dest, &stored); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || status != 503 || dest != "http://webhooks.skyflow.svc/" {
		t.Fatalf("rows %d status %d destination %q", rows, status, dest)
	}
	var kept event.Event
	if err := json.Unmarshal(stored, &kept); err != nil || kept.ID() != "evt-1" || string(kept.Data()) != string(in.Data()) {
		t.Fatalf("stored event %v (%v)", kept, err)
	}
	if got := testutil.ToFloat64(f.received.WithLabelValues("com.skyflow.vault.record.created")) - before; got != 1 {
		t.Fatalf("counter grew by %v, want 1", got)
	}

	deadline := time.Now().Add(5 * time.Second)
	for len(s.received()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := s.received()
	if len(got) != 1 {
		t.Fatalf("%d announcements, want exactly 1", len(got))
	}
	if err := catalog.Validate(got[0]); err != nil {
		t.Fatalf("the emitted event does not match the catalog: %v", err)
	}
	var data deadletters.Recorded
	if err := json.Unmarshal(got[0].Data(), &data); err != nil || data.ID != "evt-1" || data.Status != 503 || got[0].Subject() != "com.skyflow.vault.record.created" {
		t.Fatalf("announcement %s (%v)", got[0], err)
	}
}

func TestDeadLetteredAnnouncementIsKeptButNotAnnouncedAgain(t *testing.T) {
	f, s, pool := start(t)
	ctx := sender.NewContext(context.Background(), sender.Broker)
	if _, err := f.Handle(ctx, deadLetter("ann-1", deadletters.RecordedType)); err != nil {
		t.Fatal(err)
	}
	var rows, outboxRows int
	pool.QueryRow(ctx, `SELECT count(*) FROM dead_letters`).Scan(&rows)
	pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&outboxRows)
	if rows != 1 || outboxRows != 0 {
		t.Fatalf("dead letters %d, outbox rows %d; want 1 and 0", rows, outboxRows)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(s.received()); n != 0 {
		t.Fatalf("%d announcements of an announcement", n)
	}
}

func TestStartNamesMissingSettings(t *testing.T) {
	err := (&Function{}).Start(context.Background(), map[string]string{})
	if err == nil {
		t.Fatal("started without settings")
	}
	for _, want := range []string{"DATABASE_URL", "K_SINK"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}
