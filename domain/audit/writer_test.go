package audit_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/domain/audit"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

func entry(id string) audit.Entry {
	return audit.FromEvent(readEvent(id), time.Now())
}

// batches records what a writer's transactions held.
type batches struct {
	mu    sync.Mutex
	sizes []int
	errs  []error
}

func (b *batches) observe(size, appended int, took time.Duration, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sizes = append(b.sizes, size)
	b.errs = append(b.errs, err)
}

func (b *batches) snapshot() ([]int, []error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.sizes...), append([]error(nil), b.errs...)
}

func newWriter(t *testing.T, pool *pgxpool.Pool) (*audit.Writer, *batches) {
	t.Helper()
	var b batches
	w := audit.NewWriter(pool, audit.WriterOptions{OnBatch: b.observe})
	t.Cleanup(func() { w.Close(context.Background()) })
	return w, &b
}

// holdHead takes the chain head's lock in a transaction of its own, as a
// slow append would, and returns what releases it.
func holdHead(t *testing.T, pool *pgxpool.Pool) (release func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM audit_chain_head FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { tx.Rollback(ctx) }) }
	t.Cleanup(release)
	return release
}

// waitFor polls cond until it holds, for up to 30 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// blockedOnHead reports whether some session of this database waits for a
// lock: the writer's transaction, behind holdHead.
func blockedOnHead(t *testing.T, pool *pgxpool.Pool) func() bool {
	return func() bool {
		var n int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
}

type appendResult struct {
	r   audit.Result
	err error
}

func appendAsync(w *audit.Writer, ctx context.Context, e audit.Entry) <-chan appendResult {
	c := make(chan appendResult, 1)
	go func() {
		r, err := w.Append(ctx, e)
		c <- appendResult{r, err}
	}()
	return c
}

// logged returns the event ids in the log in seq order and checks that seq
// runs 1, 2, 3… without a gap.
func logged(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT seq, event_id FROM audit_log ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	var want int64 = 1
	for rows.Next() {
		var seq int64
		var id string
		if err := rows.Scan(&seq, &id); err != nil {
			t.Fatal(err)
		}
		if seq != want {
			t.Fatalf("seq %d follows %d: the log has a gap", seq, want-1)
		}
		want++
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

func verified(t *testing.T, pool *pgxpool.Pool, want int64) {
	t.Helper()
	checked, broken, err := audit.Verify(context.Background(), pool)
	if err != nil || broken != nil || checked != want {
		t.Fatalf("Verify = %d, %v, %v; want %d intact", checked, broken, err, want)
	}
}

// 64 callers hand in 2,000 events, a quarter of them delivered two or three
// times (some copies at the same moment, some apart): every event is in the
// log once, seq has no gap, the chain verifies, and the callers shared
// transactions.
func TestWriterKeepsTheChainUnderConcurrentRedeliveries(t *testing.T) {
	pool := testenv.Pool(t)
	w, b := newWriter(t, pool)
	ctx := context.Background()

	const events, callers = 2000, 64
	type delivery struct {
		id     string
		copies int  // deliveries of this event
		atOnce bool // all copies at the same moment
	}
	var (
		work       []delivery
		deliveries int
	)
	for i := range events {
		d := delivery{id: fmt.Sprintf("e%04d", i), copies: 1}
		if i%4 == 0 {
			d.copies = 2 + i/4%2
			d.atOnce = i%8 == 0
		}
		deliveries += d.copies
		if d.atOnce {
			work = append(work, d)
			continue
		}
		for range d.copies { // apart: each copy is its own piece of work
			work = append(work, delivery{id: d.id, copies: 1})
		}
	}
	rand.Shuffle(len(work), func(i, j int) { work[i], work[j] = work[j], work[i] })

	var (
		mu       sync.Mutex
		appended = map[string]int{}
		seqs     = map[int64]string{}
		failures atomic.Int64
	)
	send := func(id string) {
		r, err := w.Append(ctx, entry(id))
		if err != nil {
			failures.Add(1)
			t.Errorf("Append %s: %v", id, err)
			return
		}
		if !r.Appended {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		appended[id]++
		if other, ok := seqs[r.Seq]; ok {
			t.Errorf("seq %d given to %s and %s", r.Seq, other, id)
		}
		seqs[r.Seq] = id
	}
	queue := make(chan delivery)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for d := range queue {
				if !d.atOnce {
					send(d.id)
					continue
				}
				gate := make(chan struct{})
				var copies sync.WaitGroup
				for range d.copies {
					copies.Go(func() { <-gate; send(d.id) })
				}
				close(gate)
				copies.Wait()
			}
		})
	}
	for _, d := range work {
		queue <- d
	}
	close(queue)
	wg.Wait()
	if failures.Load() > 0 {
		t.FailNow()
	}

	if len(appended) != events {
		t.Fatalf("%d events appended, want %d", len(appended), events)
	}
	for id, n := range appended {
		if n != 1 {
			t.Fatalf("%s appended %d times", id, n)
		}
	}
	ids := logged(t, pool)
	if len(ids) != events {
		t.Fatalf("%d rows in the log, want %d", len(ids), events)
	}
	for seq, id := range seqs {
		if ids[seq-1] != id {
			t.Fatalf("seq %d was answered for %s but holds %s", seq, id, ids[seq-1])
		}
	}
	verified(t, pool, events)

	sizes, errs := b.snapshot()
	handed, largest := 0, 0
	for i, n := range sizes {
		if errs[i] != nil {
			t.Fatalf("a batch failed: %v", errs[i])
		}
		handed += n
		largest = max(largest, n)
	}
	if handed != deliveries {
		t.Fatalf("batches held %d deliveries, want %d", handed, deliveries)
	}
	t.Logf("%d deliveries in %d transactions, largest %d", deliveries, len(sizes), largest)
	if len(sizes) > deliveries/2 {
		t.Fatalf("%d transactions for %d concurrent deliveries: the writer does not group them", len(sizes), deliveries)
	}
}

// One entry that violates a constraint fails its whole transaction: every
// caller in it gets the error, nothing of it is committed, and the next
// transaction works and continues the chain without a gap.
func TestWriterFailedBatchCommitsNothingAndFailsEveryWaiter(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `ALTER TABLE audit_log ADD CONSTRAINT test_poison CHECK (event_id <> 'poison')`); err != nil {
		t.Fatal(err)
	}
	w, b := newWriter(t, pool)

	release := holdHead(t, pool)
	first := appendAsync(w, ctx, entry("first"))
	waitFor(t, "the first batch waits for the head", blockedOnHead(t, pool))
	var group []<-chan appendResult
	for _, id := range []string{"b", "c", "poison", "d"} {
		group = append(group, appendAsync(w, ctx, entry(id)))
	}
	waitFor(t, "four entries wait", func() bool { return w.Waiting() == 4 })
	release()

	if r := <-first; r.err != nil || !r.r.Appended || r.r.Seq != 1 {
		t.Fatalf("first: %+v, %v", r.r, r.err)
	}
	for i, c := range group {
		r := <-c
		var pgErr *pgconn.PgError
		if !errors.As(r.err, &pgErr) || pgErr.ConstraintName != "test_poison" || r.r.Appended {
			t.Fatalf("waiter %d: %+v, %v; want the constraint's error", i, r.r, r.err)
		}
	}
	if sizes, _ := b.snapshot(); len(sizes) != 2 || sizes[1] != 4 {
		t.Fatalf("batch sizes %v, want [1 4]", sizes)
	}
	if ids := logged(t, pool); strings.Join(ids, ",") != "first" {
		t.Fatalf("log holds %v, want only first", ids)
	}
	verified(t, pool, 1)

	// The broker redelivers; without the poison the same entries commit,
	// right after the first.
	var next []<-chan appendResult
	for _, id := range []string{"b", "c", "d"} {
		next = append(next, appendAsync(w, ctx, entry(id)))
	}
	for _, c := range next {
		if r := <-c; r.err != nil || !r.r.Appended {
			t.Fatalf("redelivery: %+v, %v", r.r, r.err)
		}
	}
	if ids := logged(t, pool); len(ids) != 4 {
		t.Fatalf("log holds %v", ids)
	}
	verified(t, pool, 4)
}

// Closing while a transaction waits cancels it once Close's context ends:
// its caller gets an error, nothing is committed, later appends are
// refused.
func TestWriterCloseCancelsTheTransactionUnderWay(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	w, _ := newWriter(t, pool)
	holdHead(t, pool)
	stuck := appendAsync(w, ctx, entry("stuck"))
	waitFor(t, "the batch waits for the head", blockedOnHead(t, pool))
	closeCtx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	w.Close(closeCtx)
	if r := <-stuck; r.err == nil || r.r.Appended {
		t.Fatalf("stuck: %+v, %v; want an error", r.r, r.err)
	}
	if _, err := w.Append(ctx, entry("late")); !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rows (%v), want none", n, err)
	}
}

// A caller whose context ends while its entry waits gets ctx.Err(), and the
// entry is never appended.
func TestWriterDropsAWaiterWhoseContextEnded(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	w, b := newWriter(t, pool)
	release := holdHead(t, pool)
	first := appendAsync(w, ctx, entry("first"))
	waitFor(t, "the first batch waits for the head", blockedOnHead(t, pool))

	gone, cancel := context.WithCancel(ctx)
	dropped := appendAsync(w, gone, entry("dropped"))
	waitFor(t, "the entry waits", func() bool { return w.Waiting() == 1 })
	cancel()
	if r := <-dropped; !errors.Is(r.err, context.Canceled) || r.r.Appended {
		t.Fatalf("dropped: %+v, %v; want context.Canceled", r.r, r.err)
	}
	if n := w.Waiting(); n != 0 {
		t.Fatalf("%d entries still wait", n)
	}
	release()
	if r := <-first; r.err != nil {
		t.Fatal(r.err)
	}
	if _, err := w.Append(ctx, entry("after")); err != nil {
		t.Fatal(err)
	}
	if ids := logged(t, pool); strings.Join(ids, ",") != "first,after" {
		t.Fatalf("log holds %v, want first,after", ids)
	}
	if sizes, _ := b.snapshot(); len(sizes) != 2 {
		t.Fatalf("batch sizes %v: the dropped entry made a transaction", sizes)
	}
	verified(t, pool, 2)
}

// AppendBatch drops duplicates of the log and of the batch itself, and
// gives seqs in the order of the batch.
func TestAppendBatchDropsDuplicatesInTheLogAndInTheBatch(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	appendAll(t, pool, readEvent("b"))
	var rs []audit.Result
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var err error
		rs, err = audit.AppendBatch(ctx, tx, []audit.Entry{entry("a"), entry("b"), entry("a"), entry("c")})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []audit.Result{{Seq: 2, Appended: true}, {}, {}, {Seq: 3, Appended: true}}
	if fmt.Sprint(rs) != fmt.Sprint(want) {
		t.Fatalf("results %v, want %v", rs, want)
	}
	// Duplicates only: nothing written, the head unmoved.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		rs, err = audit.AppendBatch(ctx, tx, []audit.Entry{entry("c"), entry("a")})
		return err
	})
	if err != nil || rs[0].Appended || rs[1].Appended {
		t.Fatalf("results %v, %v", rs, err)
	}
	if ids := logged(t, pool); strings.Join(ids, ",") != "b,a,c" {
		t.Fatalf("log holds %v", ids)
	}
	verified(t, pool, 3)
}

// An entry PostgreSQL would refuse is refused alone, before it can fail a
// transaction it shares with others.
func TestEntriesTheLogCannotHoldAreRefusedAlone(t *testing.T) {
	for name, change := range map[string]func(*audit.Entry){
		"no id":                   func(e *audit.Entry) { e.ID = "" },
		"NUL in an extension":     func(e *audit.Entry) { e.Principal = "svc\x00billing" },
		"invalid UTF-8":           func(e *audit.Entry) { e.Resource = "cards\xff" },
		"NUL in data":             func(e *audit.Entry) { e.Data["action"] = "read\x00" },
		"invalid UTF-8 in a list": func(e *audit.Entry) { e.Data["record_ids"] = []any{"r1", "r\xc3"} },
		"bad time":                func(e *audit.Entry) { e.Time = "yesterday" },
	} {
		t.Run(name, func(t *testing.T) {
			e := entry("x")
			change(&e)
			if err := e.Validate(); err == nil {
				t.Fatal("Validate accepted it")
			}
			// No database: a refused entry never reaches one.
			w := audit.NewWriter(nil, audit.WriterOptions{})
			defer w.Close(context.Background())
			if _, err := w.Append(context.Background(), e); err == nil || errors.Is(err, audit.ErrClosed) {
				t.Fatalf("Append = %v, want the entry refused", err)
			}
		})
	}
	if err := entry("ok").Validate(); err != nil {
		t.Fatalf("a good entry: %v", err)
	}
}

// Functions reach PostgreSQL through PgBouncer in transaction mode, with
// pgx in the exec mode that needs (db.ThroughPooler); the writer's
// pipelines, BEGIN and COMMIT included, work there too, failures
// included.
func TestWriterInThePoolersExecMode(t *testing.T) {
	url, err := db.ThroughPooler(testenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pool, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `ALTER TABLE audit_log ADD CONSTRAINT test_poison CHECK (event_id <> 'poison')`); err != nil {
		t.Fatal(err)
	}
	w, _ := newWriter(t, pool)
	for _, id := range []string{"a", "b", "a", "poison", "c"} {
		r, err := w.Append(ctx, entry(id))
		if (id == "poison") != (err != nil) {
			t.Fatalf("Append %s = %+v, %v", id, r, err)
		}
	}
	if ids := logged(t, pool); strings.Join(ids, ",") != "a,b,c" {
		t.Fatalf("log holds %v", ids)
	}
	verified(t, pool, 3)
}
