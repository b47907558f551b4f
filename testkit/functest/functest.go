// Package functest starts a vault or identity function the way the
// platform does, on real services, for its function_test.go: a fresh
// migrated database, a Redis key prefix, a local master key and a broker
// sink, passed to the function's Start as its configuration. It also
// makes the events the gateway sends and reads the replies. Only tests
// import it.
package functest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/domain/identity/credentials"
	"github.com/skyflow-oss/skyflow/domain/records"
	"github.com/skyflow-oss/skyflow/domain/vaults"
	"github.com/skyflow-oss/skyflow/eventing/catalog"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/outbox"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/runtime/sender"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

// TokenURI is the token endpoint the tests' identity functions use.
const TokenURI = "https://skyflow.test/v1/auth/sa/oauth/token" //nolint:gosec // G101: an endpoint's URL, not a credential

// Schema is a small vault: a customers table with a random token, a
// unique deterministic token and a format-preserving SSN. Role "owner" may
// do everything, "steward" manages.
const Schema = `{"name": "test", "tables": [{"name": "customers", "columns": [
	{"name": "name", "data_type": "string", "token_type": "NON_DETERMINISTIC_UUID"},
	{"name": "email", "data_type": "string", "token_type": "DETERMINISTIC_UUID", "unique": true, "validation": {"kind": "EMAIL"}},
	{"name": "ssn", "data_type": "string", "token_type": "DETERMINISTIC_FPT", "mask": "SHOW_LAST_4", "validation": {"kind": "SSN"}}]}],
  "policy": {"roles": {
	"owner": {"tables": {"*": {"insert": true, "update": true, "delete": true, "read": {"*": "PLAIN_TEXT"}}}, "tokenize": true, "detokenize": true},
	"steward": {"manage": true}}}}`

// Principals of the tests.
var (
	Admin = map[string]string{request.ExtPrincipal: "user:00000000-0000-4000-8000-000000000001", request.ExtRoles: "admin"}
	Owner = map[string]string{request.ExtPrincipal: "sa:owner", request.ExtRoles: "owner"}
)

// Env is what a function under test runs on.
type Env struct {
	T      *testing.T
	Config map[string]string
	KEK    kek.KEK
	// VaultKeys are the vaults' own keys (crypto-shredding), in a
	// directory of the test's.
	VaultKeys kek.VaultKeys
	Sink      *testenv.Sink // K_SINK: the events the function published
	ctx       context.Context
}

// New makes a fresh environment.
func New(t *testing.T) *Env {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	k, err := kek.NewLocal(key)
	if err != nil {
		t.Fatal(err)
	}
	vaultKeysDir := t.TempDir()
	vk, err := kek.NewDirVaultKeys(vaultKeysDir)
	if err != nil {
		t.Fatal(err)
	}
	sink := testenv.NewSink(t)
	dbURL := testenv.Database(t)
	watch, err := db.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(watch.Close)
	sink.WatchOutbox(watch)
	_, prefix := testenv.Redis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	// Handle runs as the host runs it for an event the gateway signed.
	ctx = sender.NewContext(ctx, sender.Gateway)
	return &Env{T: t, KEK: k, VaultKeys: vk, Sink: sink, ctx: ctx, Config: map[string]string{
		"SKYFLOW_VAULT_KEYS_DIR": vaultKeysDir,
		"DATABASE_URL":           dbURL,
		"REDIS_URL":              testenv.RedisURL(t),
		"REDIS_PREFIX":           prefix,
		"K_SINK":                 sink.URL,
		"SKYFLOW_MASTER_KEY":     base64.StdEncoding.EncodeToString(key),
		"SKYFLOW_TOKEN_URI":      TokenURI,
	}}
}

// Function is the lifecycle every function has.
type Function interface {
	Start(ctx context.Context, cfg map[string]string) error
	Stop(ctx context.Context) error
	Handle(ctx context.Context, e event.Event) (*event.Event, error)
}

// Start starts f on the environment and stops it when the test ends.
func (e *Env) Start(f Function) Function {
	e.T.Helper()
	if err := f.Start(e.ctx, e.Config); err != nil {
		e.T.Fatalf("Start: %v", err)
	}
	e.T.Cleanup(func() {
		if err := f.Stop(context.Background()); err != nil {
			e.T.Logf("Stop: %v", err)
		}
	})
	return f
}

// Backend is a vault backend on the environment, for setting up data.
func (e *Env) Backend() *vaults.Backend {
	e.T.Helper()
	pool, err := db.Open(e.ctx, e.Config["DATABASE_URL"])
	if err != nil {
		e.T.Fatal(err)
	}
	e.T.Cleanup(pool.Close)
	pub, err := outbox.NewPublisher(pool, e.Config["K_SINK"], outbox.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		e.T.Fatal(err)
	}
	e.T.Cleanup(func() { pub.Close(context.Background()) })
	return &vaults.Backend{Pool: pool, Vaults: vaults.NewStore(pool, e.KEK).WithVaultKeys(e.VaultKeys), Publisher: pub}
}

// Vault creates a vault of Schema and returns its id.
func (e *Env) Vault() string {
	e.T.Helper()
	v, err := vaults.NewManager(e.Backend(), "/skyflow/functions/vaults-create").Create(e.ctx, request.Principal{ID: Admin[request.ExtPrincipal], Roles: []string{"admin"}}, []byte(Schema))
	if err != nil {
		e.T.Fatalf("creating a vault: %v", err)
	}
	return v.ID
}

// Insert stores a customer in vault as owner and returns its id and tokens.
func (e *Env) Insert(vault string, fields map[string]string) records.Inserted {
	e.T.Helper()
	raw := records.Fields{}
	for k, v := range fields {
		raw[k], _ = json.Marshal(v)
	}
	res, err := records.New(e.Backend(), "/skyflow/functions/records-insert").Insert(e.ctx, request.Principal{ID: "sa:owner", Roles: []string{"owner"}}, vault, "customers",
		records.InsertRequest{Tokenization: true, Records: []records.RecordFields{{Fields: raw}}})
	if err != nil {
		e.T.Fatalf("inserting: %v", err)
	}
	return res.Records[0]
}

// Get reads a customer of vault as owner, in plain text.
func (e *Env) Get(vault, id string) *records.Record {
	e.T.Helper()
	r, err := records.New(e.Backend(), "/skyflow/functions/records-get-one").GetOne(e.ctx, request.Principal{ID: "sa:owner", Roles: []string{"owner"}}, vault, "customers", id, records.GetParams{})
	if err != nil {
		e.T.Fatalf("reading %s: %v", id, err)
	}
	return r
}

// Event is a request as the gateway sends it: data is the body (nil for
// none), ext the extensions.
func Event(typ string, data any, ext ...map[string]string) event.Event {
	ev := event.New()
	ev.SetID(uuid.NewString())
	ev.SetSource("/skyflow/functions/gateway")
	ev.SetType(typ)
	if data != nil {
		if err := ev.SetData(event.ApplicationJSON, data); err != nil {
			panic(err)
		}
	}
	for _, m := range ext {
		for k, v := range m {
			ev.SetExtension(k, v)
		}
	}
	return ev
}

// Call has f handle a request and decodes its reply into out; the reply
// must be of type replyType, answer the request's id and match the
// catalog.
func (e *Env) Call(f Function, ev event.Event, replyType string, out any) {
	e.T.Helper()
	reply, err := f.Handle(e.ctx, ev)
	if err != nil {
		e.T.Fatalf("Handle(%s): %v", ev.Type(), err)
	}
	if reply.Type() != replyType || reply.ID() != ev.ID() {
		e.T.Fatalf("reply %s %s, want %s %s", reply.Type(), reply.ID(), replyType, ev.ID())
	}
	if err := catalog.Validate(*reply); err != nil {
		e.T.Error(err)
	}
	if err := json.Unmarshal(reply.Data(), out); err != nil {
		e.T.Fatalf("reply data %s: %v", reply.Data(), err)
	}
}

// Refuses has f handle a request that must fail with status.
func (e *Env) Refuses(f Function, ev event.Event, status int) {
	e.T.Helper()
	_, err := f.Handle(e.ctx, ev)
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.HTTPCode != status {
		e.T.Errorf("Handle(%s) = %v, want a %d", ev.Type(), err, status)
	}
}

// Identity is the user service on the environment.
func (e *Env) Identity() *identity.Service {
	e.T.Helper()
	b, err := identity.Connect(e.ctx, e.Config)
	if err != nil {
		e.T.Fatal(err)
	}
	e.T.Cleanup(func() {
		if err := (&identity.Lifecycle{Backend: b}).Stop(context.Background()); err != nil {
			e.T.Logf("identity Stop: %v", err)
		}
	})
	return identity.NewService(b, "/skyflow/functions/users-register")
}

// Password is the password of the tests' user, ada@example.com.
const Password = "correct horse battery staple"

// UnverifiedUser registers ada@example.com and returns her id and a
// verification token.
func (e *Env) UnverifiedUser() (id, token string) {
	e.T.Helper()
	s := e.Identity()
	u, err := s.Register(e.ctx, identity.RegisterRequest{Email: "ada@example.com", Password: Password, DisplayName: "Ada"})
	if err != nil {
		e.T.Fatal(err)
	}
	tok, err := s.IssueVerification(e.ctx, u.ID)
	if err != nil {
		e.T.Fatal(err)
	}
	return u.ID, tok
}

// User registers and verifies ada@example.com and returns her principal.
func (e *Env) User() string {
	e.T.Helper()
	id, tok := e.UnverifiedUser()
	if _, err := e.Identity().VerifyEmail(e.ctx, identity.VerifyEmailRequest{Token: tok}); err != nil {
		e.T.Fatal(err)
	}
	return "user:" + id
}

// Session is a logged-in user's session.
type Session struct {
	identity.Session
	Principal string
}

// Login makes the user and logs her in.
func (e *Env) Login() Session {
	e.T.Helper()
	p := e.User()
	s, err := e.Identity().Login(e.ctx, identity.LoginRequest{Email: "ada@example.com", Password: Password}, "192.0.2.1")
	if err != nil {
		e.T.Fatal(err)
	}
	return Session{Session: *s, Principal: p}
}

// ServiceAccount makes a service account with role owner.
func (e *Env) ServiceAccount() credentials.Credentials {
	e.T.Helper()
	c, err := e.Identity().CreateServiceAccount(e.ctx, request.Principal{ID: Admin[request.ExtPrincipal], Roles: []string{"admin"}}, identity.ServiceAccountRequest{Name: "billing", Roles: []string{"owner"}})
	if err != nil {
		e.T.Fatal(err)
	}
	return *c
}

// APIKey makes a service account and an API key for it.
func (e *Env) APIKey() *identity.NewAPIKey {
	e.T.Helper()
	sa := e.ServiceAccount()
	k, err := e.Identity().CreateAPIKey(e.ctx, request.Principal{ID: Admin[request.ExtPrincipal], Roles: []string{"admin"}}, identity.APIKeyRequest{Name: "ci", ServiceAccountID: sa.ClientID})
	if err != nil {
		e.T.Fatal(err)
	}
	return k
}
