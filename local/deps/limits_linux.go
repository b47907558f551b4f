package deps

import "golang.org/x/sys/unix"

// raiseFileLimit raises the soft limit on open files of process pid to at
// least want (at most to its hard limit). Go raises its own soft limit at
// start but gives children the limit it inherited, often 1024, and
// PgBouncer needs a descriptor per client connection.
func raiseFileLimit(pid int, want uint64) error {
	var lim unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &lim); err != nil {
		return err
	}
	if lim.Cur >= want {
		return nil
	}
	lim.Cur = min(want, lim.Max)
	return unix.Prlimit(pid, unix.RLIMIT_NOFILE, &lim, nil)
}
