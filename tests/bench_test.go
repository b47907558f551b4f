package tests

// Benchmarks of the figures Skyflow promises: a function's cold start, the
// broker's delivery latency and a function's idle memory. These machines
// are noisy, so each figure comes with a baseline measured in the same run,
// interleaved with it, and is reported as a ratio too:
//
//	make bench   # go test -run '^$' -bench . -benchtime 2s ./tests/...
//
// ns/op is suppressed: an iteration holds several measurements plus their
// set-up and tear-down, so its duration means nothing. The metrics that
// matter are the p50/p99 (ms), MiB and ratio-* columns.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/skyflow-oss/skyflow/local/broker"
	"github.com/skyflow-oss/skyflow/local/kafka"
	"github.com/skyflow-oss/skyflow/local/manifest"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

const echoType = "com.skyflow.test.echo"

// BenchmarkColdStart measures one function process from exec to its first
// 200 answer to a CloudEvent (the echo test function, on the shared host),
// against a minimal net/http server binary started and polled the same way.
// Each iteration starts one of each, in alternating order.
func BenchmarkColdStart(b *testing.B) {
	echo := buildFunctions(b, echoPackage)[echoPackage]
	plain := buildPlainServer(b)
	env := []string{"K_SERVICE=echo"}

	coldStart := func(bin string, i int) time.Duration {
		p := startProcess(b, bin, env...)
		d, err := p.waitFor(func(u string) *http.Request {
			return binaryEvent(context.Background(), u, echoType, fmt.Sprintf("cold-%d", i))
		}, "/")
		if err != nil {
			b.Fatal(err)
		}
		p.stop(b)
		return d
	}
	// Page the binaries into the cache so the first sample is not an outlier.
	coldStart(echo, -1)
	coldStart(plain, -1)

	var fn, base []time.Duration
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			fn = append(fn, coldStart(echo, i))
			base = append(base, coldStart(plain, i))
		} else {
			base = append(base, coldStart(plain, i))
			fn = append(fn, coldStart(echo, i))
		}
	}
	reportLatencies(b, fn, base, "ratio-vs-plain-go-server")
}

// BenchmarkEventDelivery measures one event from just before the POST to
// the broker ingress until the subscriber's handler has read it: the
// ingress, the embedded Kafka (kfake, group-committed fsync), the Trigger's
// dispatcher and its HTTP delivery. The baseline is the same binary-mode
// POST sent straight to the same subscriber. Events are published one at a
// time, alternating with the baseline; the Trigger is unordered (up to 32
// deliveries in flight), which does not matter for sequential publishes.
func BenchmarkEventDelivery(b *testing.B) {
	ctx := b.Context()
	log := slog.New(slog.NewTextHandler(&testLog{t: b}, &slog.HandlerOptions{Level: slog.LevelWarn}))

	type arrival struct {
		id string
		at time.Time
	}
	arrivals := make(chan arrival, 1024)
	sub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		at := time.Now()
		w.WriteHeader(http.StatusOK)
		select {
		case arrivals <- arrival{r.Header.Get("Ce-Id"), at}:
		default: // nobody is waiting for this one (a redelivery)
		}
	}))
	b.Cleanup(sub.Close)

	cluster, err := kafka.Start(ctx, b.TempDir(), log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cluster.Close)
	set := &manifest.Set{
		Brokers: []manifest.Broker{{
			Meta:     manifest.Meta{Name: "default", Namespace: manifest.DefaultNamespace},
			Delivery: &manifest.Delivery{Timeout: 5 * time.Second},
		}},
		Triggers: []manifest.Trigger{{
			Meta:       manifest.Meta{Name: "bench-latency", Namespace: manifest.DefaultNamespace},
			Broker:     "default",
			Subscriber: manifest.Destination{URI: sub.URL},
		}},
	}
	br, err := broker.New(broker.Config{
		Set:     set,
		Seeds:   cluster.Seeds(),
		Resolve: func(d manifest.Destination, _ string) (*url.URL, error) { return url.Parse(d.URI) },
		Listen:  "127.0.0.1:0",
		Logger:  log,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(br.Close) // before the cluster's Close: cleanups run last first
	if err := br.Start(ctx); err != nil {
		b.Fatal(err)
	}
	ingress := br.IngressURL(manifest.DefaultNamespace, "default")

	// Keep-alive connections, as a function's outbox and the broker use.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	post := func(u, id string, want int) {
		resp, err := client.Do(binaryEvent(ctx, u, echoType, id))
		if err != nil {
			b.Fatalf("POST %s: %v", u, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			b.Fatalf("POST %s answered %d, want %d", u, resp.StatusCode, want)
		}
	}
	arrived := func(id string, within time.Duration) time.Time {
		timeout := time.After(within)
		for {
			select {
			case a := <-arrivals:
				if a.id == id {
					return a.at
				}
			case <-timeout:
				b.Fatalf("event %s did not reach the subscriber within %v", id, within)
			}
		}
	}

	// The dispatcher joins its consumer group after Start; the first event
	// waits for that. A few more warm the connections.
	for i := range 5 {
		id := fmt.Sprintf("warmup-%d", i)
		post(ingress, id, http.StatusAccepted)
		arrived(id, time.Minute)
		post(sub.URL, id+"-direct", http.StatusOK)
		arrived(id+"-direct", 10*time.Second)
	}

	var viaBroker, direct, acks []time.Duration
	throughBroker := func(i int) {
		id := fmt.Sprintf("broker-%d", i)
		start := time.Now()
		post(ingress, id, http.StatusAccepted)
		acks = append(acks, time.Since(start))
		viaBroker = append(viaBroker, arrived(id, 10*time.Second).Sub(start))
	}
	straight := func(i int) {
		id := fmt.Sprintf("direct-%d", i)
		start := time.Now()
		post(sub.URL, id, http.StatusOK)
		direct = append(direct, arrived(id, 10*time.Second).Sub(start))
	}
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			throughBroker(i)
			straight(i)
		} else {
			straight(i)
			throughBroker(i)
		}
	}
	reportLatencies(b, viaBroker, direct, "ratio-vs-direct-post")
	// Of which: the ingress's answer, once Kafka has the event on disk.
	b.ReportMetric(percentile(acks, 0.50), "ingress-ack-p50-ms")
}

// BenchmarkIdleRSS measures the resident memory of function processes that
// are ready and then idle for a second: the real outbox-sweep function
// (connected to a real database, as its readiness probe requires) and the
// echo test function, against the minimal net/http server. The three run
// side by side in each iteration; the figures are medians over iterations.
func BenchmarkIdleRSS(b *testing.B) {
	bins := buildFunctions(b, outboxSweepPackage, echoPackage)
	plain := buildPlainServer(b)
	dbURL := testenv.Database(b)

	get := func(u string) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		return req
	}
	var sweep, echo, base []float64
	for b.Loop() {
		procs := []*process{
			startProcess(b, bins[outboxSweepPackage], "K_SERVICE=outbox-sweep", "DATABASE_URL="+dbURL,
				"K_SINK=http://127.0.0.1:9/skyflow/default"),
			startProcess(b, bins[echoPackage], "K_SERVICE=echo"),
			startProcess(b, plain),
		}
		paths := []string{"/health/readiness", "/health/readiness", "/"}
		errs := make([]error, len(procs))
		var wg sync.WaitGroup
		for i, p := range procs {
			wg.Go(func() { _, errs[i] = p.waitFor(get, paths[i]) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Second)
		sweep = append(sweep, procs[0].rssMiB(b))
		echo = append(echo, procs[1].rssMiB(b))
		base = append(base, procs[2].rssMiB(b))
		for _, p := range procs {
			p.stop(b)
		}
	}
	s, e, p := median(sweep), median(echo), median(base)
	b.ReportMetric(s, "outbox-sweep-MiB")
	b.ReportMetric(e, "echo-MiB")
	b.ReportMetric(p, "baseline-MiB")
	if p > 0 {
		b.ReportMetric(s/p, "ratio-vs-plain-go-server")
		b.ReportMetric(e/p, "echo-ratio-vs-plain-go-server")
	}
	b.ReportMetric(0, "ns/op")
}
