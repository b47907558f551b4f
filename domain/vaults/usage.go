package vaults

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
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

// countSeals is the seal counter of vault u's keys.
func (s *Store) countSeals(u uuid.UUID) func(uint32) {
	return func(key uint32) {
		s.usage.mu.Lock()
		if s.usage.counts == nil {
			s.usage.counts = map[usageKey]int64{}
		}
		s.usage.counts[usageKey{u, key}]++
		s.usage.mu.Unlock()
		encryptions.Inc()
	}
}

// flushUsageSoon flushes the counts in the background when the last flush
// is older than usageFlushEvery; requests never wait for it.
func (s *Store) flushUsageSoon() {
	if time.Since(time.Unix(0, s.usage.lastFlush.Load())) < usageFlushEvery || !s.usage.flushing.CompareAndSwap(false, true) {
		return
	}
	s.usage.lastFlush.Store(time.Now().UnixNano())
	go func() {
		defer s.usage.flushing.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), usageFlushEvery)
		defer cancel()
		if err := s.FlushKeyUsage(ctx); err != nil {
			slog.Warn("the data keys' encryption counts could not be stored; they are kept for the next try", "err", err)
		}
	}()
}

// FlushKeyUsage adds the encryptions counted since the last flush to
// vault_key_versions. Counts it could not store are kept for the next
// flush. Lifecycle.Stop calls it, so a process that scales to zero loses
// nothing.
func (s *Store) FlushKeyUsage(ctx context.Context) error {
	s.usage.mu.Lock()
	counts := s.usage.counts
	s.usage.counts = nil
	s.usage.mu.Unlock()
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
	_, err := s.pool.Exec(ctx, `
		INSERT INTO vault_key_versions (vault_id, key_id, encryptions, retired_at)
		SELECT w.v, w.id, w.n, (SELECT now() FROM vault_key_versions p WHERE p.vault_id = w.v AND p.retired_at IS NULL AND p.key_id <> w.id)
		FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) AS w(v, id, n)
		WHERE EXISTS (SELECT 1 FROM vaults WHERE id = w.v)
		ON CONFLICT (vault_id, key_id) DO UPDATE SET encryptions = vault_key_versions.encryptions + excluded.encryptions`,
		vaults, keys, ns)
	if err != nil {
		s.usage.mu.Lock()
		if s.usage.counts == nil {
			s.usage.counts = map[usageKey]int64{}
		}
		for k, n := range counts {
			s.usage.counts[k] += n
		}
		s.usage.mu.Unlock()
	}
	return err
}

// recordRotation retires the vault's primary version and makes primary
// the new one, in the rotation's transaction.
func recordRotation(ctx context.Context, tx pgx.Tx, u uuid.UUID, previous, primary uint32) error {
	if _, err := tx.Exec(ctx, `
		INSERT INTO vault_key_versions (vault_id, key_id, retired_at) VALUES ($1, $2, now())
		ON CONFLICT (vault_id, key_id) DO UPDATE SET retired_at = now()`, u, int64(previous)); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO vault_key_versions (vault_id, key_id) VALUES ($1, $2)`, u, int64(primary))
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
