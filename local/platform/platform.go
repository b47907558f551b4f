// Package platform is the local platform behind `make run`: the embedded
// default of everything Skyflow runs on in a cluster, started from the same
// manifests. It starts (or connects to) PostgreSQL, Redis and Kafka, applies
// the migrations, builds the functions, runs each as its own process with
// scale to zero, and runs the broker, the triggers and the ping sources.
//
// It is an emulator for development and tests; it never replaces Knative in
// production.
package platform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/domain/push"
	"github.com/skyflow-oss/skyflow/local/broker"
	"github.com/skyflow-oss/skyflow/local/deps"
	"github.com/skyflow-oss/skyflow/local/devcert"
	"github.com/skyflow-oss/skyflow/local/kafka"
	"github.com/skyflow-oss/skyflow/local/mailbox"
	"github.com/skyflow-oss/skyflow/local/manifest"
	"github.com/skyflow-oss/skyflow/local/ping"
	"github.com/skyflow-oss/skyflow/local/supervisor"
	"github.com/skyflow-oss/skyflow/runtime/db/migrate"
	"github.com/skyflow-oss/skyflow/runtime/sender"
)

// DefaultBroker is the Broker whose ingress every function gets as K_SINK.
const DefaultBroker = "default"

// Config says what to run. Zero values mean the embedded defaults.
type Config struct {
	// Root is the repository: functions are built there.
	Root string
	// DevDir holds the private PostgreSQL, Redis and Kafka data and the
	// built binaries (default Root/.dev).
	DevDir string
	// Manifests are the directories of Knative manifests (default
	// Root/knative and Root/eventing).
	Manifests []string
	// PublicAddr is where the public Service (the gateway) listens
	// (default 127.0.0.1:8080), and PublicTLSAddr where its front
	// terminates HTTPS with the development certificate, as Kourier does
	// in a cluster (default 127.0.0.1:8443; port 0 picks a free one).
	PublicAddr, PublicTLSAddr string
	// IdleAfter is the default scale-to-zero period (default 30s).
	IdleAfter time.Duration
	// DatabaseURL and RedisURL name external servers instead of the
	// private ones under DevDir.
	DatabaseURL, RedisURL string
	// RedisPrefix is the functions' Redis key prefix, REDIS_PREFIX
	// (default theirs, skyflow:). Platforms that share a Redis server need
	// one each: the gateway caches answers there for every replica (JWKS,
	// OpenAPI, the VAPID key), and another platform's would be wrong.
	RedisPrefix string
	// KafkaBrokers names a real Kafka cluster instead of the embedded one.
	KafkaBrokers []string
	// FunctionEnv is added to every function's environment.
	FunctionEnv map[string]string
	// Logs receives the functions' output, prefixed by name (default stderr).
	Logs io.Writer
	// Logger receives the platform's own log (default slog.Default()).
	Logger *slog.Logger
	// BinDir is where the functions are built (default DevDir/bin), and
	// Build builds them there (default supervisor.Build). Tests that start
	// many platforms share one directory and build each package once.
	BinDir string
	Build  func(ctx context.Context, services []manifest.Service, binDir string, log io.Writer) error
}

// Platform is a running local platform.
type Platform struct {
	cfg                   Config
	log                   *slog.Logger
	set                   *manifest.Set
	postgres              *deps.Postgres
	pgbouncer             *deps.PgBouncer
	redis                 *deps.Redis
	databaseURL, redisURL string
	functionsDatabaseURL  string // the functions' DATABASE_URL: through PgBouncer when there is one
	kafka                 *kafka.Cluster
	broker                *broker.Broker
	supervisor            *supervisor.Supervisor
	admin                 *http.Server
	adminURL              string
	senders               map[string]*sender.Signer // gateway, broker, ping
	tlsAddr               string
	tlsListener           net.Listener // on tlsAddr, until the supervisor serves it (https.go)
	adminKey              string
	mailbox               *mailbox.Mailbox // the local mail relay (notifications.go)
	mailCA                string
	vapid                 *push.VAPID
	stopRun               context.CancelFunc
	stopPing              context.CancelFunc
	pingDone              chan struct{}
	closers               []func(context.Context) error
}

// Start brings the platform up, or returns an error that says what to fix
// (an invalid manifest names its file and field) and leaves nothing running.
func Start(ctx context.Context, cfg Config) (_ *Platform, err error) {
	cfg = withDefaults(cfg)
	p := &Platform{cfg: cfg, log: cfg.Logger}
	defer func() {
		if err != nil {
			p.Close(context.WithoutCancel(ctx))
		}
	}()
	// Manifests first: a mistake there must stop us before anything starts.
	if p.set, err = manifest.Load(cfg.Manifests...); err != nil {
		return nil, fmt.Errorf("the manifests are not valid:\n%w", err)
	}
	if err := p.makeSenders(); err != nil {
		return nil, err
	}
	if err := p.startStores(ctx); err != nil {
		return nil, err
	}
	if err := p.startEventing(ctx); err != nil {
		return nil, err
	}
	if err := p.startFunctions(ctx); err != nil {
		return nil, err
	}
	// The dispatchers live until Close, not until the start-up deadline.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	p.stopRun = stopRun
	if err := p.broker.Start(runCtx); err != nil {
		return nil, err
	}
	if err := p.supervisor.Start(ctx); err != nil {
		return nil, err
	}
	if err := p.bootstrapAdmin(ctx); err != nil {
		return nil, err
	}
	p.startPingSources(runCtx)
	return p, p.startAdmin()
}

func withDefaults(cfg Config) Config {
	if cfg.DevDir == "" {
		cfg.DevDir = filepath.Join(cfg.Root, ".dev")
	}
	if len(cfg.Manifests) == 0 {
		cfg.Manifests = []string{filepath.Join(cfg.Root, "knative"), filepath.Join(cfg.Root, "eventing")}
	}
	if cfg.PublicAddr == "" {
		cfg.PublicAddr = "127.0.0.1:8080"
	}
	if cfg.PublicTLSAddr == "" {
		cfg.PublicTLSAddr = "127.0.0.1:8443"
	}
	if cfg.IdleAfter == 0 {
		cfg.IdleAfter = supervisor.DefaultIdleAfter
	}
	if cfg.Logs == nil {
		cfg.Logs = os.Stderr
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// startStores starts PostgreSQL, its PgBouncer and Redis (or takes the
// external ones) and applies the migrations: functions never migrate on a
// cold start. The functions connect through PgBouncer in transaction mode,
// as in a cluster; migrations and the platform's own work connect directly.
func (p *Platform) startStores(ctx context.Context) error {
	p.databaseURL, p.redisURL = p.cfg.DatabaseURL, p.cfg.RedisURL
	// A test platform's own database on `skyflow deps run`'s PostgreSQL goes
	// through that run's PgBouncer; any other given database is used as is.
	p.functionsDatabaseURL, _ = deps.PooledFromEnv(p.databaseURL)
	if p.databaseURL == "" || p.redisURL == "" {
		if err := deps.EnsureInstalled(ctx, p.cfg.Logs); err != nil {
			return err
		}
	}
	if p.databaseURL == "" {
		pg, err := deps.StartPostgres(ctx, filepath.Join(p.cfg.DevDir, "postgres"), p.cfg.Logs)
		if err != nil {
			return err
		}
		p.postgres, p.databaseURL = pg, pg.URL
		p.closers = append(p.closers, pg.Stop)
		pb, err := deps.StartPgBouncer(ctx, filepath.Join(p.cfg.DevDir, "pgbouncer"), pg.Port, p.cfg.Logs)
		if err != nil {
			return err
		}
		p.pgbouncer = pb
		p.closers = append(p.closers, pb.Stop)
		if p.functionsDatabaseURL, err = pb.Pooled(pg.URL); err != nil {
			return err
		}
	}
	if p.redisURL == "" {
		rd, err := deps.StartRedis(ctx, filepath.Join(p.cfg.DevDir, "redis"), p.cfg.Logs)
		if err != nil {
			return err
		}
		p.redis, p.redisURL = rd, rd.URL
		p.closers = append(p.closers, rd.Stop)
	}
	if _, err := migrate.Up(ctx, p.databaseURL, io.Discard); err != nil {
		return fmt.Errorf("migrating the database: %w", err)
	}
	return nil
}

// startEventing starts Kafka (embedded, in a process of its own that is
// restarted if it dies, unless external) and creates the broker, whose
// ingress address the functions need as K_SINK.
func (p *Platform) startEventing(ctx context.Context) error {
	if len(p.cfg.KafkaBrokers) > 0 {
		p.kafka = kafka.External(p.cfg.KafkaBrokers)
	} else {
		k, err := kafka.Start(ctx, filepath.Join(p.cfg.DevDir, "kafka"), p.log)
		if err != nil {
			return err
		}
		p.kafka = k
	}
	b, err := broker.New(broker.Config{
		Set:        p.set,
		Seeds:      p.kafka.Seeds(),
		Resolve:    p.resolve,
		Listen:     "127.0.0.1:0",
		Logger:     p.log,
		Registerer: platformMetrics,
		Signer:     p.senders[sender.Broker],
		// The ingress acknowledges an event once this has made it durable:
		// the embedded broker's files fsynced (it writes, never fsyncs), or
		// nothing to do for an external cluster's acks=all.
		Sync: p.kafka.Sync,
	})
	if err != nil {
		return err
	}
	p.broker = b
	return nil
}

// startFunctions builds every function and opens its stable address.
func (p *Platform) startFunctions(ctx context.Context) error {
	binDir, build := p.cfg.BinDir, p.cfg.Build
	if binDir == "" {
		binDir = filepath.Join(p.cfg.DevDir, "bin")
	}
	if build == nil {
		build = supervisor.Build
	}
	start := time.Now()
	if err := build(ctx, p.set.Services, binDir, p.cfg.Logs); err != nil {
		return err
	}
	p.log.Info("functions built", "count", len(p.set.Services), "ms", time.Since(start).Milliseconds())
	env := map[string]string{
		"DATABASE_URL": p.functionsDatabaseURL,
		"REDIS_URL":    p.redisURL,
		"K_SINK":       p.SinkURL(),
		// Only the supervisor's fronts are reachable; processes stay on loopback.
		"SKYFLOW_BIND_HOST":       "127.0.0.1",
		"SKYFLOW_TRUSTED_SENDERS": p.trustedSenders(),
	}
	// The gateway's front serves HTTPS with the development certificate;
	// the gateway itself serves plain HTTP, as in a cluster.
	cert, key, err := devcert.Ensure(filepath.Join(p.cfg.DevDir, "tls"))
	if err != nil {
		return fmt.Errorf("the development TLS certificate: %w", err)
	}
	publicTLS, err := p.terminateTLS(cert, key)
	if err != nil {
		return err
	}
	// Notifications: the local mailbox stands for the mail relay, a VAPID
	// key pair made once signs pushes, and links point at the gateway.
	if err := p.startMailbox(cert, key); err != nil {
		return err
	}
	if p.vapid, err = ensureVAPID(filepath.Join(p.cfg.DevDir, VAPIDFile)); err != nil {
		return fmt.Errorf("the VAPID key pair: %w", err)
	}
	if err := p.settlePublicAddr(); err != nil {
		return err
	}
	// The developer's settings win over the manifests' cluster values: an
	// OTLP endpoint is the developer's collector, or none (empty disables).
	for _, k := range []string{"LOG_LEVEL", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "SKYFLOW_PREVIOUS_MASTER_KEY_FILES", "SKYFLOW_PPROF_DIR"} {
		env[k] = os.Getenv(k)
	}
	// No Vault named: the key-encryption key is the local master key,
	// made on first run and kept with the rest of the platform's data.
	if os.Getenv("VAULT_ADDR") == "" {
		keyFile := filepath.Join(p.cfg.DevDir, "master.key")
		if _, err := kek.EnsureKeyFile(keyFile); err != nil {
			return err
		}
		env["SKYFLOW_MASTER_KEY_FILE"] = keyFile
		// Each vault's own key (crypto-shredding) as a file beside it.
		env["SKYFLOW_VAULT_KEYS_DIR"] = filepath.Join(p.cfg.DevDir, "vault-keys")
	}
	if p.cfg.RedisPrefix != "" {
		env["REDIS_PREFIX"] = p.cfg.RedisPrefix
	}
	for k, v := range p.cfg.FunctionEnv {
		env[k] = v
	}
	sup, err := supervisor.New(supervisor.Config{
		Services:   p.set.Services,
		BinDir:     binDir,
		Env:        env,
		Secrets:    p.secrets(),
		PublicAddr: p.cfg.PublicAddr,
		PublicTLS:  publicTLS,
		IdleAfter:  p.cfg.IdleAfter,
		Logs:       p.cfg.Logs,
		Logger:     p.log,
	})
	if err != nil {
		return err
	}
	p.supervisor = sup
	return nil
}

// secrets are the local values of the Secrets the manifests refer to.
func (p *Platform) secrets() map[string]map[string]string {
	smtp, vapid := p.notificationSecrets()
	return map[string]map[string]string{
		// As in a cluster: url through PgBouncer, direct-url for migrations.
		"Secret/skyflow-postgres": {"url": p.functionsDatabaseURL, "direct-url": p.databaseURL},
		"Secret/skyflow-redis":    {"url": p.redisURL},
		// Only the gateway's manifest names its signing key.
		"Secret/skyflow-gateway": {"sender-key": p.senders[sender.Gateway].Seed()},
		"Secret/skyflow-smtp":    smtp,
		"Secret/skyflow-vapid":   vapid,
		// No Vault unless the developer names one (VAULT_ADDR): then the
		// local master key under .dev/ is the key-encryption key.
		"ConfigMap/skyflow-config": {
			"vault-addr":        os.Getenv("VAULT_ADDR"),
			"vault-role":        "skyflow-functions",
			"vault-transit-key": "skyflow-kek",
			"otlp-endpoint":     os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"),
			"token-uri":         p.tokenURI(),
			"trusted-senders":   p.trustedSenders(),
			"trusted-oidc":      "", // the local broker and ping sources sign with their own keys

			// Webhooks may deliver to receivers on this machine.
			"webhook-allowed-networks": "127.0.0.0/8,::1/128",

			// Links in emails point at the local gateway.
			"public-url":            p.publicURL(),
			"push-allowed-networks": "",
		},
	}
}

// tokenURI is the service-account token endpoint on the local gateway's
// HTTPS address.
func (p *Platform) tokenURI() string {
	_, port, _ := net.SplitHostPort(p.tlsAddr)
	return "https://localhost:" + port + "/v1/auth/sa/oauth/token"
}

// makeSenders makes this run's signing keys of the gateway, the broker
// and the ping sources (runtime/sender): every function trusts them, only
// each sender holds its own. It also opens the HTTPS address, which the
// token URI names.
func (p *Platform) makeSenders() error {
	p.senders = map[string]*sender.Signer{}
	for _, name := range []string{sender.Gateway, sender.Broker, sender.Ping} {
		s, err := sender.GenerateSigner(name)
		if err != nil {
			return err
		}
		p.senders[name] = s
	}
	return p.listenTLS()
}

func (p *Platform) trustedSenders() string {
	return sender.NewVerifier(p.senders[sender.Gateway], p.senders[sender.Broker], p.senders[sender.Ping]).Trusted()
}

// Signer is the signer of a sender (sender.Gateway, …), for tests that
// call a function as that sender would.
func (p *Platform) Signer(name string) *sender.Signer { return p.senders[name] }

// GatewayURL is the gateway's HTTP address, and GatewayTLSURL its HTTPS one.
func (p *Platform) GatewayURL() string {
	for _, s := range p.supervisor.Status() {
		if s.Public {
			return s.URL.String()
		}
	}
	return ""
}

// GatewayTLSURL is the gateway's HTTPS address: its front's, which
// terminates TLS.
func (p *Platform) GatewayTLSURL() string { return "https://" + p.tlsAddr }

func (p *Platform) startPingSources(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	p.stopPing, p.pingDone = cancel, make(chan struct{})
	go func() {
		defer close(p.pingDone)
		ping.Run(ctx, p.set.PingSources, p.resolve, http.DefaultClient, p.senders[sender.Ping], p.log)
	}()
}

// resolve turns a manifest destination into a local URL: a Service is its
// supervisor front, a Broker its ingress; a uri with a ref is a path on it.
func (p *Platform) resolve(d manifest.Destination, namespace string) (*url.URL, error) {
	if d.Ref == nil {
		u, err := url.Parse(d.URI)
		if err != nil || !u.IsAbs() {
			return nil, fmt.Errorf("destination uri %q is not an absolute URL", d.URI)
		}
		return u, nil
	}
	var base *url.URL
	switch d.Ref.Kind {
	case "Service":
		u, ok := p.supervisor.URL(d.Ref.Name)
		if !ok {
			return nil, fmt.Errorf("no Service %q", d.Ref.Name)
		}
		base = u
	case "Broker":
		ns := d.Ref.Namespace
		if ns == "" {
			ns = namespace
		}
		u, err := url.Parse(p.broker.IngressURL(ns, d.Ref.Name))
		if err != nil {
			return nil, err
		}
		base = u
	default:
		return nil, fmt.Errorf("cannot deliver to a %s", d.Ref.Kind)
	}
	if d.URI != "" {
		return base.Parse(d.URI)
	}
	return base, nil
}

// StoreExited is closed with a reason when a private PostgreSQL, PgBouncer
// or Redis that this platform started exits on its own; nil when there is
// none.
func (p *Platform) StoreExited() <-chan string {
	var pg, pb, rd <-chan struct{}
	if p.postgres != nil {
		pg = p.postgres.Done()
	}
	if p.pgbouncer != nil {
		pb = p.pgbouncer.Done()
	}
	if p.redis != nil {
		rd = p.redis.Done()
	}
	if pg == nil && pb == nil && rd == nil {
		return nil
	}
	exited := make(chan string, 1)
	go func() {
		select {
		case <-pg:
			exited <- "PostgreSQL exited (see " + p.postgres.LogFile + ")"
		case <-pb:
			exited <- "PgBouncer exited (see " + p.pgbouncer.LogFile + ")"
		case <-rd:
			exited <- "Redis exited (see " + p.redis.LogFile + ")"
		}
	}()
	return exited
}

// SinkURL is the default Broker's ingress: the functions' K_SINK.
func (p *Platform) SinkURL() string {
	return p.broker.IngressURL(manifest.DefaultNamespace, DefaultBroker)
}

// ServiceURL is the stable address of a function.
func (p *Platform) ServiceURL(name string) (*url.URL, bool) { return p.supervisor.URL(name) }

// Status reports every function.
func (p *Platform) Status() []supervisor.Status { return p.supervisor.Status() }

// DatabaseURL is the database the functions use, connected to directly
// (the functions themselves may go through PgBouncer).
func (p *Platform) DatabaseURL() string { return p.databaseURL }

// KafkaSeeds are the Kafka bootstrap addresses.
func (p *Platform) KafkaSeeds() []string { return p.kafka.Seeds() }

// Manifests is what the platform runs.
func (p *Platform) Manifests() *manifest.Set { return p.set }

// AdminURL serves the platform's own /metrics (broker and triggers).
func (p *Platform) AdminURL() string { return p.adminURL }

// FirePing sends a PingSource's event now instead of at its next scheduled time.
func (p *Platform) FirePing(ctx context.Context, name string) error {
	for _, src := range p.set.PingSources {
		if src.Name == name {
			return ping.Fire(ctx, src, p.resolve, http.DefaultClient, p.senders[sender.Ping])
		}
	}
	return fmt.Errorf("no PingSource %q", name)
}

// platformMetrics is the registry of the platform's own metrics.
var platformMetrics = func() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}()

func (p *Platform) startAdmin() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(platformMetrics, promhttp.HandlerOpts{}))
	p.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	p.adminURL = "http://" + ln.Addr().String()
	go func() {
		if err := p.admin.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			p.log.Warn("the platform's metrics server stopped", "error", err)
		}
	}()
	return nil
}

// Close stops everything in reverse order: ping sources, functions
// (draining in-flight events), broker, Kafka, Redis, PostgreSQL.
func (p *Platform) Close(ctx context.Context) error {
	var errs []error
	if p.stopPing != nil {
		p.stopPing()
		<-p.pingDone
	}
	if p.admin != nil {
		p.admin.Close()
	}
	if p.supervisor != nil {
		errs = append(errs, p.supervisor.Close(ctx))
	}
	if p.broker != nil {
		p.broker.Close() //nolint:contextcheck // the broker bounds its own shutdown, and must shut down even once ctx is done
	}
	if p.stopRun != nil {
		p.stopRun()
	}
	if p.kafka != nil {
		p.kafka.Close()
	}
	for i := len(p.closers) - 1; i >= 0; i-- {
		errs = append(errs, p.closers[i](ctx))
	}
	return errors.Join(errs...)
}
