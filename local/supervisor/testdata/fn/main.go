// Command fn is the function the supervisor tests run. It honours PORT,
// serves the Knative health paths, echoes its pid, environment, Host,
// X-Forwarded-Proto and whether it was reached over TLS on /,
// exits with status 3 on /crash, sleeps on /sleep?ms=N and drains requests
// in flight on SIGTERM. Environment switches make it misbehave:
// FN_EXIT_AT_START exits at once, FN_IGNORE_TERM ignores SIGTERM and
// FN_STOP_DELAY_MS delays the exit after SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if os.Getenv("FN_EXIT_AT_START") != "" {
		fmt.Fprintln(os.Stderr, "exiting at start as asked")
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if os.Getenv("FN_IGNORE_TERM") != "" {
		stop()
		signal.Ignore(syscall.SIGTERM)
		ctx = context.Background() // only SIGKILL ends it
	}

	var inflight atomic.Int64
	reply := func(w http.ResponseWriter, v map[string]any) {
		v["pid"] = os.Getpid()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }
	mux.HandleFunc("GET /health/readiness", ok)
	mux.HandleFunc("GET /health/liveness", ok)
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("handled", r.Method, r.URL.Path)
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		reply(w, map[string]any{"env": env, "host": r.Host, "proto": r.Header.Get("X-Forwarded-Proto"), "tls": r.TLS != nil})
	})
	mux.HandleFunc("/crash", func(http.ResponseWriter, *http.Request) {
		fmt.Println("crashing as asked")
		os.Exit(3)
	})
	mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
		}
		reply(w, map[string]any{"inflight": n})
	})

	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("listening on", ln.Addr())
	fmt.Fprintln(os.Stderr, "stderr is captured too")
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()

	<-ctx.Done()
	fmt.Println("SIGTERM: draining")
	if ms, _ := strconv.Atoi(os.Getenv("FN_STOP_DELAY_MS")); ms > 0 {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	fmt.Print("stopped") // no newline: the supervisor ends the line
}
