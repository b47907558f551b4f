package tests

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyflow-oss/skyflow/local/broker"
	"github.com/skyflow-oss/skyflow/local/kafka"
	"github.com/skyflow-oss/skyflow/local/manifest"
)

// ingressWindow is how long each publisher count publishes for.
const ingressWindow = 3 * time.Second

// ingressBody is the data of every benchmark event, the size of a typical
// record event.
var ingressBody = bytes.Repeat([]byte("x"), 256)

// BenchmarkBrokerIngress measures the broker ingress alone, as a function's
// outbox uses it: 1 and 8 publishers, each POSTing binary-mode CloudEvents
// one after another for a fixed window, each event answered 202 only once
// it is durable on disk (the embedded Kafka process, on the benchmark's
// temporary directory). The baseline is the disk's durable write rate as a
// naive writer sees it: the same number of publishers each appending the
// same bytes to one file with write+fdatasync, in the same run.
//
// Reported per publisher count: events/s, p50-ms and p99-ms of the POST,
// baseline-writes/s, and ratio-vs-fdatasync (ingress events/s over the
// baseline's writes/s), and the group commit's events/sync and sync-ms
// (the mean duration of one round's fsyncs).
func BenchmarkBrokerIngress(b *testing.B) {
	ctx := b.Context()
	log := slog.New(slog.NewTextHandler(&testLog{t: b}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cluster, err := kafka.Start(ctx, b.TempDir(), log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cluster.Close)
	set := &manifest.Set{Brokers: []manifest.Broker{{
		Meta: manifest.Meta{Name: "default", Namespace: manifest.DefaultNamespace},
	}}}
	reg := prometheus.NewRegistry()
	br, err := broker.New(broker.Config{
		Set:        set,
		Seeds:      cluster.Seeds(),
		Resolve:    func(d manifest.Destination, _ string) (*url.URL, error) { return url.Parse(d.URI) },
		Listen:     "127.0.0.1:0",
		Logger:     log,
		Registerer: reg,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(br.Close) // before the cluster's Close: cleanups run last first
	if err := br.Start(ctx); err != nil {
		b.Fatal(err)
	}
	ingress := br.IngressURL(manifest.DefaultNamespace, "default")
	baseDir := b.TempDir()

	for _, publishers := range []int{1, 8} {
		b.Run(fmt.Sprintf("publishers=%d", publishers), func(b *testing.B) {
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				Proxy: nil, MaxIdleConnsPerHost: publishers}}
			defer client.CloseIdleConnections()
			publishEvents(b, client, ingress, publishers, 20*time.Millisecond) // warm up connections and partitions
			var lat []time.Duration
			var events, writes int
			var ingressTime, baseTime time.Duration
			before := syncStats(b, reg)
			for b.Loop() {
				l := publishEvents(b, client, ingress, publishers, ingressWindow)
				lat = append(lat, l...)
				events += len(l)
				ingressTime += ingressWindow
				baseTime += fdatasyncWrites(b, filepath.Join(baseDir, "baseline.log"), publishers, len(l))
				writes += len(l)
			}
			syncs := syncStats(b, reg).minus(before)
			rate := float64(events) / ingressTime.Seconds()
			baseRate := float64(writes) / baseTime.Seconds()
			b.ReportMetric(rate, "events/s")
			b.ReportMetric(percentile(lat, 0.50), "p50-ms")
			b.ReportMetric(percentile(lat, 0.99), "p99-ms")
			b.ReportMetric(baseRate, "baseline-writes/s")
			b.ReportMetric(rate/baseRate, "ratio-vs-fdatasync")
			if syncs.rounds > 0 {
				b.ReportMetric(syncs.events/syncs.rounds, "events/sync")
				b.ReportMetric(1000*syncs.seconds/syncs.rounds, "sync-ms")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// ingressSyncs are the broker's group commit counters.
type ingressSyncs struct{ rounds, events, seconds float64 }

func (s ingressSyncs) minus(o ingressSyncs) ingressSyncs {
	return ingressSyncs{s.rounds - o.rounds, s.events - o.events, s.seconds - o.seconds}
}

// syncStats reads the group commit's metrics from reg.
func syncStats(b *testing.B, reg *prometheus.Registry) ingressSyncs {
	b.Helper()
	families, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var s ingressSyncs
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch f.GetName() {
			case "skyflow_broker_sync_rounds_total":
				s.rounds += m.GetCounter().GetValue()
			case "skyflow_broker_synced_events_total":
				s.events += m.GetCounter().GetValue()
			case "skyflow_broker_sync_seconds":
				s.seconds += m.GetHistogram().GetSampleSum()
			}
		}
	}
	return s
}

// publishEvents runs publishers that each POST events one after another to the
// ingress for d, and returns the latency of every POST. Each publisher has
// a partition key of its own, as events of different vaults do.
func publishEvents(b *testing.B, client *http.Client, ingress string, publishers int, d time.Duration) []time.Duration {
	b.Helper()
	var (
		mu     sync.Mutex
		all    []time.Duration
		failed atomic.Value
		wg     sync.WaitGroup
		seq    atomic.Int64
	)
	deadline := time.Now().Add(d)
	for p := range publishers {
		wg.Go(func() {
			var lat []time.Duration
			for time.Now().Before(deadline) {
				id := fmt.Sprintf("ingress-%d", seq.Add(1))
				start := time.Now()
				if err := postEvent(client, ingress, id, fmt.Sprintf("tenant-%d", p)); err != nil {
					failed.CompareAndSwap(nil, err)
					break
				}
				lat = append(lat, time.Since(start))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return all
}

// postEvent sends one binary-mode event and wants 202.
func postEvent(client *http.Client, ingress, id, key string) error {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, ingress, bytes.NewReader(ingressBody))
	if err != nil {
		return err
	}
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", id)
	req.Header.Set("Ce-Source", "/tests/bench")
	req.Header.Set("Ce-Type", "com.skyflow.test.ingress")
	req.Header.Set("Ce-Partitionkey", key)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST %s: status %d, want 202", id, resp.StatusCode)
	}
	return nil
}

// fdatasyncWrites appends n copies of the event's bytes to path from the
// given number of writers, each write followed by its own fdatasync, and
// returns how long that took.
func fdatasyncWrites(b *testing.B, path string, writers, n int) time.Duration {
	b.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var (
		left   atomic.Int64
		failed atomic.Value
		wg     sync.WaitGroup
	)
	left.Store(int64(n))
	start := time.Now()
	for range writers {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				if _, err := f.Write(ingressBody); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
				if err := syscall.Fdatasync(int(f.Fd())); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return elapsed
}
