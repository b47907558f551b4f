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

// syncsInFlight bounds the group commit's rounds that sync at once. One:
// with 8 publishers, letting two rounds overlap halved the events per
// round and gave no more events per second, because a round's cost is the
// files it fsyncs (the disk writes each file's pages, concurrent or not),
// not the wait for the round before it.
const syncsInFlight = 1

// groupCommit makes the records Kafka acknowledged durable before the
// ingress acknowledges them, sharing one sync among all the events that
// arrive together: the ingress's events cost one fsync round each only
// when they come one at a time.
//
// An event's handler joins the next round and waits for it. A round
// starts as soon as an event joins it, unless inFlight rounds are syncing
// already: then it starts when one of them ends, with every event that
// joined meanwhile. A round syncs every partition its events touched at
// once, then releases them all. An event never joins a round that has
// begun, whose fsyncs might have started before its record was written.
// So a lone event waits for one sync, and under load each sync serves
// everything that queued up during the last.
type groupCommit struct {
	sync     func(topic string, partitions []int32) error
	metrics  *metrics
	inFlight int // at most this many rounds sync at once

	mu      sync.Mutex
	next    *round // the round events join
	syncing int    // rounds syncing now
	closed  bool
	rounds  sync.WaitGroup
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
	return &groupCommit{sync: sync, metrics: m, inFlight: syncsInFlight, next: newRound()}
}

// wait returns once the record Kafka acknowledged at topic/partition is
// durable, with the sync's error if it is not, or ctx's.
func (g *groupCommit) wait(ctx context.Context, topic string, partition int32) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return errClosed
	}
	r := g.next
	if r.parts[topic] == nil {
		r.parts[topic] = map[int32]struct{}{}
	}
	r.parts[topic][partition] = struct{}{}
	r.events++
	if g.syncing < g.inFlight {
		g.startLocked()
	}
	g.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startLocked starts syncing the next round. g.mu is held.
func (g *groupCommit) startLocked() {
	r := g.next
	g.next = newRound()
	g.syncing++
	g.rounds.Go(func() {
		r.err = g.syncRound(r)
		close(r.done)
		g.mu.Lock()
		defer g.mu.Unlock()
		g.syncing--
		if g.next.events > 0 && !g.closed {
			g.startLocked()
		}
	})
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

// close fails the events waiting for a round that has not started, and
// waits for the rounds that have. The ingress and the dispatchers must have
// stopped producing.
func (g *groupCommit) close() {
	g.mu.Lock()
	g.closed = true
	r := g.next
	g.next = newRound()
	g.mu.Unlock()
	r.err = errClosed
	close(r.done)
	g.rounds.Wait()
}
