package tests

// Benchmarks of the user service (domain/identity), its operations called
// in-process on real PostgreSQL and Redis as the auth-* functions call
// them, one client, one request after the other:
//
//   - Login: a verified user logging in with the right password. The
//     baseline is one bare passwords.Verify of the same password against
//     the same stored hash: the argon2id floor every login pays on purpose.
//   - LoginFailure/unknown-vs-wrong-password: the timing oracle. A wrong
//     password for an existing email and any password for an unknown
//     email, interleaved; the "measured" figures are the unknown emails',
//     the baseline the wrong passwords', and the ratio of their medians
//     should be 1 within noise (this is a benchmark, not a timed assertion:
//     the tests check the code path, the figures show the time). The noise
//     is there too: paired-diff-p50-ms, the median of (unknown − wrong) over
//     the pairs of one iteration, against wrong-iqr-ms, the spread of the
//     wrong-password times.
//   - TokenExchange: a service account's signed assertion traded for an
//     access token (ExchangeToken; the assertion is signed outside the
//     timed part, as the client's machine would). The baseline is a plain
//     SELECT 1 on the same database: an exchange is a few round trips (the
//     key lookup and the roles in PostgreSQL, the replay guard's SET NX in
//     Redis) around well under a millisecond of crypto, so round trips are
//     what explain its cost. Signing alone (signing.Keyring.Issue, Ed25519)
//     is measured too, interleaved, as signing-p50-ms.
//
// ns/op is suppressed as in bench_test.go; the figures are p50/p99 ms,
// logins/s or exchanges/s (one client, sequential), and ratio-*. A login
// iteration costs two hashes, so -benchtime 2s gives 30–45 samples and
// their p99 is about their maximum.
//
// The argon2id cost is passwords.Default (m=19 MiB, t=2, p=1: OWASP's
// first recommendation), not lowered for the benchmark: the figure that
// matters is what a real login costs. The logs give the cost of one hash.
//
// Where the time goes: a pgx tracer on the service's pool and a hook on
// its Redis client count the round trips of each measured call and their
// time (medians per call), and gc-cycles/op counts the GC cycles that
// ended during a call; the rest is Go (argon2id, JWT, RSA, Ed25519, GC).
//
// Failed logins count toward the throttle's lock-out. So that no slow-down
// or lock kicks in, every attempt comes from a fresh client address, and
// the timing-oracle runs use a Backend whose policies are the defaults
// with FreeFailures and LockAfter out of reach: the same Redis scripts run
// for every attempt, only no delay or lock results.

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/domain/identity/credentials"
	"github.com/skyflow-oss/skyflow/domain/identity/passwords"
	"github.com/skyflow-oss/skyflow/domain/identity/signing"
	"github.com/skyflow-oss/skyflow/domain/identity/throttle"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/outbox"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

const (
	benchIdentityTokenURI = "https://skyflow.bench/v1/auth/sa/oauth/token"
	// benchIdentityPassword is every user's; it passes passwords.Check.
	benchIdentityPassword = "bench horse battery staple"
)

// benchIdentityWrong is the i-th wrong password: digits, as many as the
// right one has characters (argon2id's time does not depend on the length
// anyway, but the two kinds of attempt should not differ in anything).
func benchIdentityWrong(i int) string {
	return fmt.Sprintf("%0*d", len(benchIdentityPassword), i)
}

// BenchmarkIdentity measures the user service; see the top of this file.
func BenchmarkIdentity(b *testing.B) {
	e := newBenchIdentityEnv(b)
	b.Run("Login", e.benchLogin)
	b.Run("LoginFailure/unknown-vs-wrong-password", e.benchLoginOracle)
	b.Run("TokenExchange", e.benchExchange)
}

// benchIdentityEnv is one database and one Redis prefix with the user
// service on them, a plain pool for the baselines, and the tracers.
type benchIdentityEnv struct {
	ctx     context.Context
	backend *identity.Backend // the default throttle policies
	relaxed *identity.Backend // no slow-down or lock (the timing oracle)
	plain   *pgxpool.Pool     // the baselines' pool: no tracer
	sql     *benchTrace
	redis   *benchRedisTrace
	addr    atomic.Uint32 // the last client address handed out
}

func newBenchIdentityEnv(b *testing.B) *benchIdentityEnv {
	b.Helper()
	ctx := b.Context()
	e := &benchIdentityEnv{ctx: ctx, sql: &benchTrace{}, redis: &benchRedisTrace{}}
	dbURL := testenv.Database(b)

	// The broker ingress stands in as a sink that takes every event.
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	}))
	b.Cleanup(sink.Close)

	// The service's pool carries the tracer; the baselines get their own.
	cfg, err := db.ParseConfig(dbURL)
	if err != nil {
		b.Fatal(err)
	}
	cfg.ConnConfig.Tracer = e.sql
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if e.plain, err = db.Open(ctx, dbURL); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(e.plain.Close)

	rdb, prefix := testenv.Redis(b)
	rdb.AddHook(e.redis)

	key := make([]byte, kek.KeySize)
	rand.Read(key)
	k, err := kek.NewLocal(key)
	if err != nil {
		b.Fatal(err)
	}
	pub, err := outbox.NewPublisher(pool, sink.URL, outbox.WithRegisterer(prometheus.NewRegistry()),
		outbox.WithHTTPClient(&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}))
	if err != nil {
		b.Fatal(err)
	}
	s := identity.Settings{
		Issuer: "https://skyflow.bench", Audience: "skyflow-api", TokenURI: benchIdentityTokenURI, RedisPrefix: prefix,
	}
	e.backend = identity.New(pool, rdb, pub, k, s)
	s.Account, s.Address = benchNoLockout(identity.AccountPolicy), benchNoLockout(identity.AddressPolicy)
	e.relaxed = identity.New(pool, rdb, pub, k, s)
	return e
}

// benchNoLockout is p with its free failures and lock-out out of reach.
func benchNoLockout(p throttle.Policy) throttle.Policy {
	p.FreeFailures, p.LockAfter = 1<<30, 1<<30
	return p
}

// address is a client address no attempt has come from yet.
func (e *benchIdentityEnv) address() string {
	n := e.addr.Add(1)
	return fmt.Sprintf("10.%d.%d.%d", n>>16&0xff, n>>8&0xff, n&0xff)
}

// benchIdentityEmails numbers the emails of the run.
var benchIdentityEmails atomic.Int64

func benchIdentityEmail(kind string) string {
	return fmt.Sprintf("%s.%d.%s@example.com", kind, benchIdentityEmails.Add(1), benchRun)
}

// verifiedUser registers a user with benchIdentityPassword and verifies
// its email, as the register and verify-email functions do; it returns
// the email.
func (e *benchIdentityEnv) verifiedUser(b *testing.B, kind string) string {
	b.Helper()
	svc := identity.NewService(e.backend, "/skyflow/functions/users-register")
	email := benchIdentityEmail(kind)
	u, err := svc.Register(e.ctx, identity.RegisterRequest{Email: email, Password: benchIdentityPassword, DisplayName: "Bench " + kind})
	if err != nil {
		b.Fatalf("register %s: %v", email, err)
	}
	tok, err := svc.IssueVerification(e.ctx, u.ID)
	if err != nil {
		b.Fatalf("verification token: %v", err)
	}
	if _, err := svc.VerifyEmail(e.ctx, identity.VerifyEmailRequest{Token: tok}); err != nil {
		b.Fatalf("verify email: %v", err)
	}
	return email
}

// --- login -----------------------------------------------------------------

func (e *benchIdentityEnv) benchLogin(b *testing.B) {
	svc := identity.NewService(e.backend, "/skyflow/functions/auth-login")
	email := e.verifiedUser(b, "login")
	var hash string
	if err := e.plain.QueryRow(e.ctx, `SELECT password_hash FROM users WHERE email = $1`, email).Scan(&hash); err != nil {
		b.Fatal(err)
	}

	login := func() time.Duration {
		req, addr := identity.LoginRequest{Email: email, Password: benchIdentityPassword}, e.address()
		var sess *identity.Session
		d := benchTimed(b, "login", func() (err error) {
			sess, err = svc.Login(e.ctx, req, addr)
			return err
		})
		if sess.AccessToken == "" || sess.RefreshToken == "" {
			b.Fatalf("login answered %+v", sess)
		}
		return d
	}
	argon2id := func() time.Duration {
		var ok bool
		d := benchTimed(b, "passwords.Verify", func() (err error) {
			ok, _, err = passwords.Verify(benchIdentityPassword, hash)
			return err
		})
		if !ok {
			b.Fatal("passwords.Verify refused the right password")
		}
		return d
	}
	// Warm up: the first login makes the signing key; connections open.
	for range 3 {
		login()
		argon2id()
	}

	var measured, base []time.Duration
	parts := e.parts()
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			measured = append(measured, parts.measure(login))
			base = append(base, argon2id())
		} else {
			base = append(base, argon2id())
			measured = append(measured, parts.measure(login))
		}
	}
	reportLatencies(b, measured, base, "ratio-vs-argon2id")
	b.ReportMetric(benchRate(measured), "logins/s")
	parts.report(b, "")
	floor := percentile(base, 0.5)
	b.Logf("where a login's time goes (medians, ms): total %.2f; argon2id verify (m=%d MiB, t=%d, p=%d) %.2f; %s",
		percentile(measured, 0.5), passwords.Default.Memory/1024, passwords.Default.Time, passwords.Default.Threads, floor,
		parts.describe(percentile(measured, 0.5)-floor))
}

// --- the timing oracle -----------------------------------------------------

func (e *benchIdentityEnv) benchLoginOracle(b *testing.B) {
	svc := identity.NewService(e.relaxed, "/skyflow/functions/auth-login")
	// A few real accounts, taken in turn; their failure counts grow but,
	// with the relaxed policies, never slow them down.
	known := make([]string, 4)
	for i := range known {
		known[i] = e.verifiedUser(b, "known")
	}
	attempt := func(email, password string) time.Duration {
		req, addr := identity.LoginRequest{Email: email, Password: password}, e.address()
		start := time.Now()
		_, err := svc.Login(e.ctx, req, addr)
		d := time.Since(start)
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.HTTPCode != http.StatusUnauthorized {
			b.Fatalf("login of %s with a wrong password answered %v, want 401", email, err)
		}
		return d
	}
	wrongPassword := func(i int) time.Duration { return attempt(known[i%len(known)], benchIdentityWrong(i)) }
	unknownEmail := func(i int) time.Duration { return attempt(benchIdentityEmail("nobody"), benchIdentityWrong(i)) }
	for i := range 3 {
		wrongPassword(i)
		unknownEmail(i)
	}

	var unknown, wrong []time.Duration
	pu, pw := e.parts(), e.parts()
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			unknown = append(unknown, pu.measure(func() time.Duration { return unknownEmail(i) }))
			wrong = append(wrong, pw.measure(func() time.Duration { return wrongPassword(i) }))
		} else {
			wrong = append(wrong, pw.measure(func() time.Duration { return wrongPassword(i) }))
			unknown = append(unknown, pu.measure(func() time.Duration { return unknownEmail(i) }))
		}
	}
	reportLatencies(b, unknown, wrong, "ratio-unknown-vs-wrong")
	// Paired: each unknown-email attempt minus the wrong-password attempt
	// of the same iteration, against the spread of the wrong passwords.
	diffs := make([]float64, len(unknown))
	for i := range unknown {
		diffs[i] = float64(unknown[i]-wrong[i]) / float64(time.Millisecond)
	}
	b.ReportMetric(median(diffs), "paired-diff-p50-ms")
	b.ReportMetric(percentile(wrong, 0.75)-percentile(wrong, 0.25), "wrong-iqr-ms")
	pu.report(b, "unknown-")
	pw.report(b, "wrong-")
	b.Logf("unknown email (medians, ms): total %.2f; %s", percentile(unknown, 0.5), pu.describe(percentile(unknown, 0.5)))
	b.Logf("wrong password (medians, ms): total %.2f; %s", percentile(wrong, 0.5), pw.describe(percentile(wrong, 0.5)))
}

// --- token exchange --------------------------------------------------------

func (e *benchIdentityEnv) benchExchange(b *testing.B) {
	svc := identity.NewService(e.backend, "/skyflow/functions/auth-sa-token")
	admin := request.Principal{ID: "user:bench-admin", Roles: []string{"admin"}}
	roles := []string{"app", "auditor"}
	creds, err := identity.NewService(e.backend, "/skyflow/functions/serviceaccounts-create").
		CreateServiceAccount(e.ctx, admin, identity.ServiceAccountRequest{Name: "bench", Roles: roles})
	if err != nil {
		b.Fatalf("create service account: %v", err)
	}

	exchange := func() time.Duration {
		assertion, err := credentials.SignAssertion(*creds, 5*time.Minute, nil, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		req := identity.TokenRequest{GrantType: identity.GrantType, Assertion: assertion}
		var res *identity.TokenResponse
		d := benchTimed(b, "exchange", func() (err error) {
			res, err = svc.ExchangeToken(e.ctx, req)
			return err
		})
		if res.AccessToken == "" {
			b.Fatalf("exchange answered %+v", res)
		}
		return d
	}
	selectOne := func() time.Duration {
		var one int
		return benchTimed(b, "SELECT 1", func() error { return e.plain.QueryRow(e.ctx, `SELECT 1`).Scan(&one) })
	}
	claims := signing.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "sa:" + creds.ClientID}, Roles: roles, Kind: signing.KindServiceAccount}
	issue := func() time.Duration {
		return benchTimed(b, "Keyring.Issue", func() error {
			_, _, err := e.backend.Keys.Issue(e.ctx, claims, 0)
			return err
		})
	}
	for range 10 {
		exchange()
		selectOne()
		issue()
	}

	var measured, base, signs []time.Duration
	parts := e.parts()
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			measured = append(measured, parts.measure(exchange))
			base = append(base, selectOne())
			signs = append(signs, issue())
		} else {
			signs = append(signs, issue())
			base = append(base, selectOne())
			measured = append(measured, parts.measure(exchange))
		}
	}
	reportLatencies(b, measured, base, "ratio-vs-select-1")
	b.ReportMetric(benchRate(measured), "exchanges/s")
	b.ReportMetric(percentile(signs, 0.5), "signing-p50-ms")
	parts.report(b, "")
	sign := percentile(signs, 0.5)
	b.Logf("where an exchange's time goes (medians, ms): total %.3f; SELECT 1 %.3f; Ed25519 signing (Keyring.Issue) %.3f; %s",
		percentile(measured, 0.5), percentile(base, 0.5), sign, parts.describe(percentile(measured, 0.5)-sign))
}

// benchGCCycles is the number of GC cycles this process has finished. A
// login allocates argon2id's memory (19 MiB) afresh, so GC cycles come
// every few logins and run alongside the round trips that follow a hash.
func benchGCCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// benchRate is how many calls per second one client makes, one after the
// other.
func benchRate(ds []time.Duration) float64 {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	if sum == 0 {
		return 0
	}
	return float64(len(ds)) / sum.Seconds()
}

// --- where the time goes ---------------------------------------------------

// benchRedisTrace is a go-redis hook that adds up the round trips (a
// command, or a pipeline) and their time while on.
type benchRedisTrace struct {
	mu    sync.Mutex
	on    bool
	spent time.Duration
	trips int
}

func (t *benchRedisTrace) DialHook(next redis.DialHook) redis.DialHook { return next }

func (t *benchRedisTrace) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		t.add(time.Since(start))
		return err
	}
}

func (t *benchRedisTrace) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		t.add(time.Since(start))
		return err
	}
}

func (t *benchRedisTrace) add(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.on {
		t.spent += d
		t.trips++
	}
}

func (t *benchRedisTrace) reset() {
	t.mu.Lock()
	t.on, t.spent, t.trips = true, 0, 0
	t.mu.Unlock()
}

func (t *benchRedisTrace) take() (time.Duration, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.on = false
	return t.spent, t.trips
}

// benchIdentityParts collects, call by call, the SQL and Redis round trips
// of the measured calls and their time.
type benchIdentityParts struct {
	e                    *benchIdentityEnv
	sqlTime, redisTime   []time.Duration
	sqlTrips, redisTrips []float64
	statements           map[string][]time.Duration // by statement kind, a zero for each call without it
	gcs                  []float64                  // GC cycles that ended during each call
	calls                int
}

func (e *benchIdentityEnv) parts() *benchIdentityParts {
	return &benchIdentityParts{e: e, statements: map[string][]time.Duration{}}
}

// measure runs call (which returns its own duration) with the tracers on.
func (p *benchIdentityParts) measure(call func() time.Duration) time.Duration {
	gc0 := benchGCCycles() // runtime/metrics: no stop-the-world
	p.e.sql.reset()
	p.e.redis.reset()
	d := call()
	p.gcs = append(p.gcs, float64(benchGCCycles()-gc0))
	spent, trips := p.e.sql.take()
	rt, rn := p.e.redis.take()
	var sum time.Duration
	for label, s := range spent {
		sum += s
		if _, ok := p.statements[label]; !ok {
			p.statements[label] = make([]time.Duration, p.calls)
		}
	}
	for label := range p.statements {
		p.statements[label] = append(p.statements[label], spent[label])
	}
	p.calls++
	p.sqlTime = append(p.sqlTime, sum)
	p.sqlTrips = append(p.sqlTrips, float64(trips))
	p.redisTime = append(p.redisTime, rt)
	p.redisTrips = append(p.redisTrips, float64(rn))
	return d
}

// report adds the medians as metrics, their units prefixed.
func (p *benchIdentityParts) report(b *testing.B, prefix string) {
	b.ReportMetric(median(p.sqlTrips), prefix+"sql-round-trips/op")
	b.ReportMetric(percentile(p.sqlTime, 0.5), prefix+"sql-p50-ms")
	b.ReportMetric(median(p.redisTrips), prefix+"redis-round-trips/op")
	b.ReportMetric(percentile(p.redisTime, 0.5), prefix+"redis-p50-ms")
	var sum float64
	for _, g := range p.gcs {
		sum += g
	}
	b.ReportMetric(sum/float64(max(len(p.gcs), 1)), prefix+"gc-cycles/op")
}

// describe tells SQL and Redis apart from the rest of the time given.
func (p *benchIdentityParts) describe(of float64) string {
	sqlT, redisT := percentile(p.sqlTime, 0.5), percentile(p.redisTime, 0.5)
	type kind struct {
		label string
		p50   float64
	}
	var kinds []kind
	for label, ds := range p.statements {
		if p50 := percentile(ds, 0.5); p50 > 0 { // statements at least every other call makes
			kinds = append(kinds, kind{label, p50})
		}
	}
	slices.SortFunc(kinds, func(a, b kind) int {
		if a.p50 != b.p50 {
			return cmp.Compare(b.p50, a.p50)
		}
		return strings.Compare(a.label, b.label)
	})
	each := make([]string, len(kinds))
	for i, k := range kinds {
		each[i] = fmt.Sprintf("%s %.3f", k.label, k.p50)
	}
	return fmt.Sprintf("SQL %.3f in %.0f round trips (%s); Redis %.3f in %.0f round trips; the rest (Go, GC included) ≈ %.3f",
		sqlT, median(p.sqlTrips), strings.Join(each, "; "), redisT, median(p.redisTrips), of-sqlT-redisT)
}
