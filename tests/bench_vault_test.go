package tests

// Benchmarks of the vault core: insert with tokenization (a batch of 1 and
// of 25 records), detokenize of 25 tokens and get of one record by id, each
// measured two ways:
//
//   - direct: the records Service called in-process, on PostgreSQL;
//   - http:   the real function binary (records-insert, tokens-detokenize,
//     records-get-one) sent a binary-mode CloudEvent over loopback HTTP,
//     exactly as the gateway will send it.
//
// The baseline, measured interleaved with each figure in the same run, is
// the physical limit of this machine for the same work: a plain INSERT of
// the same rows (the same values, one text column each, in one transaction
// per request) into a table of the same database, or a plain SELECT of the
// same rows by primary key. ns/op is suppressed as in bench_test.go; the
// figures are p50/p99 ms per request, records/s and ratio-vs-plain-*.
//
// Events leave through the outbox to a sink that answers 202 at once, so
// the figures leave out a real broker ingress's time per event.
//
// Where the time goes: the direct runs report the SQL round trips and the
// outbox's POSTs per request and log the median time of each statement
// kind (a pgx tracer on the service's pool); the http runs report the
// function's own mean handling time (from its /metrics), the rest of the
// mean being the HTTP hop and the host's CloudEvents work.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/domain/records"
	"github.com/skyflow-oss/skyflow/domain/vaults"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/outbox"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

// benchVaultSchema is a realistic customers table: a random token, a
// unique deterministic token, two format-preserving tokens with their
// validations, and a column without a token.
const benchVaultSchema = `{
  "name": "bench customers",
  "tables": [{"name": "customers", "columns": [
    {"name": "name",        "data_type": "string", "token_type": "NON_DETERMINISTIC_UUID"},
    {"name": "email",       "data_type": "string", "token_type": "DETERMINISTIC_UUID", "unique": true, "validation": {"kind": "EMAIL"}},
    {"name": "ssn",         "data_type": "string", "token_type": "DETERMINISTIC_FPT", "mask": "SHOW_LAST_4", "validation": {"kind": "SSN"}},
    {"name": "card_number", "data_type": "string", "token_type": "DETERMINISTIC_PRESERVE_LEFT_6_RIGHT_4", "mask": "SHOW_LAST_4", "validation": {"kind": "CARD_NUMBER"}},
    {"name": "notes",       "data_type": "string"}
  ]}],
  "policy": {"roles": {
    "app": {"tables": {"customers": {"insert": true, "read": {"*": "PLAIN_TEXT"}}}, "detokenize": true}
  }}
}`

const (
	benchTable     = "customers"
	benchPlainDDL  = `CREATE TABLE bench_plain_customers (id uuid PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE, ssn text NOT NULL, card_number text NOT NULL, notes text NOT NULL)`
	benchPlainIns  = `INSERT INTO bench_plain_customers (id, name, email, ssn, card_number, notes) SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])`
	benchPlainSel  = `SELECT id, name, email, ssn, card_number, notes FROM bench_plain_customers WHERE id = ANY($1)`
	benchPlainSel1 = `SELECT id, name, email, ssn, card_number, notes FROM bench_plain_customers WHERE id = $1`
	benchSeedRows  = 250 // records the read benchmarks read

	benchInsertPkg     = "github.com/skyflow-oss/skyflow/functions/records-insert"
	benchDetokenizePkg = "github.com/skyflow-oss/skyflow/functions/tokens-detokenize"
	benchGetOnePkg     = "github.com/skyflow-oss/skyflow/functions/records-get-one"
	// The request types, as in each function's function.go.
	benchInsertType     = "com.skyflow.vault.records.insert"
	benchDetokenizeType = "com.skyflow.vault.tokens.detokenize"
	benchGetOneType     = "com.skyflow.vault.record.get"
)

// benchApp is the principal of the data requests.
var benchApp = request.Principal{ID: "sa:bench-app", Roles: []string{"app"}}

// benchTokenized are the columns with tokens, in the order detokenize
// requests cycle through them.
var benchTokenized = []string{"name", "email", "ssn", "card_number"}

// BenchmarkVault measures the vault core; see the top of this file.
func BenchmarkVault(b *testing.B) {
	e := newBenchVaultEnv(b)
	for _, n := range []int{1, 25} {
		b.Run(fmt.Sprintf("Insert/batch=%d/direct", n), func(b *testing.B) { e.benchInsert(b, n, false) })
		b.Run(fmt.Sprintf("Insert/batch=%d/http", n), func(b *testing.B) { e.benchInsert(b, n, true) })
	}
	b.Run("Detokenize/tokens=25/direct", func(b *testing.B) { e.benchDetokenize(b, false) })
	b.Run("Detokenize/tokens=25/http", func(b *testing.B) { e.benchDetokenize(b, true) })
	b.Run("GetOne/direct", func(b *testing.B) { e.benchGetOne(b, false) })
	b.Run("GetOne/http", func(b *testing.B) { e.benchGetOne(b, true) })
}

// benchVaultEnv is one database with a vault in it, the service on it
// in-process, a plain pool for the baselines, and the function processes
// on the same database.
type benchVaultEnv struct {
	ctx     context.Context
	dbURL   string
	keyFile string
	svc     *records.Service
	plain   *pgxpool.Pool // the baselines' pool: no tracer
	vault   string
	sink    *httptest.Server
	trace   *benchTrace
	posts   *benchPosts

	funcs map[string]*process // by package
	seed  []benchSeeded       // once seeded
}

func newBenchVaultEnv(b *testing.B) *benchVaultEnv {
	b.Helper()
	ctx := b.Context()
	e := &benchVaultEnv{ctx: ctx, dbURL: testenv.Database(b), trace: &benchTrace{}, posts: &benchPosts{}}

	// The broker ingress stands in as a sink that takes every event.
	e.sink = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	}))
	b.Cleanup(e.sink.Close)

	// One master key for this process and the function processes.
	key := make([]byte, kek.KeySize)
	rand.Read(key)
	e.keyFile = filepath.Join(b.TempDir(), "master.key")
	if err := os.WriteFile(e.keyFile, key, 0o600); err != nil {
		b.Fatal(err)
	}
	k, err := kek.NewLocal(key)
	if err != nil {
		b.Fatal(err)
	}

	// The service's pool carries the tracer; the baselines get their own.
	cfg, err := db.ParseConfig(e.dbURL)
	if err != nil {
		b.Fatal(err)
	}
	cfg.ConnConfig.Tracer = e.trace
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if e.plain, err = db.Open(ctx, e.dbURL); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(e.plain.Close)
	if _, err := e.plain.Exec(ctx, benchPlainDDL); err != nil {
		b.Fatal(err)
	}

	pub, err := outbox.NewPublisher(pool, e.sink.URL,
		outbox.WithRegisterer(prometheus.NewRegistry()),
		outbox.WithHTTPClient(&http.Client{Transport: &benchTimedTransport{base: &http.Transport{Proxy: nil}, posts: e.posts}}))
	if err != nil {
		b.Fatal(err)
	}
	backend := &vaults.Backend{Pool: pool, Vaults: vaults.NewStore(pool, k), Publisher: pub}
	admin := request.Principal{ID: "user:bench-admin", Roles: []string{"admin"}}
	v, err := vaults.NewManager(backend, "/tests/bench").Create(ctx, admin, []byte(benchVaultSchema))
	if err != nil {
		b.Fatalf("creating the vault: %v", err)
	}
	e.vault = v.ID
	e.svc = records.New(backend, "/tests/bench")
	// Started here, not on first use, so that they outlive the
	// sub-benchmark that would first use them.
	e.startFunctions(b)
	return e
}

// startFunctions builds the three function binaries and starts them on
// the vault's database, ready, for all the sub-benchmarks.
func (e *benchVaultEnv) startFunctions(b *testing.B) {
	b.Helper()
	pkgs := []string{benchInsertPkg, benchDetokenizePkg, benchGetOnePkg}
	bins := buildFunctions(b, pkgs...)
	get := func(u string) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		return req
	}
	e.funcs = map[string]*process{}
	for _, p := range pkgs {
		e.funcs[p] = startProcess(b, bins[p],
			"K_SERVICE="+filepath.Base(p), "DATABASE_URL="+e.dbURL, "K_SINK="+e.sink.URL,
			"SKYFLOW_MASTER_KEY_FILE="+e.keyFile)
	}
	for _, p := range pkgs {
		if _, err := e.funcs[p].waitFor(get, "/health/readiness"); err != nil {
			b.Fatal(err)
		}
	}
}

// benchHTTP is the gateway's client: keep-alive connections to functions.
var benchHTTP = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8}}

// benchEvent is a request as the gateway sends it: a binary-mode
// CloudEvent whose data is the HTTP body and whose extensions carry the
// principal and the path and query (runtime/request).
func (e *benchVaultEnv) benchEvent(u, function, typ string, ext map[string]string, body []byte) *http.Request {
	req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	h := req.Header
	h.Set("Ce-Specversion", "1.0")
	h.Set("Ce-Id", uuid.NewString())
	h.Set("Ce-Source", "/skyflow/gateway")
	h.Set("Ce-Type", typ)
	h.Set("Ce-"+request.ExtPrincipal, benchApp.ID)
	h.Set("Ce-"+request.ExtRoles, strings.Join(benchApp.Roles, " "))
	h.Set("Ce-"+request.ExtVaultID, e.vault)
	for k, v := range ext {
		h.Set("Ce-"+k, v)
	}
	if len(body) > 0 {
		h.Set("Content-Type", "application/json")
	}
	return signedAsGateway(req, body, function)
}

// call sends one request to a function and returns how long it took until
// the whole reply was read, and the reply's body.
func (e *benchVaultEnv) call(b *testing.B, pkg, typ string, ext map[string]string, body []byte) (time.Duration, []byte) {
	proc := e.funcs[pkg]
	req := e.benchEvent(proc.url("/"), filepath.Base(pkg), typ, ext, body)
	start := time.Now()
	resp, err := benchHTTP.Do(req)
	if err != nil {
		b.Fatalf("%s: %v", typ, err)
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("%s: reading the reply: %v", typ, err)
	}
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("%s answered %d: %s", typ, resp.StatusCode, out)
	}
	return d, out
}

// benchTimed runs fn and returns how long it took.
func benchTimed(b *testing.B, what string, fn func() error) time.Duration {
	start := time.Now()
	err := fn()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("%s: %v", what, err)
	}
	return d
}

// --- insert ----------------------------------------------------------------

func (e *benchVaultEnv) benchInsert(b *testing.B, n int, viaHTTP bool) {
	insert := func() (time.Duration, *records.InsertResponse) {
		rows := benchCustomers(n)
		req := records.InsertRequest{Tokenization: true, Records: make([]records.RecordFields, n)}
		for i, c := range rows {
			req.Records[i].Fields = c.fields(b)
		}
		if viaHTTP {
			body, err := json.Marshal(req)
			if err != nil {
				b.Fatal(err)
			}
			d, out := e.call(b, benchInsertPkg, benchInsertType, map[string]string{request.ExtTable: benchTable}, body)
			var res records.InsertResponse
			if err := json.Unmarshal(out, &res); err != nil {
				b.Fatalf("insert reply: %v: %s", err, out)
			}
			return d, &res
		}
		var res *records.InsertResponse
		d := benchTimed(b, "insert", func() (err error) {
			res, err = e.svc.Insert(e.ctx, benchApp, e.vault, benchTable, req)
			return err
		})
		return d, res
	}
	check := func(res *records.InsertResponse) {
		for _, r := range res.Records {
			if len(r.Tokens) != len(benchTokenized) {
				b.Fatalf("insert answered tokens %v, want one for each of %v", r.Tokens, benchTokenized)
			}
		}
		if len(res.Records) != n {
			b.Fatalf("insert answered %d records, want %d", len(res.Records), n)
		}
	}
	baseline := func() time.Duration {
		rows := benchCustomers(n)
		return benchTimed(b, "plain insert", func() error { return e.plainInsert(rows, nil) })
	}
	// Warm up: the vault's keys are unwrapped and connections opened.
	for range 5 {
		_, res := insert()
		check(res)
		baseline()
	}

	var measured, base []time.Duration
	bd := e.breakdown(b, viaHTTP, benchInsertPkg)
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			bd.start()
			d, res := insert()
			bd.end(d)
			check(res)
			measured = append(measured, d)
			base = append(base, baseline())
		} else {
			base = append(base, baseline())
			bd.start()
			d, res := insert()
			bd.end(d)
			check(res)
			measured = append(measured, d)
		}
	}
	reportLatencies(b, measured, base, "ratio-vs-plain-insert")
	reportRecordsPerSecond(b, n, measured, base)
	bd.report(b, measured)
}

// plainInsert is the insert baseline: the rows' values as text, in one
// statement in one transaction. ids may be nil for fresh ones.
func (e *benchVaultEnv) plainInsert(rows []benchCustomer, ids []uuid.UUID) error {
	n := len(rows)
	if ids == nil {
		ids = make([]uuid.UUID, n)
		for i := range ids {
			ids[i] = uuid.New()
		}
	}
	names, emails, ssns, cards, notes := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, c := range rows {
		names[i], emails[i], ssns[i], cards[i], notes[i] = c.name, c.email, c.ssn, c.card, c.notes
	}
	return pgx.BeginFunc(e.ctx, e.plain, func(tx pgx.Tx) error {
		_, err := tx.Exec(e.ctx, benchPlainIns, ids, names, emails, ssns, cards, notes)
		return err
	})
}

// --- reads -----------------------------------------------------------------

// benchSeeded is a stored record: its id and its tokens by column.
type benchSeeded struct {
	id     uuid.UUID
	tokens map[string]string
}

// seeded stores benchSeedRows records in the vault and the same rows, under
// the same ids, in the plain table, once.
func (e *benchVaultEnv) seeded(b *testing.B) []benchSeeded {
	if e.seed != nil {
		return e.seed
	}
	for len(e.seed) < benchSeedRows {
		rows := benchCustomers(records.MaxItems)
		req := records.InsertRequest{Tokenization: true, Records: make([]records.RecordFields, len(rows))}
		for i, c := range rows {
			req.Records[i].Fields = c.fields(b)
		}
		res, err := e.svc.Insert(e.ctx, benchApp, e.vault, benchTable, req)
		if err != nil {
			b.Fatalf("seeding: %v", err)
		}
		ids := make([]uuid.UUID, len(rows))
		for i, r := range res.Records {
			ids[i] = uuid.MustParse(r.SkyflowID)
			e.seed = append(e.seed, benchSeeded{id: ids[i], tokens: r.Tokens})
		}
		if err := e.plainInsert(rows, ids); err != nil {
			b.Fatalf("seeding the plain table: %v", err)
		}
	}
	return e.seed
}

// plainSelect is the read baseline: a plain SELECT of the rows by primary
// key, every value read.
func (e *benchVaultEnv) plainSelect(ids []uuid.UUID) error {
	var rows pgx.Rows
	var err error
	if len(ids) == 1 {
		rows, err = e.plain.Query(e.ctx, benchPlainSel1, ids[0])
	} else {
		rows, err = e.plain.Query(e.ctx, benchPlainSel, ids)
	}
	if err != nil {
		return err
	}
	var id uuid.UUID
	var name, email, ssn, card, notes string
	tag, err := pgx.ForEachRow(rows, []any{&id, &name, &email, &ssn, &card, &notes}, func() error { return nil })
	if n := int(tag.RowsAffected()); err == nil && n != len(ids) {
		err = fmt.Errorf("read %d rows, want %d", n, len(ids))
	}
	return err
}

func (e *benchVaultEnv) benchDetokenize(b *testing.B, viaHTTP bool) {
	seed := e.seeded(b)
	const n = records.MaxItems
	// Request i detokenizes one token of each of 25 consecutive records,
	// cycling through the tokenized columns.
	params := func(i int) (records.DetokenizeRequest, []uuid.UUID) {
		req := records.DetokenizeRequest{Parameters: make([]records.DetokenizeParameter, n)}
		ids := make([]uuid.UUID, n)
		for j := range n {
			s := seed[(i*n+j)%len(seed)]
			col := benchTokenized[(i+j)%len(benchTokenized)]
			req.Parameters[j] = records.DetokenizeParameter{Token: s.tokens[col], Redaction: "PLAIN_TEXT"}
			ids[j] = s.id
		}
		return req, ids
	}
	detokenize := func(i int) time.Duration {
		req, _ := params(i)
		var res *records.DetokenizeResponse
		var d time.Duration
		if viaHTTP {
			body, err := json.Marshal(req)
			if err != nil {
				b.Fatal(err)
			}
			var out []byte
			d, out = e.call(b, benchDetokenizePkg, benchDetokenizeType, nil, body)
			res = &records.DetokenizeResponse{}
			if err := json.Unmarshal(out, res); err != nil {
				b.Fatalf("detokenize reply: %v: %s", err, out)
			}
		} else {
			d = benchTimed(b, "detokenize", func() (err error) {
				res, err = e.svc.Detokenize(e.ctx, benchApp, e.vault, req)
				return err
			})
		}
		if len(res.Records) != n {
			b.Fatalf("detokenize answered %d records, want %d", len(res.Records), n)
		}
		for _, r := range res.Records {
			if r.Error != nil || r.Value == "" {
				b.Fatalf("detokenize answered %+v", r)
			}
		}
		return d
	}
	baseline := func(i int) time.Duration {
		_, ids := params(i)
		return benchTimed(b, "plain select", func() error { return e.plainSelect(ids) })
	}
	e.benchReads(b, n, detokenize, baseline, viaHTTP, benchDetokenizePkg)
}

func (e *benchVaultEnv) benchGetOne(b *testing.B, viaHTTP bool) {
	seed := e.seeded(b)
	get := func(i int) time.Duration {
		id := seed[i%len(seed)].id
		var rec *records.Record
		var d time.Duration
		if viaHTTP {
			var out []byte
			d, out = e.call(b, benchGetOnePkg, benchGetOneType, map[string]string{
				request.ExtTable: benchTable, request.ExtSkyflowID: id.String(), request.ExtQuery: "redaction=PLAIN_TEXT",
			}, nil)
			rec = &records.Record{}
			if err := json.Unmarshal(out, rec); err != nil {
				b.Fatalf("get reply: %v: %s", err, out)
			}
		} else {
			d = benchTimed(b, "get", func() (err error) {
				rec, err = e.svc.GetOne(e.ctx, benchApp, e.vault, benchTable, id.String(), records.GetParams{Redaction: "PLAIN_TEXT"})
				return err
			})
		}
		if len(rec.Fields) != 6 { // five columns and skyflow_id
			b.Fatalf("get answered %d fields, want 6: %v", len(rec.Fields), rec.Fields)
		}
		return d
	}
	baseline := func(i int) time.Duration {
		id := seed[i%len(seed)].id
		return benchTimed(b, "plain select", func() error { return e.plainSelect([]uuid.UUID{id}) })
	}
	e.benchReads(b, 1, get, baseline, viaHTTP, benchGetOnePkg)
}

// benchReads runs a read and its baseline alternately, request i of each
// reading the same rows.
func (e *benchVaultEnv) benchReads(b *testing.B, n int, read, baseline func(i int) time.Duration, viaHTTP bool, pkg string) {
	for i := range 5 {
		read(i)
		baseline(i)
	}
	var measured, base []time.Duration
	bd := e.breakdown(b, viaHTTP, pkg)
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			bd.start()
			d := read(i)
			bd.end(d)
			measured = append(measured, d)
			base = append(base, baseline(i))
		} else {
			base = append(base, baseline(i))
			bd.start()
			d := read(i)
			bd.end(d)
			measured = append(measured, d)
		}
	}
	reportLatencies(b, measured, base, "ratio-vs-plain-select")
	reportRecordsPerSecond(b, n, measured, base)
	bd.report(b, measured)
}

// reportRecordsPerSecond reports the records one client moves per second,
// one request after the other, and the same for the baseline.
func reportRecordsPerSecond(b *testing.B, n int, measured, baseline []time.Duration) {
	rate := func(ds []time.Duration) float64 {
		var sum time.Duration
		for _, d := range ds {
			sum += d
		}
		if sum == 0 {
			return 0
		}
		return float64(n*len(ds)) / sum.Seconds()
	}
	b.ReportMetric(rate(measured), "records/s")
	b.ReportMetric(rate(baseline), "baseline-records/s")
}

// --- where the time goes ---------------------------------------------------

// benchTrace is a pgx tracer that adds up, per statement kind, the time
// the service's statements take (one round trip each; a batch is one).
type benchTrace struct {
	mu    sync.Mutex
	on    bool
	spent map[string]time.Duration
	trips int
}

type benchTraceStart struct{}

func (t *benchTrace) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, benchTraceStart{}, benchTraceMark{time.Now(), benchStatement(data.SQL)})
}

func (t *benchTrace) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	t.add(ctx)
}

func (t *benchTrace) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	label := "batch"
	if qs := data.Batch.QueuedQueries; len(qs) > 0 {
		label = fmt.Sprintf("batch of %d× %s", len(qs), benchStatement(qs[0].SQL))
	}
	return context.WithValue(ctx, benchTraceStart{}, benchTraceMark{time.Now(), label})
}

func (t *benchTrace) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (t *benchTrace) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchEndData) {
	t.add(ctx)
}

type benchTraceMark struct {
	at    time.Time
	label string
}

func (t *benchTrace) add(ctx context.Context) {
	m, ok := ctx.Value(benchTraceStart{}).(benchTraceMark)
	if !ok {
		return
	}
	d := time.Since(m.at)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.on {
		t.spent[m.label] += d
		t.trips++
	}
}

// reset starts a request's account; take ends it.
func (t *benchTrace) reset() {
	t.mu.Lock()
	t.on, t.spent, t.trips = true, map[string]time.Duration{}, 0
	t.mu.Unlock()
}

func (t *benchTrace) take() (map[string]time.Duration, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.on = false
	return t.spent, t.trips
}

// benchStatement names a statement by its verb and first table:
// "INSERT vault_cells", "SELECT vaults", "begin".
func benchStatement(sql string) string {
	words := strings.Fields(sql)
	if len(words) == 0 {
		return "?"
	}
	verb := words[0]
	for i, w := range words[:len(words)-1] {
		switch strings.ToUpper(w) {
		case "FROM", "INTO", "UPDATE":
			if i > 0 || verb == "UPDATE" {
				return verb + " " + strings.Trim(words[i+1], "(,")
			}
		}
	}
	return verb
}

// benchPosts adds up the time the outbox spends POSTing events to the sink.
type benchPosts struct {
	mu    sync.Mutex
	spent time.Duration
	n     int
}

type benchTimedTransport struct {
	base  http.RoundTripper
	posts *benchPosts
}

func (t *benchTimedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	d := time.Since(start)
	t.posts.mu.Lock()
	t.posts.spent += d
	t.posts.n++
	t.posts.mu.Unlock()
	return resp, err
}

func (p *benchPosts) take() (time.Duration, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, n := p.spent, p.n
	p.spent, p.n = 0, 0
	return d, n
}

// benchBreakdown collects where a request's time went. For a direct run:
// request by request, the SQL statements and the outbox's POSTs. For an
// http run: the function's own account of its handling time (its
// skyflow_function_event_duration_seconds histogram), the rest being the
// HTTP hop and the host's CloudEvents decoding and encoding.
type benchBreakdown struct {
	e       *benchVaultEnv
	fn      *process // http runs: the function; nil for direct runs
	fnSum   float64  // its histogram's sum and count when the run began
	fnCount float64
	sql     map[string][]time.Duration
	trips   []float64
	posts   []time.Duration
	npost   []float64
	samples int
}

func (e *benchVaultEnv) breakdown(b *testing.B, viaHTTP bool, pkg string) *benchBreakdown {
	bd := &benchBreakdown{e: e, sql: map[string][]time.Duration{}}
	if viaHTTP {
		bd.fn = e.funcs[pkg]
		bd.fnSum, bd.fnCount = benchHandled(b, bd.fn)
	}
	return bd
}

func (bd *benchBreakdown) start() {
	if bd.fn == nil {
		bd.e.posts.take()
		bd.e.trace.reset()
	}
}

func (bd *benchBreakdown) end(time.Duration) {
	if bd.fn != nil {
		return
	}
	spent, trips := bd.e.trace.take()
	posted, n := bd.e.posts.take()
	for label := range spent {
		if _, ok := bd.sql[label]; !ok {
			bd.sql[label] = make([]time.Duration, bd.samples) // zeros for the requests without it
		}
	}
	for label := range bd.sql {
		bd.sql[label] = append(bd.sql[label], spent[label])
	}
	bd.samples++
	bd.trips = append(bd.trips, float64(trips))
	bd.posts = append(bd.posts, posted)
	bd.npost = append(bd.npost, float64(n))
}

// report adds what the breakdown found as metrics, and for a direct run
// logs the median time of each statement kind.
func (bd *benchBreakdown) report(b *testing.B, measured []time.Duration) {
	if bd.fn != nil {
		sum, count := benchHandled(b, bd.fn)
		if count > bd.fnCount {
			inFn := (sum - bd.fnSum) / (count - bd.fnCount) * 1000
			b.ReportMetric(inFn, "in-function-mean-ms")
			b.ReportMetric(benchMean(measured)-inFn, "http-hop-mean-ms")
		}
		return
	}
	if bd.samples == 0 {
		return
	}
	b.ReportMetric(median(bd.trips), "sql-round-trips/req")
	b.ReportMetric(percentile(bd.posts, 0.5), "outbox-post-p50-ms")
	b.ReportMetric(median(bd.npost), "outbox-posts/req")
	type part struct {
		label string
		p50   float64
	}
	var parts []part
	var sqlSum float64
	for label, ds := range bd.sql {
		p := percentile(ds, 0.5)
		parts = append(parts, part{label, p})
		sqlSum += p
	}
	slices.SortFunc(parts, func(a, b part) int {
		switch {
		case a.p50 > b.p50:
			return -1
		case a.p50 < b.p50:
			return 1
		}
		return strings.Compare(a.label, b.label)
	})
	var sb strings.Builder
	total, posts := percentile(measured, 0.5), percentile(bd.posts, 0.5)
	fmt.Fprintf(&sb, "where a request's time goes (medians, ms): total %.3f; outbox POSTs to the sink %.3f; SQL %.3f:", total, posts, sqlSum)
	for _, p := range parts {
		sb.WriteString(" " + p.label + " " + strconv.FormatFloat(p.p50, 'f', 3, 64) + ";")
	}
	fmt.Fprintf(&sb, " the rest (Go: crypto, tokens, JSON, scheduling) ≈ %.3f", total-posts-sqlSum)
	b.Log(sb.String())
}

// benchHandled reads a function's /metrics: the sum (seconds) and count of
// the events it answered 200.
func benchHandled(b *testing.B, p *process) (sum, count float64) {
	resp, err := benchHTTP.Get(p.url("/metrics"))
	if err != nil {
		b.Fatalf("scraping %s: %v", p.url("/metrics"), err)
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(text)) {
		name, rest, ok := strings.Cut(line, "{")
		if !ok || !strings.Contains(rest, `code="200"`) {
			continue
		}
		_, value, _ := strings.Cut(rest, "} ")
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch name {
		case "skyflow_function_event_duration_seconds_sum":
			sum += v
		case "skyflow_function_event_duration_seconds_count":
			count += v
		}
	}
	return sum, count
}

// benchMean is the mean of ds in ms.
func benchMean(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return float64(sum) / float64(len(ds)) / float64(time.Millisecond)
}

// --- test data -------------------------------------------------------------

// benchCustomer is one record's values.
type benchCustomer struct{ name, email, ssn, card, notes string }

// benchSeq numbers generated customers: every value that must be unique
// (email) or should be (SSN, card number) is derived from it.
var benchSeq atomic.Int64

// benchRun tells this process's emails from another run's.
var benchRun = strconv.FormatInt(time.Now().UnixNano()%1_000_000, 36)

var (
	benchFirst = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis", "Radia", "John"}
	benchLast  = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Ritchie", "Perlman", "Backus"}
	// Issuer prefixes of 16-digit card numbers (Visa, Mastercard, Discover).
	benchBINs = []string{"453201", "401288", "414720", "510510", "545454", "222300", "601100"}
)

func benchCustomers(n int) []benchCustomer {
	out := make([]benchCustomer, n)
	for i := range out {
		out[i] = benchNewCustomer(benchSeq.Add(1))
	}
	return out
}

func benchNewCustomer(n int64) benchCustomer {
	return benchCustomer{
		name:  benchFirst[n%int64(len(benchFirst))] + " " + benchLast[(n/int64(len(benchFirst)))%int64(len(benchLast))],
		email: fmt.Sprintf("customer.%d.%s@example.com", n, benchRun),
		ssn:   benchSSN(n),
		card:  benchCard(n),
		notes: fmt.Sprintf("customer #%d; prefers email; account opened in %d", n, 2000+n%25),
	}
}

// benchSSN is the n-th valid SSN: area 001–665 or 667–899, group 01–99,
// serial 0001–9999.
func benchSSN(n int64) string {
	serial := n%9999 + 1
	group := (n/9999)%99 + 1
	area := (n/(9999*99))%898 + 1
	if area >= 666 {
		area++
	}
	return fmt.Sprintf("%03d-%02d-%04d", area, group, serial)
}

// benchCard is a Luhn-valid 16-digit card number: an issuer prefix, nine
// digits from n, and the check digit.
func benchCard(n int64) string {
	body := benchBINs[n%int64(len(benchBINs))] + fmt.Sprintf("%09d", (n*7919)%1_000_000_000)
	sum := 0
	// The check digit will be rightmost, so the body's rightmost digit is doubled.
	for i := len(body) - 1; i >= 0; i-- {
		d := int(body[i] - '0')
		if (len(body)-1-i)%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return body + strconv.Itoa((10-sum%10)%10)
}

// fields is the record as a client sends it.
func (c benchCustomer) fields(b *testing.B) records.Fields {
	f := records.Fields{}
	for k, v := range map[string]string{"name": c.name, "email": c.email, "ssn": c.ssn, "card_number": c.card, "notes": c.notes} {
		raw, err := json.Marshal(v)
		if err != nil {
			b.Fatal(err)
		}
		f[k] = raw
	}
	return f
}
