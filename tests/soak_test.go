package tests

// TestSoak runs the vault under a steady mixed load through the gateway for
// SKYFLOW_SOAK_DURATION (default 10m; `make soak`), kills the Kafka broker
// and audit-record once each with SIGKILL along the way, and then checks
// what must hold after any such run:
//
//   - no request was answered 5xx (nor any other non-2xx, nor left without
//     an answer: every request the soak sends is valid);
//   - every record an insert answered 2xx for has its
//     com.skyflow.vault.record.created event in the broker's Kafka topic
//     (read back from the topic itself: the strongest evidence that the
//     event left the outbox) and its entries in the audit log: the
//     record.created event, and the insert's com.skyflow.audit.vault.accessed
//     entry naming the record;
//   - within 30 s of the load's end, every Trigger's consumer lag (the
//     broker's skyflow_broker_consumer_lag), audit-record's among them, is
//     zero, the outbox has no unsent row, and the audit log holds a
//     record.created entry for every inserted record;
//   - the resident memory (VmRSS) of the gateway and of the vault functions
//     is flat: at the end of the load within 10 % of what it was in the
//     second half, each process compared within its own life (a killed
//     process restarts with a new one).
//
// It is not part of `make test`: `go test ./tests/` skips it unless
// SKYFLOW_SOAK is set. Every loop is bounded in time and count, and every
// address is on loopback.

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skyflow-oss/skyflow/domain/records"
	"github.com/skyflow-oss/skyflow/local/kafka"
	"github.com/skyflow-oss/skyflow/local/manifest"
	"github.com/skyflow-oss/skyflow/local/platform"
	"github.com/skyflow-oss/skyflow/runtime/db"
)

const (
	soakClients    = 16
	soakSeed       = 500              // records the reads read
	soakMaxOps     = 10_000_000       // per client: a bound besides the time
	soakDrainLimit = 30 * time.Second // lag and outbox back to zero within this
	soakRSSGrowth  = 0.10             // the most a process's RSS may grow
)

// soakOps are the operations of the mix and their weights.
var soakOps = []struct {
	name   string
	weight int
}{
	{"insert 1", 25},
	{"insert 25", 5},
	{"get by id", 25},
	{"detokenize 25", 15},
	{"get by unique column", 15},
	{"query", 15},
}

// soakWatched tells the processes whose RSS is watched: the gateway and
// the vault functions, audit-record among them.
func soakWatched(name string) bool {
	return name == "gateway" || name == "audit-record" ||
		strings.HasPrefix(name, "records-") || strings.HasPrefix(name, "tokens-")
}

// kafkaBroker is what the soak needs of the embedded Kafka broker: its
// process id, and a SIGKILL that returns once the platform has restarted it.
type kafkaBroker interface {
	PID() int
	Kill(ctx context.Context) error
}

// soakKafka is the platform's embedded Kafka broker, or why there is none.
func soakKafka(p *testPlatform) (kafkaBroker, error) {
	c := kafka.Lookup(p.KafkaSeeds())
	if c == nil {
		return nil, fmt.Errorf("no embedded Kafka cluster listens on %v", p.KafkaSeeds())
	}
	if c.PID() == 0 {
		return nil, fmt.Errorf("the embedded Kafka cluster on %v has no process of its own", p.KafkaSeeds())
	}
	return c, nil
}

func TestSoak(t *testing.T) {
	if os.Getenv("SKYFLOW_SOAK") == "" {
		t.Skip("the soak runs for minutes: run it with `make soak` (SKYFLOW_SOAK=1, SKYFLOW_SOAK_DURATION, default 10m)")
	}
	d := soakDuration(t)
	limits, env := loadRateLimits()
	// Nothing scales to zero during the soak: RSS is compared within a
	// process's life, and a scale-down would end lives for no reason.
	p := startPlatform(t, options{env: env, idle: time.Hour})
	ctx := t.Context()
	e := newLoadEnv(t, p, soakClients)
	pool, err := db.Open(ctx, p.cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	e.seed(t, nil, soakSeed)
	t.Logf("soak: %v, %d clients, HEAD %s, load average %s; gateway rate limits: %s", d, soakClients, gitHead(), loadAverage(), limits)

	// Every inserted record, seeded ones too: each must have its event and
	// audit entries.
	inserted := map[string]bool{}
	for _, r := range e.seeded {
		inserted[r.id] = true
	}
	insertRequests := (soakSeed + records.MaxItems - 1) / records.MaxItems

	rss := &soakRSS{}
	sampleEvery := min(5*time.Second, max(time.Second, d/60))
	start := time.Now()
	end := start.Add(d)
	stopSampling := make(chan struct{})
	var sampling sync.WaitGroup
	sampling.Go(func() { rss.run(p, start, sampleEvery, stopSampling) })
	// The backlog over time: where a late drain began.
	var timeline []string
	sampling.Go(func() {
		tick := time.NewTicker(max(5*time.Second, d/24))
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
				state, _ := soakBacklog(ctx, p, pool, "", 0, false)
				timeline = append(timeline, fmt.Sprintf("%5.1fs %s", time.Since(start).Seconds(), state))
			}
		}
	})

	// The kills, mid-way: the broker at 40 %, audit-record at 60 %.
	var kills sync.WaitGroup
	var killLog []string
	var killMu sync.Mutex
	logKill := func(format string, args ...any) {
		killMu.Lock()
		defer killMu.Unlock()
		killLog = append(killLog, fmt.Sprintf("%5.1fs ", time.Since(start).Seconds())+fmt.Sprintf(format, args...))
	}
	brokerKilled, auditKilled := false, false
	kills.Go(func() {
		if !soakSleepUntil(ctx, start.Add(d*4/10)) {
			return
		}
		k, err := soakKafka(p)
		if err != nil {
			logKill("broker NOT killed: %v", err)
			return
		}
		before := k.PID()
		kctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		killed := time.Now()
		if err := k.Kill(kctx); err != nil {
			logKill("killing the broker (pid %d): %v", before, err)
			return
		}
		brokerKilled = true
		logKill("killed the Kafka broker (pid %d) with SIGKILL; restarted as pid %d after %v", before, k.PID(), time.Since(killed).Round(time.Millisecond))
	})
	kills.Go(func() {
		if !soakSleepUntil(ctx, start.Add(d*6/10)) {
			return
		}
		// audit-record runs while events flow; wait for a process if a
		// restart left none for a moment.
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			for _, st := range p.Status() {
				if st.Name != "audit-record" || st.PID == 0 {
					continue
				}
				if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
					logKill("killing audit-record (pid %d): %v", st.PID, err)
					return
				}
				auditKilled = true
				logKill("killed audit-record (pid %d, %d restarts so far) with SIGKILL", st.PID, st.Restarts)
				return
			}
		}
		logKill("audit-record NOT killed: it had no process for 30 s")
	})

	// The load.
	per := make([]soakWorker, soakClients)
	var wg sync.WaitGroup
	for w := range per {
		wg.Go(func() { per[w].run(ctx, e, end) })
	}
	wg.Wait()
	loadEnd := time.Now()
	close(stopSampling)
	sampling.Wait()
	kills.Wait()

	byOp := map[string]*loadStats{}
	for _, op := range soakOps {
		byOp[op.name] = &loadStats{}
	}
	for i := range per {
		for name, s := range per[i].stats {
			byOp[name].merge(s)
		}
		for _, id := range per[i].ids {
			inserted[id] = true
		}
		insertRequests += per[i].insertRequests
	}

	// Drain: lag and outbox back to zero, the audit log caught up.
	caughtUp, drainTook, atLimit, last := soakDrain(ctx, p, pool, e.vault, len(inserted), loadEnd)
	drained := caughtUp && drainTook <= soakDrainLimit

	// The evidence, once everything has settled (or 2 minutes more passed).
	topic := ""
	for _, br := range p.Manifests().Brokers {
		if br.Name == platform.DefaultBroker && br.Namespace == manifest.DefaultNamespace {
			topic = br.Topic()
		}
	}
	kctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	inKafka, kafkaErr := soakEventsInKafka(kctx, p.KafkaSeeds(), topic, records.CreatedType, inserted)
	cancel()
	createdAudited, accessAudited, accessRows, auditErr := soakAudited(ctx, pool, e.vault, inserted)

	// The figures.
	var out strings.Builder
	fmt.Fprintf(&out, "\nTestSoak, %s, HEAD %s: %v of %d clients through the gateway, load average at the end %s\n",
		start.Format("2006-01-02 15:04"), gitHead(), loadEnd.Sub(start).Round(time.Second), soakClients, loadAverage())
	fmt.Fprintf(&out, "gateway rate limits in force: %s\n\n", limits)
	fmt.Fprintf(&out, "| op | requests | 2xx | ops/s | p50 ms | p99 ms | p99.9 ms | 5xx | other non-2xx | transport | wrong 2xx |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	var total5xx, totalFailed int
	for _, op := range soakOps {
		s := byOp[op.name]
		n5, other := 0, 0
		for code, n := range s.non2xx {
			if code >= 500 {
				n5 += n
			} else {
				other += n
			}
		}
		total5xx += n5
		totalFailed += s.failed()
		fmt.Fprintf(&out, "| %s | %d | %d | %.1f | %.1f | %.1f | %.1f | %d | %d | %d | %d |\n",
			op.name, s.ok+s.failed(), s.ok, float64(s.ok)/loadEnd.Sub(start).Seconds(),
			percentile(s.lat, 0.50), percentile(s.lat, 0.99), percentile(s.lat, 0.999), n5, other, s.transport, s.bad)
	}
	fmt.Fprintf(&out, "\nbacklog during the load:\n")
	for _, l := range timeline {
		fmt.Fprintf(&out, "  %s\n", l)
	}
	fmt.Fprintf(&out, "\nkills:\n")
	for _, l := range killLog {
		fmt.Fprintf(&out, "  %s\n", l)
	}
	fmt.Fprintf(&out, "\ninserted records (2xx, seeds included): %d in %d requests\n", len(inserted), insertRequests)
	fmt.Fprintf(&out, "record.created events in Kafka topic %s: %d of %d", topic, inKafka, len(inserted))
	if kafkaErr != nil {
		fmt.Fprintf(&out, " (reading the topic: %v)", kafkaErr)
	}
	fmt.Fprintf(&out, "\naudit log: record.created entries for %d of %d records; insert access entries name %d of %d records (%d insert access entries for %d insert requests)",
		createdAudited, len(inserted), accessAudited, len(inserted), accessRows, insertRequests)
	if auditErr != nil {
		fmt.Fprintf(&out, " (reading the audit log: %v)", auditErr)
	}
	switch {
	case drained:
		fmt.Fprintf(&out, "\ndrain: every Trigger's lag, audit-record's, the outbox and the audit log caught up %v after the load stopped\n", drainTook.Round(10*time.Millisecond))
	case caughtUp:
		fmt.Fprintf(&out, "\ndrain: NOT caught up within %v after the load stopped: %s; caught up only after %v\n", soakDrainLimit, atLimit, drainTook.Round(10*time.Millisecond))
	default:
		fmt.Fprintf(&out, "\ndrain: NOT caught up within %v after the load stopped: %s; still not after %v: %s\n", soakDrainLimit, atLimit, drainTook.Round(time.Second), last)
	}
	fmt.Fprintf(&out, "\nRSS (VmRSS, MiB) of each process life, second half of the load vs its end:\n")
	verdicts := rss.judge(start, loadEnd)
	for _, v := range verdicts {
		fmt.Fprintf(&out, "  %s\n", v.line)
	}
	fmt.Print(out.String())

	// The assertions.
	if total5xx > 0 {
		t.Errorf("%d requests were answered 5xx; first errors: %s", total5xx, soakFirstErrors(byOp))
	}
	if totalFailed > total5xx {
		t.Errorf("%d requests failed otherwise (non-2xx, no answer, or a wrong 2xx answer); every request of the soak is valid; first errors: %s",
			totalFailed-total5xx, soakFirstErrors(byOp))
	}
	if !brokerKilled {
		t.Errorf("the Kafka broker was not killed (see the kills above)")
	}
	if !auditKilled {
		t.Errorf("audit-record was not killed (see the kills above)")
	}
	if kafkaErr != nil || inKafka != len(inserted) {
		t.Errorf("%d of %d inserted records have their %s event in Kafka (%v)", inKafka, len(inserted), records.CreatedType, kafkaErr)
	}
	if auditErr != nil || createdAudited != len(inserted) || accessAudited != len(inserted) {
		t.Errorf("audit log: %d record.created entries and %d insert access entries for %d inserted records (%v)",
			createdAudited, accessAudited, len(inserted), auditErr)
	}
	if !drained {
		t.Errorf("lag, outbox or audit log not caught up within %v of the load's end: %s", soakDrainLimit, atLimit)
	}
	for _, v := range verdicts {
		if v.grew {
			t.Errorf("RSS not flat: %s", v.line)
		}
	}
}

// soakDuration is SKYFLOW_SOAK_DURATION (default 10m).
func soakDuration(t *testing.T) time.Duration {
	s := os.Getenv("SKYFLOW_SOAK_DURATION")
	if s == "" {
		return 10 * time.Minute
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 20*time.Second || d > 2*time.Hour {
		t.Fatalf("SKYFLOW_SOAK_DURATION=%q: want a duration from 20s to 2h", s)
	}
	return d
}

// soakSleepUntil waits for at, and reports false if ctx ended first.
func soakSleepUntil(ctx context.Context, at time.Time) bool {
	select {
	case <-time.After(time.Until(at)):
		return true
	case <-ctx.Done():
		return false
	}
}

// soakWorker is one client of the mix: its counts by operation and the
// records its inserts stored.
type soakWorker struct {
	stats          map[string]*loadStats
	ids            []string
	insertRequests int
}

func (w *soakWorker) run(ctx context.Context, e *loadEnv, end time.Time) {
	w.stats = map[string]*loadStats{}
	for _, op := range soakOps {
		w.stats[op.name] = &loadStats{}
	}
	total := 0
	for _, op := range soakOps {
		total += op.weight
	}
	for range soakMaxOps {
		t0 := time.Now()
		if !t0.Before(end) || ctx.Err() != nil {
			return
		}
		pick := rand.IntN(total)
		name := ""
		for _, op := range soakOps {
			if pick < op.weight {
				name = op.name
				break
			}
			pick -= op.weight
		}
		var o loadOutcome
		switch name {
		case "insert 1":
			o = e.insert(ctx, 1)
		case "insert 25":
			o = e.insert(ctx, 25)
		case "get by id":
			o = e.getOne(ctx, e.next(e.seeded, 1)[0])
		case "detokenize 25":
			o = e.detokenize(ctx, e.next(e.seeded, 25))
		case "get by unique column":
			o = e.byColumn(ctx, e.next(e.seeded, 1)[0])
		case "query":
			o = e.query(ctx, e.next(e.seeded, 1)[0])
		}
		w.stats[name].add(o, time.Since(t0))
		if strings.HasPrefix(name, "insert") && o.status >= 200 && o.status <= 299 && o.err == nil {
			w.ids = append(w.ids, o.ids...)
			w.insertRequests++
		}
	}
}

func soakFirstErrors(byOp map[string]*loadStats) string {
	var errs []string
	for _, op := range soakOps {
		if s := byOp[op.name]; s.firstErr != "" {
			errs = append(errs, op.name+": "+s.firstErr)
		}
	}
	return strings.Join(errs, "; ")
}

// --- drain ---------------------------------------------------------------------

// soakDrain polls, from the load's end, every Trigger's consumer lag, the
// outbox's unsent rows and the audit log's record.created entries of the
// vault until all have caught up. It reports whether and when they did, the
// state at soakDrainLimit (the last one seen if they caught up before) and
// the last state seen. Past the limit it keeps waiting up to two minutes
// more, so that the figures say how late a late drain is and the evidence
// read next is complete if it is only late.
func soakDrain(ctx context.Context, p *testPlatform, pool *pgxpool.Pool, vault string, inserted int, loadEnd time.Time) (caughtUp bool, took time.Duration, atLimit, last string) {
	for {
		var done bool
		last, done = soakBacklog(ctx, p, pool, vault, inserted, true)
		took = time.Since(loadEnd)
		if took <= soakDrainLimit || atLimit == "" {
			atLimit = last
		}
		if done {
			return true, took, atLimit, last
		}
		if took > soakDrainLimit+2*time.Minute || ctx.Err() != nil {
			return false, took, atLimit, last
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// soakBacklog describes what is still to be done after the load: every
// Trigger's lag, the outbox's unsent rows, and the vault's record.created
// entries missing from the audit log (the audit lag; not counted when
// vault is empty), with each lagging Trigger named if perTrigger. done is
// true when all are zero.
func soakBacklog(ctx context.Context, p *testPlatform, pool *pgxpool.Pool, vault string, inserted int, perTrigger bool) (state string, done bool) {
	lags, err := soakLags(ctx, p.AdminURL())
	var pending, audited int
	if err == nil {
		err = pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`).Scan(&pending)
	}
	if err == nil && vault != "" {
		err = pool.QueryRow(ctx, `SELECT count(DISTINCT subject) FROM audit_log WHERE vault_id = $1 AND event_type = $2`,
			vault, records.CreatedType).Scan(&audited)
	}
	if err != nil {
		return err.Error(), false
	}
	var total float64
	var lagging []string
	for trigger, lag := range lags {
		total += lag
		if lag > 0 {
			lagging = append(lagging, fmt.Sprintf("%s %.0f", trigger, lag))
		}
	}
	slices.Sort(lagging)
	state = fmt.Sprintf("trigger lag %.0f (audit-record %.0f", total, lags["audit-record"])
	if perTrigger && len(lagging) > 0 {
		state += "; " + strings.Join(lagging, ", ")
	}
	state += fmt.Sprintf("), unsent outbox rows %d", pending)
	if vault != "" {
		state += fmt.Sprintf(", audit lag %d (record.created entries for %d of %d records)", max(inserted-audited, 0), audited, inserted)
	}
	if _, ok := lags["audit-record"]; !ok {
		return state + "; no lag gauge for audit-record's Trigger", false
	}
	return state, total == 0 && pending == 0 && audited >= inserted
}

// soakLags reads the broker's consumer lag of every Trigger from the
// platform's admin metrics, by Trigger name.
func soakLags(ctx context.Context, adminURL string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", adminURL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	lags := map[string]float64{}
	for line := range strings.Lines(string(text)) {
		rest, ok := strings.CutPrefix(line, "skyflow_broker_consumer_lag{")
		if !ok {
			continue
		}
		labels, value, _ := strings.Cut(rest, "} ")
		_, trigger, ok := strings.Cut(labels, `trigger="`)
		if !ok {
			continue
		}
		trigger, _, _ = strings.Cut(trigger, `"`)
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return nil, fmt.Errorf("lag of %s: %q: %w", trigger, value, err)
		}
		lags[trigger] += v
	}
	return lags, nil
}

// --- evidence --------------------------------------------------------------------

// soakEventsInKafka reads the topic from its start to the end it had when
// the read began and counts the records in want that have an event of
// type typ (binary content mode: ce_type and ce_subject headers; the
// subject of record.created is the record's id).
func soakEventsInKafka(ctx context.Context, seeds []string, topic, typ string, want map[string]bool) (int, error) {
	if topic == "" {
		return 0, fmt.Errorf("no topic of the %s Broker", platform.DefaultBroker)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	remaining := map[int32]int64{} // partition → its end offset, until reached
	var listErr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			listErr = o.Err
		} else if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
		}
	})
	if listErr != nil {
		return 0, listErr
	}
	seen := map[string]bool{}
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return len(seen), fmt.Errorf("%d partitions not read to their end: %w", len(remaining), err)
		}
		var fetchErr error
		fs.EachError(func(_ string, _ int32, err error) { fetchErr = err })
		if fetchErr != nil {
			return len(seen), fetchErr
		}
		fs.EachRecord(func(r *kgo.Record) {
			if endAt, ok := remaining[r.Partition]; ok && r.Offset+1 >= endAt {
				delete(remaining, r.Partition)
			}
			var rtyp, subject string
			for _, h := range r.Headers {
				switch h.Key {
				case "ce_type":
					rtyp = string(h.Value)
				case "ce_subject":
					subject = string(h.Value)
				}
			}
			if rtyp == typ && want[subject] {
				seen[subject] = true
			}
		})
	}
	return len(seen), nil
}

// soakAudited counts the inserted records that have a record.created
// entry in the audit log, and those that an insert's access entry names
// (its data's record_ids), and the vault's insert access entries.
func soakAudited(ctx context.Context, pool *pgxpool.Pool, vault string, inserted map[string]bool) (created, access, accessRows int, err error) {
	rows, err := pool.Query(ctx, `SELECT DISTINCT subject FROM audit_log WHERE vault_id = $1 AND event_type = $2`, vault, records.CreatedType)
	if err != nil {
		return 0, 0, 0, err
	}
	var subject string
	if _, err := pgx.ForEachRow(rows, []any{&subject}, func() error {
		if inserted[subject] {
			created++
		}
		return nil
	}); err != nil {
		return 0, 0, 0, err
	}
	rows, err = pool.Query(ctx, `SELECT entry->'data'->'record_ids' FROM audit_log
		WHERE vault_id = $1 AND event_type = $2 AND action = 'insert'`, vault, records.AccessType)
	if err != nil {
		return 0, 0, 0, err
	}
	named := map[string]bool{}
	var ids []string
	if _, err := pgx.ForEachRow(rows, []any{&ids}, func() error {
		accessRows++
		for _, id := range ids {
			if inserted[id] {
				named[id] = true
			}
		}
		ids = nil
		return nil
	}); err != nil {
		return 0, 0, 0, err
	}
	return created, len(named), accessRows, nil
}

// --- RSS -------------------------------------------------------------------------

// soakRSS holds VmRSS samples of the watched processes.
type soakRSS struct {
	samples []rssSample
	errs    int
}

type rssSample struct {
	at   time.Time
	name string
	pid  int
	kib  int
}

// run samples every watched process every period until stop.
func (r *soakRSS) run(p *testPlatform, start time.Time, every time.Duration, stop <-chan struct{}) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		now := time.Now()
		for _, st := range p.Status() {
			if !soakWatched(st.Name) || st.PID == 0 {
				continue
			}
			kib, err := vmRSS(st.PID)
			if err != nil {
				r.errs++ // the process exited between the status and the read
				continue
			}
			r.samples = append(r.samples, rssSample{now, st.Name, st.PID, kib})
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// vmRSS is a process's VmRSS in KiB.
func vmRSS(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				return strconv.Atoi(f[0])
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmRSS", pid)
}

// rssVerdict is one process life's RSS, judged.
type rssVerdict struct {
	line string
	grew bool
}

// judge compares, for each process life (name and pid), its RSS at the
// first sample of the second half of the load (or, for a life that began
// after the load's middle, of the second half of its own life in the load,
// past its warm-up) with its last sample: grew is set when it rose by more
// than soakRSSGrowth. A life with fewer than three samples in that window,
// or one shorter than a tenth of the load, is shown but not judged.
func (r *soakRSS) judge(start, end time.Time) []rssVerdict {
	type life struct {
		name    string
		pid     int
		samples []rssSample
	}
	var lives []*life
	byKey := map[string]*life{}
	for _, s := range r.samples {
		key := s.name + "/" + strconv.Itoa(s.pid)
		l := byKey[key]
		if l == nil {
			l = &life{name: s.name, pid: s.pid}
			byKey[key] = l
			lives = append(lives, l)
		}
		l.samples = append(l.samples, s)
	}
	slices.SortStableFunc(lives, func(a, b *life) int { return strings.Compare(a.name, b.name) })
	mid := start.Add(end.Sub(start) / 2)
	var out []rssVerdict
	for _, l := range lives {
		first, last := l.samples[0], l.samples[len(l.samples)-1]
		from := mid
		if first.at.After(mid) {
			from = first.at.Add(last.at.Sub(first.at) / 2)
		}
		var window []rssSample
		for _, s := range l.samples {
			if !s.at.Before(from) {
				window = append(window, s)
			}
		}
		mib := func(kib int) float64 { return float64(kib) / 1024 }
		head := fmt.Sprintf("%-20s pid %-7d %3d samples, %5.1fs–%5.1fs:", l.name, l.pid, len(l.samples),
			first.at.Sub(start).Seconds(), last.at.Sub(start).Seconds())
		if len(window) < 3 || last.at.Sub(first.at) < end.Sub(start)/10 {
			out = append(out, rssVerdict{line: fmt.Sprintf("%s %.1f → %.1f (not judged: too short a life)", head, mib(first.kib), mib(last.kib))})
			continue
		}
		ref, fin := window[0], window[len(window)-1]
		growth := float64(fin.kib)/float64(ref.kib) - 1
		v := rssVerdict{grew: growth > soakRSSGrowth}
		verdict := "flat"
		if v.grew {
			verdict = fmt.Sprintf("GREW more than %.0f %%", 100*soakRSSGrowth)
		}
		v.line = fmt.Sprintf("%s start %.1f, at %5.1fs %.1f, end %.1f (%+.1f %%): %s", head, mib(first.kib),
			ref.at.Sub(start).Seconds(), mib(ref.kib), mib(fin.kib), 100*growth, verdict)
		out = append(out, v)
	}
	return out
}
