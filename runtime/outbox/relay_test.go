package outbox_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/outbox"
)

// gatedSink records events in arrival order; an event whose id is in hold
// waits (answering nothing) until release is called for it, and an event
// whose id is in fail is refused with 503 that many times first.
type gatedSink struct {
	srv *httptest.Server

	mu       sync.Mutex
	arrived  []string // ids, in the order requests came in
	accepted []string
	hold     map[string]chan struct{}
	fail     map[string]int
}

func newGatedSink(t *testing.T) *gatedSink {
	s := &gatedSink{hold: map[string]chan struct{}{}, fail: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.arrived = append(s.arrived, e.ID())
		gate := s.hold[e.ID()]
		refuse := s.fail[e.ID()] > 0
		if refuse {
			s.fail[e.ID()]--
		}
		s.mu.Unlock()
		if gate != nil {
			<-gate
		}
		if refuse {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		s.mu.Lock()
		s.accepted = append(s.accepted, e.ID())
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *gatedSink) holdID(id string) (release func()) {
	gate := make(chan struct{})
	s.mu.Lock()
	s.hold[id] = gate
	s.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(gate) }) }
}

func (s *gatedSink) has(list *[]string, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(*list, id)
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func subjectEvent(id, subject string) event.Event {
	e := newEvent(id)
	e.SetSubject(subject)
	return e
}

func emit(events ...event.Event) func(pgx.Tx) ([]event.Event, error) {
	return func(pgx.Tx) ([]event.Event, error) { return events, nil }
}

// TestTransactAnswersAtCommitAndTheRelaySends: a request never waits for
// the broker. With the sink stuck, Transact still returns at once, and the
// event goes out when the sink answers.
func TestTransactAnswersAtCommitAndTheRelaySends(t *testing.T) {
	pool := setup(t)
	s := newGatedSink(t)
	release := s.holdID("e1")
	defer release()
	p, _ := newPublisher(t, pool, s.srv.URL)
	ctx := testContext(t)

	start := time.Now()
	if err := p.Transact(ctx, emit(subjectEvent("e1", "x"))); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Transact took %v with the sink stuck: it waited for the broker", d)
	}
	waitFor(t, "the relay to send e1", func() bool { return s.has(&s.arrived, "e1") })
	release()
	waitFor(t, "e1 to be marked sent", func() bool {
		r, _ := getRow(t, pool, "e1")
		return r.sentAt != nil
	})
}

// TestOneSubjectsEventsStayInOrderAcrossPublishers: two processes emit
// events about one subject. While the first one's event is in flight, the
// second process's relay sends its other subjects' events but holds back
// the later event of that subject until the earlier one is taken.
func TestOneSubjectsEventsStayInOrderAcrossPublishers(t *testing.T) {
	pool := setup(t)
	s := newGatedSink(t)
	release := s.holdID("x1")
	defer release()
	a, _ := newPublisher(t, pool, s.srv.URL)
	b, _ := newPublisher(t, pool, s.srv.URL)
	ctx := testContext(t)

	if err := a.Transact(ctx, emit(subjectEvent("x1", "x"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "x1 in flight", func() bool { return s.has(&s.arrived, "x1") })
	if err := b.Transact(ctx, emit(subjectEvent("x2", "x"), subjectEvent("y1", "y"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "y1, another subject's event, to be sent", func() bool { return s.has(&s.accepted, "y1") })
	b.Flush(ctx)
	time.Sleep(100 * time.Millisecond)
	if s.has(&s.arrived, "x2") {
		t.Fatal("x2 was sent while x1, an earlier event of its subject, was still in flight")
	}
	release()
	waitFor(t, "x2 after x1", func() bool { return s.has(&s.accepted, "x2") })
	s.mu.Lock()
	defer s.mu.Unlock()
	if i1, i2 := slices.Index(s.accepted, "x1"), slices.Index(s.accepted, "x2"); i1 < 0 || i1 > i2 {
		t.Errorf("accepted %v: x1 must come before x2", s.accepted)
	}
}

// TestAFailedEventHoldsBackItsSubject: when the broker refuses an event,
// the later events of its subject wait for it; other subjects go on.
func TestAFailedEventHoldsBackItsSubject(t *testing.T) {
	pool := setup(t)
	s := newGatedSink(t)
	s.fail["x1"] = 2
	p, _ := newPublisher(t, pool, s.srv.URL)
	ctx := testContext(t)

	if err := p.Transact(ctx, emit(subjectEvent("x1", "x"), subjectEvent("x2", "x"), subjectEvent("y1", "y"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every event taken", func() bool {
		return s.has(&s.accepted, "x1") && s.has(&s.accepted, "x2") && s.has(&s.accepted, "y1")
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	firstX2 := slices.Index(s.arrived, "x2")
	if acceptedX1 := slices.Index(s.accepted, "x1"); acceptedX1 > slices.Index(s.accepted, "x2") {
		t.Errorf("accepted %v: x2 before x1", s.accepted)
	}
	attemptsX1 := 0
	for _, id := range s.arrived[:firstX2] {
		if id == "x1" {
			attemptsX1++
		}
	}
	if attemptsX1 != 3 {
		t.Errorf("arrivals %v: x2 was tried before x1's third (first successful) attempt", s.arrived)
	}
}

// TestRelayDeliversEveryCommittedEventInOrderAcrossSIGKILL: a publishing
// process is killed with SIGKILL while its relay is sending. Every event
// it committed still reaches the broker at least once (the sweep resends
// what it had taken once the lease ran out), and each subject's events
// first arrive in the order they were committed.
func TestRelayDeliversEveryCommittedEventInOrderAcrossSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a publishing process")
	}
	pool := setup(t)
	s := newGatedSink(t)
	ctx := testContext(t)

	child := exec.Command(os.Args[0])
	child.Env = append(os.Environ(),
		"SKYFLOW_OUTBOX_CHILD_DATABASE_URL="+databaseURL(t, pool),
		"SKYFLOW_OUTBOX_CHILD_SINK="+s.srv.URL)
	child.Stdout, child.Stderr = os.Stderr, os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	waitFor(t, "the child to publish 150 events", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.accepted) >= 150
	})
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()

	var committed int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&committed); err != nil {
		t.Fatal(err)
	}
	// The sweep (here with the child's lease of 1 s) picks up what the
	// killed relay held and what it never reached.
	sweeper, _ := newPublisher(t, pool, s.srv.URL, outbox.WithoutRelay(), outbox.WithLease(time.Second))
	waitFor(t, "the sweep to send everything", func() bool {
		if _, err := sweeper.Sweep(ctx, 0); err != nil {
			t.Fatal(err)
		}
		return count(t, pool, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`) == 0
	})

	rows, err := pool.Query(ctx, `SELECT id, subject FROM outbox ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ ID, Subject string }
	all, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	firstArrival := map[string]int{}
	for i, id := range s.accepted {
		if _, ok := firstArrival[id]; !ok {
			firstArrival[id] = i
		}
	}
	last := map[string]int{} // subject → first-arrival position of its latest event
	for _, r := range all {
		pos, ok := firstArrival[r.ID]
		if !ok {
			t.Errorf("committed event %s never reached the broker", r.ID)
			continue
		}
		if prev, seen := last[r.Subject]; seen && pos < prev {
			t.Errorf("subject %s: %s arrived before an event committed earlier", r.Subject, r.ID)
		}
		last[r.Subject] = pos
	}
	t.Logf("%d events committed before the SIGKILL, %d deliveries (%d duplicates)",
		committed, len(s.accepted), len(s.accepted)-len(firstArrival))
}

// TestMain runs the publishing process of the SIGKILL test when asked.
func TestMain(m *testing.M) {
	if url := os.Getenv("SKYFLOW_OUTBOX_CHILD_DATABASE_URL"); url != "" {
		publishUntilKilled(url, os.Getenv("SKYFLOW_OUTBOX_CHILD_SINK"))
		return
	}
	os.Exit(m.Run())
}

// publishUntilKilled is the process the SIGKILL test kills: it commits
// events about a dozen subjects as fast as it can until it dies.
func publishUntilKilled(url, sink string) {
	ctx := context.Background()
	pool, err := db.Open(ctx, url, db.WithMaxConns(8))
	if err != nil {
		panic(err)
	}
	p, err := outbox.NewPublisher(pool, sink, outbox.WithLease(time.Second))
	if err != nil {
		panic(err)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("w%d-%06d", w, i)
				// Each writer owns subjects of its own, so commit order is
				// each subject's order, as row locks make it in a function.
				subject := fmt.Sprintf("s%d-%d", w, i%3)
				if err := p.Transact(ctx, emit(subjectEvent(id, subject))); err != nil {
					panic(err)
				}
			}
		})
	}
	wg.Wait()
}

// databaseURL is the connection string of pool's database.
func databaseURL(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	return pool.Config().ConnConfig.ConnString()
}

// TestAClaimStaysCheapWithABacklogAndStaleStatistics: the outbox changes
// faster than autovacuum analyzes it, so a claim must not depend on the
// planner knowing the backlog. With statistics that say "all sent", 3,000
// rows in flight ahead and 3,000 due behind them (half with subjects), a
// claim still takes its batch in well under a second (the join-based
// claim this replaced ran for minutes here).
func TestAClaimStaysCheapWithABacklogAndStaleStatistics(t *testing.T) {
	pool := setup(t)
	ctx := testContext(t)
	for _, q := range []string{
		`ALTER TABLE outbox SET (autovacuum_enabled = false)`,
		// What the statistics last saw: a busy hour's sent events.
		`INSERT INTO outbox (source, id, type, event, sent_at)
		 SELECT 'sent', 's' || i, 't', '{}', now() FROM generate_series(1, 30000) i`,
		`ANALYZE outbox`,
		// In flight: leased by some relay for another minute.
		`INSERT INTO outbox (source, id, type, subject, event, next_attempt_at)
		 SELECT 'backlog', 'f' || i, 't', CASE WHEN i % 2 = 0 THEN 's' || (i % 100) END, '{}', now() + interval '1 minute'
		 FROM generate_series(1, 3000) i`,
		// Due, after them.
		`INSERT INTO outbox (source, id, type, subject, event)
		 SELECT 'backlog', 'd' || i, 't', CASE WHEN i % 2 = 0 THEN 'z' || (i % 100) END, '{}'
		 FROM generate_series(1, 3000) i`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	p, _ := newPublisher(t, pool, "http://127.0.0.1:1", outbox.WithoutRelay())

	claimCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	n, err := p.Claim(claimCtx)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("a claim with 6,000 unsent rows, after %v: %v", took, err)
	}
	if n == 0 {
		t.Fatal("the claim took no row; 3,000 are due")
	}
	if took > time.Second {
		t.Errorf("a claim of %d rows took %v with 6,000 unsent; want well under a second", n, took)
	}
	t.Logf("claimed %d rows in %v", n, took)
}
