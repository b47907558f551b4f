package tests

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/domain/audit"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

// BenchmarkAuditAppend measures the audit log's append rate as
// audit-record runs it: deliveries arrive auditInFlight at a time (the
// local dispatcher's bound), each hands its entry to the function's
// audit.Writer and returns once the transaction holding it commits; the
// writer groups whatever waits into one transaction (the chain head locked
// once, one once-only check, the hashes, one INSERT). The baseline is the
// same rows inserted into a plain table with no chain at the same
// concurrency, one transaction each, in the same run on the same
// database; the ratio is what the tamper evidence and the once-only check
// cost. serial-rows/s is the way audit-record appended before it grouped:
// one writer, one transaction per entry.
func BenchmarkAuditAppend(b *testing.B) {
	const (
		auditInFlight = 32
		// Each iteration alternates short rounds of the two, so that the
		// load other work puts on this shared machine falls on both alike.
		rounds     = 5
		rows       = 800 // per round of each kind
		serialRows = 100 // per round
	)
	ctx := context.Background()
	pool, err := db.Open(ctx, testenv.Database(b), db.WithMaxConns(auditInFlight+2))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, `CREATE TABLE bench_plain_log (seq bigserial PRIMARY KEY, event_source text, event_id text, entry jsonb)`); err != nil {
		b.Fatal(err)
	}
	var batches, batched, largest atomic.Int64
	w := audit.NewWriter(pool, audit.WriterOptions{MaxBatch: 500, OnBatch: func(size, _ int, _ time.Duration, err error) {
		if err == nil {
			batches.Add(1)
			batched.Add(int64(size))
			for l := largest.Load(); int64(size) > l && !largest.CompareAndSwap(l, int64(size)); l = largest.Load() {
			}
		}
	}})
	b.Cleanup(func() { w.Close(ctx) })

	run := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	entry := func(kind string, i int64) audit.Entry {
		e := event.New()
		e.SetID(fmt.Sprintf("%s-%s-%d", run, kind, i))
		e.SetSource("/skyflow/functions/records-insert")
		e.SetType("com.skyflow.vault.record.created")
		e.SetSubject("0123456789abcdef0123456789abcdef")
		e.SetTime(time.Now())
		e.SetExtension("principal", "sa:bench")
		e.SetExtension("vaultid", "0123456789abcdef0123456789abcdef")
		return audit.FromEvent(e, time.Now())
	}
	// timed appends n entries, inFlight at a time, and returns how long
	// that took.
	var made atomic.Int64
	timed := func(kind string, n, inFlight int, appendEntry func(audit.Entry) error) time.Duration {
		var (
			next atomic.Int64
			wg   sync.WaitGroup
		)
		start := time.Now()
		for range inFlight {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					if err := appendEntry(entry(kind, made.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if b.Failed() {
			b.FailNow()
		}
		return time.Since(start)
	}
	plainInsert := func(e audit.Entry) error {
		raw, err := e.Canonical()
		if err != nil {
			return err
		}
		_, err = pool.Exec(ctx, `INSERT INTO bench_plain_log (event_source, event_id, entry) VALUES ($1, $2, $3)`, e.Source, e.ID, raw)
		return err
	}
	grouped := func(e audit.Entry) error {
		r, err := w.Append(ctx, e)
		if err == nil && !r.Appended {
			err = fmt.Errorf("entry %s was not appended", e.ID)
		}
		return err
	}
	serial := func(e audit.Entry) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, appended, err := audit.Append(ctx, tx, e)
			if err == nil && !appended {
				err = fmt.Errorf("entry %s was not appended", e.ID)
			}
			return err
		})
	}

	b.ResetTimer()
	var chainedTime, plainTime, serialTime time.Duration
	n := 0
	for b.Loop() {
		for range rounds {
			plainTime += timed("plain", rows, auditInFlight, plainInsert)
			chainedTime += timed("audit", rows, auditInFlight, grouped)
			serialTime += timed("serial", serialRows, 1, serial)
			n++
		}
	}
	chained := float64(n*rows) / chainedTime.Seconds()
	plain := float64(n*rows) / plainTime.Seconds()
	b.ReportMetric(chained, "audit-rows/s")
	b.ReportMetric(plain, "plain-rows/s")
	b.ReportMetric(chained/plain, "audit/plain")
	b.ReportMetric(float64(n*serialRows)/serialTime.Seconds(), "serial-rows/s")
	b.ReportMetric(float64(batched.Load())/float64(batches.Load()), "entries/batch")
	b.ReportMetric(float64(largest.Load()), "max-batch")

	checked, broken, err := audit.Verify(ctx, pool)
	if err != nil || broken != nil {
		b.Fatalf("Verify after the benchmark = %d, %v, %v", checked, broken, err)
	}
}
