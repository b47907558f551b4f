package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrClosed is returned by [Writer.Append] once the writer is closed.
var ErrClosed = errors.New("audit: the writer is closed")

// Writer appends entries for many concurrent callers with one transaction
// per group of them (group commit). An append's cost is nearly all in the
// chain head's lock and the durable commit, both paid once per
// transaction, so callers that wait at the same moment share them: while
// one group commits, the next gathers. A caller that comes alone is not
// held back to wait for company. A Writer holds one database connection at
// a time, and the chain is in the order of its transactions.
type Writer struct {
	pool *pgxpool.Pool
	opts WriterOptions

	mu     sync.Mutex
	queue  []*request
	closed bool

	wake    chan struct{} // something was queued; capacity 1
	done    chan struct{} // closed by Close
	stopped chan struct{} // closed when run returns
	abort   context.CancelFunc
	base    context.Context // the transactions' parent; canceled when Close gives up waiting
}

// WriterOptions tune a [Writer]; the zero value is usable.
type WriterOptions struct {
	// MaxBatch bounds the entries of one transaction (default 500), which
	// bounds its statements' parameters and how long it holds the head.
	MaxBatch int
	// Timeout bounds one transaction (default 30s).
	Timeout time.Duration
	// Linger is the most the writer waits, after a transaction of several
	// entries, for their callers to hand in their next ones before it
	// starts the next transaction (default 2ms, and never more than a
	// quarter of the transaction just written; negative: never). See
	// [Writer.gather].
	Linger time.Duration
	// OnBatch, when set, is called after each transaction with the number
	// of entries in it, how many were appended (the rest were duplicates),
	// how long it took, and its error.
	OnBatch func(size, appended int, took time.Duration, err error)
}

// request states: a waiting request can still be abandoned by its caller;
// once the writer has taken it into a batch, only the batch decides.
const (
	waiting int32 = iota
	taken
	abandoned
)

type request struct {
	entry  Entry
	state  atomic.Int32
	result chan outcome // capacity 1: the writer never blocks on a caller
}

type outcome struct {
	r   Result
	err error
}

// NewWriter starts a writer on pool. Close stops it.
func NewWriter(pool *pgxpool.Pool, opts WriterOptions) *Writer {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 500
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Linger == 0 {
		opts.Linger = 2 * time.Millisecond
	}
	w := &Writer{
		pool:    pool,
		opts:    opts,
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	w.base, w.abort = context.WithCancel(context.Background())
	go w.run()
	return w
}

// Append adds e to the log and returns once the transaction that holds it
// has committed; a duplicate (same source and id) succeeds and appends
// nothing. An entry that fails [Entry.Validate] is refused at once, alone,
// so it never fails the group it would have joined.
//
// When ctx ends before the writer has taken the entry into a transaction,
// it is never appended and Append returns ctx.Err(). When ctx ends later,
// Append also returns ctx.Err(), but the entry may still be committed: the
// caller does not know, and a retry is a harmless duplicate.
func (w *Writer) Append(ctx context.Context, e Entry) (Result, error) {
	if err := e.Validate(); err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	req := &request{entry: e, result: make(chan outcome, 1)}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return Result{}, ErrClosed
	}
	w.queue = append(w.queue, req)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default: // the writer is already due to look at the queue
	}
	select {
	case o := <-req.result:
		return o.r, o.err
	case <-ctx.Done():
		if req.state.CompareAndSwap(waiting, abandoned) {
			return Result{}, ctx.Err()
		}
		// Taken: the outcome may be there already.
		select {
		case o := <-req.result:
			return o.r, o.err
		default:
			return Result{}, ctx.Err()
		}
	}
}

// Waiting returns how many entries wait for a transaction to take them.
func (w *Writer) Waiting() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, req := range w.queue {
		if req.state.Load() == waiting {
			n++
		}
	}
	return n
}

// Close fails the entries not yet taken with ErrClosed, lets the
// transaction under way finish, and returns when the writer has stopped. If
// ctx ends first, that transaction is canceled (its callers get an error,
// and nothing of it is committed).
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.stopped
		return nil
	}
	w.closed = true
	pending := w.queue
	w.queue = nil
	w.mu.Unlock()
	for _, req := range pending {
		if req.state.CompareAndSwap(waiting, taken) {
			req.result <- outcome{err: ErrClosed}
		}
	}
	close(w.done)
	select {
	case <-w.stopped:
	case <-ctx.Done():
		w.abort()
		<-w.stopped
	}
	w.abort()
	return nil
}

// run is the one goroutine that writes: a batch at a time, each taking
// every entry waiting when it starts.
func (w *Writer) run() {
	defer close(w.stopped)
	for {
		select {
		case <-w.wake:
		case <-w.done:
			return
		}
		for batch := w.take(); len(batch) > 0; batch = w.take() {
			took := w.write(batch)
			if len(batch) > 1 {
				w.gather(len(batch), took)
			}
		}
	}
}

// gather waits, for a moment, until the callers just answered have handed
// in their next entries, so that they join the next transaction.
//
// Under load, callers are a bounded crowd (the broker's deliveries in
// flight) that come back as soon as they are answered. Taking only what
// waits the moment a transaction ends would split the crowd in two halves
// that take turns, one committing while the other waits, and every
// transaction would carry half of what it could. Waiting up to Linger (a
// fraction of a commit) for the answered callers keeps them together. A
// lone caller never waits for this: it follows a transaction of one.
func (w *Writer) gather(answered int, took time.Duration) {
	linger := min(w.opts.Linger, took/4)
	if linger <= 0 {
		return
	}
	want := min(w.Waiting()+answered, w.opts.MaxBatch)
	timer := time.NewTimer(linger)
	defer timer.Stop()
	for w.Waiting() < want {
		select {
		case <-w.wake:
		case <-timer.C:
			return
		case <-w.done:
			return
		}
	}
}

// take removes up to MaxBatch waiting requests from the queue, skipping
// those their callers abandoned.
func (w *Writer) take() []*request {
	w.mu.Lock()
	defer w.mu.Unlock()
	var batch []*request
	n := 0
	for n < len(w.queue) && len(batch) < w.opts.MaxBatch {
		req := w.queue[n]
		n++
		if req.state.CompareAndSwap(waiting, taken) {
			batch = append(batch, req)
		}
	}
	clear(w.queue[:n]) // no stale pointers kept alive by the backing array
	w.queue = w.queue[n:]
	return batch
}

// transact appends entries in a transaction of its own on a connection of
// the pool.
func (w *Writer) transact(ctx context.Context, entries []Entry) ([]Result, error) {
	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer conn.Release() // the pool closes a connection left in a transaction
	results, err := appendBatch(ctx, conn, entries, true)
	if err != nil && conn.Conn().PgConn().TxStatus() != 'I' {
		// A failed statement leaves the transaction open: end it, so the
		// connection goes back to the pool usable.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		conn.Exec(rctx, `ROLLBACK`)
	}
	return results, err
}

// write appends a batch in one transaction and answers every request in
// it: each its own result, or all the same error. It returns how long that
// took.
func (w *Writer) write(batch []*request) time.Duration {
	start := time.Now()
	entries := make([]Entry, len(batch))
	for i, req := range batch {
		entries[i] = req.entry
	}
	// The transaction is the batch's, not any one caller's: a caller that
	// gives up must not fail the others.
	ctx, cancel := context.WithTimeout(w.base, w.opts.Timeout)
	defer cancel()
	results, err := w.transact(ctx, entries)
	appended := 0
	for i, req := range batch {
		if err != nil {
			req.result <- outcome{err: err}
			continue
		}
		if results[i].Appended {
			appended++
		}
		req.result <- outcome{r: results[i]}
	}
	took := time.Since(start)
	if w.opts.OnBatch != nil {
		w.opts.OnBatch(len(batch), appended, took, err)
	}
	return took
}
