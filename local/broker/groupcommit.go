package broker

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"
)

// errClosed fails the events still waiting for a sync when the Broker closes.
var errClosed = errors.New("broker: closed before the event was made durable")

// groupCommit makes the records Kafka acknowledged durable before the
// ingress acknowledges them, sharing one sync among all the events that
// arrive together: the ingress's events cost one fsync round each only
// when they come one at a time.
//
// One goroutine runs the rounds. An event's handler joins the next round
// and waits for it; a round takes every event that joined before it
// began, syncs every partition they touched at once, then releases them
// all. Events that arrive while a round runs join the one after it, which
// starts as soon as the first ends: a lone event waits for one sync, and
// under load each sync serves everything that queued up during the last.
type groupCommit struct {
	sync    func(topic string, partitions []int32) error
	metrics *metrics

	mu   sync.Mutex
	next *round

	kick chan struct{} // a round has waiters; buffered, so a kick is never lost
	stop chan struct{}
	done chan struct{}
}

// round is one sync of the records of the events that joined it.
type round struct {
	parts  map[string]map[int32]struct{} // by topic
	events int
	done   chan struct{} // closed once err is set
	err    error
}

func newRound() *round {
	return &round{parts: map[string]map[int32]struct{}{}, done: make(chan struct{})}
}

func newGroupCommit(sync func(topic string, partitions []int32) error, m *metrics) *groupCommit {
	g := &groupCommit{sync: sync, metrics: m, next: newRound(),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go g.run()
	return g
}

// wait returns once the record Kafka acknowledged at topic/partition is
// durable, with the sync's error if it is not, or ctx's.
func (g *groupCommit) wait(ctx context.Context, topic string, partition int32) error {
	g.mu.Lock()
	r := g.next
	if r.parts[topic] == nil {
		r.parts[topic] = map[int32]struct{}{}
	}
	r.parts[topic][partition] = struct{}{}
	r.events++
	g.mu.Unlock()
	select {
	case g.kick <- struct{}{}:
	default: // a kick is pending already
	}
	select {
	case <-r.done:
		return r.err
	case <-g.done: // closed: r ran before, or never will
		select {
		case <-r.done:
			return r.err
		default:
			return errClosed
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run syncs one round after another while there are waiters.
func (g *groupCommit) run() {
	defer close(g.done)
	for {
		select {
		case <-g.kick:
		case <-g.stop:
			g.mu.Lock()
			r := g.next
			g.next = newRound()
			g.mu.Unlock()
			r.err = errClosed
			close(r.done)
			return
		}
		g.mu.Lock()
		r := g.next
		g.next = newRound()
		g.mu.Unlock()
		if r.events == 0 { // a kick for waiters a previous round took
			continue
		}
		r.err = g.syncRound(r)
		close(r.done)
	}
}

// syncRound syncs every partition the round's events touched.
func (g *groupCommit) syncRound(r *round) error {
	start := time.Now()
	var errs []error
	for topic, parts := range r.parts {
		errs = append(errs, g.sync(topic, slices.Sorted(maps.Keys(parts))))
	}
	g.metrics.syncRounds.Inc()
	g.metrics.syncedEvents.Add(float64(r.events))
	g.metrics.syncSeconds.Observe(time.Since(start).Seconds())
	return errors.Join(errs...)
}

// close fails the events still waiting and stops the rounds. The ingress
// and the dispatchers must have stopped producing.
func (g *groupCommit) close() {
	close(g.stop)
	<-g.done
}
