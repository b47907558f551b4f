package broker

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/skyflow-oss/skyflow/local/manifest"
)

// initOffsets commits a starting offset for each partition that a
// Trigger's consumer group has never committed: the end of the topic by
// default, its beginning for FromEarliest. Knative's controller does the
// same when a Trigger is created, so an event sent once Start has returned
// is never skipped by a group that joins a moment later. Groups that have
// committed before keep their offsets.
func (b *Broker) initOffsets(ctx context.Context, t *manifest.Trigger) error {
	topic := b.brokers[t.Namespace+"/"+t.Broker].Topic()
	adm := kadm.NewClient(b.producer)
	committed, err := adm.FetchOffsets(ctx, t.ConsumerGroup())
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return err
	}
	list := adm.ListEndOffsets
	if t.FromEarliest {
		list = adm.ListStartOffsets
	}
	listed, err := list(ctx, topic)
	if err != nil {
		return err
	}
	if err := listed.Error(); err != nil {
		return err
	}
	missing := kadm.Offsets{}
	listed.Each(func(o kadm.ListedOffset) {
		if c, ok := committed.Lookup(o.Topic, o.Partition); ok && c.Err == nil && c.At >= 0 {
			return
		}
		missing.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.Offset, LeaderEpoch: -1})
	})
	if len(missing) == 0 {
		return nil
	}
	return adm.CommitAllOffsets(ctx, t.ConsumerGroup(), missing)
}

// watermark tracks the records of one partition handed to delivery, which
// may finish out of order, and yields the offset to commit: the one below
// which every record is finished.
type watermark struct {
	pending []int64        // offsets handed out and not yet committable, ascending
	done    map[int64]bool // finished offsets among pending
	next    int64          // offset to commit; -1 before anything finished
}

func newWatermark() *watermark { return &watermark{done: map[int64]bool{}, next: -1} }

// add records that an offset was handed out; offsets come in ascending order.
func (w *watermark) add(off int64) { w.pending = append(w.pending, off) }

// finish marks an offset finished and reports whether next moved.
func (w *watermark) finish(off int64) bool {
	w.done[off] = true
	moved := false
	for len(w.pending) > 0 && w.done[w.pending[0]] {
		delete(w.done, w.pending[0])
		w.next = w.pending[0] + 1
		w.pending = w.pending[1:]
		moved = true
	}
	return moved
}
