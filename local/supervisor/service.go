package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/skyflow-oss/skyflow/local/manifest"
)

// Crash backoff: the first restart is immediate, later ones wait
// backoffBase·2ⁿ up to backoffMax. A process that ran for stableAfter
// before it exited starts a new count.
const (
	backoffBase = 100 * time.Millisecond
	backoffMax  = 10 * time.Second
	stableAfter = 10 * time.Second
)

var (
	errClosed  = errors.New("the local platform is shutting down")
	errStopped = errors.New("stopped before it was ready")
)

// service is the state machine of one Knative Service: at most one process
// at a time, started on demand or at Start, stopped when idle, restarted
// after a crash.
type service struct {
	sup           *Supervisor
	def           manifest.Service
	name          string
	binary        string
	env           []string
	readinessPath string
	idle          time.Duration
	grace         time.Duration
	timeout       time.Duration
	front         *front

	mu         sync.Mutex
	state      State
	cur        *instance // nil when stopped or crashed
	inflight   int
	lastActive time.Time
	idleTimer  *time.Timer
	failures   int       // consecutive crashes
	retryAt    time.Time // end of the crash backoff
	restarts   int
	coldStart  time.Duration
	closed     bool
}

// backoff is the wait before the start that follows the n-th consecutive crash.
func backoff(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	return min(backoffBase<<min(n-2, 20), backoffMax)
}

// acquire returns a ready process for one request, starting one if there
// is none. The caller must call release when the request is done.
func (s *service) acquire(ctx context.Context) (*instance, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, fmt.Errorf("%s: %w", s.name, errClosed)
		}
		if s.state == Stopped || s.state == Crashed {
			s.startLocked()
		}
		in, state := s.cur, s.state
		if state == Running {
			s.inflight++
			s.mu.Unlock()
			return in, nil
		}
		s.mu.Unlock()

		wait := in.ready
		if state == Stopping {
			wait = in.done // then start a new one
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
		if state == Starting {
			s.mu.Lock()
			err := in.err
			s.mu.Unlock()
			if err != nil {
				return nil, err
			}
		}
	}
}

// release ends a request; the idle period starts when none is left.
func (s *service) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight--
	if s.inflight == 0 {
		s.lastActive = time.Now()
		s.armIdleLocked()
	}
}

// startLocked creates the next process and starts it in the background,
// after the crash backoff if one is due. Only called when not closed.
func (s *service) startLocked() {
	in := newInstance(s, s.retryAt)
	s.cur, s.state = in, Starting
	s.sup.wg.Add(1)
	go s.run(in)
}

// run takes one process from backoff through exec to ready.
func (s *service) run(in *instance) {
	defer s.sup.wg.Done()
	ctx := s.sup.ctx
	if d := time.Until(in.notBefore); d > 0 {
		s.sup.log.Debug(fmt.Sprintf("%s starts in %v (crash backoff)", s.name, d.Round(time.Millisecond)), "service", s.name)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}

	s.mu.Lock()
	if s.closed || s.state != Starting || s.cur != in {
		s.mu.Unlock()
		s.exited(in, errClosed)
		return
	}
	err := in.exec()
	s.mu.Unlock()
	if err != nil {
		s.exited(in, err)
		return
	}

	err = in.waitReady(ctx, s.sup.readyTimeout)
	s.mu.Lock()
	if err == nil && s.state == Starting && s.cur == in && !in.exited {
		s.state = Running
		s.coldStart = time.Since(in.started)
		s.lastActive = time.Now()
		s.armIdleLocked()
		in.settle(nil)
		pid, cold := in.cmd.Process.Pid, s.coldStart
		s.mu.Unlock()
		s.sup.log.Info(fmt.Sprintf("%s cold start %v", s.name, cold.Round(time.Millisecond)),
			"service", s.name, "pid", pid, "cold_start", cold)
		return
	}
	if errors.Is(err, errExited) {
		s.mu.Unlock()
		return // the exit handler settles with the exit status
	}
	if err == nil {
		err = errStopped
	}
	in.settle(fmt.Errorf("%s: %w", s.name, err))
	s.mu.Unlock()
	in.kill("killed: " + err.Error()) // the exit handler counts it as a crash unless it was being stopped
}

// exited records the end of a process, or of an instance that never ran
// because exec failed (err) or the platform closed. An exit the
// supervisor did not ask for is a crash.
func (s *service) exited(in *instance, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in.exited, in.exitErr = true, err
	close(in.done)
	if s.cur != in {
		return
	}
	s.cur = nil
	if s.idleTimer != nil {
		s.idleTimer.Stop()
	}
	if s.state == Stopping || s.closed {
		s.state = Stopped
		in.settle(fmt.Errorf("%s: %w", s.name, errStopped))
		return
	}

	why := in.reason
	if why == "" {
		why = describeExit(err)
	}
	if !in.started.IsZero() && time.Since(in.started) >= stableAfter {
		s.failures = 0
	}
	s.failures++
	s.restarts++
	s.retryAt = time.Now().Add(backoff(s.failures))
	s.state = Crashed
	in.settle(fmt.Errorf("%s: %w: %s", s.name, errExited, why))

	msg := fmt.Sprintf("%s exited unexpectedly: %s", s.name, why)
	if s.failures >= 3 {
		next := "next start"
		if s.def.MinScale == 0 {
			next = "the next request starts it"
		}
		msg = fmt.Sprintf("%s is crash looping (%d crashes in a row, last: %s); %s in %v",
			s.name, s.failures, why, next, backoff(s.failures))
	}
	s.sup.log.Warn(msg, "service", s.name, "restarts", s.restarts)
	if s.def.MinScale > 0 {
		s.startLocked()
	}
}

// describeExit says how a process ended, in a few words.
func describeExit(err error) string {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "exit status 0"
	case errors.As(err, &ee):
		return ee.String()
	default:
		return err.Error()
	}
}

// armIdleLocked (re)starts the countdown to scale to zero.
func (s *service) armIdleLocked() {
	if s.def.MinScale > 0 || s.closed {
		return
	}
	if s.idleTimer == nil {
		s.idleTimer = time.AfterFunc(s.idle, s.idleCheck)
		return
	}
	s.idleTimer.Reset(s.idle)
}

// idleCheck stops the process once it has served no request for the idle period.
func (s *service) idleCheck() {
	s.mu.Lock()
	if s.closed || s.state != Running || s.inflight > 0 {
		s.mu.Unlock()
		return
	}
	if rest := s.idle - time.Since(s.lastActive); rest > 0 {
		s.idleTimer.Reset(rest)
		s.mu.Unlock()
		return
	}
	in := s.cur
	s.state = Stopping
	s.sup.wg.Add(1)
	s.mu.Unlock()
	defer s.sup.wg.Done()
	s.sup.log.Info(fmt.Sprintf("%s scaled to zero after %v without requests", s.name, s.idle), "service", s.name)
	in.stop(context.Background(), s.grace)
}

// close marks the Service closed and returns the process to stop, if any.
func (s *service) close() *instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.idleTimer != nil {
		s.idleTimer.Stop()
	}
	if s.cur != nil && s.state != Stopping {
		s.state = Stopping
	}
	return s.cur
}

// status reports the Service's current state.
func (s *service) status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{
		Name:      s.name,
		URL:       s.front.urlCopy(),
		State:     s.state,
		ColdStart: s.coldStart,
		Restarts:  s.restarts,
		MinScale:  s.def.MinScale,
		Public:    !s.def.ClusterLocal,
	}
	if s.cur != nil {
		st.PID = s.cur.pid()
		if s.cur.port != 0 {
			st.ProcessURL = &url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.cur.port))}
		}
		if st.State == Starting && st.PID == 0 && time.Now().Before(s.cur.notBefore) {
			st.State = Crashed // still waiting out the backoff
		}
	}
	return st
}
