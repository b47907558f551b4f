package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// purgeBatch bounds one delete of expired rows, so that a large backlog
// does not hold locks for long.
const purgeBatch = 1000

// claimLock is the transaction-level advisory lock that claims hold: one
// claim at a time across every process, so that no two relays take rows of
// one subject at once (see claim).
const claimLock = 0x736b796f7574 // "skyout"

// Sweep sends the unsent events that are due and were written more than
// olderThan ago, and returns how many the sink took. It is the safety net
// under the relays: it resends what a killed process had claimed once the
// lease ran out, and what failed, with per-event exponential backoff. It
// stops at the first round with a failure, since the sink is likely down.
// It then deletes sent rows older than the retention period and updates
// the pending gauge.
func (p *Publisher) Sweep(ctx context.Context, olderThan time.Duration) (sent int, err error) {
	sent, _ = p.drain(ctx, olderThan, true) // failures are in their rows and the log
	if err := ctx.Err(); err != nil {
		return sent, err
	}
	if err := p.purge(ctx); err != nil {
		return sent, err
	}
	return sent, p.countPending(ctx)
}

// claim takes the next batch of due rows, in the order they were added,
// and reserves them for one lease so that no other relay sends them.
//
// A row is not due while an earlier unsent row of its subject is reserved
// or backing off: that keeps the order of each subject's events across
// processes and retries. Claims hold claimLock, so a claim sees every
// earlier claim's reservations (SKIP LOCKED alone would let two claims
// take one subject's rows at once).
//
// The statement is written so that its cost stays linear in the rows it
// passes over whatever the planner believes: the outbox churns faster
// than its statistics, and with "no unsent rows" in them a join-based
// form was planned as nested loops over the backlog, one claim running
// for minutes with 6,000 rows unsent. So the due rows are picked once (a
// materialized CTE walking outbox_unsent in seq order), the subject check
// is a per-row probe of outbox_unsent_subject (the OR keeps it from
// becoming a join), and the rows are updated by ctid (a TID scan; they
// are locked, so their ctid holds).
func (p *Publisher) claim(ctx context.Context, olderThan time.Duration) ([]record, error) {
	var recs []record
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		// A claim need not wait for its WAL flush: lost in a crash, its
		// rows are merely due again and sent again, which at-least-once
		// delivery allows. Both statements go in one round trip.
		b := &pgx.Batch{}
		b.Queue(`SET LOCAL synchronous_commit = off`)
		b.Queue(`SELECT pg_advisory_xact_lock($1)`, int64(claimLock))
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			WITH due AS MATERIALIZED (
				SELECT c.ctid FROM outbox c
				WHERE c.sent_at IS NULL
					AND c.next_attempt_at <= now()
					AND c.created_at <= now() - $2::float8 * interval '1 millisecond'
					AND (c.subject IS NULL OR NOT EXISTS (
						SELECT 1 FROM outbox e
						WHERE e.subject = c.subject AND e.seq < c.seq AND e.sent_at IS NULL
							AND (e.next_attempt_at > now() OR e.created_at > now() - $2::float8 * interval '1 millisecond')))
				ORDER BY c.seq
				LIMIT $3
				FOR UPDATE SKIP LOCKED
			)
			UPDATE outbox o SET next_attempt_at = now() + $1::float8 * interval '1 millisecond'
			WHERE o.ctid = ANY(ARRAY(SELECT ctid FROM due))
			RETURNING o.seq, o.source, o.id, o.type, coalesce(o.subject, ''), o.event, o.created_at`,
			millis(p.opts.lease), millis(olderThan), p.opts.batchSize)
		if err != nil {
			return err
		}
		recs, err = scanRecords(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: claim: %w", err)
	}
	return recs, nil
}

// purge deletes sent rows older than the retention period, a bounded batch
// at a time.
func (p *Publisher) purge(ctx context.Context) error {
	for {
		// By ctid: seq is indexed only among unsent rows (outbox_unsent).
		tag, err := p.pool.Exec(ctx, `
			DELETE FROM outbox WHERE ctid = ANY(ARRAY(
				SELECT ctid FROM outbox
				WHERE sent_at IS NOT NULL AND sent_at < now() - $1::float8 * interval '1 millisecond'
				LIMIT $2
				FOR UPDATE SKIP LOCKED))`,
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
