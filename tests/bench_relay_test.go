package tests

import (
	"fmt"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyflow-oss/skyflow/local/broker"
	"github.com/skyflow-oss/skyflow/local/kafka"
	"github.com/skyflow-oss/skyflow/local/manifest"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/outbox"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

// BenchmarkOutboxRelay measures how long a committed event takes to reach
// the broker at light load, the relay's promptness: one transaction every
// 20 ms, each with one event, through the real broker ingress and the
// embedded Kafka process (durable, group-committed). The delay of each
// event is read from its outbox row, sent_at − created_at: from the row's
// insert, just before the commit, to the relay's record that the broker
// took it, just after; so it slightly overstates commit → broker. The
// baseline is the commit of the same transaction (the caller's own wait).
// Reported: relay-p50-ms, relay-p99-ms, commit-p50-ms.
func BenchmarkOutboxRelay(b *testing.B) {
	ctx := b.Context()
	log := slog.New(slog.NewTextHandler(&testLog{t: b}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cluster, err := kafka.Start(ctx, b.TempDir(), log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cluster.Close)
	set := &manifest.Set{Brokers: []manifest.Broker{{Meta: manifest.Meta{Name: "default", Namespace: manifest.DefaultNamespace}}}}
	br, err := broker.New(broker.Config{
		Set: set, Seeds: cluster.Seeds(), Listen: "127.0.0.1:0", Logger: log, Registerer: prometheus.NewRegistry(),
		Resolve: func(d manifest.Destination, _ string) (*url.URL, error) { return url.Parse(d.URI) },
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(br.Close)
	if err := br.Start(ctx); err != nil {
		b.Fatal(err)
	}
	pool, err := db.Open(ctx, testenv.Database(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	pub, err := outbox.NewPublisher(pool, br.IngressURL(manifest.DefaultNamespace, "default"), outbox.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pub.Close(ctx) })

	const events = 200
	var commits []time.Duration
	for i := range events {
		e := event.New()
		e.SetID(fmt.Sprintf("relay-%d", i))
		e.SetSource("/skyflow/bench")
		e.SetType("com.skyflow.bench.thing.created")
		e.SetSubject(fmt.Sprintf("thing-%d", i%10))
		e.SetExtension("partitionkey", e.Subject())
		start := time.Now()
		if err := pub.Transact(ctx, func(pgx.Tx) ([]event.Event, error) { return []event.Event{e}, nil }); err != nil {
			b.Fatal(err)
		}
		commits = append(commits, time.Since(start))
		time.Sleep(20 * time.Millisecond)
	}
	var relay []time.Duration
	for deadline := time.Now().Add(30 * time.Second); len(relay) < events; time.Sleep(10 * time.Millisecond) {
		rows, err := pool.Query(ctx, `SELECT sent_at - created_at FROM outbox WHERE sent_at IS NOT NULL`)
		if err != nil {
			b.Fatal(err)
		}
		if relay, err = pgx.CollectRows(rows, pgx.RowTo[time.Duration]); err != nil {
			b.Fatal(err)
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d events reached the broker in 30 s", len(relay), events)
		}
	}
	b.ReportMetric(percentile(relay, 0.5), "relay-p50-ms")
	b.ReportMetric(percentile(relay, 0.99), "relay-p99-ms")
	b.ReportMetric(percentile(commits, 0.5), "commit-p50-ms")
}
