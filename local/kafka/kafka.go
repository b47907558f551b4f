// Package kafka runs the Kafka cluster of the local platform: an embedded,
// single-broker kfake cluster that speaks the real Kafka protocol and keeps
// its log on disk, or an external cluster named by KAFKA_BROKERS.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Cluster is a running Kafka cluster the local platform talks to.
type Cluster struct {
	seeds []string
	fake  *kfake.Cluster // nil for an external cluster
}

// Start runs an embedded one-broker cluster on a free 127.0.0.1 port that
// persists topics, records and committed group offsets in dataDir. Every
// produce is fsynced before it is acknowledged, so the broker ingress acks
// only what survives a crash.
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
	fake, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.DataDir(dataDir),
		kfake.SyncWrites(),
		kfake.WithLogger(fakeLogger{log.With("component", "kfake")}),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka: starting the embedded broker on %s: %w", dataDir, err)
	}
	c := &Cluster{seeds: fake.ListenAddrs(), fake: fake}
	log.Info("embedded kafka started", "seeds", c.seeds, "dataDir", dataDir)
	return c, nil
}

// External names a cluster that runs elsewhere (KAFKA_BROKERS). Close does
// nothing: the cluster is not ours to stop.
func External(seeds []string) *Cluster {
	return &Cluster{seeds: append([]string(nil), seeds...)}
}

// Seeds are the bootstrap addresses of the cluster (host:port).
func (c *Cluster) Seeds() []string { return append([]string(nil), c.seeds...) }

// Close stops an embedded cluster after writing its state to disk.
func (c *Cluster) Close() {
	if c.fake != nil {
		c.fake.Close()
	}
}
