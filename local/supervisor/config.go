package supervisor

import (
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/skyflow-oss/skyflow/local/manifest"
)

// Defaults for the zero values of Config and of a Service.
const (
	DefaultIdleAfter    = 30 * time.Second
	DefaultReadyTimeout = 10 * time.Second
	// DefaultTimeout bounds a request when the Service sets no
	// timeoutSeconds, as Knative's revision-timeout-seconds does.
	DefaultTimeout = 300 * time.Second
	// DefaultGrace is how long a process may take to exit after SIGTERM
	// when the Service sets no timeoutSeconds.
	DefaultGrace = 10 * time.Second
)

// Config says what to run and how.
type Config struct {
	// Services to run; their binaries must already be in BinDir (see Build).
	Services []manifest.Service
	// BinDir holds one binary per Service package, as Build writes them.
	BinDir string
	// Env is added to the environment of every process, after the
	// manifest's env (so it wins): K_SINK, DATABASE_URL, REDIS_URL, …
	// Processes inherit nothing else from the supervisor's environment.
	Env map[string]string
	// Secrets resolves valueFrom references of the manifests: the key is
	// "Secret/<name>" or "ConfigMap/<name>", the value maps keys to values.
	Secrets map[string]map[string]string
	// PublicAddr is where the one Service that is not cluster-local
	// listens, such as "127.0.0.1:8080" or ":8080". Default 127.0.0.1:8080.
	PublicAddr string
	// PublicTLS, when not nil, is the public Service's HTTPS address: a
	// listener that terminates TLS (tls.NewListener), as Kourier does in
	// a cluster, so the process behind it serves plain HTTP only and sees
	// X-Forwarded-Proto: https. The caller opens it, so that a free port
	// is known before the environment names it; the supervisor serves it
	// from Start and closes it, even when New fails.
	PublicTLS net.Listener
	// IdleAfter is how long a scale-to-zero Service may go without a
	// request before its process is stopped; a longer RetentionPeriod in
	// the manifest wins. Default DefaultIdleAfter.
	IdleAfter time.Duration
	// ReadyTimeout bounds a start, from exec to a successful readiness
	// probe. Default DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Logs receives the processes' stdout and stderr, each line prefixed
	// with "[<name>] ". Default os.Stderr.
	Logs io.Writer
	// Logger receives the supervisor's own events. Default slog.Default().
	Logger *slog.Logger
}

// DefaultPublicAddr is used when Config.PublicAddr is empty.
const DefaultPublicAddr = "127.0.0.1:8080"
