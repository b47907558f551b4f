package tests

// BenchmarkLoad measures the vault under concurrent load through the
// gateway of a local platform, as applications call it: each client sends
// its next request when the last one is answered, with the API key of a
// service account, over one shared keep-alive HTTP client. At 1, 8 and 32
// clients (SKYFLOW_LOAD_CLIENTS) it runs each operation for
// SKYFLOW_LOAD_SECONDS (default 5) after a warm-up of one second:
//
//   - insert 1:  one person (name, email, ssn; every column tokenized, the
//     email unique with a deterministic token), tokens returned;
//   - insert 25: 25 persons in one request;
//   - get by id: one record in plain text (records-get-one);
//   - detokenize 25: 25 tokens of 25 records (tokens-detokenize);
//   - get by unique column: GET …/persons?column_name=email&column_values=…,
//     the Data API's documented lookup by value (records-get).
//
// The baseline runs in the same process on the same PostgreSQL at the same
// concurrency, with a pgx pool of as many connections as clients: plain
// rows of the same shape (the same columns as text, an id, a unique index
// on email), the same rows per transaction, one transaction per operation:
// INSERT of 1 row, of 25 rows; SELECT of one row by primary key, of 25 rows
// by key, of one row by email. Vault and baseline alternate in halves
// (vault, baseline, baseline, vault, or the reverse for every other
// operation), so that the noise of this shared machine hits both alike;
// the ratio vault ÷ baseline is the figure to track.
//
// Latencies are those of 2xx answers. Errors are never hidden: non-2xx
// answers are counted by status, transport errors and 2xx answers with a
// wrong body apart. The table is printed on stdout as the README takes it,
// with the load average at start and end; the 8-client ratios are also
// reported as metrics. Targets are printed as met or missed; a benchmark
// never fails on a miss.
//
// With SKYFLOW_LOAD_PPROF=DIR, right after the 8-client cells of insert 1
// and get by id, one more 8-client run of the vault's side lasts while
// 10-second CPU profiles are taken of the gateway and of records-insert or
// records-get-one (their pprof, SKYFLOW_PPROF_DIR in runtime/host, passed
// through the platform's FunctionEnv), written to DIR as
// load-8c-<op>-<function>.pprof. The profiled runs are apart from the
// measured cells: profiling costs CPU that the figures must not pay.
//
// The measurement takes a few minutes once the platform is up, so it runs
// once per test process whatever b.N.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/runtime/db"
)

const (
	loadSeedRecords = 1000    // records the reads read, in the vault and the plain table
	loadMaxOps      = 1000000 // per client and cell: a bound besides the time
)

// loadMetric is one figure BenchmarkLoad reports.
type loadMetric struct {
	value float64
	unit  string
}

// loadFigures are the figures of the one measurement a process makes.
var loadFigures []loadMetric

// BenchmarkLoad measures the vault under load; see the top of this file.
func BenchmarkLoad(b *testing.B) {
	if loadFigures == nil {
		loadFigures = measureLoad(b)
	}
	for _, m := range loadFigures {
		b.ReportMetric(m.value, m.unit)
	}
	b.ReportMetric(0, "ns/op")
}

// loadCell is one operation at one concurrency: the vault's and the
// baseline's counts.
type loadCell struct {
	op           string
	metric       string // the operation's name in metric units
	clients      int
	vault, plain *loadStats
}

// ratio is vault ÷ baseline in records/s (the same as in ops/s: both move
// the same records per operation).
func (c loadCell) ratio() float64 {
	if c.plain.recordsPerSecond() == 0 {
		return 0
	}
	return c.vault.recordsPerSecond() / c.plain.recordsPerSecond()
}

// loadOp is one operation: the vault's through the gateway, and its
// baseline's on the plain table.
type loadOp struct {
	name, metric string
	profile      string // the function to profile besides the gateway (SKYFLOW_LOAD_PPROF)
	vault        func(ctx context.Context) loadOutcome
	plain        func(ctx context.Context, pool *pgxpool.Pool) loadOutcome
}

func measureLoad(b *testing.B) []loadMetric {
	d := loadSeconds(b)
	clients := loadClients(b)
	warm := min(time.Second, d/2)
	limits, env := loadRateLimits()
	head := gitHead()
	started, loadAtStart := time.Now(), loadAverage()

	profiles, pprofAddrs := os.Getenv("SKYFLOW_LOAD_PPROF"), ""
	if profiles != "" {
		if err := os.MkdirAll(profiles, 0o755); err != nil {
			b.Fatal(err)
		}
		pprofAddrs = b.TempDir()
		env["SKYFLOW_PPROF_DIR"] = pprofAddrs
	}
	// Nothing scales to zero between the cells of an operation.
	p := startPlatform(b, options{env: env, idle: 30 * time.Minute})
	ctx := b.Context()
	e := newLoadEnv(b, p, slices.Max(clients))
	// The baseline's database: the one the platform was given, on the same
	// PostgreSQL server the functions use.
	seedPool, err := db.Open(ctx, p.cfg.DatabaseURL)
	if err != nil {
		b.Fatal(err)
	}
	e.seed(b, seedPool, loadSeedRecords)
	seedPool.Close()

	ops := []loadOp{
		{"insert 1", "insert1", "records-insert",
			func(ctx context.Context) loadOutcome { return e.insert(ctx, 1) },
			func(ctx context.Context, pool *pgxpool.Pool) loadOutcome { return plainInsertNew(ctx, pool, 1) }},
		{"insert 25", "insert25", "",
			func(ctx context.Context) loadOutcome { return e.insert(ctx, 25) },
			func(ctx context.Context, pool *pgxpool.Pool) loadOutcome { return plainInsertNew(ctx, pool, 25) }},
		{"get by id", "get", "records-get-one",
			func(ctx context.Context) loadOutcome { return e.getOne(ctx, e.next(e.seeded, 1)[0]) },
			func(ctx context.Context, pool *pgxpool.Pool) loadOutcome {
				return plainSelect(ctx, pool, 1, loadPlainOne, uuid.MustParse(e.next(e.plain, 1)[0].id))
			}},
		{"detokenize 25", "detokenize25", "",
			func(ctx context.Context) loadOutcome { return e.detokenize(ctx, e.next(e.seeded, 25)) },
			func(ctx context.Context, pool *pgxpool.Pool) loadOutcome {
				recs := e.next(e.plain, 25)
				ids := make([]uuid.UUID, len(recs))
				for i, r := range recs {
					ids[i] = uuid.MustParse(r.id)
				}
				return plainSelect(ctx, pool, len(ids), loadPlainSel, ids)
			}},
		{"get by unique column", "bycolumn", "",
			func(ctx context.Context) loadOutcome { return e.byColumn(ctx, e.next(e.seeded, 1)[0]) },
			func(ctx context.Context, pool *pgxpool.Pool) loadOutcome {
				return plainSelect(ctx, pool, 1, loadPlainBy, e.next(e.plain, 1)[0].email)
			}},
	}

	var cells []loadCell
	var profileLog []string
	for _, n := range clients {
		pool := loadPool(b, p.cfg.DatabaseURL, n)
		for i, op := range ops {
			vault := func(d time.Duration) *loadStats { return runLoad(ctx, n, d, loadMaxOps, op.vault) }
			plain := func(d time.Duration) *loadStats {
				return runLoad(ctx, n, d, loadMaxOps, func(ctx context.Context) loadOutcome { return op.plain(ctx, pool) })
			}
			// Warm up: processes, connections, the vault's keys, caches.
			vault(warm)
			plain(warm)
			c := loadCell{op: op.name, metric: op.metric, clients: n, vault: &loadStats{}, plain: &loadStats{}}
			// ABBA for even operations, BAAB for odd ones: a drift of the
			// machine's load within the cell hits both sides alike.
			first, second := vault, plain
			into1, into2 := c.vault, c.plain
			if i%2 == 1 {
				first, second, into1, into2 = plain, vault, c.plain, c.vault
			}
			into1.merge(first(d / 2))
			into2.merge(second(d / 2))
			into2.merge(second(d / 2))
			into1.merge(first(d / 2))
			cells = append(cells, c)
			if profiles != "" && n == 8 && op.profile != "" {
				profileLog = append(profileLog, loadProfile(b, pprofAddrs, profiles, op, n, vault, "gateway", op.profile)...)
			}
			if ctx.Err() != nil {
				b.Fatal(ctx.Err())
			}
		}
		pool.Close()
	}
	loadAtEnd := loadAverage()

	var out strings.Builder
	fmt.Fprintf(&out, "\nBenchmarkLoad, %s, HEAD %s: the vault through the gateway (API key of a service account) vs plain PostgreSQL in the same run\n",
		started.Format("2006-01-02 15:04"), head)
	fmt.Fprintf(&out, "load average at start %s, at end %s; %v a cell (halves alternated with the baseline) after %v of warm-up; %d seeded records read\n",
		loadAtStart, loadAtEnd, d, warm, loadSeedRecords)
	fmt.Fprintf(&out, "gateway rate limits in force: %s\n", limits)
	fmt.Fprintf(&out, "latencies of 2xx answers; errors: non-2xx as count×status, transport errors and 2xx with a wrong answer apart\n\n")
	fmt.Fprintf(&out, "| op | clients | vault ops/s | records/s | p50 ms | p99 ms | p99.9 ms | errors | baseline ops/s | ratio |\n")
	fmt.Fprintf(&out, "|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range cells {
		base := fmt.Sprintf("%.0f", c.plain.opsPerSecond())
		if c.plain.failed() > 0 {
			base += " (errors: " + c.plain.errors() + ")"
		}
		fmt.Fprintf(&out, "| %s | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %s | %s | %.3f |\n",
			c.op, c.clients, c.vault.opsPerSecond(), c.vault.recordsPerSecond(),
			percentile(c.vault.lat, 0.50), percentile(c.vault.lat, 0.99), percentile(c.vault.lat, 0.999),
			c.vault.errors(), base, c.ratio())
	}
	var figures []loadMetric
	find := func(metric string, clients int) *loadCell {
		for i := range cells {
			if cells[i].metric == metric && cells[i].clients == clients {
				return &cells[i]
			}
		}
		return nil
	}
	for _, c := range cells {
		if c.clients == 8 {
			figures = append(figures, loadMetric{c.ratio(), c.metric + "-8c-x-plain"})
		}
	}
	// The targets (ratios at 8 clients, in records/s for insert 25).
	type target struct {
		what     string
		metric   string
		clients  int
		value    func(*loadCell) float64
		atLeast  bool
		goal     float64
		unit     string
		decimals int
	}
	ratio := func(c *loadCell) float64 { return c.ratio() }
	p99 := func(c *loadCell) float64 { return percentile(c.vault.lat, 0.99) }
	p50 := func(c *loadCell) float64 { return percentile(c.vault.lat, 0.50) }
	targets := []target{
		{"insert 1, 8 clients, ratio", "insert1", 8, ratio, true, 0.15, "", 3},
		{"get by id, 8 clients, ratio", "get", 8, ratio, true, 0.10, "", 3},
		{"insert 25, 8 clients, ratio in records/s", "insert25", 8, ratio, true, 0.05, "", 3},
		{"insert 1, 8 clients, p99", "insert1", 8, p99, false, 40, " ms", 1},
		{"get by id, 8 clients, p99", "get", 8, p99, false, 25, " ms", 1},
		{"insert 1, 1 client, p50", "insert1", 1, p50, false, 7, " ms", 1},
	}
	fmt.Fprintf(&out, "\ntargets:\n")
	for _, t := range targets {
		c := find(t.metric, t.clients)
		if c == nil {
			fmt.Fprintf(&out, "  %s: not measured (clients %v)\n", t.what, clients)
			continue
		}
		v := t.value(c)
		met, cmp := v >= t.goal, "≥"
		if !t.atLeast {
			met, cmp = v <= t.goal, "≤"
		}
		verdict := "MISSED"
		if met {
			verdict = "met"
		}
		if c.vault.ok == 0 {
			verdict = "MISSED (no successful request)"
		}
		fmt.Fprintf(&out, "  %s: %.*f%s (target %s %g%s): %s\n", t.what, t.decimals, v, t.unit, cmp, t.goal, t.unit, verdict)
	}
	for _, c := range cells {
		if c.vault.firstErr != "" {
			fmt.Fprintf(&out, "first error of %s at %d clients: %s\n", c.op, c.clients, c.vault.firstErr)
		}
		if c.plain.firstErr != "" {
			fmt.Fprintf(&out, "first baseline error of %s at %d clients: %s\n", c.op, c.clients, c.plain.firstErr)
		}
	}
	if profiles != "" {
		fmt.Fprintf(&out, "\nCPU profiles (SKYFLOW_LOAD_PPROF):\n")
		if len(profileLog) == 0 {
			fmt.Fprintf(&out, "  none taken: no 8-client cell of insert 1 or get by id ran (clients %v)\n", clients)
		}
		for _, l := range profileLog {
			fmt.Fprintf(&out, "  %s\n", l)
		}
	}
	fmt.Print(out.String())
	return figures
}

// loadPool is the baseline's pool: as many connections as clients, all
// opened before the clock starts.
func loadPool(b *testing.B, url string, clients int) *pgxpool.Pool {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns, cfg.MinConns = int32(clients), int32(clients)
	pool, err := pgxpool.NewWithConfig(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	// Open every connection now rather than during the warm-up's first
	// requests.
	conns := make([]*pgxpool.Conn, clients)
	for i := range conns {
		if conns[i], err = pool.Acquire(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range conns {
		c.Release()
	}
	return pool
}

// loadSeconds is SKYFLOW_LOAD_SECONDS, the measured time of a cell.
func loadSeconds(b *testing.B) time.Duration {
	s := os.Getenv("SKYFLOW_LOAD_SECONDS")
	if s == "" {
		return 5 * time.Second
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 || v > 600 {
		b.Fatalf("SKYFLOW_LOAD_SECONDS=%q: want seconds, more than 0 and at most 600", s)
	}
	return time.Duration(v * float64(time.Second))
}

// loadClients is SKYFLOW_LOAD_CLIENTS, the concurrencies (default 1,8,32).
func loadClients(b *testing.B) []int {
	s := os.Getenv("SKYFLOW_LOAD_CLIENTS")
	if s == "" {
		return []int{1, 8, 32}
	}
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 256 {
			b.Fatalf("SKYFLOW_LOAD_CLIENTS=%q: want a comma-separated list of 1 to 256", s)
		}
		out = append(out, n)
	}
	return out
}

// gitHead names the commit measured, and says whether the tree had
// changes: figures are compared across commits.
func gitHead() string {
	out, err := exec.Command("git", "-C", "..", "describe", "--always", "--dirty", "--abbrev=12").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// loadProfileFor is how long each CPU profile samples.
const loadProfileFor = 10 * time.Second

// loadProfile runs op's vault side at clients for a little longer than
// loadProfileFor while it takes a CPU profile of each function (their
// pprof addresses are in addrs, as runtime/host writes them), and writes
// them to dir. It returns a line for each profile: where it went, or why
// there is none.
func loadProfile(b *testing.B, addrs, dir string, op loadOp, clients int, vault func(time.Duration) *loadStats, functions ...string) []string {
	results := make([]string, len(functions))
	var wg sync.WaitGroup
	for i, fn := range functions {
		wg.Go(func() {
			addr, err := os.ReadFile(filepath.Join(addrs, fn+".addr"))
			if err != nil {
				results[i] = fmt.Sprintf("%s: no pprof address (%v): is SKYFLOW_PPROF_DIR served by its host?", fn, err)
				return
			}
			file := filepath.Join(dir, fmt.Sprintf("load-%dc-%s-%s.pprof", clients, op.metric, fn))
			if err := loadFetchProfile(b.Context(), strings.TrimSpace(string(addr)), file); err != nil {
				results[i] = fmt.Sprintf("%s: %v", fn, err)
				return
			}
			results[i] = fmt.Sprintf("%s, %s at %d clients: %s", fn, op.name, clients, file)
		})
	}
	// The load starts with the profiles and outlasts them a little.
	s := vault(loadProfileFor + time.Second)
	wg.Wait()
	return append([]string{fmt.Sprintf("%s at %d clients while profiled: %.1f ops/s, p50 %.1f ms, errors %s",
		op.name, clients, s.opsPerSecond(), percentile(s.lat, 0.50), s.errors())}, results...)
}

// loadFetchProfile takes a CPU profile of loadProfileFor from a pprof
// server on addr (loopback) into file.
func loadFetchProfile(ctx context.Context, addr, file string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		return fmt.Errorf("pprof address %q is not on loopback", addr)
	}
	u := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(loadProfileFor.Seconds()))
	ctx, cancel := context.WithTimeout(ctx, loadProfileFor+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("pprof answered %d: %s", resp.StatusCode, msg)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
