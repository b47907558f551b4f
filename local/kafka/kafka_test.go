package kafka

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestEmbeddedClusterKeepsRecordsAndGroupOffsetsAcrossRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)

	c, err := Start(ctx, dir, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := EnsureTopics(ctx, c.Seeds(), []string{"events"}, 2); err != nil {
		t.Fatal(err)
	}
	// A second call finds the topic and is fine with it.
	if err := EnsureTopics(ctx, c.Seeds(), []string{"events"}, 2); err != nil {
		t.Fatalf("EnsureTopics is not idempotent: %v", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "events", Key: []byte("k"), Value: []byte("v1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, "events")
	if err != nil {
		t.Fatal(err)
	}
	if err := adm.CommitAllOffsets(ctx, "g", ends.Offsets()); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	c.Close()

	c, err = Start(ctx, dir, log)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err = kgo.NewClient(kgo.SeedBrokers(c.Seeds()...), kgo.ConsumeTopics("events"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	fetches := cl.PollFetches(ctx)
	if err := fetches.Err(); err != nil {
		t.Fatal(err)
	}
	recs := fetches.Records()
	if len(recs) != 1 || string(recs[0].Value) != "v1" || string(recs[0].Key) != "k" {
		t.Fatalf("after restart got %d records, want the one produced before", len(recs))
	}
	committed, err := kadm.NewClient(cl).FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	committed.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != 1 {
		t.Fatalf("committed offsets after restart sum to %d, want 1", total)
	}
}

func TestExternalClusterCloseDoesNothing(t *testing.T) {
	c := External([]string{"kafka:9092"})
	c.Close()
	if got := c.Seeds(); len(got) != 1 || got[0] != "kafka:9092" {
		t.Fatalf("Seeds() = %v", got)
	}
}
