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
	relay   relay
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
	p := &Publisher{pool: pool, client: client, opts: o, metrics: m}
	p.relay.start(p)
	return p, nil
}

// Transact runs fn in a transaction, adds the events fn returns to the
// outbox in that transaction, commits, and wakes the publisher's relay,
// which sends them to the sink moments later. It does not wait for the
// sink: the committed outbox row is the guarantee.
//
// If fn fails, the transaction is rolled back, nothing is sent, and fn's
// error is returned as is. Once the commit succeeded Transact returns nil.
func (p *Publisher) Transact(ctx context.Context, fn func(tx pgx.Tx) ([]event.Event, error)) error {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("outbox: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // no-op after commit

	events, err := fn(tx)
	if err != nil {
		return err
	}
	if err := Add(ctx, tx, events...); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		// The commit may have happened anyway; if so a relay sends.
		return fmt.Errorf("outbox: commit: %w", err)
	}
	if len(events) > 0 {
		p.Notify()
	}
	return nil
}
