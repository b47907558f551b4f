package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skyflow-oss/skyflow/local/kafka"
	"github.com/skyflow-oss/skyflow/local/manifest"
)

const (
	ns         = "skyflow"
	brokerName = "default"
	waitFor    = 20 * time.Second // generous: CI runs every package at once on 2 cores
)

// testLogger writes to the test's output, so logs show with failures.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startKafka runs an embedded cluster on dir until the test ends.
func startKafka(t *testing.T, dir string) *kafka.Cluster {
	t.Helper()
	c, err := kafka.Start(t.Context(), dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// newSet is one Broker with short backoffs and the given Triggers.
func newSet(triggers ...manifest.Trigger) *manifest.Set {
	set := &manifest.Set{Brokers: []manifest.Broker{{
		Meta:     manifest.Meta{Name: brokerName, Namespace: ns},
		Delivery: &manifest.Delivery{BackoffPolicy: "exponential", BackoffDelay: 50 * time.Millisecond, Timeout: 2 * time.Second},
	}}}
	set.Triggers = triggers
	return set
}

func trigger(name, subscriberURL string) manifest.Trigger {
	return manifest.Trigger{Meta: manifest.Meta{Name: name, Namespace: ns}, Broker: brokerName,
		Subscriber: manifest.Destination{URI: subscriberURL}}
}

// startBroker runs a Broker for set until the test ends (or Close); opts
// may change its Config.
func startBroker(t *testing.T, c *kafka.Cluster, set *manifest.Set, reg prometheus.Registerer, opts ...func(*Config)) *Broker {
	t.Helper()
	var b *Broker
	resolve := func(d manifest.Destination, namespace string) (*url.URL, error) {
		if d.Ref != nil && d.Ref.Kind == "Broker" {
			return url.Parse(b.IngressURL(namespace, d.Ref.Name))
		}
		if d.URI == "" {
			return nil, fmt.Errorf("no URI")
		}
		return url.Parse(d.URI)
	}
	cfg := Config{Set: set, Seeds: c.Seeds(), Resolve: resolve, Listen: "127.0.0.1:0",
		Logger: testLogger(t), Registerer: reg, ProduceTimeout: 2 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return b
}

// newEvent is a valid event of the given type.
func newEvent(id, typ string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("/test")
	e.SetType(typ)
	_ = e.SetData(event.ApplicationJSON, map[string]string{"token": "tok_" + id})
	return e
}

// publish sends an event to the Broker's ingress in binary mode; it must be accepted.
func publish(t *testing.T, b *Broker, e event.Event) {
	t.Helper()
	req, err := cehttp.NewHTTPRequestFromEvent(t.Context(), b.IngressURL(ns, brokerName), e)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("publish %s: status %d, want 202", e.ID(), resp.StatusCode)
	}
}

// received is one request a subscriber got.
type received struct {
	event  event.Event
	header http.Header
	at     time.Time
}

// subscriber is an HTTP endpoint that records every event it receives and
// answers with respond (200 by default).
type subscriber struct {
	*httptest.Server
	mu      sync.Mutex
	got     []received
	respond func(attempt int, e *event.Event, w http.ResponseWriter)
}

func newSubscriber(t *testing.T, respond func(attempt int, e *event.Event, w http.ResponseWriter)) *subscriber {
	s := &subscriber{respond: respond}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.got = append(s.got, received{*e, r.Header.Clone(), time.Now()})
		attempt := 0
		for _, g := range s.got {
			if g.event.ID() == e.ID() {
				attempt++
			}
		}
		respond := s.respond
		s.mu.Unlock()
		if respond == nil {
			w.WriteHeader(http.StatusOK)
			return
		}
		respond(attempt, e, w)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *subscriber) received() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.got...)
}

func (s *subscriber) ids() []string {
	var ids []string
	for _, r := range s.received() {
		ids = append(ids, r.event.ID())
	}
	return ids
}

// waitReceived waits until the subscriber got at least n requests.
func (s *subscriber) waitReceived(t *testing.T, n int) []received {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		got := s.received()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscriber got %d requests (%v), want %d", len(got), s.ids(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// committed sums the committed offsets of a Trigger's consumer group.
func committed(t *testing.T, c *kafka.Cluster, group string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(t.Context(), group)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
	return sum
}

// waitCommitted waits until a group has committed n records in all.
func waitCommitted(t *testing.T, c *kafka.Cluster, group string, n int64) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		got := committed(t, c, group)
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s committed %d records, want %d", group, got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// quiet waits a little to let unwanted deliveries show up.
func quiet() { time.Sleep(300 * time.Millisecond) }

// counterValue reads a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// histogramCount sums the observations of a histogram family in reg.
func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

// ctxWithWait is the test's context, bounded by waitFor.
func ctxWithWait(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	t.Cleanup(cancel)
	return ctx
}
