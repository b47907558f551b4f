package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// front is the stable address of a Service: it listens for the whole life
// of the platform and proxies each request to the current process.
type front struct {
	svc *service
	ln  net.Listener
	tls net.Listener // the public Service's HTTPS address (Config.PublicTLS), or nil
	srv *http.Server
	url *url.URL
	sem chan struct{} // containerConcurrency slots, nil when unlimited

	active atomic.Int64 // requests being served, for shutdown
}

// errTimeout is the cause of a request context that ran out of time.
var errTimeout = errors.New("request timeout")

// listen opens the front of svc on addr.
func listen(svc *service, addr string, public bool, log *slog.Logger) (*front, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			_, port, _ := net.SplitHostPort(addr)
			hint := "stop it"
			if public {
				hint += " or set another public address"
			}
			return nil, fmt.Errorf("%s: port %s is in use by another program; %s: %w", svc.name, port, hint, err)
		}
		return nil, fmt.Errorf("%s: cannot listen on %s: %w", svc.name, addr, err)
	}
	f := &front{svc: svc, ln: ln, url: &url.URL{Scheme: "http", Host: dialable(ln.Addr())}}
	if n := svc.def.ContainerConcurrency; n > 0 {
		f.sem = make(chan struct{}, n)
	}
	f.srv = &http.Server{
		Handler:           f,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return f, nil
}

// dialable turns a listening address into one a client can dial: a
// wildcard host becomes the loopback address.
func dialable(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := ta.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(ta.Port))
}

// listeners are the addresses the front serves: HTTP, and HTTPS too for
// the public Service when the platform terminates TLS.
func (f *front) listeners() []net.Listener {
	if f.tls != nil {
		return []net.Listener{f.ln, f.tls}
	}
	return []net.Listener{f.ln}
}

func (f *front) urlCopy() *url.URL {
	u := *f.url
	return &u
}

// ServeHTTP queues the request for a concurrency slot, waits for a ready
// process (starting one if needed) and proxies to it, all within the
// Service's timeout.
func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.active.Add(1)
	defer f.active.Add(-1)
	s := f.svc
	ctx, cancel := context.WithTimeoutCause(r.Context(), s.timeout, errTimeout)
	defer cancel()

	if f.sem != nil {
		select {
		case f.sem <- struct{}{}:
			defer func() { <-f.sem }()
		case <-ctx.Done():
			f.fail(ctx, w, r, nil)
			return
		}
	}
	in, err := s.acquire(ctx)
	if err != nil {
		f.fail(ctx, w, r, err)
		return
	}
	defer s.release()
	in.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// fail answers a request that never reached a process.
func (f *front) fail(ctx context.Context, w http.ResponseWriter, r *http.Request, err error) {
	s := f.svc
	switch {
	case r.Context().Err() != nil:
		return // the client has gone
	case errors.Is(context.Cause(ctx), errTimeout):
		s.sup.log.Warn(fmt.Sprintf("%s: %s %s waited more than %v", s.name, r.Method, r.URL.Path, s.timeout), "service", s.name)
		http.Error(w, fmt.Sprintf("%s did not answer within %v", s.name, s.timeout), http.StatusGatewayTimeout)
	default:
		w.Header().Set("Retry-After", "1")
		http.Error(w, err.Error(), http.StatusServiceUnavailable) // names the Service
	}
}

// proxyError answers a request the process did not answer: 504 when the
// timeout passed, 502 when the process crashed or the connection failed.
func (in *instance) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	s := in.svc
	switch {
	case errors.Is(context.Cause(r.Context()), errTimeout):
		s.sup.log.Warn(fmt.Sprintf("%s did not answer %s %s within %v", s.name, r.Method, r.URL.Path, s.timeout), "service", s.name)
		http.Error(w, fmt.Sprintf("%s did not answer within %v", s.name, s.timeout), http.StatusGatewayTimeout)
		return
	case r.Context().Err() != nil:
		return // the client has gone
	}
	// A dropped connection usually means the process died; give the exit
	// handler a moment to tell.
	t := time.NewTimer(200 * time.Millisecond)
	defer t.Stop()
	select {
	case <-in.done:
		s.mu.Lock()
		why := describeExit(in.exitErr)
		s.mu.Unlock()
		http.Error(w, fmt.Sprintf("%s crashed while handling the request (%s)", s.name, why), http.StatusBadGateway)
	case <-t.C:
		s.sup.log.Warn(fmt.Sprintf("%s: proxy error: %v", s.name, err), "service", s.name)
		http.Error(w, fmt.Sprintf("%s: bad gateway: %v", s.name, err), http.StatusBadGateway)
	}
}

// shutdown closes the listener, lets requests in flight finish (the
// processes drain them) and then drops the connections left. It does not
// wait for connections that never sent a request, as http.Server.Shutdown
// does for up to 5 s.
func (f *front) shutdown(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.srv.Shutdown(ctx)
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
		case <-tick.C:
			if f.active.Load() > 0 {
				continue
			}
		}
		_ = f.srv.Close()
		<-done
		return
	}
}
