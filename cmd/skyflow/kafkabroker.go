package main

import (
	"context"
	"os"

	"github.com/skyflow-oss/skyflow/local/kafka"
)

// runKafkaBroker runs the embedded Kafka broker in the foreground on a
// data directory: what skyflow dev runs as its own process (through an
// environment marker, see kafka.Run), here for a soak or a look at a
// platform's .dev/kafka while the platform is stopped. It is not in the
// usage: nothing but tools should need it.
func runKafkaBroker(ctx context.Context, args []string) error {
	return kafka.Run(ctx, args, os.Stdin, os.Stdout, os.Stderr)
}
