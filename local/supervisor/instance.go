package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// Timings of a process's life that are not configurable.
const (
	probeEvery    = 5 * time.Millisecond
	probeTimeout  = time.Second
	killWait      = 5 * time.Second // for the kernel to reap a SIGKILLed process
	pipeWaitDelay = 2 * time.Second // for output pipes held open by children
)

// instance is one process of a Service, from start to exit. Its fields are
// guarded by the Service's mutex unless noted.
type instance struct {
	svc       *service
	notBefore time.Time // crash backoff: not exec'd before this (immutable)

	cmd     *exec.Cmd
	started time.Time
	port    int
	proxy   *httputil.ReverseProxy
	client  *http.Client // readiness probes and proxying share its transport

	ready   chan struct{} // closed once err is final
	settled bool
	err     error // why the instance never became ready

	done    chan struct{} // closed when the process exited or never ran
	exited  bool
	exitErr error
	reason  string // why the supervisor killed it, for the crash log
}

func newInstance(svc *service, notBefore time.Time) *instance {
	return &instance{svc: svc, notBefore: notBefore, ready: make(chan struct{}), done: make(chan struct{})}
}

// settle records the outcome of the start once and wakes its waiters.
func (in *instance) settle(err error) {
	if in.settled {
		return
	}
	in.settled, in.err = true, err
	close(in.ready)
}

// pid is the process id, 0 before exec or after exit.
func (in *instance) pid() int {
	if in.cmd == nil || in.cmd.Process == nil || in.exited {
		return 0
	}
	return in.cmd.Process.Pid
}

// exec starts the process on a free loopback port.
func (in *instance) exec() error {
	s := in.svc
	port, err := freePort()
	if err != nil {
		return err
	}
	cmd := exec.Command(s.binary) //nolint:gosec // G204: a function binary built from the platform's own manifests
	cmd.Env = append(append([]string(nil), s.env...), portEnv(port))
	out := newLineWriter(s.sup.logs, s.name)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = pipeWaitDelay
	if err := cmd.Start(); err != nil {
		return err
	}
	target := &url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	// A transport per process: keep-alive connections die with it, and a
	// later process on the same port never receives a stale one.
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	in.cmd, in.started, in.port = cmd, time.Now(), port
	in.client = &http.Client{
		Transport:     tr,
		Timeout:       probeTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	in.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // as Knative does: the function sees the Host the client used
			pr.SetXForwarded()
		},
		Transport:     tr,
		FlushInterval: -1, // stream responses such as server-sent events
		ErrorHandler:  in.proxyError,
	}
	s.sup.wg.Go(func() {
		err := cmd.Wait()
		out.Flush()
		tr.CloseIdleConnections()
		s.exited(in, err)
	})
	return nil
}

// waitReady polls the readiness path until it answers 2xx or 3xx, as a
// Kubernetes HTTP probe does. It fails when the process exits, when
// timeout passes, or when ctx is done.
func (in *instance) waitReady(ctx context.Context, timeout time.Duration) error {
	s := in.svc
	probe := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(in.port)) + s.readinessPath
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, probe, nil)
		if err != nil {
			return err
		}
		if resp, err := in.client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode >= 200 && resp.StatusCode < 400 {
				return nil
			}
		}
		select {
		case <-tick.C:
		case <-in.done:
			return errExited
		case <-deadline.C:
			return fmt.Errorf("not ready within %v (GET %s)", timeout, s.readinessPath)
		case <-ctx.Done():
			return errClosed
		}
	}
}

// errExited marks a start that ended because the process exited; the exit
// handler reports why.
var errExited = errors.New("exited before it was ready")

// stop asks the process to exit with SIGTERM and kills it if it has not
// exited after grace or when ctx is done. It returns once the process has
// exited, or after killWait more if even SIGKILL did not end it.
func (in *instance) stop(ctx context.Context, grace time.Duration) {
	p := in.process()
	if p != nil {
		if err := p.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			_ = p.Kill() // no SIGTERM on this platform
		}
		// Idle keep-alive connections would hold up the process's graceful
		// shutdown (Go's http.Server waits up to 5 s for connections that
		// never sent a request).
		in.client.CloseIdleConnections()
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-in.done:
		return
	case <-t.C:
		in.svc.sup.log.Warn(fmt.Sprintf("%s did not exit within %v of SIGTERM; killing it", in.svc.name, grace), "service", in.svc.name)
	case <-ctx.Done():
	}
	in.kill("")
	select {
	case <-in.done:
	case <-time.After(killWait):
	}
}

// kill ends the process with SIGKILL; reason, if set, is reported by the
// exit handler instead of "signal: killed".
func (in *instance) kill(reason string) {
	s := in.svc
	s.mu.Lock()
	if reason != "" {
		in.reason = reason
	}
	s.mu.Unlock()
	if p := in.process(); p != nil {
		_ = p.Kill()
	}
}

func (in *instance) process() *os.Process {
	s := in.svc
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.cmd == nil || in.exited {
		return nil
	}
	// os.Process signals through a pidfd where it can, so a reused pid is never hit.
	return in.cmd.Process
}

// freePort picks a free loopback port for a process. Another program may
// take it before the process binds; the process then exits and is
// restarted on another port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("no free loopback port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
