package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Supervisor runs a set of Knative Services as local processes.
type Supervisor struct {
	services []*service // in Config order
	byName   map[string]*service
	log      *slog.Logger
	logs     *logSink

	readyTimeout time.Duration

	// ctx ends with Close: it aborts backoffs and readiness probes.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // goroutines that run or watch processes

	mu      sync.Mutex
	started bool
	closed  bool
}

// New checks the configuration, resolves each Service's environment and
// opens every front listener, so that URL answers from now on and a port
// conflict is reported before anything starts. Requests are accepted from
// Start on. Call Close to release the listeners.
func New(cfg Config) (_ *Supervisor, err error) {
	defer func() {
		if err != nil && cfg.PublicTLS != nil {
			cfg.PublicTLS.Close()
		}
	}()
	if cfg.BinDir == "" {
		return nil, errors.New("supervisor: Config.BinDir is empty")
	}
	if err := checkEnvNames(cfg.Env); err != nil {
		return nil, err
	}
	if cfg.PublicAddr == "" {
		cfg.PublicAddr = DefaultPublicAddr
	}
	if cfg.IdleAfter <= 0 {
		cfg.IdleAfter = DefaultIdleAfter
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	if cfg.Logs == nil {
		cfg.Logs = os.Stderr
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Supervisor{
		byName:       map[string]*service{},
		log:          cfg.Logger,
		logs:         &logSink{w: cfg.Logs},
		readyTimeout: cfg.ReadyTimeout,
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())

	var (
		errs   []error
		public []string
	)
	for _, def := range cfg.Services {
		where := fmt.Sprintf("%s: Service %q", def.File, def.Name)
		switch {
		case def.Name == "":
			errs = append(errs, fmt.Errorf("%s: Service without a name", def.File))
			continue
		case s.byName[def.Name] != nil:
			errs = append(errs, fmt.Errorf("%s: defined twice (also in %s)", where, s.byName[def.Name].def.File))
			continue
		case def.Package == "":
			errs = append(errs, fmt.Errorf("%s: no Go package (the image must be ko://<import path>)", where))
			continue
		}
		env, err := environ(def, cfg.Env, cfg.Secrets)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		bin := binaryPath(cfg.BinDir, def.Package)
		if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
			errs = append(errs, fmt.Errorf("%s: no binary %s for ko://%s; build the functions first", where, bin, def.Package))
			continue
		}
		svc := &service{
			sup:           s,
			def:           def,
			name:          def.Name,
			binary:        bin,
			env:           env,
			readinessPath: def.ReadinessPath,
			idle:          max(cfg.IdleAfter, def.RetentionPeriod),
			grace:         DefaultGrace,
			timeout:       DefaultTimeout,
		}
		if !strings.HasPrefix(svc.readinessPath, "/") {
			svc.readinessPath = "/health/readiness"
		}
		if def.TimeoutSeconds > 0 {
			svc.timeout = time.Duration(def.TimeoutSeconds) * time.Second
			svc.grace = svc.timeout // Knative's termination grace period is the request timeout
		}
		if !def.ClusterLocal {
			public = append(public, fmt.Sprintf("%q (%s)", def.Name, def.File))
		}
		s.services = append(s.services, svc)
		s.byName[def.Name] = svc
	}
	if len(public) > 1 {
		errs = append(errs, fmt.Errorf("only one Service may be public, found %d: %s; label the others networking.knative.dev/visibility: cluster-local",
			len(public), strings.Join(public, ", ")))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	for _, svc := range s.services {
		addr := "127.0.0.1:0"
		if !svc.def.ClusterLocal {
			addr = cfg.PublicAddr
		}
		f, err := listen(svc, addr, !svc.def.ClusterLocal, s.log)
		if err != nil {
			s.closeListeners()
			return nil, err
		}
		svc.front = f
		if !svc.def.ClusterLocal {
			f.tls, cfg.PublicTLS = cfg.PublicTLS, nil
		}
	}
	if cfg.PublicTLS != nil {
		cfg.PublicTLS.Close() // no public Service to serve on it
	}
	// Service discovery: in a cluster a Service is found by its DNS name;
	// here every process learns the fronts' addresses (the gateway reads it).
	var urls []string
	for _, svc := range s.services {
		urls = append(urls, svc.name+"="+svc.front.url.String())
	}
	for _, svc := range s.services {
		svc.env = append(svc.env, FunctionURLsEnv+"="+strings.Join(urls, ","))
	}
	return s, nil
}

// FunctionURLsEnv names the variable that tells each process every
// Service's address: name=url,…
const FunctionURLsEnv = "SKYFLOW_FUNCTION_URLS"

// Start serves every front and starts the Services with MinScale ≥ 1,
// returning once they are ready or have failed to start. A failed Service
// is retried in the background with backoff; the caller should still call
// Close.
func (s *Supervisor) Start(ctx context.Context) error {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return errClosed
	case s.started:
		s.mu.Unlock()
		return errors.New("supervisor: already started")
	}
	s.started = true
	// Under s.mu so that Close waits for these goroutines.
	for _, svc := range s.services {
		f := svc.front
		for _, ln := range f.listeners() {
			s.wg.Go(func() {
				if err := f.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					s.log.Error(fmt.Sprintf("%s: front stopped: %v", svc.name, err), "service", svc.name)
				}
			})
		}
	}
	s.mu.Unlock()

	var waits []*instance
	for _, svc := range s.services {
		if svc.def.MinScale < 1 {
			continue
		}
		svc.mu.Lock()
		if !svc.closed && (svc.state == Stopped || svc.state == Crashed) {
			svc.startLocked()
		}
		if svc.cur != nil {
			waits = append(waits, svc.cur)
		}
		svc.mu.Unlock()
	}
	var errs []error
	for _, in := range waits {
		select {
		case <-in.ready:
			in.svc.mu.Lock()
			errs = append(errs, in.err)
			in.svc.mu.Unlock()
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return errors.Join(errs...)
}

// URL returns the stable address of the named Service.
func (s *Supervisor) URL(name string) (*url.URL, bool) {
	svc, ok := s.byName[name]
	if !ok {
		return nil, false
	}
	return svc.front.urlCopy(), true
}

// Status reports every Service, in Config order.
func (s *Supervisor) Status() []Status {
	out := make([]Status, 0, len(s.services))
	for _, svc := range s.services {
		out = append(out, svc.status())
	}
	return out
}

// Close stops accepting requests, stops every process gracefully (SIGTERM,
// then SIGKILL after the Service's grace period or when ctx is done) and
// waits for them to exit. It returns ctx's error if it had to cut waits
// short.
func (s *Supervisor) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	started := s.started
	s.mu.Unlock()

	var running []*instance
	for _, svc := range s.services {
		if in := svc.close(); in != nil {
			running = append(running, in)
		}
	}
	s.cancel()

	var g sync.WaitGroup
	if started {
		for _, svc := range s.services {
			g.Go(func() { svc.front.shutdown(ctx) })
		}
	} else {
		s.closeListeners()
	}
	for _, in := range running {
		g.Go(func() { in.stop(ctx, in.svc.grace) })
	}
	g.Wait()
	s.wg.Wait()
	return ctx.Err()
}

func (s *Supervisor) closeListeners() {
	for _, svc := range s.services {
		if svc.front != nil {
			for _, ln := range svc.front.listeners() {
				ln.Close()
			}
		}
	}
}
