//go:build unix && !linux

package supervisor

import "syscall"

// sysProcAttr puts the process in its own process group, so the terminal's
// Ctrl-C reaches only the supervisor, which then stops it gracefully.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
