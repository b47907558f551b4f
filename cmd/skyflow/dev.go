package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/skyflow-oss/skyflow/local/platform"
	"github.com/skyflow-oss/skyflow/local/supervisor"
	"github.com/skyflow-oss/skyflow/runtime/logging"
)

// runDev is `skyflow dev` (`make run`): the whole platform on this machine
// until Ctrl-C.
func runDev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	listen := fs.String("listen", envOr("SKYFLOW_LISTEN", "127.0.0.1:8080"), "address of the gateway (env SKYFLOW_LISTEN)")
	tlsListen := fs.String("tls-listen", envOr("SKYFLOW_TLS_LISTEN", "127.0.0.1:8443"), "address of the gateway's HTTPS, with the development certificate; port 0 picks a free one (env SKYFLOW_TLS_LISTEN)")
	idle := fs.Duration("idle", 30*time.Second, "scale-to-zero period: a function idle this long is stopped")
	dir := fs.String("dir", "", "where local data lives (default <repo>/.dev)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root, err := projectRoot()
	if err != nil {
		return err
	}
	log := logging.New(os.Stderr, "skyflow-dev", os.Getenv("LOG_LEVEL"))
	cfg := platform.Config{
		Root:          root,
		DevDir:        *dir,
		PublicAddr:    *listen,
		PublicTLSAddr: *tlsListen,
		IdleAfter:     *idle,
		DatabaseURL:   os.Getenv("DATABASE_URL"),
		RedisURL:      os.Getenv("REDIS_URL"),
		// With a shared REDIS_URL, a prefix of its own keeps this
		// platform's keys (and the gateway's cached answers) apart.
		RedisPrefix: os.Getenv("REDIS_PREFIX"),
		Logs:        os.Stderr,
		Logger:      log,
	}
	if v := os.Getenv("KAFKA_BROKERS"); v != "" {
		cfg.KafkaBrokers = strings.Split(v, ",")
	}
	// make test builds every function once, before the test processes
	// that start platforms, instead of each of them building all.
	if bins := os.Getenv(prebuiltEnv); bins != "" {
		cfg.BinDir, cfg.Build = bins, supervisor.Prebuilt
	}
	if cfg.DatabaseURL == "" || cfg.RedisURL == "" {
		// The private servers under the data directory are shared with
		// `skyflow deps run` (make test): registered as one of their users,
		// this platform keeps a make test that started them from stopping
		// them under it when it ends first.
		devDir := cfg.DevDir
		if devDir == "" {
			devDir = filepath.Join(root, ".dev")
		}
		registered, err := shareServers(devDir)
		if err != nil {
			return err
		}
		defer runtime.KeepAlive(registered) // its lock file stays open until we return
	}
	fmt.Fprintln(os.Stderr, "skyflow: starting the local platform…")
	p, err := platform.Start(ctx, cfg)
	if err != nil {
		return err
	}
	p.WriteSummary(os.Stdout)
	var failure error
	select {
	case <-ctx.Done():
	case why := <-p.StoreExited():
		failure = fmt.Errorf("%s; the platform cannot run without it", why)
	}
	fmt.Fprintln(os.Stderr, "\nskyflow: stopping…")
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second) // ctx may be done already
	defer cancel()
	if err := p.Close(stopCtx); err != nil {
		slog.Error("stopping", "error", err)
	}
	fmt.Fprintln(os.Stderr, "skyflow: stopped")
	return failure
}

// prebuiltEnv names a directory of function binaries built beforehand.
const prebuiltEnv = "SKYFLOW_FUNCTION_BINARIES"

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
