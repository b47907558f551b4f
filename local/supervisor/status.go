package supervisor

import (
	"net/url"
	"time"
)

// State is the lifecycle state of a Service's process.
type State int

const (
	// Stopped means there is no process; the next request starts one.
	Stopped State = iota
	// Starting means the process is started (or waits out a crash backoff)
	// and is not ready yet; requests wait for it.
	Starting
	// Running means the process is ready and receives requests.
	Running
	// Stopping means the process has been asked to exit; requests wait and
	// then start a new one.
	Stopping
	// Crashed means the process exited unexpectedly; it is started again
	// after a backoff (MinScale ≥ 1) or on the next request (MinScale 0).
	Crashed
)

var stateNames = [...]string{"stopped", "starting", "running", "stopping", "crashed"}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "unknown"
	}
	return stateNames[s]
}

// Status describes one Service, for the start-up summary and tests.
type Status struct {
	Name string
	URL  *url.URL // the stable front
	// ProcessURL is the current process's own address, nil when none:
	// benchmarks use it to leave the front's hop out.
	ProcessURL *url.URL
	State      State
	// PID of the current process, 0 when there is none.
	PID int
	// ColdStart is the last time from exec to ready, 0 before the first start.
	ColdStart time.Duration
	// Restarts counts the unexpected exits (crashes) so far.
	Restarts int
	MinScale int
	Public   bool
}
