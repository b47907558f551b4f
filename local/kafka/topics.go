package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EnsureTopics creates the topics that do not exist yet, each with the given
// number of partitions. Existing topics are left as they are.
func EnsureTopics(ctx context.Context, seeds, topics []string, partitions int32) error {
	if len(topics) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return fmt.Errorf("kafka: client for %v: %w", seeds, err)
	}
	defer cl.Close()
	// Replication factor -1: the broker's default, which works on a
	// one-broker local cluster as well as on a real one.
	resps, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, -1, nil, topics...)
	if err != nil {
		return fmt.Errorf("kafka: creating topics %v: %w", topics, err)
	}
	var errs []error
	for _, r := range resps.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("kafka: creating topic %s: %w", r.Topic, r.Err))
		}
	}
	return errors.Join(errs...)
}
