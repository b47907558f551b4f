package host

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// servePprof serves Go's profiler on a free loopback port when
// SKYFLOW_PPROF_DIR names a directory, and writes the address to
// <dir>/<function>.addr, where a benchmark finds it. Block and mutex
// profiling are turned on with it. It is for profiling on a developer's
// machine: it never listens beyond loopback, and is off unless asked for.
func servePprof(dir, function string, log *slog.Logger) (stop func(), err error) {
	if dir == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addrFile := filepath.Join(dir, function+".addr")
	if err := os.WriteFile(addrFile, []byte(ln.Addr().String()), 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	runtime.SetBlockProfileRate(int(100 * time.Microsecond)) // a sample per 100µs blocked
	runtime.SetMutexProfileFraction(10)
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof stopped", "error", err)
		}
	}()
	log.Info("pprof", "addr", ln.Addr().String())
	return func() { srv.Close(); os.Remove(addrFile) }, nil
}
