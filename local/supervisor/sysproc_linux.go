package supervisor

import "syscall"

// sysProcAttr puts the process in its own process group, so the terminal's
// Ctrl-C reaches only the supervisor, which then stops it gracefully; and
// asks the kernel to send SIGTERM if the supervisor dies without doing so.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
