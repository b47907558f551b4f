package outbox

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/puddle/v2"
)

// Relay back-off after a round in which the sink refused or failed: the
// next round waits this long, doubling per failed round up to the ceiling.
const (
	relayRetryFloor   = 250 * time.Millisecond
	relayRetryCeiling = 10 * time.Second
)

// relay sends committed events to the sink as soon as they commit. Each
// Publisher runs one: [Publisher.Transact] wakes it after a commit, and it
// sends every due event of the outbox, in rounds, until none is left.
// Commits that happen while a round is sending are taken by the next one,
// so under load one claim and one status write serve many requests.
//
// Why a relay in every process, woken at commit, rather than one relay
// function fed by LISTEN/NOTIFY or logical replication: the events leave
// within milliseconds of the commit without another hop, a process that
// is scaled down flushes its own events in Stop, and the functions work
// through a transaction-mode pooler, where LISTEN has no session to live
// on. Rows are claimed from the shared table (claim in sweep.go), so a
// relay sends other processes' leftovers too, and the order of events
// about one subject holds across processes.
type relay struct {
	wake chan struct{} // buffered 1: wake-ups while a round runs coalesce
	stop chan struct{}
	done chan struct{}
	ctx  context.Context // canceled by close: a round in flight ends
	end  context.CancelFunc
	once sync.Once
}

func (r *relay) start(p *Publisher) {
	if !p.opts.relay {
		return // Notify finds no channel; Close only flushes
	}
	r.wake = make(chan struct{}, 1)
	r.stop = make(chan struct{})
	r.done = make(chan struct{})
	r.ctx, r.end = context.WithCancel(context.Background())
	go r.run(p)
}

// Notify tells the relay that events were committed. It never blocks.
func (p *Publisher) Notify() {
	select {
	case p.relay.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

func (r *relay) run(p *Publisher) {
	defer close(r.done)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	wait := time.Duration(0)
	for {
		select {
		case <-r.stop:
			return
		case <-r.wake:
		case <-retry.C:
		}
		if _, err := p.drain(r.ctx, 0, false); err != nil {
			if errors.Is(err, puddle.ErrClosedPool) {
				return // the process is stopping without Close
			}
			wait = min(max(2*wait, relayRetryFloor), relayRetryCeiling)
			if !errors.Is(err, context.Canceled) {
				p.opts.logger.LogAttrs(r.ctx, slog.LevelWarn, "outbox: relay round failed, retrying",
					slog.Duration("in", wait), slog.String("error", err.Error()))
			}
			retry.Reset(wait)
			continue
		}
		wait = 0
	}
}

// Flush sends every event that is due now, whoever committed it, and
// returns when none is left or ctx ends. Tests and Close use it.
func (p *Publisher) Flush(ctx context.Context) error {
	_, err := p.drain(ctx, 0, false)
	return err
}

// Close stops the relay and flushes what is still unsent, within ctx: a
// function calls it in Stop, before closing the pool, so a process scaled
// down leaves nothing behind. The flush is best effort: what ctx, the
// database or the broker does not allow is logged and stays, committed,
// for the sweep.
func (p *Publisher) Close(ctx context.Context) {
	p.relay.once.Do(func() {
		if p.relay.stop != nil {
			close(p.relay.stop)
			p.relay.end() // a round in flight gives up; Flush redoes its rows
			<-p.relay.done
		}
		if err := p.Flush(ctx); err != nil {
			p.opts.logger.LogAttrs(ctx, slog.LevelWarn, "outbox: events left unsent at stop, for the sweep",
				slog.String("error", err.Error()))
		}
	})
}

// drain claims and delivers due events written more than olderThan ago,
// in rounds, until a claim finds nothing, and returns how many the sink
// took. A round that sent events may have freed later events of their
// subjects, even ones another process committed, so drain claims again. byResend says the sweep is sending (failures back off); the relay
// leaves a failed event due at once and retries it itself. An error means
// a round failed to claim, or some event was not sent; drain stops there.
func (p *Publisher) drain(ctx context.Context, olderThan time.Duration, byResend bool) (sent int, err error) {
	for {
		recs, err := p.claim(ctx, olderThan)
		if err != nil || len(recs) == 0 {
			return sent, err
		}
		// Stop sending well before the lease ends, so that no other relay
		// takes a row while this one may still be sending it.
		rctx, cancel := context.WithTimeout(ctx, p.opts.lease/2)
		n, err := p.deliver(rctx, recs, byResend)
		cancel()
		sent += n
		if err != nil {
			return sent, err
		}
	}
}
