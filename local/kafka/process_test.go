package kafka

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func startCluster(t *testing.T, dir string) *Cluster {
	t.Helper()
	c, err := Start(t.Context(), dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// produce stores one record and returns its partition.
func produce(t *testing.T, cl *kgo.Client, topic, value string) int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	r := &kgo.Record{Topic: topic, Value: []byte(value)}
	if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatalf("produce %s: %v", value, err)
	}
	return r.Partition
}

// values reads want records of topic from the start.
func values(t *testing.T, seeds []string, topic string, want int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var got []string
	for len(got) < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	slices.Sort(got)
	return got
}

func processExists(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

func TestKillRestartsTheBrokerOnTheSameAddressWithItsRecords(t *testing.T) {
	c := startCluster(t, t.TempDir())
	if err := EnsureTopics(t.Context(), c.Seeds(), []string{"events"}, 1); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Seeds()...), kgo.DisableIdempotentWrite())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce(t, cl, "events", "before")

	pid, seeds := c.PID(), c.Seeds()
	if pid == 0 || pid == syscall.Getpid() {
		t.Fatalf("PID() = %d, want the broker's own process", pid)
	}
	if err := c.Kill(t.Context()); err != nil {
		t.Fatal(err)
	}
	if processExists(pid) {
		t.Fatalf("process %d still exists after Kill", pid)
	}
	if c.PID() == 0 || c.PID() == pid {
		t.Fatalf("PID() = %d after Kill of %d, want the restarted process", c.PID(), pid)
	}
	if !slices.Equal(c.Seeds(), seeds) {
		t.Fatalf("seeds moved from %v to %v", seeds, c.Seeds())
	}
	// The same client reconnects to the same address.
	produce(t, cl, "events", "after")
	if got := values(t, c.Seeds(), "events", 2); !slices.Equal(got, []string{"after", "before"}) {
		t.Fatalf("after the crash the topic holds %q", got)
	}
}

func TestBrokerKilledFromOutsideIsRestarted(t *testing.T) {
	c := startCluster(t, t.TempDir())
	pid := c.PID()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for c.PID() == pid || c.PID() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the broker was not restarted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := EnsureTopics(t.Context(), c.Seeds(), []string{"events"}, 1); err != nil {
		t.Fatalf("the restarted broker does not answer: %v", err)
	}
}

func TestCloseStopsTheBrokerProcess(t *testing.T) {
	c, err := Start(t.Context(), t.TempDir(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	pid := c.PID()
	if Lookup(c.Seeds()) != c {
		t.Fatal("Lookup does not find the running cluster")
	}
	c.Close()
	if processExists(pid) {
		t.Fatalf("process %d still exists after Close", pid)
	}
	if Lookup(c.Seeds()) != nil {
		t.Fatal("Lookup finds a closed cluster")
	}
	c.Close() // a second Close is fine
	if err := c.Kill(t.Context()); err == nil {
		t.Fatal("Kill of a closed cluster succeeded")
	}
}

func TestRunPrintsItsAddressAndStopsWhenStdinCloses(t *testing.T) {
	stdinR, stdinW := io.Pipe()
	stdoutR, stdoutW := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), []string{"-data", t.TempDir(), "-supervised"}, stdinR, stdoutW, &stderr)
		stdoutW.Close()
	}()
	line, err := bufio.NewReader(stdoutR).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), readyPrefix)
	if !ok || !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("first line %q, want %q and the address", line, readyPrefix)
	}
	if err := EnsureTopics(t.Context(), []string{addr}, []string{"t"}, 1); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, stdoutR)
	stdinW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after stdin closed")
	}
	if err := Run(t.Context(), nil, nil, io.Discard, io.Discard); err == nil {
		t.Fatal("Run without -data succeeded")
	}
}

// fsyncRecorder records the paths a syncer fsyncs.
type fsyncRecorder struct {
	mu    sync.Mutex
	paths []string
	fail  error
}

func (r *fsyncRecorder) fsync(path string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.paths = append(r.paths, path)
	if r.fail != nil {
		return r.fail
	}
	return fsyncPath(path)
}

// take returns the recorded paths relative to dir, sorted, and forgets them.
func (r *fsyncRecorder) take(t *testing.T, dir string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var rel []string
	for _, p := range r.paths {
		s, err := filepath.Rel(dir, p)
		if err != nil {
			t.Fatal(err)
		}
		rel = append(rel, filepath.ToSlash(s))
	}
	r.paths = nil
	slices.Sort(rel)
	return rel
}

func TestSyncFsyncsTheSegmentsOfAcknowledgedRecordsAndTheirDirectories(t *testing.T) {
	dir := t.TempDir()
	c := startCluster(t, dir)
	rec := &fsyncRecorder{}
	c.files.fsync = rec.fsync
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Seeds()...), kgo.DisableIdempotentWrite(),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Small segments, so that a few records roll to a new one.
	const topic = "a topic/1" // escaped in the directory name
	resp, err := kadm.NewClient(cl).CreateTopic(t.Context(), 1, -1, map[string]*string{"segment.bytes": new("400")}, topic)
	if err != nil || resp.Err != nil {
		t.Fatal(err, resp.Err)
	}
	p := produce(t, cl, topic, strings.Repeat("a", 150))
	if err := c.Sync(topic, []int32{p}); err != nil {
		t.Fatal(err)
	}
	part := "partitions/a%20topic%2F1-0"
	want := []string{".", "partitions", part, part + "/0.dat", part + "/0.idx"}
	if got := rec.take(t, dir); !slices.Equal(got, want) {
		t.Fatalf("first Sync fsynced %q, want %q", got, want)
	}

	produce(t, cl, topic, strings.Repeat("b", 150)) // fills segment 0
	if err := c.Sync(topic, []int32{p}); err != nil {
		t.Fatal(err)
	}
	want = []string{part + "/0.dat", part + "/0.idx"}
	if got := rec.take(t, dir); !slices.Equal(got, want) {
		t.Fatalf("Sync in the same segment fsynced %q, want %q", got, want)
	}

	produce(t, cl, topic, strings.Repeat("c", 150)) // rolls to segment 2
	if err := c.Sync(topic, []int32{p}); err != nil {
		t.Fatal(err)
	}
	want = []string{part, part + "/0.dat", part + "/0.idx", part + "/2.dat", part + "/2.idx"}
	if got := rec.take(t, dir); !slices.Equal(got, want) {
		t.Fatalf("Sync after a roll fsynced %q, want %q: the old segment once more, the new one and the directory", got, want)
	}
	if err := c.Sync(topic, []int32{p}); err != nil {
		t.Fatal(err)
	}
	want = []string{part + "/2.dat", part + "/2.idx"}
	if got := rec.take(t, dir); !slices.Equal(got, want) {
		t.Fatalf("Sync after that fsynced %q, want %q", got, want)
	}
}

func TestSyncFailsWhereItFindsNoSegment(t *testing.T) {
	c := startCluster(t, t.TempDir())
	if err := EnsureTopics(t.Context(), c.Seeds(), []string{"events"}, 2); err != nil {
		t.Fatal(err)
	}
	// No record was ever acknowledged there, so no segment: Sync says so
	// rather than fsyncing nothing, which is what a changed kfake layout
	// would look like.
	if err := c.Sync("events", []int32{1}); err == nil {
		t.Fatal("Sync of a partition without segments succeeded")
	}
}

func TestSyncKeepsFailingForAPartitionOnceAnFsyncFailed(t *testing.T) {
	c := startCluster(t, t.TempDir())
	rec := &fsyncRecorder{fail: errors.New("EIO")}
	c.files.fsync = rec.fsync
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Seeds()...), kgo.DisableIdempotentWrite())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := EnsureTopics(t.Context(), c.Seeds(), []string{"events"}, 1); err != nil {
		t.Fatal(err)
	}
	produce(t, cl, "events", "v")
	if err := c.Sync("events", []int32{0}); err == nil {
		t.Fatal("Sync succeeded although fsync failed")
	}
	rec.mu.Lock()
	rec.fail = nil
	rec.mu.Unlock()
	if err := c.Sync("events", []int32{0}); err == nil || !strings.Contains(err.Error(), "EIO") {
		t.Fatalf("Sync after a failed fsync: %v, want the earlier failure", err)
	}
}

func TestExternalClusterHasNoProcessAndSyncDoesNothing(t *testing.T) {
	c := External([]string{"kafka:9092"})
	if c.PID() != 0 {
		t.Fatalf("PID() = %d", c.PID())
	}
	if err := c.Sync("events", []int32{0}); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if err := c.Kill(t.Context()); err == nil {
		t.Fatal("Kill of an external cluster succeeded")
	}
	if Lookup(c.Seeds()) != nil {
		t.Fatal("Lookup finds an external cluster")
	}
}

func TestConcurrentSyncs(t *testing.T) {
	c := startCluster(t, t.TempDir())
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Seeds()...), kgo.DisableIdempotentWrite())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := EnsureTopics(t.Context(), c.Seeds(), []string{"events"}, 2); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			r := &kgo.Record{Topic: "events", Key: []byte{byte(i)}, Value: []byte("v")}
			if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
				errs <- err
				return
			}
			errs <- c.Sync("events", []int32{r.Partition})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
