// Package kafka runs the Kafka cluster of the local platform: an embedded,
// single-broker kfake cluster that speaks the real Kafka protocol and keeps
// its log on disk, or an external cluster named by KAFKA_BROKERS.
//
// The embedded broker runs in a process of its own (this same executable,
// re-executed; see Run), so that it can crash on its own as a real broker
// does: "kill -9 of Kafka" is something a test or a soak can do. The
// platform restarts it on the same data directory and address, and the
// clients reconnect.
//
// # Durability
//
// The embedded broker writes every produced batch to its segment files
// before it acknowledges it, but does not fsync them: fsyncing inside
// kfake's single request loop made every produce request wait for its own
// disk flush, one after another (about 200 events/s). Instead whoever must
// not acknowledge a record before it is durable calls Sync after Kafka's
// acknowledgement, and Sync fsyncs the files that hold the records. A
// process crash loses nothing that was written (the data is in the
// kernel's page cache); Sync is what makes an acknowledged record survive
// a power loss or a kernel crash. Callers batch: the broker ingress runs
// one Sync for all the events that arrived while the previous one ran
// (group commit).
//
// Committed consumer-group offsets (groups.log) are not fsynced: after a
// power loss a consumer may see records again, which at-least-once
// delivery allows.
//
// For an external cluster Sync does nothing: its acks=all acknowledgement
// is its durability.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// Cluster is a running Kafka cluster the local platform talks to.
type Cluster struct {
	seeds []string
	proc  *process // nil for an external cluster
	files *syncer  // nil for an external cluster
}

// Start runs an embedded one-broker cluster in a child process on a free
// 127.0.0.1 port that persists topics, records and committed group offsets
// in dataDir. The broker is restarted on the same port whenever it dies,
// until Close. Records are durable once Sync has returned for them.
func Start(ctx context.Context, dataDir string, log *slog.Logger) (*Cluster, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if dataDir == "" {
		return nil, errors.New("kafka: a data directory is required")
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("kafka: data directory: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p, err := startProcess(ctx, dataDir, log.With("component", "kafka"))
	if err != nil {
		return nil, fmt.Errorf("kafka: starting the embedded broker on %s: %w", dataDir, err)
	}
	c := &Cluster{seeds: []string{p.addr}, proc: p, files: newSyncer(dataDir)}
	register(c)
	log.Info("embedded kafka started", "seeds", c.seeds, "dataDir", dataDir, "pid", c.PID())
	return c, nil
}

// External names a cluster that runs elsewhere (KAFKA_BROKERS). Close does
// nothing: the cluster is not ours to stop.
func External(seeds []string) *Cluster {
	return &Cluster{seeds: append([]string(nil), seeds...)}
}

// Seeds are the bootstrap addresses of the cluster (host:port).
func (c *Cluster) Seeds() []string { return append([]string(nil), c.seeds...) }

// PID is the process id of the embedded broker, or 0 for an external
// cluster and while the broker is being restarted.
func (c *Cluster) PID() int {
	if c.proc == nil {
		return 0
	}
	return c.proc.pid()
}

// Kill kills the embedded broker with SIGKILL, as a crash would, and
// returns once it has been restarted on the same data directory and
// address (or ctx is done). It is for tests and soaks.
func (c *Cluster) Kill(ctx context.Context) error {
	if c.proc == nil {
		return errors.New("kafka: an external cluster is not ours to kill")
	}
	return c.proc.kill(ctx)
}

// Close stops an embedded cluster after it has written its state to disk.
func (c *Cluster) Close() {
	if c.proc == nil {
		return
	}
	unregister(c)
	c.proc.close()
}

// embedded holds the embedded clusters of this process by seed address,
// for Lookup.
var embedded sync.Map

func register(c *Cluster) {
	for _, s := range c.seeds {
		embedded.Store(s, c)
	}
}

func unregister(c *Cluster) {
	for _, s := range c.seeds {
		embedded.CompareAndDelete(s, c)
	}
}

// Lookup returns the embedded cluster started by this process that listens
// on one of seeds, or nil. It lets a Kafka client that was given only seed
// addresses find the Sync it needs before acknowledging records.
func Lookup(seeds []string) *Cluster {
	for _, s := range seeds {
		if c, ok := embedded.Load(s); ok {
			return c.(*Cluster)
		}
	}
	return nil
}
