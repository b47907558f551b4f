// Package broker runs Knative's Kafka broker on one machine: an HTTP ingress
// that stores CloudEvents in the Broker's Kafka topic in binary content
// mode, and one dispatcher per Trigger that consumes the topic in its own
// consumer group, filters, delivers with Knative's retry and dead-letter
// rules, and stores replies back in the topic.
//
// Delivery is at least once: an offset is committed only when its event is
// finished (delivered, filtered out or dead-lettered).
//
// # Acknowledging an event
//
// The ingress answers 202 only once the event is durable: Kafka has
// acknowledged the record and, for the embedded cluster, the files that
// hold it have been fsynced (Config.Sync, kafka.Cluster.Sync). Fsyncing
// each event on its own bounded the ingress at one disk flush per event,
// so concurrent events share: the producer puts the records that are
// buffered together into one produce request, and a group commit
// (groupcommit.go) fsyncs for every event whose record was acknowledged
// while the previous fsync ran, then answers them all. If the sync fails
// the ingress answers 503 and the sender sends the event again; the
// record may then be in the topic twice, which at-least-once allows.
// Replies stored by the dispatchers wait for the same sync before their
// event's offset is committed.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skyflow-oss/skyflow/local/kafka"
	"github.com/skyflow-oss/skyflow/local/manifest"
	assertion "github.com/skyflow-oss/skyflow/runtime/sender"
)

// Defaults of Config. One partition per topic: every group commit fsyncs
// the segment and index file of each partition its events touched, so on
// one disk fewer partitions mean fewer fsyncs per round (8 publishers:
// 1,736 events/s, p99 14 ms with one partition; 1,014/s, p99 45 ms with
// four, in one run). Every Trigger delivers unordered now, so partitions
// bring the local dispatchers no parallelism; a real Kafka cluster sets
// its own count.
const (
	DefaultPartitions     = 1
	DefaultMaxEventBytes  = 4 << 20
	DefaultProduceTimeout = 10 * time.Second
)

// Config configures a Broker.
type Config struct {
	// Set holds the Brokers and Triggers to run.
	Set *manifest.Set
	// Seeds are the Kafka bootstrap addresses.
	Seeds []string
	// Resolve turns a subscriber or dead-letter sink into a URL; it is
	// called for every delivery attempt, so a Service may move.
	Resolve func(d manifest.Destination, namespace string) (*url.URL, error)
	// Listen is the ingress address, e.g. "127.0.0.1:0".
	Listen string
	Logger *slog.Logger
	// HTTPClient sends deliveries; per-attempt timeouts come from the
	// delivery spec, so it needs no Timeout of its own.
	HTTPClient *http.Client
	// Partitions of the topics created (default 1).
	Partitions int32
	// Signer signs each delivery to a Service (runtime/sender); nil sends
	// them unsigned, which functions refuse.
	Signer *assertion.Signer
	// Registerer receives the metrics (optional).
	Registerer prometheus.Registerer
	// MaxEventBytes bounds an ingress request body (default 4 MiB).
	MaxEventBytes int64
	// ProduceTimeout bounds the wait for Kafka to acknowledge an event
	// and for it to be made durable (default 10s); past it the ingress
	// answers 503.
	ProduceTimeout time.Duration
	// Sync makes the records Kafka has acknowledged on these partitions
	// durable (kafka.Cluster.Sync). Nil means the Sync of the embedded
	// cluster of this process that listens on Seeds (kafka.Lookup), so
	// that no caller can forget it, or none for another cluster, whose
	// acks=all acknowledgement is its durability.
	Sync func(topic string, partitions []int32) error
}

// Broker is the running ingress and dispatchers of every Broker in a Set.
type Broker struct {
	cfg      Config
	log      *slog.Logger
	client   *http.Client
	metrics  *metrics
	brokers  map[string]*manifest.Broker // by namespace/name
	ln       net.Listener
	srv      *http.Server
	producer *kgo.Client
	commits  *groupCommit

	mu          sync.Mutex
	started     bool
	cancel      context.CancelFunc
	dispatchers []*dispatcher
	closeOnce   sync.Once
}

// New checks the configuration, binds the ingress address and prepares the
// Kafka producer. Nothing is consumed or served before Start.
func New(cfg Config) (*Broker, error) {
	switch {
	case cfg.Set == nil:
		return nil, errors.New("broker: Config.Set is required")
	case len(cfg.Seeds) == 0:
		return nil, errors.New("broker: Config.Seeds is required")
	case cfg.Resolve == nil:
		return nil, errors.New("broker: Config.Resolve is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = DefaultPartitions
	}
	if cfg.MaxEventBytes <= 0 {
		cfg.MaxEventBytes = DefaultMaxEventBytes
	}
	if cfg.ProduceTimeout <= 0 {
		cfg.ProduceTimeout = DefaultProduceTimeout
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Sync == nil {
		cfg.Sync = func(string, []int32) error { return nil }
		if c := kafka.Lookup(cfg.Seeds); c != nil {
			cfg.Sync = c.Sync
		}
	}
	b := &Broker{cfg: cfg, log: cfg.Logger.With("component", "broker"), client: cfg.HTTPClient,
		brokers: map[string]*manifest.Broker{}}
	if b.client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = maxInFlight
		// A 3xx is an answer, not a detour: following it would turn the
		// POST into a GET.
		b.client = &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	for i := range cfg.Set.Brokers {
		br := &cfg.Set.Brokers[i]
		b.brokers[br.Namespace+"/"+br.Name] = br
	}
	for i := range cfg.Set.Triggers {
		t := &cfg.Set.Triggers[i]
		if b.brokers[t.Namespace+"/"+t.Broker] == nil {
			return nil, fmt.Errorf("broker: Trigger %s/%s: no Broker %q in namespace %s", t.Namespace, t.Name, t.Broker, t.Namespace)
		}
	}
	var err error
	if b.metrics, err = newMetrics(cfg.Registerer); err != nil {
		return nil, fmt.Errorf("broker: metrics: %w", err)
	}
	b.producer, err = kgo.NewClient(
		kgo.SeedBrokers(cfg.Seeds...),
		kgo.RecordDeliveryTimeout(cfg.ProduceTimeout),
		// No linger: a lone event goes at once. Events that arrive while a
		// produce request is in flight (one at a time, below) are buffered
		// and go together in the next request.
		kgo.ProducerLinger(0),
		// Not idempotent: idempotence would only dedupe the client's own
		// retries, which at-least-once delivery tolerates, while its
		// sequence state is what a crash of the embedded broker loses
		// (kfake saves it on an orderly stop only), failing the next
		// produces. It also leaves one produce request in flight per
		// broker, so records of one partition are stored in the order
		// they were produced; an event waits for its ack anyway, so a
		// sender's events that depend on each other are ordered too.
		kgo.DisableIdempotentWrite(),
		kgo.WithLogger(kafka.ClientLogger(b.log)),
	)
	if err != nil {
		return nil, fmt.Errorf("broker: kafka producer: %w", err)
	}
	if b.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		b.producer.Close()
		return nil, fmt.Errorf("broker: ingress: %w", err)
	}
	b.srv = &http.Server{Handler: b.routes(), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	b.commits = newGroupCommit(cfg.Sync, b.metrics)
	return b, nil
}

// Start creates the Brokers' topics, sets the initial offsets of new
// Triggers, serves the ingress and starts one dispatcher per Trigger. The
// dispatchers run until Close or until ctx is done. Call Close even when
// Start fails: it stops whatever had started.
func (b *Broker) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		return errors.New("broker: already started")
	}
	b.started = true
	topics := make([]string, 0, len(b.brokers))
	for _, br := range b.brokers {
		topics = append(topics, br.Topic())
	}
	if err := kafka.EnsureTopics(ctx, b.cfg.Seeds, topics, b.cfg.Partitions); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	for i := range b.cfg.Set.Triggers {
		t := &b.cfg.Set.Triggers[i]
		if err := b.initOffsets(ctx, t); err != nil {
			return fmt.Errorf("broker: Trigger %s/%s: initial offsets: %w", t.Namespace, t.Name, err)
		}
	}
	go func() {
		if err := b.srv.Serve(b.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.Error("ingress stopped", "err", err)
		}
	}()
	runCtx, cancel := context.WithCancel(ctx)
	b.cancel = cancel
	for i := range b.cfg.Set.Triggers {
		t := &b.cfg.Set.Triggers[i]
		d, err := b.startDispatcher(runCtx, t, b.brokers[t.Namespace+"/"+t.Broker])
		if err != nil {
			return fmt.Errorf("broker: Trigger %s/%s: %w", t.Namespace, t.Name, err)
		}
		b.dispatchers = append(b.dispatchers, d)
	}
	b.log.Info("broker started", "ingress", b.ln.Addr().String(), "brokers", len(b.brokers), "triggers", len(b.dispatchers))
	return nil
}

// IngressURL is the address to send a Broker's events to, with Knative's
// /<namespace>/<name> path.
func (b *Broker) IngressURL(namespace, name string) string {
	host := "127.0.0.1"
	addr := b.ln.Addr().(*net.TCPAddr)
	if !addr.IP.IsUnspecified() {
		host = addr.IP.String()
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(addr.Port)) + "/" + namespace + "/" + name
}

// Close stops the dispatchers (in-flight deliveries are abandoned and their
// offsets left uncommitted, so they are delivered again on the next start),
// then the ingress, then the group commit and the producer.
func (b *Broker) Close() {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		cancel, ds := b.cancel, b.dispatchers
		b.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		var wg sync.WaitGroup
		for _, d := range ds {
			wg.Go(d.stop)
		}
		wg.Wait()
		ctx, done := context.WithTimeout(context.Background(), 5*time.Second)
		defer done()
		if err := b.srv.Shutdown(ctx); err != nil {
			b.srv.Close()
		}
		b.ln.Close()
		b.commits.close()
		b.producer.Close()
	})
}
