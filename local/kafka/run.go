package kafka

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Command is the subcommand name under which the broker process runs
// (skyflow kafka-broker).
const Command = "kafka-broker"

// processEnv marks a process that Start re-executed to run the broker.
//
// The platform runs inside skyflow dev and inside the test binaries of
// every package that starts it, none of which would otherwise know how to
// become a broker. An init function of this package, which all of them
// link, turns such a process into the broker before main (or TestMain)
// runs, so no program needs a hook of its own. Nothing but Start sets the
// variable, and the broker unsets it.
const processEnv = "SKYFLOW_KAFKA_BROKER_PROCESS"

// readyPrefix starts the line the broker prints on stdout once it listens.
const readyPrefix = "kafka-broker listening on "

func init() {
	if os.Getenv(processEnv) == "" {
		return
	}
	os.Unsetenv(processEnv)
	os.Exit(runChild())
}

// runChild runs the broker of a re-executed process (os.Args: argv0,
// Command, flags).
func runChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	args := os.Args[1:]
	if len(args) > 0 && args[0] == Command {
		args = args[1:]
	}
	if err := Run(ctx, args, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", Command, err)
		return 1
	}
	return 0
}

// Run runs the embedded broker on a data directory until ctx is done (or,
// with -supervised, until stdin closes: the parent that started it is gone
// or wants it stopped), then writes its state to disk. Once it listens it
// prints "kafka-broker listening on HOST:PORT" on stdout. Its warnings and
// errors go to stderr as JSON log records.
//
// Flags: -data DIR (required), -listen ADDR (default 127.0.0.1:0),
// -supervised.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(Command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", "", "`directory` of the broker's log and state (required)")
	listen := fs.String("listen", "127.0.0.1:0", "`address` to listen on")
	supervised := fs.Bool("supervised", false, "stop when stdin closes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dataDir == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("-data DIR is required, and nothing else")
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fake, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.DataDir(*dataDir),
		// No SyncWrites: Sync, in the process that acknowledges records,
		// fsyncs many produce requests' writes at once (see the package doc).
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, *listen) }),
		kfake.WithLogger(fakeLogger{log}),
	)
	if err != nil {
		return fmt.Errorf("starting the broker on %s: %w", *dataDir, err)
	}
	defer fake.Close() // writes the broker's state (snapshots, sequence windows)
	if _, err := fmt.Fprintf(stdout, "%s%s\n", readyPrefix, fake.ListenAddrs()[0]); err != nil {
		return err
	}
	if *supervised {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			_, _ = io.Copy(io.Discard, stdin) // EOF or an error: either way the supervisor is gone
			cancel()
		}()
	}
	<-ctx.Done()
	return nil
}
