package kafka

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// startTimeout bounds a broker's start: loading its log from disk and
	// opening its port.
	startTimeout = time.Minute
	// stopTimeout bounds the orderly stop that writes the broker's state
	// to disk; past it the process is killed (its log is already written).
	stopTimeout = 10 * time.Second
	// Restarts of a broker that keeps dying are spaced from minBackoff,
	// doubling, to maxBackoff; one that ran for stableAfter starts over.
	minBackoff  = 50 * time.Millisecond
	maxBackoff  = 5 * time.Second
	stableAfter = 10 * time.Second
)

// process supervises the broker's child process: it starts it, restarts it
// on the same data directory and address whenever it dies, and stops it.
type process struct {
	exe, dataDir string
	log          *slog.Logger
	addr         string             // fixed by the first start, so clients reconnect
	ctx          context.Context    // cancelled by close: stops a restart under way
	cancel       context.CancelFunc //
	done         chan struct{}      // closed when supervise returns

	mu      sync.Mutex
	cur     *child        // nil between a crash and the restart
	changed chan struct{} // closed and replaced whenever cur changes
	closing bool
}

// child is one run of the broker process.
type child struct {
	cmd     *exec.Cmd
	stdin   io.Closer     // closing it asks the broker to stop
	exited  chan struct{} // closed once the process has exited and been reaped
	started time.Time
	killed  atomic.Bool // by Kill: a test's crash, not a real one
}

// startProcess starts the broker on a free port and supervises it.
func startProcess(ctx context.Context, dataDir string, log *slog.Logger) (*process, error) {
	exe, err := executable()
	if err != nil {
		return nil, fmt.Errorf("finding this executable to run the broker: %w", err)
	}
	p := &process{exe: exe, dataDir: dataDir, log: log, done: make(chan struct{}), changed: make(chan struct{})}
	ch, addr, err := p.spawn(ctx, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.addr = addr
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.setCurrent(ch)
	go p.supervise(ch)
	return p, nil
}

// executable is the file to re-execute as the broker: /proc/self/exe on
// Linux, which is this very program even if its file has since been
// replaced (make build while skyflow dev runs), so parent and child always
// agree on the protocol between them.
func executable() (string, error) {
	const self = "/proc/self/exe"
	if _, err := os.Stat(self); err == nil {
		return self, nil
	}
	return os.Executable()
}

// spawn starts one broker process listening on addr and waits until it
// says it listens, or exits, or ctx is done.
func (p *process) spawn(ctx context.Context, addr string) (*child, string, error) {
	//nolint:gosec // G204: this very program, re-executed as the broker
	cmd := exec.Command(p.exe, Command, "-data", p.dataDir, "-listen", addr, "-supervised")
	cmd.Args[0] = os.Args[0] // what ps shows
	cmd.Env = append(os.Environ(), processEnv+"=1")
	// A process group of its own: Ctrl-C in a terminal reaches only the
	// platform, which then stops the broker in order, after the ingress.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, "", err
	}
	ready := make(chan string, 1)
	cmd.Stdout = &lineWriter{line: func(l string) {
		if a, ok := strings.CutPrefix(l, readyPrefix); ok {
			select {
			case ready <- a:
			default:
			}
		}
	}}
	cmd.Stderr = &lineWriter{line: p.logLine}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	ch := &child{cmd: cmd, stdin: stdin, exited: make(chan struct{}), started: time.Now()}
	go func() {
		_ = cmd.Wait() // how it ended is in cmd.ProcessState
		close(ch.exited)
	}()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case a := <-ready:
		return ch, a, nil
	case <-ch.exited:
		return nil, "", fmt.Errorf("the broker exited before listening: %v", cmd.ProcessState)
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = fmt.Errorf("the broker did not listen within %v", startTimeout)
	}
	ch.kill()
	return nil, "", err
}

// supervise restarts the broker whenever it dies, until close.
func (p *process) supervise(ch *child) {
	defer close(p.done)
	backoff := minBackoff
	for {
		<-ch.exited
		if p.isClosing() {
			return
		}
		p.setCurrent(nil)
		level := slog.LevelError
		if ch.killed.Load() {
			level = slog.LevelWarn
		}
		p.log.Log(p.ctx, level, "embedded kafka exited; restarting it on the same data and address",
			"pid", ch.cmd.Process.Pid, "state", ch.cmd.ProcessState.String(), "addr", p.addr)
		if time.Since(ch.started) > stableAfter {
			backoff = minBackoff
		}
		var err error
		for ch, err = p.restart(); err != nil; ch, err = p.restart() {
			if p.ctx.Err() != nil {
				return
			}
			p.log.Error("embedded kafka did not restart", "err", err, "retryIn", backoff)
			if !p.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
		}
		p.mu.Lock()
		if p.closing { // close ran while the new process started
			p.mu.Unlock()
			ch.stop(p.log)
			return
		}
		p.setCurrentLocked(ch)
		p.mu.Unlock()
		p.log.Info("embedded kafka restarted", "pid", ch.cmd.Process.Pid, "addr", p.addr)
	}
}

// restart starts the broker again on its address.
func (p *process) restart() (*child, error) {
	ch, addr, err := p.spawn(p.ctx, p.addr)
	if err != nil {
		return nil, err
	}
	if addr != p.addr { // cannot happen: it listens where it is told
		ch.kill()
		return nil, fmt.Errorf("the broker listens on %s, not %s", addr, p.addr)
	}
	return ch, nil
}

// sleep waits d unless close comes first.
func (p *process) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.ctx.Done():
		return false
	}
}

func (p *process) isClosing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closing
}

func (p *process) setCurrent(ch *child) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setCurrentLocked(ch)
}

// setCurrentLocked records the running child and wakes whoever waits for
// a change. p.mu is held.
func (p *process) setCurrentLocked(ch *child) {
	p.cur = ch
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return 0
	}
	return p.cur.cmd.Process.Pid
}

// kill SIGKILLs the running broker and waits for its restart.
func (p *process) kill(ctx context.Context) error {
	p.mu.Lock()
	killed := p.cur
	p.mu.Unlock()
	if killed == nil {
		return errors.New("kafka: the broker is not running")
	}
	killed.killed.Store(true)
	killed.kill()
	for {
		p.mu.Lock()
		cur, changed, closing := p.cur, p.changed, p.closing
		p.mu.Unlock()
		switch {
		case closing:
			return errors.New("kafka: the cluster was closed")
		case cur != nil && cur != killed:
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// close stops the broker in order and ends its supervision.
func (p *process) close() {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		<-p.done
		return
	}
	p.closing = true
	ch := p.cur
	p.mu.Unlock()
	p.cancel()
	if ch != nil {
		ch.stop(p.log)
	}
	<-p.done
}

// stop asks the broker to write its state and exit (by closing its stdin),
// and kills it if it has not within stopTimeout.
func (ch *child) stop(log *slog.Logger) {
	ch.stdin.Close()
	select {
	case <-ch.exited:
		return
	case <-time.After(stopTimeout):
	}
	log.Warn("embedded kafka did not stop in time; killing it", "pid", ch.cmd.Process.Pid, "after", stopTimeout)
	ch.kill()
}

// kill SIGKILLs the process and waits until it has been reaped.
func (ch *child) kill() {
	_ = ch.cmd.Process.Kill() // fails only once it has exited, which exited reports
	<-ch.exited
}

// logLine passes a line the broker wrote on stderr to the log: its own
// JSON log records keep their level and attributes; anything else (a
// panic's trace) is logged as an error line by line.
func (p *process) logLine(line string) {
	var rec map[string]any
	if json.Unmarshal([]byte(line), &rec) != nil {
		p.log.Error("embedded kafka: " + line)
		return
	}
	var level slog.Level
	if s, _ := rec[slog.LevelKey].(string); level.UnmarshalText([]byte(s)) != nil {
		level = slog.LevelWarn
	}
	msg, _ := rec[slog.MessageKey].(string)
	delete(rec, slog.TimeKey)
	delete(rec, slog.LevelKey)
	delete(rec, slog.MessageKey)
	var args []any
	for _, k := range slices.Sorted(maps.Keys(rec)) {
		args = append(args, k, rec[k])
	}
	p.log.Log(context.Background(), level, msg, args...)
}

// lineWriter calls line for every complete line written to it. os/exec
// writes a child's output from one goroutine, so it needs no lock.
type lineWriter struct {
	buf  []byte
	line func(string)
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	// Bound a line without an end (not expected from the broker).
	if len(w.buf) > 64<<10 {
		w.line(string(w.buf))
		w.buf = w.buf[:0]
	}
	return len(b), nil
}
