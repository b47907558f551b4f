package outbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/outbox"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

// secretData stands in for sensitive data an event should never carry but
// might: it must not reach logs or last_error.
const secretData = "4111111111111111"

const (
	testSource = "/skyflow/test"
	testType   = "com.skyflow.test.thing.created"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newEvent(id string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource(testSource)
	e.SetType(testType)
	e.SetExtension("partitionkey", id)
	if err := e.SetData(event.ApplicationJSON, map[string]string{"thing": id, "card": secretData}); err != nil {
		panic(err)
	}
	return e
}

// setup returns a pool on a fresh migrated database with a "things" table
// standing for a function's state.
func setup(t *testing.T) *pgxpool.Pool {
	pool := testenv.Pool(t, db.WithMaxConns(10))
	if _, err := pool.Exec(testContext(t), `CREATE TABLE things (id text PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	return pool
}

// lockedBuffer is a log destination safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newPublisher(t *testing.T, pool *pgxpool.Pool, sink string, opts ...outbox.Option) (*outbox.Publisher, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	opts = append([]outbox.Option{
		outbox.WithLogger(slog.New(slog.NewTextHandler(logs, nil))),
		outbox.WithRequestTimeout(5 * time.Second),
	}, opts...)
	p, err := outbox.NewPublisher(pool, sink, opts...)
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	return p, logs
}

// insertThing is a function's work: a state change and the event for it.
func insertThing(id string) func(tx pgx.Tx) ([]event.Event, error) {
	return func(tx pgx.Tx) ([]event.Event, error) {
		if _, err := tx.Exec(context.Background(), `INSERT INTO things (id) VALUES ($1)`, id); err != nil {
			return nil, err
		}
		return []event.Event{newEvent(id)}, nil
	}
}

// outboxRow is what the table holds for one event.
type outboxRow struct {
	typ           string
	payload       []byte
	sentAt        *time.Time
	attempts      int
	nextAttemptAt time.Time
	lastError     *string
}

func getRow(t *testing.T, pool *pgxpool.Pool, id string) (outboxRow, bool) {
	t.Helper()
	var r outboxRow
	err := pool.QueryRow(testContext(t), `
		SELECT type, event, sent_at, attempts, next_attempt_at, last_error
		FROM outbox WHERE source = $1 AND id = $2`, testSource, id).
		Scan(&r.typ, &r.payload, &r.sentAt, &r.attempts, &r.nextAttemptAt, &r.lastError)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return r, true
}

// waitRow waits, up to 10 s, until the row of id satisfies ok, and
// returns it as it was last read.
func waitRow(t *testing.T, pool *pgxpool.Pool, id string, ok func(outboxRow) bool) outboxRow {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, found := getRow(t, pool, id)
		if found && ok(r) || time.Now().After(deadline) {
			return r
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func count(t *testing.T, pool *pgxpool.Pool, query string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(testContext(t), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// sweepUntil sweeps until want events were sent in total, or fails after a
// bounded wait.
func sweepUntil(t *testing.T, p *outbox.Publisher, want int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	total := 0
	for total < want {
		n, err := p.Sweep(testContext(t), 0)
		if err != nil {
			t.Fatalf("Sweep: %v", err)
		}
		total += n
		if time.Now().After(deadline) {
			t.Fatalf("sweeps sent %d events in 15s, want %d", total, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if total != want {
		t.Fatalf("sweeps sent %d events, want %d", total, want)
	}
}

func ids(events []event.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID()
	}
	return out
}

func thingIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("thing-%03d", i)
	}
	return out
}
