package tests

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/shared/audit"
	"github.com/skyflow-oss/skyflow/shared/testenv"
)

// BenchmarkAuditAppend measures the audit log's append rate as
// audit-record runs it: one writer, one transaction per event, the chain
// head locked, a duplicate check, the hash and the insert. The baseline is
// the same row inserted into a plain table with no chain, one transaction
// each, in the same run on the same database; the ratio is what the
// tamper evidence and the once-only check cost.
func BenchmarkAuditAppend(b *testing.B) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.Database(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, `CREATE TABLE bench_plain_log (seq bigserial PRIMARY KEY, event_source text, event_id text, entry jsonb)`); err != nil {
		b.Fatal(err)
	}
	entry := func(i int) audit.Entry {
		e := event.New()
		e.SetID(fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i))
		e.SetSource("/skyflow/functions/records-insert")
		e.SetType("com.skyflow.vault.record.created")
		e.SetSubject("0123456789abcdef0123456789abcdef")
		e.SetTime(time.Now())
		e.SetExtension("principal", "sa:bench")
		e.SetExtension("vaultid", "0123456789abcdef0123456789abcdef")
		return audit.FromEvent(e, time.Now())
	}
	const rows = 2000
	rate := func(append func(audit.Entry) error) float64 {
		start := time.Now()
		for i := range rows {
			if err := append(entry(i)); err != nil {
				b.Fatal(err)
			}
		}
		return rows / time.Since(start).Seconds()
	}
	b.ResetTimer()
	var chained, plain float64
	for b.Loop() {
		plain = rate(func(e audit.Entry) error {
			raw, err := e.Canonical()
			if err != nil {
				return err
			}
			_, err = pool.Exec(ctx, `INSERT INTO bench_plain_log (event_source, event_id, entry) VALUES ($1, $2, $3)`, e.Source, e.ID, raw)
			return err
		})
		chained = rate(func(e audit.Entry) error {
			return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				_, appended, err := audit.Append(ctx, tx, e)
				if err == nil && !appended {
					err = fmt.Errorf("entry %s was not appended", e.ID)
				}
				return err
			})
		})
	}
	b.ReportMetric(chained, "audit-rows/s")
	b.ReportMetric(plain, "plain-rows/s")
	b.ReportMetric(chained/plain, "audit/plain")
}
