package outbox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	cecontext "github.com/cloudevents/sdk-go/v2/context"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// recordTimeout bounds writing send results, which happens even when the
// caller's context has ended.
const recordTimeout = 10 * time.Second

// quiet replaces the SDK's fallback logger, which would log at will.
var quiet = zap.NewNop().Sugar()

// errUndecodable marks a stored event that no longer decodes.
var errUndecodable = errors.New("stored event does not decode")

// Failed sends are recorded in one of two ways. A relay's send leaves the
// row due at once: the relay retries it after its own back-off. A failed resend by the sweep backs off: base * 2^(attempts-1), within
// ±20% so that rows failed together spread out, and at most max.
const (
	dueNow = `
		UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = now()
		WHERE seq = $1 AND sent_at IS NULL`
	backOff = `
		UPDATE outbox SET
			attempts = attempts + 1,
			last_error = $2,
			next_attempt_at = now() + least(
				$3::float8 * power(2, least(greatest(attempts - 1, 0), 30)) * (0.8 + 0.4 * random()),
				$4::float8) * interval '1 millisecond'
		WHERE seq = $1 AND sent_at IS NULL`
)

// deliver sends recs, stopping when ctx ends, and records in the outbox
// what became of each: sent, failed, or not tried (due again at once).
// byResend says the sweep is sending. It returns how many the sink took,
// and an error naming those it did not.
//
// Events about one subject (one record, one vault, …) are sent one after
// another in their order, and a failure holds back the rest of that
// subject's events; events about different subjects are sent at the same
// time, up to the concurrency option, so that a round of many requests'
// events does not wait for each POST in turn.
func (p *Publisher) deliver(ctx context.Context, recs []record, byResend bool) (sent int, failed error) {
	if len(recs) == 0 {
		return 0, nil
	}
	results := p.sendAll(ctx, recs)
	b := &pgx.Batch{}
	var sentSeqs, untried []int64
	var errs []error
	now := time.Now()
	for i, r := range recs {
		err := results[i]
		switch {
		case err == nil:
			sentSeqs = append(sentSeqs, r.seq)
			p.metrics.sent(r.typ, byResend, now.Sub(r.created))
		case errors.Is(err, errNotTried):
			untried = append(untried, r.seq)
		default:
			why := describe(err)
			p.metrics.failed(r.typ)
			p.opts.logger.LogAttrs(ctx, slog.LevelWarn, "outbox: send failed, left for a retry",
				slog.String("source", r.source), slog.String("id", r.id), slog.String("type", r.typ), slog.String("error", why))
			errs = append(errs, fmt.Errorf("outbox: send %q from %q: %s", r.id, r.source, why))
			if byResend {
				b.Queue(backOff, r.seq, why, millis(p.opts.backoffBase), millis(p.opts.backoffMax))
			} else {
				b.Queue(dueNow, r.seq, why)
			}
		}
	}
	if len(sentSeqs) > 0 {
		b.Queue(`
			UPDATE outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL
			WHERE seq = ANY($1) AND sent_at IS NULL`, sentSeqs)
	}
	if len(untried) > 0 {
		b.Queue(`UPDATE outbox SET next_attempt_at = now() WHERE seq = ANY($1) AND sent_at IS NULL`, untried)
	}

	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := p.record(rctx, b); err != nil {
		// The sink has the events; unmarked ones are sent again later and
		// dropped by consumers as duplicates.
		p.opts.logger.LogAttrs(ctx, slog.LevelWarn, "outbox: recording send results failed", slog.String("error", err.Error()))
		errs = append(errs, fmt.Errorf("outbox: record send results: %w", err))
	}
	return len(sentSeqs), errors.Join(errs...)
}

// errNotTried marks an event not sent because ctx ended first, or because
// an earlier event of its subject failed.
var errNotTried = errors.New("not tried")

// sendAll sends recs, each subject's in order in a lane of its own, and
// returns each one's result. An event without a subject has a lane alone.
func (p *Publisher) sendAll(ctx context.Context, recs []record) []error {
	results := make([]error, len(recs))
	var lanes [][]int
	bySubject := map[string]int{}
	for i, r := range recs {
		lane, ok := bySubject[r.subject]
		if !ok || r.subject == "" {
			lane = len(lanes)
			bySubject[r.subject] = lane
			lanes = append(lanes, nil)
		}
		lanes[lane] = append(lanes[lane], i)
	}
	run := func(lane []int) {
		failed := false
		for _, i := range lane {
			if failed || ctx.Err() != nil {
				results[i] = errNotTried
				continue
			}
			results[i] = p.send(ctx, recs[i])
			failed = results[i] != nil
		}
	}
	if len(lanes) == 1 || p.opts.concurrency <= 1 {
		for _, lane := range lanes {
			run(lane)
		}
		return results
	}
	slots := make(chan struct{}, p.opts.concurrency)
	var wg sync.WaitGroup
	for _, lane := range lanes {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			run(lane)
		}()
	}
	wg.Wait()
	return results
}

// record writes the send results in one transaction that does not wait
// for its WAL flush: losing it in a crash only means the events are sent
// again, which consumers drop as duplicates, and not waiting halves the
// cost of a request that emits events.
func (p *Publisher) record(ctx context.Context, b *pgx.Batch) error {
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			return err
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

// send POSTs one stored event to the sink in binary content mode.
func (p *Publisher) send(ctx context.Context, r record) error {
	e, err := decode(r.payload)
	if err != nil {
		return errUndecodable
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.requestTimeout)
	defer cancel()
	ctx = binding.WithForceBinary(cecontext.WithLogger(ctx, quiet))
	if res := p.client.Send(ctx, e); !protocol.IsACK(res) {
		return res
	}
	return nil
}

// describe reduces a send error to a short text fit for logs and last_error:
// a status code or a transport condition. The SDK's errors quote the sink's
// response body, which might echo the event, so they are never kept whole.
func describe(err error) string {
	var res *cehttp.Result
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &res):
		return fmt.Sprintf("http status %d", res.StatusCode)
	case errors.Is(err, errUndecodable):
		return errUndecodable.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.As(err, &dnsErr):
		return "dns lookup failed"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	default:
		return "transport error"
	}
}

// scanRecords reads claimed rows of (seq, source, id, type, subject,
// event, created) and returns the records in the order they were added.
func scanRecords(rows pgx.Rows) ([]record, error) {
	var out []record
	var r record
	_, err := pgx.ForEachRow(rows, []any{&r.seq, &r.source, &r.id, &r.typ, &r.subject, &r.payload, &r.created}, func() error {
		out = append(out, r)
		r = record{}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: read rows: %w", err)
	}
	slices.SortFunc(out, func(a, b record) int { return cmp.Compare(a.seq, b.seq) })
	return out, nil
}

// millis renders d for SQL, which multiplies it by interval '1 millisecond'.
func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
