package outbox_test

import (
	"bytes"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyflow-oss/skyflow/runtime/outbox"
)

func TestTransactWritesEventOnlyWhenCommitted(t *testing.T) {
	pool := setup(t)
	s := newSink(t)
	p, _ := newPublisher(t, pool, s.url())
	errWork := errors.New("work failed")

	err := p.Transact(testContext(t), func(tx pgx.Tx) ([]event.Event, error) {
		evs, err := insertThing("rolled-back")(tx)
		if err != nil {
			return nil, err
		}
		return evs, errWork
	})
	if !errors.Is(err, errWork) {
		t.Fatalf("Transact = %v, want the work's error", err)
	}
	err = p.Transact(testContext(t), func(tx pgx.Tx) ([]event.Event, error) {
		if _, err := insertThing("invalid-event")(tx); err != nil {
			return nil, err
		}
		return []event.Event{event.New()}, nil // no id, source or type
	})
	if err == nil {
		t.Fatal("Transact with an invalid event succeeded")
	}
	if n := count(t, pool, `SELECT count(*) FROM outbox`); n != 0 {
		t.Errorf("outbox has %d rows after failed transactions, want 0", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM things`); n != 0 {
		t.Errorf("things has %d rows after failed transactions, want 0", n)
	}
	if got := s.attemptedEvents(); len(got) != 0 {
		t.Errorf("sink got %v from failed transactions, want nothing", ids(got))
	}

	if err := p.Transact(testContext(t), insertThing("committed")); err != nil {
		t.Fatalf("Transact: %v", err)
	}
	if _, ok := getRow(t, pool, "committed"); !ok {
		t.Error("no outbox row for a committed transaction")
	}
}

func TestTransactPublishesBinaryEventAndMarksItSent(t *testing.T) {
	pool := setup(t)
	s := newSink(t)
	p, _ := newPublisher(t, pool, s.url())

	// Transact answers at commit; the relay sends right after, unasked.
	if err := p.Transact(testContext(t), insertThing("t1")); err != nil {
		t.Fatalf("Transact: %v", err)
	}
	got := s.waitAccepted(t, 1)
	if len(got) != 1 {
		t.Fatalf("sink accepted %d events, want 1", len(got))
	}
	e, want := got[0], newEvent("t1")
	if e.ID() != "t1" || e.Source() != testSource || e.Type() != testType || e.Time().IsZero() {
		t.Errorf("sink got id %q source %q type %q time %v", e.ID(), e.Source(), e.Type(), e.Time())
	}
	if e.Extensions()["partitionkey"] != "t1" {
		t.Errorf("partitionkey = %v, want t1", e.Extensions()["partitionkey"])
	}
	if !bytes.Equal(e.Data(), want.Data()) || e.DataContentType() != event.ApplicationJSON {
		t.Errorf("sink got data %s (%s), want %s", e.Data(), e.DataContentType(), want.Data())
	}
	r := waitRow(t, pool, "t1", func(r outboxRow) bool { return r.sentAt != nil })
	if r.sentAt == nil || r.attempts != 1 || r.lastError != nil || r.typ != testType {
		t.Errorf("row sent_at %v attempts %d last_error %v type %s, want sent after 1 attempt", r.sentAt, r.attempts, r.lastError, r.typ)
	}
}

func TestRejectedEventIsLeftUnsentThenSweptExactlyOnce(t *testing.T) {
	pool := setup(t)
	s := newSink(t)
	s.status.Store(http.StatusServiceUnavailable)
	p, logs := newPublisher(t, pool, s.url(), outbox.WithoutRelay())

	if err := p.Transact(testContext(t), insertThing("t1")); err != nil {
		t.Fatalf("Transact = %v, want nil: the state change committed", err)
	}
	if err := p.Flush(testContext(t)); err == nil { // the relay's round
		t.Fatal("Flush to a sink answering 503 succeeded")
	}
	r, _ := getRow(t, pool, "t1")
	if r.sentAt != nil || r.attempts != 1 || r.lastError == nil || *r.lastError != "http status 503" {
		t.Fatalf("row after a 503: sent_at %v attempts %d last_error %v, want unsent, 1, http status 503", r.sentAt, r.attempts, r.lastError)
	}
	if !strings.Contains(logs.String(), "status 503") {
		t.Errorf("the failure was not logged: %s", logs)
	}

	s.status.Store(http.StatusOK)
	sweepUntil(t, p, 1)
	if n, err := p.Sweep(testContext(t), 0); err != nil || n != 0 {
		t.Errorf("a further Sweep sent %d (%v), want 0", n, err)
	}
	if got := s.acceptedEvents(); !slices.Equal(ids(got), []string{"t1"}) {
		t.Errorf("sink accepted %v, want [t1] once", ids(got))
	}
	r, _ = getRow(t, pool, "t1")
	if r.sentAt == nil || r.attempts != 2 || r.lastError != nil {
		t.Errorf("row after sweep: sent_at %v attempts %d last_error %v, want sent after 2 attempts", r.sentAt, r.attempts, r.lastError)
	}
}

func TestResendIsTheSameEvent(t *testing.T) {
	pool := setup(t)
	s := newSink(t)
	s.status.Store(http.StatusInternalServerError)
	p, _ := newPublisher(t, pool, s.url(), outbox.WithBackoff(time.Millisecond, time.Millisecond), outbox.WithoutRelay())

	// An event without a time: Add stamps one, and every send carries it.
	if err := p.Transact(testContext(t), insertThing("t1")); err != nil {
		t.Fatal(err)
	}
	p.Flush(testContext(t))
	s.status.Store(http.StatusAccepted)
	sweepUntil(t, p, 1)

	sends := s.attemptedEvents()
	if len(sends) < 2 {
		t.Fatalf("sink saw %d sends, want at least 2", len(sends))
	}
	first := sends[0]
	for _, e := range sends[1:] {
		if e.ID() != first.ID() || e.Source() != first.Source() || !e.Time().Equal(first.Time()) || !bytes.Equal(e.Data(), first.Data()) {
			t.Errorf("resend differs: id %s time %v data %s, first id %s time %v data %s",
				e.ID(), e.Time(), e.Data(), first.ID(), first.Time(), first.Data())
		}
	}
	if first.Time().IsZero() {
		t.Error("event sent without a time")
	}
}

func TestNothingIsLostWhenTheSinkIsDownDuringTheWrite(t *testing.T) {
	pool := setup(t)
	s, startSink := newDownSink(t)
	p, logs := newPublisher(t, pool, s.url(), outbox.WithBackoff(time.Millisecond, 5*time.Millisecond), outbox.WithBatchSize(7), outbox.WithoutRelay())

	want := thingIDs(20)
	for _, id := range want {
		if err := p.Transact(testContext(t), insertThing(id)); err != nil {
			t.Fatalf("Transact(%s) with the sink down = %v, want nil", id, err)
		}
	}
	p.Flush(testContext(t))
	// The relay's round stops at the first failed batch (7 rows).
	if n := count(t, pool, `SELECT count(*) FROM outbox WHERE sent_at IS NULL AND last_error = 'connection refused'`); n != 7 {
		t.Fatalf("%d rows unsent with 'connection refused', want 7", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`); n != len(want) {
		t.Fatalf("%d rows unsent, want %d", n, len(want))
	}
	// A sweep while the sink is still down sends nothing and loses nothing.
	if n, err := p.Sweep(testContext(t), 0); err != nil || n != 0 {
		t.Fatalf("Sweep with the sink down = %d, %v; want 0, nil", n, err)
	}

	startSink()
	sweepUntil(t, p, len(want))

	got := ids(s.acceptedEvents())
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("sink accepted %v, want each of %v once", got, want)
	}
	if n := count(t, pool, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`); n != 0 {
		t.Errorf("%d rows still unsent", n)
	}
	if strings.Contains(logs.String(), secretData) {
		t.Error("logs contain event data")
	}
}

func TestConcurrentSweepsNeverSendARowTwice(t *testing.T) {
	pool := setup(t)
	s := newSink(t)
	s.delay = time.Millisecond // widen the window for overlap

	want := thingIDs(200)
	tx, err := pool.Begin(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	events := make([]event.Event, len(want))
	for i, id := range want {
		events[i] = newEvent(id)
	}
	if err := outbox.Add(testContext(t), tx, events...); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(testContext(t)); err != nil {
		t.Fatal(err)
	}

	const sweepers = 4
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
	)
	for range sweepers {
		p, _ := newPublisher(t, pool, s.url(), outbox.WithBatchSize(10))
		wg.Go(func() {
			n, err := p.Sweep(testContext(t), 0)
			if err != nil {
				t.Errorf("Sweep: %v", err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		})
	}
	wg.Wait()

	got := ids(s.attemptedEvents())
	slices.Sort(got)
	if !slices.Equal(got, want) || total != len(want) {
		t.Errorf("sweepers sent %d events (sink saw %d), want each of %d exactly once", total, len(got), len(want))
	}
}

func TestLastErrorAndLogsHoldNoEventData(t *testing.T) {
	pool := setup(t)
	s := newSink(t)
	s.status.Store(http.StatusBadRequest) // its body echoes the event data
	p, logs := newPublisher(t, pool, s.url(), outbox.WithoutRelay())

	if err := p.Transact(testContext(t), insertThing("t1")); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(testContext(t)); err == nil {
		t.Error("Flush to a sink answering 400 succeeded")
	} else if strings.Contains(err.Error(), secretData) {
		t.Errorf("Flush error holds event data: %v", err)
	}
	r, _ := getRow(t, pool, "t1")
	if r.lastError == nil || *r.lastError != "http status 400" {
		t.Errorf("last_error = %v, want exactly %q", r.lastError, "http status 400")
	}
	if strings.Contains(logs.String(), secretData) || strings.Contains(logs.String(), "rejected:") {
		t.Errorf("logs hold event data or the sink's body: %s", logs)
	}
}

func TestAddRejectsDuplicatesAndInvalidEvents(t *testing.T) {
	pool := setup(t)
	ctx := testContext(t)
	tests := []struct {
		name string
		add  func(tx pgx.Tx) error
		dup  bool
	}{
		{"same event twice in one call", func(tx pgx.Tx) error {
			return outbox.Add(ctx, tx, newEvent("a"), newEvent("a"))
		}, true},
		{"same event in two calls of one transaction", func(tx pgx.Tx) error {
			if err := outbox.Add(ctx, tx, newEvent("a")); err != nil {
				return err
			}
			return outbox.Add(ctx, tx, newEvent("a"))
		}, true},
		{"event without a type", func(tx pgx.Tx) error {
			e := newEvent("a")
			e.SetType("")
			return outbox.Add(ctx, tx, e)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			err = tt.add(tx)
			if err == nil || errors.Is(err, outbox.ErrDuplicate) != tt.dup {
				t.Errorf("Add = %v, want an error (duplicate: %v)", err, tt.dup)
			}
		})
	}
	// Same id from another source is another event.
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		other := newEvent("a")
		other.SetSource("/skyflow/other")
		return outbox.Add(ctx, tx, newEvent("a"), other)
	})
	if err != nil {
		t.Errorf("Add of one id from two sources = %v, want nil", err)
	}
}

func TestSweepLeavesRecentRowsToTheRelays(t *testing.T) {
	pool := setup(t)
	s := newSink(t)
	p, _ := newPublisher(t, pool, s.url(), outbox.WithoutRelay())
	ctx := testContext(t)
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return outbox.Add(ctx, tx, newEvent("fresh")) }); err != nil {
		t.Fatal(err)
	}
	if n, err := p.Sweep(ctx, time.Hour); err != nil || n != 0 {
		t.Errorf("Sweep(1h) of a fresh row = %d, %v; want 0, nil", n, err)
	}
	if len(s.attemptedEvents()) != 0 {
		t.Error("sweep sent a row younger than olderThan")
	}
}

func TestFailedResendsBackOffExponentially(t *testing.T) {
	pool := setup(t)
	s := newSink(t)
	s.status.Store(http.StatusServiceUnavailable)
	p, _ := newPublisher(t, pool, s.url(), outbox.WithBackoff(time.Hour, 3*time.Hour), outbox.WithoutRelay())
	ctx := testContext(t)
	delay := func() time.Duration {
		var d time.Duration
		if err := pool.QueryRow(ctx, `SELECT next_attempt_at - now() FROM outbox WHERE id = 't1'`).Scan(&d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	sweep := func() {
		t.Helper()
		if n, err := p.Sweep(ctx, 0); err != nil || n != 0 {
			t.Fatalf("Sweep = %d, %v; want 0, nil", n, err)
		}
	}

	// The relay's failed send leaves the row due at once.
	if err := p.Transact(ctx, insertThing("t1")); err != nil {
		t.Fatal(err)
	}
	p.Flush(ctx)
	if d := delay(); d > 0 {
		t.Errorf("after a failed first send the row waits %v, want due at once", d)
	}
	// The sweep's failed resend waits about base.
	sweep()
	if got := len(s.attemptedEvents()); got != 2 {
		t.Fatalf("sink saw %d sends, want 2", got)
	}
	if d := delay(); d < 45*time.Minute || d > 75*time.Minute {
		t.Errorf("retry after the first failed resend in %v, want about 1h", d)
	}
	// Not due: a sweep leaves it alone.
	sweep()
	if got := len(s.attemptedEvents()); got != 2 {
		t.Fatalf("sink saw %d sends, want 2: the row is not due", got)
	}
	// Due again: the next failure waits about twice as long.
	if _, err := pool.Exec(ctx, `UPDATE outbox SET next_attempt_at = now()`); err != nil {
		t.Fatal(err)
	}
	sweep()
	if d := delay(); d < 95*time.Minute || d > 145*time.Minute {
		t.Errorf("retry after the second failed resend in %v, want about 2h", d)
	}
	// And never more than the maximum.
	if _, err := pool.Exec(ctx, `UPDATE outbox SET next_attempt_at = now(), attempts = 20`); err != nil {
		t.Fatal(err)
	}
	sweep()
	if d := delay(); d > 3*time.Hour {
		t.Errorf("retry in %v, want at most 3h", d)
	}
}

func TestSweepDeletesSentRowsAfterRetention(t *testing.T) {
	pool := setup(t)
	s := newSink(t)
	p, _ := newPublisher(t, pool, s.url(), outbox.WithRetention(24*time.Hour))
	ctx := testContext(t)
	for _, id := range []string{"old", "recent"} {
		if err := p.Transact(ctx, insertThing(id)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE outbox SET sent_at = now() - interval '25 hours' WHERE id = 'old'`); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Sweep(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := getRow(t, pool, "old"); ok {
		t.Error("sent row past retention was kept")
	}
	if _, ok := getRow(t, pool, "recent"); !ok {
		t.Error("sent row within retention was deleted")
	}
}

func TestMetrics(t *testing.T) {
	pool := setup(t)
	s := newSink(t)
	reg := prometheus.NewRegistry()
	p, _ := newPublisher(t, pool, s.url(), outbox.WithRegisterer(reg), outbox.WithBackoff(time.Millisecond, time.Millisecond), outbox.WithoutRelay())
	// A second publisher on the same registry shares the metrics.
	if _, err := outbox.NewPublisher(pool, s.url(), outbox.WithRegisterer(reg)); err != nil {
		t.Fatalf("second publisher on one registry: %v", err)
	}
	ctx := testContext(t)

	if err := p.Transact(ctx, insertThing("ok")); err != nil {
		t.Fatal(err)
	}
	p.Flush(ctx)
	s.status.Store(http.StatusServiceUnavailable)
	for _, id := range []string{"late", "later"} {
		if err := p.Transact(ctx, insertThing(id)); err != nil {
			t.Fatal(err)
		}
	}
	p.Flush(ctx)
	time.Sleep(5 * time.Millisecond)
	if _, err := p.Sweep(ctx, time.Hour); err != nil { // sends nothing, counts pending
		t.Fatal(err)
	}
	if got := gauge(t, reg, "skyflow_outbox_pending_events"); got != 2 {
		t.Errorf("pending = %v, want 2", got)
	}
	s.status.Store(http.StatusOK)
	sweepUntil(t, p, 2)

	for name, want := range map[string]float64{
		"skyflow_outbox_events_published_total": 3,
		"skyflow_outbox_publish_failures_total": 2,
		"skyflow_outbox_sweep_resends_total":    2,
		"skyflow_outbox_pending_events":         0,
		"skyflow_outbox_publish_delay_seconds":  0, // a histogram: see below
	} {
		if name == "skyflow_outbox_publish_delay_seconds" {
			if got := histogramCount(t, reg, name); got != 3 {
				t.Errorf("%s counted %d events, want 3", name, got)
			}
			continue
		}
		if got := gauge(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// gauge returns the sum over label values of the metric name in reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range f.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		return sum
	}
	return 0
}

// histogramCount returns the sample count of the histogram name in reg.
func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}

func TestNewPublisherRejectsBadSink(t *testing.T) {
	pool := setup(t)
	for _, sink := range []string{"", "broker", "ftp://broker/", "http://"} {
		if _, err := outbox.NewPublisher(pool, sink); err == nil {
			t.Errorf("NewPublisher(%q) succeeded", sink)
		}
	}
}
