package records_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/domain/records"
	"github.com/skyflow-oss/skyflow/domain/vaults"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/outbox"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

// testSchema has a column of every data type and every token type, a
// unique column, validations, masks and a column group shared by two
// tables.
const testSchema = `{
  "name": "customers vault",
  "tables": [
    {"name": "customers", "columns": [
      {"name": "name",        "data_type": "string",   "token_type": "NON_DETERMINISTIC_UUID", "redaction": "MASKED", "mask": "SHOW_FIRST_1_LAST_0"},
      {"name": "email",       "data_type": "string",   "token_type": "DETERMINISTIC_UUID", "unique": true, "mask": "EMAIL", "validation": {"kind": "EMAIL"}},
      {"name": "ssn",         "data_type": "string",   "token_type": "DETERMINISTIC_FPT", "mask": "SHOW_LAST_4", "validation": {"kind": "SSN"}},
      {"name": "card_number", "data_type": "string",   "token_type": "DETERMINISTIC_PRESERVE_LEFT_6_RIGHT_4", "mask": "SHOW_LAST_4", "validation": {"kind": "CARD_NUMBER"}, "column_group": "cards"},
      {"name": "phone",       "data_type": "string",   "token_type": "NON_DETERMINISTIC_FPT", "mask": "SHOW_LAST_4", "validation": {"kind": "PHONE_E164"}},
      {"name": "age",         "data_type": "integer",  "token_type": "DETERMINISTIC_UUID"},
      {"name": "score",       "data_type": "float",    "token_type": "NON_DETERMINISTIC_UUID"},
      {"name": "active",      "data_type": "bool",     "token_type": "NON_DETERMINISTIC_UUID"},
      {"name": "birthday",    "data_type": "date",     "token_type": "DETERMINISTIC_UUID"},
      {"name": "seen_at",     "data_type": "datetime", "token_type": "NON_DETERMINISTIC_UUID"},
      {"name": "profile",     "data_type": "json",     "token_type": "NON_DETERMINISTIC_UUID"},
      {"name": "tags",        "data_type": "array",    "token_type": "NON_DETERMINISTIC_UUID"},
      {"name": "notes",       "data_type": "string"}
    ]},
    {"name": "payments", "columns": [
      {"name": "card", "data_type": "string", "token_type": "DETERMINISTIC_PRESERVE_LEFT_6_RIGHT_4", "validation": {"kind": "CARD_NUMBER"}, "column_group": "cards"},
      {"name": "amount", "data_type": "float"}
    ]}
  ],
  "policy": {"roles": {
    "owner":   {"tables": {"*": {"insert": true, "update": true, "delete": true, "read": {"*": "PLAIN_TEXT"}}}, "tokenize": true, "detokenize": true},
    "writer":  {"tables": {"customers": {"insert": true, "update": true}}},
    "support": {"tables": {"customers": {"read": {"*": "DEFAULT", "name": "PLAIN_TEXT"}}}, "detokenize": true},
    "auditor": {"tables": {"customers": {"read": {"*": "REDACTED"}}}},
    "steward": {"manage": true}
  }}
}`

// Principals of the tests, one per role.
var (
	admin   = request.Principal{ID: "user:admin", Roles: []string{"admin"}}
	owner   = request.Principal{ID: "sa:owner", Roles: []string{"owner"}}
	writer  = request.Principal{ID: "sa:writer", Roles: []string{"writer"}}
	support = request.Principal{ID: "user:support", Roles: []string{"support"}}
	auditor = request.Principal{ID: "user:auditor", Roles: []string{"auditor"}}
	steward = request.Principal{ID: "user:steward", Roles: []string{"steward"}}
	nobody  = request.Principal{ID: "user:nobody", Roles: []string{"stranger"}}
)

type fixture struct {
	t       *testing.T
	keys    kek.VaultKeys
	ctx     context.Context
	pool    *pgxpool.Pool
	backend *vaults.Backend
	svc     *records.Service
	sink    *testenv.Sink
	vault   string
}

// setup makes a fresh database, a backend on it with a local master key,
// and a vault of testSchema.
func setup(t *testing.T) *fixture {
	t.Helper()
	pool := testenv.Pool(t)
	key := make([]byte, 32)
	rand.Read(key)
	k, err := kek.NewLocal(key)
	if err != nil {
		t.Fatal(err)
	}
	s := testenv.NewSink(t)
	pub, err := outbox.NewPublisher(pool, s.URL, outbox.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close(context.Background()) })
	s.WatchOutbox(pool)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	vk, err := kek.NewDirVaultKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := &vaults.Backend{Pool: pool, Vaults: vaults.NewStore(pool, k).WithVaultKeys(vk), Publisher: pub}
	f := &fixture{t: t, keys: vk, ctx: ctx, pool: pool, backend: b, svc: records.New(b, "/tests/records"), sink: s}
	f.vault = f.newVault(testSchema)
	return f
}

func (f *fixture) newVault(schemaJSON string) string {
	f.t.Helper()
	v, err := vaults.NewManager(f.backend, "/tests/vaults").Create(f.ctx, admin, []byte(schemaJSON))
	if err != nil {
		f.t.Fatalf("creating the vault: %v", err)
	}
	return v.ID
}

// insert stores one record as owner and returns its id and tokens.
func (f *fixture) insert(table string, fields map[string]any) records.Inserted {
	f.t.Helper()
	res, err := f.svc.Insert(f.ctx, owner, f.vault, table, records.InsertRequest{Records: []records.RecordFields{{Fields: raw(f.t, fields)}}, Tokenization: true})
	if err != nil {
		f.t.Fatalf("insert: %v", err)
	}
	return res.Records[0]
}

func (f *fixture) count(sql string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.pool.QueryRow(f.ctx, sql, args...).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// raw encodes each field's value as JSON, as a client sends it.
func raw(t testing.TB, fields map[string]any) records.Fields {
	out := records.Fields{}
	for k, v := range fields {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = b
	}
	return out
}

// status is the HTTP status of an API error, 0 for nil and -1 for any
// other error.
func status(err error) int {
	if err == nil {
		return 0
	}
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return ae.HTTPCode
	}
	return -1
}
