package broker

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// committer commits finished offsets as they advance. Commits are
// coalesced: one wake-up commits everything finished so far.
func (d *dispatcher) committer() {
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-d.wake:
		}
		d.commit(d.ctx)
	}
}

// commit commits every partition whose watermark moved.
func (d *dispatcher) commit(ctx context.Context) {
	d.mu.Lock()
	offs := d.committable()
	d.mu.Unlock()
	d.commitSync(ctx, d.cl, offs)
}

// committable collects the watermarks that moved since the last commit.
// d.mu is held.
func (d *dispatcher) committable() map[int32]int64 {
	offs := map[int32]int64{}
	for id, p := range d.parts {
		if p.marks.next > p.committed {
			offs[id] = p.marks.next
		}
	}
	return offs
}

func (d *dispatcher) commitSync(ctx context.Context, cl *kgo.Client, offs map[int32]int64) {
	if len(offs) == 0 {
		return
	}
	req := map[string]map[int32]kgo.EpochOffset{d.topic: {}}
	for id, off := range offs {
		req[d.topic][id] = kgo.EpochOffset{Epoch: -1, Offset: off}
	}
	cl.CommitOffsetsSync(ctx, req, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				d.log.Warn("offset commit failed", "err", err)
			}
			return
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, t := range resp.Topics {
			for _, rp := range t.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					d.log.Warn("offset commit failed", "partition", rp.Partition, "err", err)
					continue
				}
				if p := d.parts[rp.Partition]; p != nil {
					p.committed = max(p.committed, offs[rp.Partition])
				}
			}
		}
		d.updateLag()
	})
}

// revoked commits what is finished on the partitions taken away, then
// abandons their in-flight records (the next owner delivers them again).
func (d *dispatcher) revoked(ctx context.Context, cl *kgo.Client, lost map[string][]int32) {
	offs := d.forget(lost[d.topic], true)
	d.commitSync(ctx, cl, offs)
}

// lost abandons partitions that can no longer be committed.
func (d *dispatcher) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	d.forget(lost[d.topic], false)
}

// forget drops partitions, returning their committable offsets if asked.
func (d *dispatcher) forget(ids []int32, withOffsets bool) map[int32]int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	offs := map[int32]int64{}
	for _, id := range ids {
		p := d.parts[id]
		if p == nil {
			continue
		}
		if withOffsets && p.marks.next > p.committed {
			offs[id] = p.marks.next
		}
		p.cancel()
		delete(d.parts, id)
	}
	d.updateLag()
	return offs
}

// updateLag sets the lag gauge from the last high watermarks seen. d.mu is held.
func (d *dispatcher) updateLag() {
	var lag int64
	for _, p := range d.parts {
		base := p.start
		if p.committed >= 0 {
			base = p.committed
		}
		lag += max(p.hwm-base, 0)
	}
	d.lag.Set(float64(lag))
}
