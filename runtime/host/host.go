// Package host runs a Skyflow function: it mirrors the Knative func Go
// contract for CloudEvents functions, so a function reads like Knative's
// templates:
//
//	func New() *Function { return &Function{} }
//	func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error)
//
// with optional Start, Stop, Ready and Alive methods, and a main of one line:
//
//	func main() { host.Main(New()) }
//
// The host serves POST / (CloudEvents in binary and structured mode),
// GET /health/readiness, GET /health/liveness and GET /metrics; listens on
// PORT; traces each event; and on SIGTERM stops taking new work, finishes the
// events in flight, then calls Stop.
package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/config"
	"github.com/skyflow-oss/skyflow/runtime/logging"
	"github.com/skyflow-oss/skyflow/runtime/sender"
	"github.com/skyflow-oss/skyflow/runtime/telemetry"
)

// Handler is a function: one CloudEvent in, at most one reply out.
type Handler interface {
	Handle(ctx context.Context, e event.Event) (*event.Event, error)
}

// HTTPHandler is a function invoked by plain HTTP requests, like Knative
// func's http template: the gateway. The host still serves the health
// probes and /metrics; every other request goes to Handle.
type HTTPHandler interface {
	Handle(w http.ResponseWriter, r *http.Request)
}

// EventReceiver is implemented by an HTTPHandler that also takes
// CloudEvents (trigger deliveries): the host verifies them like any
// function's and hands them, POSTed to /, to HandleEvent.
type EventReceiver interface {
	HandleEvent(ctx context.Context, e event.Event) (*event.Event, error)
}

// Starter is implemented by functions that set up before serving. cfg is
// the process environment.
type Starter interface {
	Start(ctx context.Context, cfg map[string]string) error
}

// Stopper is implemented by functions that release resources on shutdown.
type Stopper interface {
	Stop(ctx context.Context) error
}

// ReadinessReporter is implemented by functions that can be unready.
type ReadinessReporter interface {
	Ready(ctx context.Context) (bool, error)
}

// LivenessReporter is implemented by functions that can be wedged.
type LivenessReporter interface {
	Alive(ctx context.Context) (bool, error)
}

// Settings are the host's own settings, read from the environment.
type Settings struct {
	Function     string        // K_SERVICE: the function's name, in logs and metrics
	Addr         string        // SKYFLOW_BIND_HOST:PORT; all interfaces unless the host is set
	MaxBodyBytes int64         // SKYFLOW_MAX_EVENT_BYTES: larger events get 413
	EventTimeout time.Duration // SKYFLOW_EVENT_TIMEOUT: deadline of one Handle call
	DrainTimeout time.Duration // SKYFLOW_DRAIN_TIMEOUT: how long SIGTERM waits for events in flight
	LogLevel     string        // LOG_LEVEL
	PprofDir     string        // SKYFLOW_PPROF_DIR: serve pprof on loopback, address in <dir>/<function>.addr
	// Senders verifies who sent each event (SKYFLOW_TRUSTED_SENDERS,
	// SKYFLOW_TRUSTED_OIDC): an event without a valid assertion from a
	// trusted sender is refused.
	Senders *sender.Verifier
}

// LoadSettings reads the settings from env, reporting every bad value.
func LoadSettings(env *config.Env) (Settings, error) {
	s := Settings{
		Function: env.String("K_SERVICE", filepath.Base(os.Args[0])),
		// The local platform binds functions to loopback; in a pod, all interfaces.
		Addr:         net.JoinHostPort(env.String("SKYFLOW_BIND_HOST", ""), fmt.Sprint(env.Int("PORT", 8080))),
		MaxBodyBytes: int64(env.Int("SKYFLOW_MAX_EVENT_BYTES", 4<<20)),
		EventTimeout: env.Duration("SKYFLOW_EVENT_TIMEOUT", 60*time.Second),
		DrainTimeout: env.Duration("SKYFLOW_DRAIN_TIMEOUT", 30*time.Second),
		LogLevel:     env.String("LOG_LEVEL", "info"),
		PprofDir:     env.String("SKYFLOW_PPROF_DIR", ""),
	}
	// Ed25519 senders (the gateway; locally also the broker and ping
	// sources) and, in a cluster, Knative's OIDC delivery tokens.
	trusted, oidc := env.String("SKYFLOW_TRUSTED_SENDERS", ""), env.String("SKYFLOW_TRUSTED_OIDC", "")
	if err := env.Err(); err != nil {
		return s, err
	}
	senders, err := sender.ParseVerifier(trusted, oidc, sender.OIDCOptions{})
	if err != nil {
		return s, fmt.Errorf("configuration: SKYFLOW_TRUSTED_SENDERS / SKYFLOW_TRUSTED_OIDC: %w", err)
	}
	s.Senders = senders
	return s, nil
}

// Main runs the function until SIGTERM or SIGINT and exits the process:
// status 0 after a clean shutdown, 1 when it could not start.
func Main(f Handler) { main(f) }

// MainHTTP is Main for an HTTP function.
func MainHTTP(f HTTPHandler) { main(f) }

func main(f any) {
	settings, err := LoadSettings(config.FromEnviron())
	log := logging.New(os.Stdout, settings.Function, settings.LogLevel)
	slog.SetDefault(log)
	if err != nil {
		log.Error("cannot start", "error", err)
		os.Exit(1)
	}
	if err := runUntilSignal(f, settings, log); err != nil {
		log.Error("stopped with an error", "error", err)
		os.Exit(1)
	}
}

// runUntilSignal is Run until SIGTERM or SIGINT.
func runUntilSignal(f any, s Settings, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return Run(ctx, f, s, log)
}

// Run serves f, a Handler or an HTTPHandler, until ctx is done, then shuts
// down gracefully.
func Run(ctx context.Context, f any, s Settings, log *slog.Logger) error {
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s (is the port in use? set PORT): %w", s.Addr, err)
	}
	return Serve(ctx, ln, f, s, log)
}

// Serve is Run on a listener that is already open.
func Serve(ctx context.Context, ln net.Listener, f any, s Settings, log *slog.Logger) error {
	shutdownTracing, err := telemetry.Setup(ctx, s.Function)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	stopPprof, err := servePprof(s.PprofDir, s.Function, log)
	if err != nil {
		return fmt.Errorf("pprof: %w", err)
	}
	defer stopPprof()
	h := newHTTPHandler(f, s, log)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      s.EventTimeout + 10*time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	// Listen first and start in parallel, so that a probe gets a quick
	// "not ready" instead of a refused connection during a cold start.
	startErr := make(chan error, 1)
	go func() {
		if st, ok := f.(Starter); ok {
			if err := st.Start(ctx, config.Environ()); err != nil {
				startErr <- err
				return
			}
		}
		h.started.Store(true)
		log.Info("ready", "addr", ln.Addr().String())
		startErr <- nil
	}()

	var runErr error
	select {
	case err := <-startErr:
		if err != nil {
			runErr = fmt.Errorf("start: %w", err)
			break
		}
		select {
		case <-ctx.Done():
		case err := <-served:
			runErr = err
		}
	case <-ctx.Done():
	case err := <-served:
		runErr = err
	}

	// Fail readiness first so no new work is routed here, then drain.
	h.draining.Store(true)
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.DrainTimeout)
	defer cancel()
	if err := srv.Shutdown(drainCtx); err != nil {
		log.Warn("events still in flight when the drain period ended", "error", err)
	}
	if sp, ok := f.(Stopper); ok && h.started.Load() {
		if err := sp.Stop(drainCtx); err != nil {
			log.Warn("stop", "error", err)
		}
	}
	if err := shutdownTracing(drainCtx); err != nil {
		log.Warn("flushing traces", "error", err)
	}
	if errors.Is(runErr, http.ErrServerClosed) {
		runErr = nil
	}
	log.Info("stopped")
	return runErr
}

// httpHandler is the host's HTTP surface.
type httpHandler struct {
	f        any     // the function, for its optional methods
	fn       Handler // Handle of events; nil for an HTTP function that takes none
	settings Settings
	log      *slog.Logger
	metrics  *hostMetrics
	mux      *http.ServeMux
	started  atomic.Bool
	draining atomic.Bool
}

func newHTTPHandler(f any, s Settings, log *slog.Logger) *httpHandler {
	h := &httpHandler{f: f, settings: s, log: log, metrics: newHostMetrics(s.Function), mux: http.NewServeMux()}
	switch fn := f.(type) {
	case Handler:
		h.fn = fn
		h.mux.HandleFunc("POST /{$}", h.serveEvent)
	case HTTPHandler:
		if r, ok := f.(EventReceiver); ok {
			h.fn = receiver{r}
		}
		h.mux.HandleFunc("/", h.serveHTTPFunction)
	default:
		panic(fmt.Sprintf("host: %T has neither Handle(ctx, event) nor Handle(w, r)", f))
	}
	h.mux.HandleFunc("GET /health/readiness", h.serveReadiness)
	h.mux.HandleFunc("GET /health/liveness", h.serveLiveness)
	h.mux.Handle("GET /metrics", metricsHandler())
	return h
}

// receiver adapts an EventReceiver to Handler.
type receiver struct{ EventReceiver }

func (r receiver) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	return r.HandleEvent(ctx, e)
}

// serveHTTPFunction hands a request to an HTTP function, except a
// CloudEvent POSTed to /, which is a delivery for HandleEvent.
func (h *httpHandler) serveHTTPFunction(w http.ResponseWriter, r *http.Request) {
	if h.fn != nil && r.Method == http.MethodPost && r.URL.Path == "/" &&
		(r.Header.Get("Ce-Specversion") != "" || strings.HasPrefix(r.Header.Get("Content-Type"), "application/cloudevents")) {
		h.serveEvent(w, r)
		return
	}
	if !h.started.Load() || h.draining.Load() {
		apierr.Write(w, apierr.Unavailable("The service is not ready yet. Try again."))
		return
	}
	h.f.(HTTPHandler).Handle(w, r)
}

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *httpHandler) serveReadiness(w http.ResponseWriter, r *http.Request) {
	ready := h.started.Load() && !h.draining.Load()
	if rr, ok := h.f.(ReadinessReporter); ok && ready {
		ok, err := rr.Ready(r.Context())
		ready = ok && err == nil
	}
	probeAnswer(w, ready)
}

func (h *httpHandler) serveLiveness(w http.ResponseWriter, r *http.Request) {
	alive := true
	if lr, ok := h.f.(LivenessReporter); ok {
		ok, err := lr.Alive(r.Context())
		alive = ok && err == nil
	}
	probeAnswer(w, alive)
}

func probeAnswer(w http.ResponseWriter, ok bool) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not ready")
		return
	}
	fmt.Fprintln(w, "ok")
}
