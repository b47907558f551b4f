package keys

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	skymetrics "github.com/skyflow-oss/skyflow/runtime/metrics"
)

// usageFlushEvery is how often a process adds the encryptions it counted
// to vault_key_versions: often enough that a crash loses little, rarely
// enough that writes never wait on a shared counter row.
const usageFlushEvery = 5 * time.Second

// keyUsage counts the process's encryptions per vault and data key until
// they are flushed.
type keyUsage struct {
	mu        sync.Mutex
	counts    map[usageKey]int64
	flushing  atomic.Bool
	lastFlush atomic.Int64 // unix nanoseconds
}

type usageKey struct {
	vault uuid.UUID
	key   uint32
}

// CountSeals is the seal counter of vault u's keys (crypto.Keys.CountSeals).
func (r *Keyring) CountSeals(u uuid.UUID) func(uint32) {
	return func(key uint32) {
		r.usage.mu.Lock()
		if r.usage.counts == nil {
			r.usage.counts = map[usageKey]int64{}
		}
		r.usage.counts[usageKey{u, key}]++
		r.usage.mu.Unlock()
		encryptions.Inc()
	}
}

// FlushUsageSoon flushes the counts in the background when the last flush
// is older than usageFlushEvery; requests never wait for it.
func (r *Keyring) FlushUsageSoon() {
	if time.Since(time.Unix(0, r.usage.lastFlush.Load())) < usageFlushEvery || !r.usage.flushing.CompareAndSwap(false, true) {
		return
	}
	r.usage.lastFlush.Store(time.Now().UnixNano())
	go func() {
		defer r.usage.flushing.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), usageFlushEvery)
		defer cancel()
		if err := r.FlushUsage(ctx); err != nil {
			slog.Warn("the data keys' encryption counts could not be stored; they are kept for the next try", "err", err)
		}
	}()
}

// FlushUsage adds the encryptions counted since the last flush to
// vault_key_versions. Counts it could not store are kept for the next
// flush. A function's Stop calls it, so a process that scales to zero
// loses nothing.
func (r *Keyring) FlushUsage(ctx context.Context) error {
	r.usage.mu.Lock()
	counts := r.usage.counts
	r.usage.counts = nil
	r.usage.mu.Unlock()
	if len(counts) == 0 {
		return nil
	}
	var (
		vaults []uuid.UUID
		keys   []int64
		ns     []int64
	)
	for k, n := range counts {
		vaults, keys, ns = append(vaults, k.vault), append(keys, int64(k.key)), append(ns, n)
	}
	// A version without its row (a vault older than the table) gets one:
	// the primary's when the vault has none yet, else a retired one.
	_, err := r.pool.Exec(ctx, `
		INSERT INTO vault_key_versions (vault_id, key_id, encryptions, retired_at)
		SELECT w.v, w.id, w.n, (SELECT now() FROM vault_key_versions p WHERE p.vault_id = w.v AND p.retired_at IS NULL AND p.key_id <> w.id)
		FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) AS w(v, id, n)
		WHERE EXISTS (SELECT 1 FROM vaults WHERE id = w.v)
		ON CONFLICT (vault_id, key_id) DO UPDATE SET encryptions = vault_key_versions.encryptions + excluded.encryptions`,
		vaults, keys, ns)
	if err != nil {
		r.usage.mu.Lock()
		if r.usage.counts == nil {
			r.usage.counts = map[usageKey]int64{}
		}
		for k, n := range counts {
			r.usage.counts[k] += n
		}
		r.usage.mu.Unlock()
	}
	return err
}

// encryptions counts the values this process sealed.
var encryptions = func() prometheus.Counter {
	var err error
	return skymetrics.Register(skymetrics.Registry, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "skyflow_vault_key_encryptions_total",
		Help: "Values sealed with a vault data key by this process (each key's total is in vault_key_versions).",
	}), &err)
}()
