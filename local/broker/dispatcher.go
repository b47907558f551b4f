package broker

import (
	"context"
	"encoding/base64"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/semaphore"

	"github.com/skyflow-oss/skyflow/local/kafka"
	"github.com/skyflow-oss/skyflow/local/manifest"
)

// maxInFlight bounds the records a dispatcher holds at once: delivering,
// waiting to retry, or queued behind an ordered partition. It matches the
// containerConcurrency of audit-record, whose grouped append writes as
// many entries in one transaction as are in flight (32 capped its batches
// at 32; 100 gave batches of 85 and about twice the entries/s when the
// machine was busy).
const maxInFlight = 100

// Extensions Knative adds to an event sent to a dead-letter sink.
const (
	extErrorDest = "knativeerrordest"
	extErrorCode = "knativeerrorcode"
	extErrorData = "knativeerrordata"
)

// dispatcher consumes a Broker's topic for one Trigger.
type dispatcher struct {
	b      *Broker
	t      *manifest.Trigger
	broker *manifest.Broker
	topic  string
	log    *slog.Logger
	policy manifest.Delivery
	sub    *sender // to the subscriber, storing replies
	dls    *sender // to the dead-letter sink
	cl     *kgo.Client
	slots  *semaphore.Weighted
	wake   chan struct{} // something became committable

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	parts map[int32]*partition

	delivered, retried, deadLettered, dropped, filtered prometheus.Counter
	latency                                             prometheus.Observer
	lag                                                 prometheus.Gauge
}

// partition is the dispatcher's state for one assigned partition.
type partition struct {
	ctx       context.Context // canceled when the partition is revoked
	cancel    context.CancelFunc
	marks     *watermark
	start     int64 // first offset polled
	committed int64 // last offset committed, -1 if none yet
	hwm       int64
	queue     chan *kgo.Record // ordered Triggers only
}

func (b *Broker) startDispatcher(ctx context.Context, t *manifest.Trigger, br *manifest.Broker) (*dispatcher, error) {
	ns, name := t.Namespace, t.Name
	d := &dispatcher{
		b: b, t: t, broker: br, topic: br.Topic(),
		log:          b.log.With("trigger", ns+"/"+name),
		policy:       effectiveDelivery(t.Delivery, br.Delivery),
		slots:        semaphore.NewWeighted(maxInFlight),
		wake:         make(chan struct{}, 1),
		parts:        map[int32]*partition{},
		delivered:    b.metrics.deliveries.WithLabelValues(ns, name, resultOK),
		retried:      b.metrics.deliveries.WithLabelValues(ns, name, resultRetried),
		deadLettered: b.metrics.deliveries.WithLabelValues(ns, name, resultDeadLettered),
		dropped:      b.metrics.deliveries.WithLabelValues(ns, name, resultDropped),
		filtered:     b.metrics.deliveries.WithLabelValues(ns, name, resultFiltered),
		latency:      b.metrics.latency.WithLabelValues(ns, name),
		lag:          b.metrics.lag.WithLabelValues(ns, name),
	}
	d.sub = &sender{client: b.client, resolve: b.cfg.Resolve, namespace: ns, policy: d.policy,
		retried: d.retried.Inc, onReply: d.storeReply, signer: b.cfg.Signer}
	d.dls = &sender{client: b.client, resolve: b.cfg.Resolve, namespace: ns, policy: d.policy,
		retried: d.retried.Inc, signer: b.cfg.Signer}
	reset := kgo.NewOffset().AtEnd()
	if t.FromEarliest {
		reset = kgo.NewOffset().AtStart()
	}
	var err error
	d.cl, err = kgo.NewClient(
		kgo.SeedBrokers(b.cfg.Seeds...),
		kgo.ConsumerGroup(t.ConsumerGroup()),
		kgo.ConsumeTopics(d.topic),
		kgo.ConsumeResetOffset(reset),
		kgo.DisableAutoCommit(),
		// Rebalances wait until a polled batch is handed to the partitions,
		// so revoking sees every record the dispatcher holds.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(d.revoked),
		kgo.OnPartitionsLost(d.lost),
		kgo.FetchMaxBytes(16<<20),
		kgo.WithLogger(kafka.ClientLogger(d.log)),
	)
	if err != nil {
		return nil, err
	}
	d.ctx, d.cancel = context.WithCancel(ctx)
	d.wg.Go(d.poll)
	d.wg.Go(d.committer)
	return d, nil
}

// stop abandons in-flight deliveries, commits what is finished and leaves
// the consumer group.
func (d *dispatcher) stop() {
	d.cancel()
	d.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.commit(ctx)
	d.cl.CloseAllowingRebalance()
}

// poll hands records to delivery while fewer than maxInFlight are held.
func (d *dispatcher) poll() {
	for {
		if d.slots.Acquire(d.ctx, 1) != nil {
			return
		}
		n := 1
		for n < maxInFlight && d.slots.TryAcquire(1) {
			n++
		}
		fetches := d.cl.PollRecords(d.ctx, n)
		if fetches.IsClientClosed() || d.ctx.Err() != nil {
			d.slots.Release(int64(n))
			d.cl.AllowRebalance()
			return
		}
		fetches.EachError(func(topic string, p int32, err error) {
			d.log.Warn("fetch failed", "topic", topic, "partition", p, "err", err)
		})
		type job struct {
			p *partition
			r *kgo.Record
		}
		var jobs []job
		d.mu.Lock()
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			if len(fp.Records) == 0 {
				if p := d.parts[fp.Partition]; p != nil {
					p.hwm = max(p.hwm, fp.HighWatermark)
				}
				return
			}
			p := d.partition(fp.Partition, fp.Records[0].Offset)
			p.hwm = max(p.hwm, fp.HighWatermark)
			for _, r := range fp.Records {
				p.marks.add(r.Offset)
				jobs = append(jobs, job{p, r})
			}
		})
		d.updateLag()
		d.mu.Unlock()
		d.slots.Release(int64(n - len(jobs)))
		for _, j := range jobs {
			if d.t.Ordered {
				select {
				case j.p.queue <- j.r: // never full: slots bound what is queued
				case <-j.p.ctx.Done():
					d.slots.Release(1)
				}
				continue
			}
			d.wg.Go(func() { d.process(j.p, j.r) })
		}
		d.cl.AllowRebalance()
	}
}

// partition returns the state of an assigned partition, creating it (and
// its ordered worker) when its first record, at offset start, arrives.
// d.mu is held.
func (d *dispatcher) partition(id int32, start int64) *partition {
	if p := d.parts[id]; p != nil {
		return p
	}
	p := &partition{marks: newWatermark(), start: start, committed: -1}
	p.ctx, p.cancel = context.WithCancel(d.ctx)
	d.parts[id] = p
	if d.t.Ordered {
		p.queue = make(chan *kgo.Record, maxInFlight)
		d.wg.Go(func() { d.work(p) })
	}
	return p
}

// work delivers an ordered partition's records one at a time.
func (d *dispatcher) work(p *partition) {
	for {
		select {
		case <-p.ctx.Done():
			for {
				select {
				case <-p.queue:
					d.slots.Release(1)
				default:
					return
				}
			}
		case r := <-p.queue:
			d.process(p, r)
		}
	}
}

// process handles one record and marks it finished unless it was abandoned.
func (d *dispatcher) process(p *partition, r *kgo.Record) {
	finished := d.handle(p.ctx, r)
	d.slots.Release(1)
	if !finished {
		return
	}
	d.mu.Lock()
	moved := d.parts[r.Partition] == p && p.marks.finish(r.Offset)
	d.mu.Unlock()
	if moved {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// handle filters and delivers one record; false means it was abandoned
// (the dispatcher is stopping or lost the partition) and must not be
// committed.
func (d *dispatcher) handle(ctx context.Context, r *kgo.Record) bool {
	e, err := fromRecord(r)
	if err != nil {
		d.log.Warn("record skipped: not a CloudEvent", "partition", r.Partition, "offset", r.Offset, "err", err)
		d.dropped.Inc()
		return true
	}
	if !matches(d.t, &e) {
		d.filtered.Inc()
		return true
	}
	a, done := d.sub.send(ctx, d.t.Subscriber, &e)
	if !done {
		return false
	}
	if a.ok() {
		d.delivered.Inc()
		d.latency.Observe(time.Since(r.Timestamp).Seconds())
		if a.badReply != nil {
			d.log.Warn("reply dropped: not a valid CloudEvent", "id", e.ID(), "type", e.Type(), "err", a.badReply)
		}
		d.log.Debug("event delivered", "id", e.ID(), "type", e.Type(), "status", a.status)
		return true
	}
	return d.deadLetter(ctx, &e, &a)
}

// deadLetter sends an event that could not be delivered to the dead-letter
// sink, with the extensions Knative adds, or drops it if there is none.
func (d *dispatcher) deadLetter(ctx context.Context, e *event.Event, failed *attempt) bool {
	logArgs := []any{"id", e.ID(), "type", e.Type(), "status", failed.status, "subscriber", failed.url, "err", failed.err}
	if d.policy.DeadLetterSink == nil {
		d.log.Warn("event dropped: delivery failed and there is no dead-letter sink", logArgs...)
		d.dropped.Inc()
		return true
	}
	dl := e.Clone()
	if failed.url != "" {
		dl.SetExtension(extErrorDest, failed.url)
	}
	if failed.status != 0 {
		dl.SetExtension(extErrorCode, strconv.Itoa(failed.status))
	}
	if len(failed.body) > 0 {
		dl.SetExtension(extErrorData, base64.StdEncoding.EncodeToString(failed.body))
	}
	a, done := d.dls.send(ctx, *d.policy.DeadLetterSink, &dl)
	if !done {
		return false
	}
	if !a.ok() {
		d.log.Error("event dropped: the dead-letter sink refused it too", append(logArgs, "deadLetterStatus", a.status, "deadLetterErr", a.err)...)
		d.dropped.Inc()
		return true
	}
	d.log.Info("event dead-lettered", logArgs...)
	d.deadLettered.Inc()
	return true
}

// storeReply appends a subscriber's reply to the same Broker's topic,
// where every Trigger sees it.
func (d *dispatcher) storeReply(ctx context.Context, e *event.Event) error {
	if err := d.b.produce(ctx, d.broker, e); err != nil {
		return err
	}
	d.b.metrics.ingested.WithLabelValues(d.broker.Namespace, d.broker.Name).Inc()
	d.log.Debug("reply stored", "id", e.ID(), "type", e.Type())
	return nil
}
