package outbox

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	cloudevents "github.com/cloudevents/sdk-go/v2/client"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A Publisher sends outbox events to a sink, the broker ingress that Knative
// names in K_SINK. It is safe for concurrent use, and several publishers,
// in one process or many, may sweep the same outbox.
type Publisher struct {
	pool    *pgxpool.Pool
	client  cloudevents.Client
	opts    options
	metrics *metrics
}

// NewPublisher returns a publisher that keeps its outbox in pool and sends to
// sink, an http or https URL.
func NewPublisher(pool *pgxpool.Pool, sink string, opts ...Option) (*Publisher, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if pool == nil {
		return nil, errors.New("outbox: nil pool")
	}
	u, err := url.Parse(sink)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("outbox: sink must be an http or https URL")
	}
	if o.httpClient == nil || o.logger == nil || o.requestTimeout <= 0 || o.retention <= 0 ||
		o.batchSize < 1 || o.backoffBase <= 0 || o.backoffMax < o.backoffBase || o.lease <= 0 {
		return nil, errors.New("outbox: invalid option")
	}
	proto, err := cehttp.New(cehttp.WithTarget(sink), cehttp.WithClient(*o.httpClient))
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	// client.New, unlike NewHTTP, adds no defaulters: an event is sent
	// exactly as it was stored, never with a new time or id.
	client, err := cloudevents.New(proto)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	m, err := newMetrics(o.registerer)
	if err != nil {
		return nil, fmt.Errorf("outbox: register metrics: %w", err)
	}
	return &Publisher{pool: pool, client: client, opts: o, metrics: m}, nil
}

// Transact runs fn in a transaction, adds the events fn returns to the
// outbox in that transaction, commits, and then publishes the events.
//
// If fn fails, the transaction is rolled back, nothing is sent, and fn's
// error is returned as is. Once the commit succeeded Transact returns nil:
// an event the sink did not take is logged and left for [Publisher.Sweep].
// Publishing outlives the cancellation of ctx, since the change committed.
func (p *Publisher) Transact(ctx context.Context, fn func(tx pgx.Tx) ([]event.Event, error)) error {
	recs, err := p.transact(ctx, fn)
	if err != nil {
		return err
	}
	p.deliver(context.WithoutCancel(ctx), recs, false)
	return nil
}

func (p *Publisher) transact(ctx context.Context, fn func(tx pgx.Tx) ([]event.Event, error)) ([]record, error) {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("outbox: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // no-op after commit

	events, err := fn(tx)
	if err != nil {
		return nil, err
	}
	recs, err := add(ctx, tx, events)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		// The commit may have happened anyway; if so the sweep sends.
		return nil, fmt.Errorf("outbox: commit: %w", err)
	}
	return recs, nil
}

// Publish sends the outbox rows of events, which an earlier transaction
// committed with [Add], and marks them sent. It sends what was stored, not
// the values passed: events are looked up by source and id, and those with
// no unsent row (already sent, or never committed) are skipped. The error
// reports the events the sink did not take; they stay for the sweep.
func (p *Publisher) Publish(ctx context.Context, events ...event.Event) error {
	if len(events) == 0 {
		return nil
	}
	sources := make([]string, len(events))
	ids := make([]string, len(events))
	for i, e := range events {
		sources[i], ids[i] = e.Source(), e.ID()
	}
	recs, err := p.take(ctx, sources, ids)
	if err != nil {
		return err
	}
	_, failed := p.deliver(ctx, recs, false)
	return failed
}

// take reserves the unsent rows with the given keys for one lease, so no
// sweeper sends them meanwhile, and returns them in the order given.
func (p *Publisher) take(ctx context.Context, sources, ids []string) ([]record, error) {
	rows, err := p.pool.Query(ctx, `
		UPDATE outbox o SET next_attempt_at = now() + $3::float8 * interval '1 millisecond'
		FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(source, id, n)
		WHERE o.source = k.source AND o.id = k.id AND o.sent_at IS NULL
		RETURNING o.source, o.id, o.type, o.event, k.n`,
		sources, ids, millis(p.opts.lease))
	if err != nil {
		return nil, fmt.Errorf("outbox: publish: %w", err)
	}
	return scanRecords(rows)
}
