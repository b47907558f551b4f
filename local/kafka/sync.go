package kafka

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Sync makes durable every record the cluster has acknowledged so far on
// the given partitions of topic. For the embedded broker it fsyncs, in
// parallel, the segment and index files those records are in (and the
// directories whose entries changed); it returns once all are on disk. For
// an external cluster it does nothing.
//
// Once an fsync of a partition has failed, Sync keeps failing for that
// partition: after a failed writeback Linux marks the lost pages clean, so
// a later fsync would succeed without them, and records acknowledged
// before would be lost without anyone being told. Restarting the platform
// (a new Cluster) starts over.
func (c *Cluster) Sync(topic string, partitions []int32) error {
	if c.files == nil {
		return nil
	}
	return c.files.sync(topic, partitions)
}

// syncer knows kfake's on-disk layout (persist.go): each partition has a
// directory <dataDir>/partitions/<url.PathEscape(topic)>-<partition>/
// holding segments <base offset>.dat and their indexes <base offset>.idx.
// kfake appends to the newest segment only and, without SyncWrites, never
// fsyncs one, not even when it rolls to a new one.
type syncer struct {
	dataDir string
	fsync   func(path string) error // a test may count the paths

	mu    sync.Mutex // guards parts, not the fsyncs: Syncs may overlap
	parts map[string]*partSync
}

// partSync is what the syncer knows of one partition directory.
type partSync struct {
	// synced is the newest segment fsynced so far, -1 before the first:
	// older segments were complete and fsynced, and are never written again.
	synced int64
	// known is set once the directory's own entry (and the data
	// directory's) has been fsynced.
	known bool
	err   error // a failed fsync, sticky (see Sync)
}

func newSyncer(dataDir string) *syncer {
	return &syncer{dataDir: dataDir, fsync: fsyncPath, parts: map[string]*partSync{}}
}

// syncJob is one fsync of a round.
type syncJob struct {
	path string
	part *partSync
	err  error
}

func (s *syncer) sync(topic string, partitions []int32) error {
	jobs, newest, errs := s.plan(topic, partitions)
	s.run(jobs)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range jobs {
		if j.err != nil && j.part.err == nil {
			j.part.err = fmt.Errorf("kafka: fsync %s failed, so records acknowledged on this partition may be lost: %w", j.path, j.err)
		}
	}
	for ps, base := range newest {
		if ps.err != nil {
			errs = append(errs, ps.err)
			continue
		}
		// An overlapping Sync may have got further already.
		ps.synced, ps.known = max(ps.synced, base), true
	}
	return errors.Join(errs...)
}

// plan lists the fsyncs that make the partitions' acknowledged records
// durable, and the newest segment of each.
func (s *syncer) plan(topic string, partitions []int32) ([]*syncJob, map[*partSync]int64, []error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	var jobs []*syncJob
	newest := map[*partSync]int64{}
	for _, p := range partitions {
		dir := s.partDir(topic, p)
		ps := s.parts[dir]
		if ps == nil {
			ps = &partSync{synced: -1}
			s.parts[dir] = ps
		}
		if ps.err != nil {
			errs = append(errs, ps.err)
			continue
		}
		paths, base, err := s.pathsToSync(dir, ps)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		newest[ps] = base
		for _, path := range paths {
			jobs = append(jobs, &syncJob{path: path, part: ps})
		}
	}
	return jobs, newest, errs
}

// partDir is kfake's directory of a partition.
func (s *syncer) partDir(topic string, p int32) string {
	return filepath.Join(s.dataDir, "partitions", url.PathEscape(topic)+"-"+strconv.Itoa(int(p)))
}

// pathsToSync lists what to fsync for a partition: every segment and
// index from the last one synced on (a segment may have been rolled since,
// after writes that were never fsynced), and the directory when a segment
// file appeared in it. The first time, also the directories above, whose
// entries were made when the partition and the topic were.
func (s *syncer) pathsToSync(dir string, ps *partSync) (paths []string, newest int64, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		// Called only for partitions Kafka acknowledged records on: a
		// missing directory means kfake's layout is not what we know.
		return nil, 0, fmt.Errorf("kafka: the embedded broker's partition directory: %w", err)
	}
	newest = -1
	for _, e := range entries {
		base, ok := segmentBase(e.Name())
		if !ok || base < ps.synced {
			continue
		}
		paths = append(paths, filepath.Join(dir, e.Name()))
		newest = max(newest, base)
	}
	if newest < 0 {
		return nil, 0, fmt.Errorf("kafka: no segment file in %s: has kfake's layout changed?", dir)
	}
	if newest > ps.synced {
		paths = append(paths, dir)
	}
	if !ps.known {
		paths = append(paths, filepath.Dir(dir), s.dataDir)
	}
	return paths, newest, nil
}

// segmentBase parses "<base>.dat" and "<base>.idx".
func segmentBase(name string) (int64, bool) {
	stem, ok := strings.CutSuffix(name, ".dat")
	if !ok {
		stem, ok = strings.CutSuffix(name, ".idx")
	}
	if !ok {
		return 0, false
	}
	base, err := strconv.ParseInt(stem, 10, 64)
	return base, err == nil && base >= 0
}

// run fsyncs every job's path at once: the file system commits concurrent
// fsyncs together (on ext4 eight take about twice as long as one), so the
// round costs little more than its slowest file.
func (s *syncer) run(jobs []*syncJob) {
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Go(func() { j.err = s.fsync(j.path) })
	}
	wg.Wait()
}

// fsyncPath fsyncs a file or directory. One that is gone is fine: kfake
// deletes only whole segments, past retention, and then their records
// are not expected to be read again.
func fsyncPath(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
