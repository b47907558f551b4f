//go:build !linux

package deps

// raiseFileLimit does nothing where prlimit(2) does not exist: PgBouncer
// then runs with the limit it inherits and says so in its log.
func raiseFileLimit(pid int, want uint64) error { return nil }
