package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// postEvent sends a binary-mode event with its own id and partition key
// and returns the status.
func postEvent(ctx context.Context, client *http.Client, url, id, key string) (int, error) {
	e := newEvent(id, "com.skyflow.test")
	e.SetExtension("partitionkey", key)
	req, err := cehttp.NewHTTPRequestFromEvent(ctx, url, e)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// acked is an event answered 202, and when.
type acked struct {
	id string
	at time.Time
}

// runPublishers runs n publishers that POST distinct events one after
// another until stop is closed, and returns the events answered 202 and
// the number answered 503.
func runPublishers(t *testing.T, url string, n int, stop <-chan struct{}) (ok []acked, refused int) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	defer client.CloseIdleConnections()
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		refusen atomic.Int64
		failed  atomic.Value
	)
	for p := range n {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("p%d-e%d", p, i)
				code, err := postEvent(t.Context(), client, url, id, fmt.Sprintf("key-%d", p))
				switch {
				case err != nil:
					failed.CompareAndSwap(nil, err)
					return
				case code == http.StatusAccepted:
					mu.Lock()
					ok = append(ok, acked{id, time.Now()})
					mu.Unlock()
				case code == http.StatusServiceUnavailable:
					refusen.Add(1)
				default:
					failed.CompareAndSwap(nil, fmt.Errorf("event %s: status %d", id, code))
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	return ok, int(refusen.Load())
}

// storedIDs reads the Broker's topic until it has seen every id of want.
func storedIDs(t *testing.T, seeds []string, want []acked) map[string]bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(newSet().Brokers[0].Topic()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := ctxWithWait(t)
	got := map[string]bool{}
	missing := func() []string {
		var m []string
		for _, a := range want {
			if !got[a.id] {
				m = append(m, a.id)
			}
		}
		return m
	}
	for len(missing()) > 0 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got[headerMap(r)["ce_id"]] = true })
	}
	if m := missing(); len(m) > 0 {
		slices.Sort(m)
		t.Fatalf("%d of %d events answered 202 are not in the topic: %v", len(m), len(want), m[:min(len(m), 20)])
	}
	return got
}

// TestIngressNeverAcknowledgesAnEventThatAKafkaCrashLoses kills the Kafka
// process with SIGKILL under load from 16 publishers, lets it restart on
// the same data and address, and reads every acknowledged event back. A
// process crash leaves what was written in the page cache, so this tests
// the crash, the restart, kfake's recovery of its log and the clients'
// reconnection, not the fsync: that a power loss keeps what Sync fsynced
// is the kernel's promise, and kafka's tests check what Sync fsyncs.
func TestIngressNeverAcknowledgesAnEventThatAKafkaCrashLoses(t *testing.T) {
	c := startKafka(t, t.TempDir())
	b := startBroker(t, c, newSet(), nil)
	url := b.IngressURL(ns, brokerName)

	stop := make(chan struct{})
	var killedAt time.Time
	go func() {
		defer close(stop)
		time.Sleep(time.Second)
		pid := c.PID()
		killedAt = time.Now()
		if err := c.Kill(t.Context()); err != nil {
			t.Errorf("kill -9 of the kafka process %d: %v", pid, err)
			return
		}
		t.Logf("killed kafka process %d; restarted as %d in %v", pid, c.PID(), time.Since(killedAt).Round(time.Millisecond))
		time.Sleep(1500 * time.Millisecond)
	}()
	ok, refused := runPublishers(t, url, 16, stop)

	var after int
	for _, a := range ok {
		if a.at.After(killedAt) {
			after++
		}
	}
	t.Logf("%d events acknowledged (%d after the kill), %d refused with 503", len(ok), after, refused)
	if after == 0 {
		t.Fatal("no event was acknowledged after Kafka restarted")
	}
	storedIDs(t, c.Seeds(), ok)
}

func TestConcurrentEventsShareSyncs(t *testing.T) {
	c := startKafka(t, t.TempDir())
	reg := prometheus.NewRegistry()
	b := startBroker(t, c, newSet(), reg)
	url := b.IngressURL(ns, brokerName)

	stop := make(chan struct{})
	time.AfterFunc(time.Second, func() { close(stop) })
	ok, refused := runPublishers(t, url, 16, stop)
	if refused > 0 {
		t.Fatalf("%d events refused", refused)
	}
	rounds := counterValue(t, b.metrics.syncRounds)
	synced := counterValue(t, b.metrics.syncedEvents)
	t.Logf("%d events in %v sync rounds (%.1f events per round)", len(ok), rounds, synced/rounds)
	if int(synced) != len(ok) {
		t.Fatalf("%v events synced, %d acknowledged", synced, len(ok))
	}
	if rounds >= synced {
		t.Fatalf("%v sync rounds for %v concurrent events: they do not share syncs", rounds, synced)
	}
	if n := histogramCount(t, reg, "skyflow_broker_sync_seconds"); n != uint64(rounds) {
		t.Errorf("sync duration histogram has %d observations, want %v", n, rounds)
	}
	storedIDs(t, c.Seeds(), ok)
}

func TestIngressAnswers503AndAcknowledgesNothingWhenTheSyncFails(t *testing.T) {
	c := startKafka(t, t.TempDir())
	var failing atomic.Bool
	failing.Store(true)
	b := startBroker(t, c, newSet(), nil, func(cfg *Config) {
		cfg.Sync = func(topic string, parts []int32) error {
			if failing.Load() {
				return errors.New("fsync: input/output error")
			}
			return c.Sync(topic, parts)
		}
	})
	url := b.IngressURL(ns, brokerName)

	code, body := post(t, http.MethodPost, url, binaryHeaders, []byte(`{}`))
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "input/output error") {
		t.Fatalf("got %d %q, want 503 naming the sync's error so that the sender retries", code, body)
	}
	if n := counterValue(t, b.metrics.ingested.WithLabelValues(ns, brokerName)); n != 0 {
		t.Fatalf("%v events counted as ingested", n)
	}
	failing.Store(false)
	if code, body := post(t, http.MethodPost, url, binaryHeaders, []byte(`{}`)); code != http.StatusAccepted {
		t.Fatalf("once the sync works: %d %q", code, body)
	}
}

func TestGroupCommitReleasesAnEventOnlyAfterASyncThatBeganAfterIt(t *testing.T) {
	type call struct {
		topic string
		parts []int32
	}
	calls := make(chan call)
	release := make(chan error)
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	g := newGroupCommit(func(topic string, parts []int32) error {
		calls <- call{topic, parts}
		return <-release
	}, m)
	defer g.close()

	waitAsync := func(topic string, p int32) <-chan error {
		ch := make(chan error, 1)
		go func() { ch <- g.wait(context.Background(), topic, p) }()
		return ch
	}
	first := waitAsync("t", 1)
	if c := <-calls; c.topic != "t" || !slices.Equal(c.parts, []int32{1}) {
		t.Fatalf("first round synced %v", c)
	}
	// Two events arrive while the first sync runs: they wait for the next.
	second, third := waitAsync("t", 2), waitAsync("t", 3)
	for joined := 0; joined < 2; time.Sleep(time.Millisecond) {
		g.mu.Lock()
		joined = g.next.events
		g.mu.Unlock()
	}
	release <- nil
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	select {
	case <-second:
		t.Fatal("an event that arrived during a sync was released by it")
	case <-third:
		t.Fatal("an event that arrived during a sync was released by it")
	default:
	}
	if c := <-calls; !slices.Equal(c.parts, []int32{2, 3}) {
		t.Fatalf("second round synced %v, want both waiting events' partitions at once", c)
	}
	release <- errors.New("EIO")
	if err := <-second; err == nil {
		t.Fatal("a failed sync released an event without its error")
	}
	if err := <-third; err == nil {
		t.Fatal("a failed sync released an event without its error")
	}
	if n := counterValue(t, m.syncRounds); n != 2 {
		t.Fatalf("%v rounds, want 2", n)
	}
}

func TestGroupCommitFailsWaitersAfterClose(t *testing.T) {
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	g := newGroupCommit(func(string, []int32) error { return nil }, m)
	if err := g.wait(t.Context(), "t", 0); err != nil {
		t.Fatal(err)
	}
	g.close()
	if err := g.wait(t.Context(), "t", 0); !errors.Is(err, errClosed) {
		t.Fatalf("wait after close: %v, want errClosed", err)
	}
}
