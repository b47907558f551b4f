package outbox

import (
	"context"
	"fmt"
	"time"
)

// purgeBatch bounds one delete of expired rows, so that a large backlog
// does not hold locks for long.
const purgeBatch = 1000

// Sweep sends the unsent events that are due and were written more than
// olderThan ago, and returns how many the sink took. olderThan keeps the
// sweep off events whose post-commit send may still be under way; make it
// longer than the request timeout.
//
// Rows are taken in batches with FOR UPDATE SKIP LOCKED and reserved for a
// lease, so concurrent sweeps never send the same row in one round. A failed
// send pushes the row's next attempt back exponentially. Sweep stops early
// when a whole batch failed, since the sink is likely down. It then deletes
// sent rows older than the retention period and updates the pending gauge.
func (p *Publisher) Sweep(ctx context.Context, olderThan time.Duration) (sent int, err error) {
	for {
		recs, err := p.claim(ctx, olderThan)
		if err != nil {
			return sent, err
		}
		if len(recs) == 0 {
			break
		}
		// Stop sending well before the lease ends, so that no other sweeper
		// takes a row while this one may still be sending it.
		bctx, cancel := context.WithTimeout(ctx, p.opts.lease/2)
		n, _ := p.deliver(bctx, recs, true)
		cancel()
		sent += n
		if err := ctx.Err(); err != nil {
			return sent, err
		}
		if n == 0 || len(recs) < p.opts.batchSize {
			break
		}
	}
	if err := p.purge(ctx); err != nil {
		return sent, err
	}
	return sent, p.countPending(ctx)
}

// claim takes the next batch of due rows and reserves them for one lease.
func (p *Publisher) claim(ctx context.Context, olderThan time.Duration) ([]record, error) {
	rows, err := p.pool.Query(ctx, `
		UPDATE outbox o SET next_attempt_at = now() + $1::float8 * interval '1 millisecond'
		FROM (
			SELECT source, id FROM outbox
			WHERE sent_at IS NULL
				AND next_attempt_at <= now()
				AND created_at <= now() - $2::float8 * interval '1 millisecond'
			ORDER BY next_attempt_at
			LIMIT $3
			FOR UPDATE SKIP LOCKED
		) due
		WHERE o.source = due.source AND o.id = due.id
		RETURNING o.source, o.id, o.type, o.event, (extract(epoch FROM o.created_at) * 1e6)::bigint`,
		millis(p.opts.lease), millis(olderThan), p.opts.batchSize)
	if err != nil {
		return nil, fmt.Errorf("outbox: sweep: %w", err)
	}
	return scanRecords(rows)
}

// purge deletes sent rows older than the retention period, a bounded batch
// at a time.
func (p *Publisher) purge(ctx context.Context) error {
	for {
		tag, err := p.pool.Exec(ctx, `
			DELETE FROM outbox WHERE (source, id) IN (
				SELECT source, id FROM outbox
				WHERE sent_at IS NOT NULL AND sent_at < now() - $1::float8 * interval '1 millisecond'
				LIMIT $2
				FOR UPDATE SKIP LOCKED)`,
			millis(p.opts.retention), purgeBatch)
		if err != nil {
			return fmt.Errorf("outbox: purge: %w", err)
		}
		if tag.RowsAffected() < purgeBatch {
			return nil
		}
	}
}

// countPending sets the pending gauge; without metrics it does nothing.
func (p *Publisher) countPending(ctx context.Context) error {
	if p.metrics == nil {
		return nil
	}
	var n int
	if err := p.pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`).Scan(&n); err != nil {
		return fmt.Errorf("outbox: count pending: %w", err)
	}
	p.metrics.setPending(n)
	return nil
}
