package deps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockDir takes an exclusive flock on dir/.lock, so that two processes (say
// `make run` and `make test`) starting the same directory at once do not both
// run initdb or both start a server. It waits until ctx is done. The lock
// goes with the open file, so a crashed holder never leaves it stuck, and Go
// opens files close-on-exec, so the servers we start do not inherit it.
func lockDir(ctx context.Context, dir string, w io.Writer) (unlock func(), err error) {
	path := filepath.Join(dir, ".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("deps: open lock file: %w", err)
	}
	told := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("deps: lock %s: %w", path, err)
		}
		if !told {
			fmt.Fprintf(w, "deps: waiting for another process that is starting %s\n", dir)
			told = true
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("deps: gave up waiting for the lock on %s (held by another skyflow process): %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// claimDir makes dir absolute, creates it with mode perm and takes its lock:
// the common start of StartPostgres and StartRedis.
func claimDir(ctx context.Context, dir string, perm os.FileMode, log io.Writer) (abs string, unlock func(), err error) {
	abs, err = filepath.Abs(dir)
	if err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(abs, perm); err != nil {
		return "", nil, fmt.Errorf("deps: create %s: %w", abs, err)
	}
	unlock, err = lockDir(ctx, abs, log)
	if err != nil {
		return "", nil, err
	}
	return abs, unlock, nil
}
