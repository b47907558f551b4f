package tests

// Helpers of BenchmarkLoad (bench_load_test.go) and TestSoak
// (soak_test.go): a vault of persons made through the gateway, the API key
// of a service account that uses it, the Data API calls an application
// makes, and the counting of what they answer. Everything goes through the
// gateway's front, as a client's request would; nothing here retries or
// hides a failure: each answer is counted as a success, a non-2xx status
// (by status), a transport error, or a 2xx whose body is wrong.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/domain/identity/credentials"
	"github.com/skyflow-oss/skyflow/domain/records"
)

// loadSchema is the table a real application would keep: a name with a
// random token, a unique email with a deterministic token (so it can be
// looked up by value), and an SSN with a format-preserving token.
const loadSchema = `{
  "name": "load persons",
  "tables": [{"name": "persons", "columns": [
    {"name": "name",  "data_type": "string", "token_type": "NON_DETERMINISTIC_UUID"},
    {"name": "email", "data_type": "string", "token_type": "DETERMINISTIC_UUID", "unique": true, "validation": {"kind": "EMAIL"}},
    {"name": "ssn",   "data_type": "string", "token_type": "DETERMINISTIC_FPT", "mask": "SHOW_LAST_4", "validation": {"kind": "SSN"}}
  ]}],
  "policy": {"roles": {
    "load-app": {"tables": {"persons": {"insert": true, "read": {"*": "PLAIN_TEXT"}}}, "detokenize": true}
  }}
}`

const (
	loadTable = "persons"
	loadRole  = "load-app"

	// The baseline's table: the same columns as text, plus an id, with a
	// unique index on email as the vault has one on its blind index.
	loadPlainDDL = `CREATE TABLE IF NOT EXISTS load_plain_persons (id uuid PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE, ssn text NOT NULL)`
	loadPlainIns = `INSERT INTO load_plain_persons (id, name, email, ssn) SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[])`
	loadPlainSel = `SELECT id, name, email, ssn FROM load_plain_persons WHERE id = ANY($1)`
	loadPlainOne = `SELECT id, name, email, ssn FROM load_plain_persons WHERE id = $1`
	loadPlainBy  = `SELECT id, name, email, ssn FROM load_plain_persons WHERE email = $1`
)

// loadRateLimits is what the gateway runs with: its own default
// (functions/gateway DefaultLimits, sized for a backend service), as users
// meet it, unless SKYFLOW_LOAD_RATE_LIMITS names others. The second result
// is the environment to give the platform.
func loadRateLimits() (inForce string, env map[string]string) {
	if v := os.Getenv("SKYFLOW_LOAD_RATE_LIMITS"); v != "" {
		return v + " (SKYFLOW_LOAD_RATE_LIMITS)", map[string]string{"SKYFLOW_RATE_LIMITS": v}
	}
	return "the gateway's default (functions/gateway DefaultLimits)", map[string]string{}
}

// loadEnv is a platform with a vault of persons, an API key that may use
// it, and seeded records to read.
type loadEnv struct {
	p      *testPlatform
	client *http.Client
	base   string // the gateway, as a client reaches it
	key    string // the service account's API key
	vault  string

	seeded []loadRecord // records stored in the vault
	plain  []loadRecord // rows stored in the plain table (no tokens)
	seq    atomic.Int64 // picks the records reads read, across cells
}

// loadRecord is a stored record: its id, email and tokens by column.
type loadRecord struct {
	id     string
	email  string
	tokens map[string]string
}

// newLoadEnv makes, through the gateway with the administrator's API key,
// the vault, a service account with the vault's role and an API key for
// it. clients sizes the connection pool of the shared HTTP client.
func newLoadEnv(t testing.TB, p *testPlatform, clients int) *loadEnv {
	t.Helper()
	e := &loadEnv{
		p:    p,
		base: p.GatewayURL(),
		// One client for every load goroutine, with an idle connection
		// kept for each: a new connection per request would be measured
		// too, and no real application works that way.
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			Proxy: nil, MaxIdleConns: 4 * clients, MaxIdleConnsPerHost: 2 * clients, IdleConnTimeout: time.Minute}},
	}
	admin := p.AdminAPIKey()
	var v struct {
		ID string `json:"id"`
	}
	e.mustCall(t, admin, "POST", "/v1/management/vaults", []byte(loadSchema), &v)
	e.vault = v.ID
	var creds credentials.Credentials
	e.mustCall(t, admin, "POST", "/v1/serviceaccounts", loadJSON(map[string]any{"name": "load-app", "roles": []string{loadRole}}), &creds)
	var key struct {
		APIKey string `json:"apiKey"`
	}
	e.mustCall(t, admin, "POST", "/v1/apikeys", loadJSON(map[string]any{"name": "load", "serviceAccountID": creds.ClientID}), &key)
	e.key = key.APIKey
	return e
}

func loadJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// do sends one request to the gateway with credential. It returns the
// status (0 when no answer arrived) and the body.
func (e *loadEnv) do(ctx context.Context, credential, method, path string, body []byte) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.base+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+credential)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("reading the answer: %w", err)
	}
	return resp.StatusCode, out, nil
}

// mustCall is a set-up call that must answer 200 with JSON for out.
func (e *loadEnv) mustCall(t testing.TB, credential, method, path string, body []byte, out any) {
	t.Helper()
	status, b, err := e.do(t.Context(), credential, method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if status != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, path, status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// --- the operations ----------------------------------------------------------

// loadOutcome is what one operation got: the HTTP status (0 when no
// answer came: a transport error), err (the transport error, or what is
// wrong with a 2xx answer), and the records the operation moved.
type loadOutcome struct {
	status  int
	err     error
	records int
	ids     []string // the records an insert stored
}

// call sends one Data API request with the API key and checks a 2xx
// answer with check.
func (e *loadEnv) call(ctx context.Context, method, path string, body []byte, check func([]byte) (loadOutcome, error)) loadOutcome {
	status, b, err := e.do(ctx, e.key, method, path, body)
	if err != nil {
		return loadOutcome{err: err}
	}
	if status < 200 || status > 299 {
		return loadOutcome{status: status, err: fmt.Errorf("%s %s: %d %s", method, loadRoute(path), status, loadClip(b))}
	}
	o, err := check(b)
	o.status = status
	if err != nil {
		o.err = fmt.Errorf("%s %s: %d with a wrong answer: %w: %s", method, loadRoute(path), status, err, loadClip(b))
	}
	return o
}

// loadRoute names a path without its ids and query, so an error message
// never carries a value.
func loadRoute(path string) string {
	path, _, _ = strings.Cut(path, "?")
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if uuid.Validate(p) == nil || len(p) == 32 {
			parts[i] = "{id}"
		}
	}
	return strings.Join(parts, "/")
}

func loadClip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// insert stores n new persons with tokenization, in one request.
func (e *loadEnv) insert(ctx context.Context, n int) loadOutcome {
	rows := benchCustomers(n)
	req := map[string]any{"tokenization": true, "records": loadFields(rows)}
	return e.call(ctx, "POST", "/v1/vaults/"+e.vault+"/"+loadTable, loadJSON(req), func(b []byte) (loadOutcome, error) {
		var res records.InsertResponse
		if err := json.Unmarshal(b, &res); err != nil {
			return loadOutcome{}, err
		}
		if len(res.Records) != n {
			return loadOutcome{}, fmt.Errorf("%d records, want %d", len(res.Records), n)
		}
		o := loadOutcome{records: n, ids: make([]string, n)}
		for i, r := range res.Records {
			if uuid.Validate(r.SkyflowID) != nil || len(r.Tokens) != 3 {
				return loadOutcome{}, fmt.Errorf("record %d: id %q, %d tokens, want 3", i, r.SkyflowID, len(r.Tokens))
			}
			o.ids[i] = r.SkyflowID
		}
		return o, nil
	})
}

func loadFields(rows []benchCustomer) []map[string]any {
	out := make([]map[string]any, len(rows))
	for i, c := range rows {
		out[i] = map[string]any{"fields": map[string]string{"name": c.name, "email": c.email, "ssn": c.ssn}}
	}
	return out
}

// getOne reads one record by id, every column in plain text.
func (e *loadEnv) getOne(ctx context.Context, r loadRecord) loadOutcome {
	return e.call(ctx, "GET", "/v1/vaults/"+e.vault+"/"+loadTable+"/"+r.id+"?redaction=PLAIN_TEXT", nil, func(b []byte) (loadOutcome, error) {
		var rec records.Record
		if err := json.Unmarshal(b, &rec); err != nil {
			return loadOutcome{}, err
		}
		if len(rec.Fields) != 4 { // three columns and skyflow_id
			return loadOutcome{}, fmt.Errorf("%d fields, want 4", len(rec.Fields))
		}
		return loadOutcome{records: 1}, nil
	})
}

// byColumn reads one record by the value of its unique column: the Data
// API's get by column_name and column_values (records-get).
func (e *loadEnv) byColumn(ctx context.Context, r loadRecord) loadOutcome {
	q := url.Values{"column_name": {"email"}, "column_values": {r.email}, "redaction": {"PLAIN_TEXT"}}
	return e.call(ctx, "GET", "/v1/vaults/"+e.vault+"/"+loadTable+"?"+q.Encode(), nil, oneRecord)
}

// query reads one record by its unique column through the SQL subset
// (records-query).
func (e *loadEnv) query(ctx context.Context, r loadRecord) loadOutcome {
	body := loadJSON(map[string]string{"query": "SELECT * FROM " + loadTable + " WHERE email = '" + r.email + "'"})
	return e.call(ctx, "POST", "/v1/vaults/"+e.vault+"/query", body, oneRecord)
}

func oneRecord(b []byte) (loadOutcome, error) {
	var res records.GetResponse
	if err := json.Unmarshal(b, &res); err != nil {
		return loadOutcome{}, err
	}
	if len(res.Records) != 1 || len(res.Records[0].Fields) != 4 {
		return loadOutcome{}, fmt.Errorf("%d records, want one of 4 fields", len(res.Records))
	}
	return loadOutcome{records: 1}, nil
}

// detokenize turns 25 tokens of 25 records back into values, cycling
// through the tokenized columns.
func (e *loadEnv) detokenize(ctx context.Context, recs []loadRecord) loadOutcome {
	params := make([]map[string]string, len(recs))
	for j, r := range recs {
		col := loadTokenized[j%len(loadTokenized)]
		params[j] = map[string]string{"token": r.tokens[col], "redaction": "PLAIN_TEXT"}
	}
	body := loadJSON(map[string]any{"detokenizationParameters": params})
	return e.call(ctx, "POST", "/v1/vaults/"+e.vault+"/detokenize", body, func(b []byte) (loadOutcome, error) {
		var res records.DetokenizeResponse
		if err := json.Unmarshal(b, &res); err != nil {
			return loadOutcome{}, err
		}
		if len(res.Records) != len(recs) {
			return loadOutcome{}, fmt.Errorf("%d values, want %d", len(res.Records), len(recs))
		}
		for _, r := range res.Records {
			if r.Error != nil || r.Value == "" {
				return loadOutcome{}, errors.New("a token without its value")
			}
		}
		return loadOutcome{records: len(recs)}, nil
	})
}

// loadTokenized are the columns with tokens.
var loadTokenized = []string{"name", "email", "ssn"}

// next picks the seeded records of the next read: n consecutive ones.
func (e *loadEnv) next(set []loadRecord, n int) []loadRecord {
	i := int(e.seq.Add(1))
	out := make([]loadRecord, n)
	for j := range out {
		out[j] = set[(i*n+j)%len(set)]
	}
	return out
}

// seed stores n persons in the vault, 25 a request, and n other persons
// in the plain table of pool (none when pool is nil), for the reads.
func (e *loadEnv) seed(t testing.TB, pool *pgxpool.Pool, n int) {
	t.Helper()
	ctx := t.Context()
	for len(e.seeded) < n {
		rows := benchCustomers(min(records.MaxItems, n-len(e.seeded)))
		var res records.InsertResponse
		e.mustCall(t, e.key, "POST", "/v1/vaults/"+e.vault+"/"+loadTable, loadJSON(map[string]any{"tokenization": true, "records": loadFields(rows)}), &res)
		for i, r := range res.Records {
			e.seeded = append(e.seeded, loadRecord{id: r.SkyflowID, email: rows[i].email, tokens: r.Tokens})
		}
	}
	if pool == nil {
		return
	}
	if _, err := pool.Exec(ctx, loadPlainDDL); err != nil {
		t.Fatal(err)
	}
	for len(e.plain) < n {
		rows := benchCustomers(min(500, n-len(e.plain)))
		ids := make([]uuid.UUID, len(rows))
		for i := range ids {
			ids[i] = uuid.New()
			e.plain = append(e.plain, loadRecord{id: ids[i].String(), email: rows[i].email})
		}
		if err := plainInsert(ctx, pool, rows, ids); err != nil {
			t.Fatalf("seeding the plain table: %v", err)
		}
	}
}

// --- the baseline ------------------------------------------------------------

// plainInsert inserts rows under ids in one statement in one transaction.
func plainInsert(ctx context.Context, pool *pgxpool.Pool, rows []benchCustomer, ids []uuid.UUID) error {
	n := len(rows)
	names, emails, ssns := make([]string, n), make([]string, n), make([]string, n)
	for i, c := range rows {
		names[i], emails[i], ssns[i] = c.name, c.email, c.ssn
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, loadPlainIns, ids, names, emails, ssns)
		return err
	})
}

// plainOutcome turns a baseline's error into an outcome: status 200 for
// success, else a transport error (the baseline has no HTTP status).
func plainOutcome(err error, n int) loadOutcome {
	if err != nil {
		return loadOutcome{err: err}
	}
	return loadOutcome{status: http.StatusOK, records: n}
}

// plainInsertNew inserts n fresh rows in one transaction.
func plainInsertNew(ctx context.Context, pool *pgxpool.Pool, n int) loadOutcome {
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.New()
	}
	return plainOutcome(plainInsert(ctx, pool, benchCustomers(n), ids), n)
}

// plainSelect reads rows with every column, and checks that want rows came.
func plainSelect(ctx context.Context, pool *pgxpool.Pool, want int, sql string, arg any) loadOutcome {
	rows, err := pool.Query(ctx, sql, arg)
	if err != nil {
		return loadOutcome{err: err}
	}
	var id uuid.UUID
	var name, email, ssn string
	tag, err := pgx.ForEachRow(rows, []any{&id, &name, &email, &ssn}, func() error { return nil })
	if n := int(tag.RowsAffected()); err == nil && n != want {
		err = fmt.Errorf("read %d rows, want %d", n, want)
	}
	return plainOutcome(err, want)
}

// --- counting ------------------------------------------------------------------

// loadStats count the outcomes of a run of one operation.
type loadStats struct {
	ok, records int
	lat         []time.Duration // of the successes
	non2xx      map[int]int     // by status
	transport   int             // no answer
	bad         int             // a 2xx with a wrong answer
	firstErr    string
	elapsed     time.Duration
}

func (s *loadStats) add(o loadOutcome, d time.Duration) {
	switch {
	case o.status == 0:
		s.transport++
	case o.status < 200 || o.status > 299:
		if s.non2xx == nil {
			s.non2xx = map[int]int{}
		}
		s.non2xx[o.status]++
	case o.err != nil:
		s.bad++
	default:
		s.ok++
		s.records += o.records
		s.lat = append(s.lat, d)
		return
	}
	if s.firstErr == "" && o.err != nil {
		s.firstErr = o.err.Error()
	}
}

func (s *loadStats) merge(o *loadStats) {
	s.ok += o.ok
	s.records += o.records
	s.lat = append(s.lat, o.lat...)
	for code, n := range o.non2xx {
		if s.non2xx == nil {
			s.non2xx = map[int]int{}
		}
		s.non2xx[code] += n
	}
	s.transport += o.transport
	s.bad += o.bad
	if s.firstErr == "" {
		s.firstErr = o.firstErr
	}
	s.elapsed += o.elapsed
}

func (s *loadStats) failed() int {
	n := s.transport + s.bad
	for _, c := range s.non2xx {
		n += c
	}
	return n
}

func (s *loadStats) opsPerSecond() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.ok) / s.elapsed.Seconds()
}

func (s *loadStats) recordsPerSecond() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.records) / s.elapsed.Seconds()
}

// errors is the errors column: non-2xx by status, transport, wrong answers.
func (s *loadStats) errors() string {
	if s.failed() == 0 {
		return "0"
	}
	var parts []string
	for _, code := range slices.Sorted(maps.Keys(s.non2xx)) {
		parts = append(parts, fmt.Sprintf("%d×%d", s.non2xx[code], code))
	}
	if s.transport > 0 {
		parts = append(parts, fmt.Sprintf("%d transport", s.transport))
	}
	if s.bad > 0 {
		parts = append(parts, fmt.Sprintf("%d wrong", s.bad))
	}
	return strings.Join(parts, ", ")
}

// runLoad runs op from clients goroutines, each one request after the
// other, for d, and counts the outcomes of the requests started within d.
// Every loop is bounded in time (d, plus one request's timeout) and in
// count (maxOps per client).
func runLoad(ctx context.Context, clients int, d time.Duration, maxOps int, op func(ctx context.Context) loadOutcome) *loadStats {
	per := make([]loadStats, clients)
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for w := range per {
		wg.Go(func() {
			s := &per[w]
			for range maxOps {
				t0 := time.Now()
				if !t0.Before(end) || ctx.Err() != nil {
					return
				}
				o := op(ctx)
				s.add(o, time.Since(t0))
			}
		})
	}
	wg.Wait()
	total := &loadStats{}
	for i := range per {
		total.merge(&per[i])
	}
	// Up to the last answer: requests started near the end count whole.
	total.elapsed = time.Since(start)
	return total
}

// loadAverage is /proc/loadavg's first three fields, or why not.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return strings.TrimSpace(string(b))
	}
	return strings.Join(f[:3], " ")
}
