package vaults_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/domain/crypto/kek/transitfake"
	"github.com/skyflow-oss/skyflow/domain/records"
	"github.com/skyflow-oss/skyflow/domain/vaults"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/config"
	"github.com/skyflow-oss/skyflow/runtime/outbox"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

const schemaV1 = `{"name": "people", "tables": [{"name": "people", "columns": [
	{"name": "name", "data_type": "string", "token_type": "NON_DETERMINISTIC_UUID"},
	{"name": "age", "data_type": "integer"}]}],
  "policy": {"roles": {"steward": {"manage": true}, "reader": {"tables": {"people": {"read": {"*": "PLAIN_TEXT"}}}}}}}`

var (
	admin   = request.Principal{ID: "user:admin", Roles: []string{"admin"}}
	steward = request.Principal{ID: "user:steward", Roles: []string{"steward"}}
	reader  = request.Principal{ID: "user:reader", Roles: []string{"reader"}}
	writer  = request.Principal{ID: "user:writer", Roles: []string{"writer"}}
)

func localKEK(t *testing.T) kek.KEK {
	key := make([]byte, 32)
	rand.Read(key)
	k, err := kek.NewLocal(key)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// backend is a Backend on a fresh database with k as its KEK; events go
// to a sink that accepts everything.
func backend(t *testing.T, k kek.KEK) *vaults.Backend {
	t.Helper()
	pool := testenv.Pool(t)
	sink := testenv.NewSink(t)
	pub, err := outbox.NewPublisher(pool, sink.URL, outbox.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close(context.Background()) })
	sink.WatchOutbox(pool)
	b := &vaults.Backend{Pool: pool, Vaults: vaults.NewStore(pool, k), Publisher: pub}
	keks[b] = k
	return b
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func status(err error) int {
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return ae.HTTPCode
	}
	if err == nil {
		return 0
	}
	return -1
}

func TestOnlyAdministratorsCreateVaultsAndOnlyManagersSeeThem(t *testing.T) {
	b := backend(t, localKEK(t))
	m := vaults.NewManager(b, "/tests")
	if _, err := m.Create(ctx(t), steward, []byte(schemaV1)); status(err) != 403 {
		t.Errorf("a steward created a vault: %v", err)
	}
	v, err := m.Create(ctx(t), admin, []byte(schemaV1))
	if err != nil {
		t.Fatal(err)
	}
	if len(v.ID) != 32 || v.SchemaVersion != 1 || v.PolicyVersion != 1 || v.Name != "people" || v.CreatedBy != admin.ID {
		t.Errorf("created %+v", v)
	}
	for _, c := range []struct {
		p    request.Principal
		want int
	}{{admin, 0}, {steward, 0}, {reader, 403}, {writer, 404}} {
		if _, err := m.Get(ctx(t), c.p, v.ID); status(err) != c.want {
			t.Errorf("get as %s: %v, want %d", c.p.ID, err, c.want)
		}
	}
	for body, says := range map[string]string{
		`{"name": "x", "tables": []}`: "table",
		`{"name": "x", "tables": [{"name": "t", "columns": [{"name": "c", "data_type": "string"}]}], "policy": {"roles": {"r": {"tables": {"nope": {"insert": true}}}}}}`: `"nope"`,
		`{"name": "x", "tables": [{"name": "t", "columns": [{"name": "c", "data_type": "strin"}]}]}`:                                                                      "data_type",
		`not json`: "JSON",
	} {
		if _, err := m.Create(ctx(t), admin, []byte(body)); status(err) != 400 || !strings.Contains(err.Error(), says) {
			t.Errorf("create %s: %v, want a 400 saying %s", body, err, says)
		}
	}
	if n := count(t, b, `SELECT count(*) FROM vaults`); n != 1 {
		t.Errorf("%d vaults after refused creations, want 1", n)
	}
}

func TestSchemaAndPolicyChangesAreVersionedAndChecked(t *testing.T) {
	b := backend(t, localKEK(t))
	m := vaults.NewManager(b, "/tests")
	v, err := m.Create(ctx(t), admin, []byte(schemaV1))
	if err != nil {
		t.Fatal(err)
	}
	addColumn := `{"version": 1, "name": "people", "tables": [{"name": "people", "columns": [
		{"name": "name", "data_type": "string", "token_type": "NON_DETERMINISTIC_UUID"},
		{"name": "age", "data_type": "integer"},
		{"name": "email", "data_type": "string", "validation": {"kind": "EMAIL"}}]}]}`
	v2, err := m.UpdateSchema(ctx(t), steward, v.ID, []byte(addColumn))
	if err != nil || v2.SchemaVersion != 2 || len(v2.Tables[0].Columns) != 3 {
		t.Fatalf("adding a column: %+v, %v", v2, err)
	}
	if _, err := m.UpdateSchema(ctx(t), steward, v.ID, []byte(addColumn)); status(err) != 409 {
		t.Errorf("a change based on version 1 after version 2: %v, want 409", err)
	}
	retype := strings.Replace(strings.Replace(addColumn, `"version": 1`, `"version": 2`, 1), `"name": "age", "data_type": "integer"`, `"name": "age", "data_type": "string"`, 1)
	if _, err := m.UpdateSchema(ctx(t), steward, v.ID, []byte(retype)); status(err) != 400 || !strings.Contains(err.Error(), "age") {
		t.Errorf("changing a column's type: %v, want a 400 naming the column", err)
	}
	drop := `{"version": 2, "name": "people", "tables": [{"name": "people", "columns": [{"name": "name", "data_type": "string", "token_type": "NON_DETERMINISTIC_UUID"}]}]}`
	if _, err := m.UpdateSchema(ctx(t), steward, v.ID, []byte(drop)); status(err) != 400 {
		t.Errorf("dropping a column: %v, want 400", err)
	}
	if _, err := m.UpdateSchema(ctx(t), reader, v.ID, []byte(addColumn)); status(err) != 403 {
		t.Errorf("a reader changed the schema: %v", err)
	}

	// A policy change takes effect at once, in this process and in any
	// other (a second store on the same database).
	other := vaults.NewStore(b.Pool, mustKEKOf(t, b))
	if _, err := other.Load(ctx(t), v.ID, writer); status(err) != 404 {
		t.Fatalf("writer before the policy names it: %v, want 404", err)
	}
	pol := `{"version": 1, "roles": {"steward": {"manage": true}, "writer": {"tables": {"people": {"insert": true}}}}}`
	p2, err := m.UpdatePolicy(ctx(t), steward, v.ID, []byte(pol))
	if err != nil || p2.PolicyVersion != 2 || p2.SchemaVersion != 2 {
		t.Fatalf("policy update: %+v, %v", p2, err)
	}
	if _, err := other.Load(ctx(t), v.ID, writer); err != nil {
		t.Errorf("writer after the policy names it, seen by another store: %v", err)
	}
	if _, err := other.Load(ctx(t), v.ID, reader); status(err) != 404 {
		t.Errorf("reader after the policy dropped it: %v, want 404", err)
	}
	if _, err := m.UpdatePolicy(ctx(t), steward, v.ID, []byte(`{"version": 2, "roles": {"x": {"tables": {"people": {"read": {"nope": "PLAIN_TEXT"}}}}}}`)); status(err) != 400 {
		t.Errorf("a policy naming a missing column: %v, want 400", err)
	}
	if n := count(t, b, `SELECT count(*) FROM vault_schemas`) + count(t, b, `SELECT count(*) FROM vault_policies`); n != 4 {
		t.Errorf("%d schema and policy versions stored, want 4 (each version kept)", n)
	}
}

// keks remembers each test backend's KEK, for a second store on it.
var keks = map[*vaults.Backend]kek.KEK{}

func mustKEKOf(t *testing.T, b *vaults.Backend) kek.KEK {
	if k, ok := keks[b]; ok {
		return k
	}
	t.Fatal("no KEK recorded for the backend")
	return nil
}

func TestKeysetsOpenOnlyWithTheirKEK(t *testing.T) {
	k := localKEK(t)
	b := backend(t, k)
	v, err := vaults.NewManager(b, "/tests").Create(ctx(t), admin, []byte(schemaV1))
	if err != nil {
		t.Fatal(err)
	}
	var wrapped []byte
	var kekID string
	b.Pool.QueryRow(ctx(t), `SELECT values_keyset, kek_id FROM vault_keysets`).Scan(&wrapped, &kekID)
	if kekID != k.ID() || len(wrapped) < 32 {
		t.Errorf("stored keyset: %d bytes under %q, want it wrapped by %q", len(wrapped), kekID, k.ID())
	}
	if _, err := vaults.NewStore(b.Pool, localKEK(t)).Load(ctx(t), v.ID, admin); status(err) != 500 {
		t.Errorf("loading with another KEK: %v, want a 500", err)
	}
}

// TestTransitKEKRunsTheVault runs a vault whose keysets are wrapped by
// HashiCorp Vault Transit: here a FAKE of its HTTP API (no Vault server
// can run on these machines), reached over real HTTP by the real client.
func TestTransitKEKRunsTheVault(t *testing.T) {
	fake := httptest.NewServer(transitfake.New("test-token"))
	t.Cleanup(fake.Close)
	k, err := kek.FromEnv(config.FromMap(map[string]string{"VAULT_ADDR": fake.URL, "VAULT_TOKEN": "test-token", "VAULT_TRANSIT_KEY": "skyflow-kek"}))
	if err != nil {
		t.Fatal(err)
	}
	b := backend(t, k)
	v, err := vaults.NewManager(b, "/tests").Create(ctx(t), admin, []byte(schemaV1))
	if err != nil {
		t.Fatal(err)
	}
	owner := request.Principal{ID: "sa:owner", Roles: []string{"admin"}}
	if _, err := vaults.NewManager(b, "/tests").UpdatePolicy(ctx(t), owner, v.ID, []byte(`{"version": 1, "roles": {"app": {"tables": {"*": {"insert": true, "read": {"*": "PLAIN_TEXT"}}}, "detokenize": true}}}`)); err != nil {
		t.Fatal(err)
	}
	app := request.Principal{ID: "sa:app", Roles: []string{"app"}}
	// A fresh store (a new process) unwraps the keys through Transit.
	b.Vaults = vaults.NewStore(b.Pool, k)
	svc := records.New(b, "/tests")
	res, err := svc.Insert(ctx(t), app, v.ID, "people", records.InsertRequest{Tokenization: true, Records: []records.RecordFields{{Fields: records.Fields{"name": []byte(`"Ada"`)}}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := svc.Detokenize(ctx(t), app, v.ID, records.DetokenizeRequest{Parameters: []records.DetokenizeParameter{{Token: res.Records[0].Tokens["name"]}}})
	if err != nil || got.Records[0].Value != "Ada" {
		t.Errorf("detokenize through a Transit-wrapped vault: %+v, %v", got, err)
	}
	var kekID string
	b.Pool.QueryRow(ctx(t), `SELECT kek_id FROM vault_keysets`).Scan(&kekID)
	if kekID != "transit:skyflow-kek" {
		t.Errorf("kek_id %q, want transit:skyflow-kek", kekID)
	}
	// With the wrong token the keys cannot be unwrapped: 500, no data.
	bad, _ := kek.FromEnv(config.FromMap(map[string]string{"VAULT_ADDR": fake.URL, "VAULT_TOKEN": "wrong"}))
	if _, err := vaults.NewStore(b.Pool, bad).Load(ctx(t), v.ID, app); status(err) != 500 {
		t.Errorf("loading with a refused Transit token: %v, want 500", err)
	}
}

func count(t *testing.T, b *vaults.Backend, sql string) int {
	var n int
	if err := b.Pool.QueryRow(ctx(t), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
