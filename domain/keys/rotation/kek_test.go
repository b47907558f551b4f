package rotation_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/domain/keys/rotation"
	"github.com/skyflow-oss/skyflow/domain/records"
	"github.com/skyflow-oss/skyflow/domain/vaults"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/outbox"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

const schemaApp = `{"name": "people", "tables": [{"name": "people", "columns": [
	{"name": "name", "data_type": "string", "token_type": "NON_DETERMINISTIC_UUID"},
	{"name": "age", "data_type": "integer"}]}],
  "policy": {"roles": {"app": {"tables": {"people": {"insert": true, "read": {"*": "PLAIN_TEXT"}}}}}}}`

var (
	admin = request.Principal{ID: "user:admin", Roles: []string{"admin"}}
	app   = request.Principal{ID: "sa:app", Roles: []string{"app"}}
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

// backend is a vaults Backend on a fresh database with k as its KEK;
// events go to a sink that accepts everything.
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
	return &vaults.Backend{Pool: pool, Vaults: vaults.NewStore(pool, k), Publisher: pub}
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

// A KEK rotation rewraps every stored keyset and nothing else: the
// records' bytes are the same, the vault opens with the new KEK alone,
// and while the rotation runs a ring of new and old opens both.
func TestKEKRotationRewrapsKeysetsWithoutTouchingRecords(t *testing.T) {
	old := localKEK(t)
	b := backend(t, old)
	v, err := vaults.NewManager(b, "/tests").Create(ctx(t), admin, []byte(schemaApp))
	if err != nil {
		t.Fatal(err)
	}
	name, _ := json.Marshal("Ada")
	age, _ := json.Marshal(36)
	ins, err := records.New(b, "/tests").Insert(ctx(t), app, v.ID, "people",
		records.InsertRequest{Records: []records.RecordFields{{Fields: records.Fields{"name": name, "age": age}}}})
	if err != nil {
		t.Fatal(err)
	}
	cells := func() string {
		var digest string
		if err := b.Pool.QueryRow(ctx(t), `SELECT md5(string_agg(c::text, ',' ORDER BY record_id, column_name)) FROM vault_cells c`).Scan(&digest); err != nil {
			t.Fatal(err)
		}
		return digest
	}
	before := cells()

	fresh := localKEK(t)
	ring := kek.NewRing(fresh, old)
	// During the rotation the functions run with the ring: old keysets open.
	if _, err := vaults.NewStore(b.Pool, ring).Load(ctx(t), v.ID, admin); err != nil {
		t.Fatalf("the ring does not open the old keyset: %v", err)
	}
	n, err := rotation.RewrapKeysets(ctx(t), b.Pool, ring, nil, false)
	if err != nil || n != 1 {
		t.Fatalf("rewrapped %d, %v", n, err)
	}
	if again, err := rotation.RewrapKeysets(ctx(t), b.Pool, ring, nil, false); err != nil || again != 0 {
		t.Fatalf("a second pass rewrapped %d, %v", again, err)
	}
	if after := cells(); after != before {
		t.Fatal("the KEK rotation changed the records")
	}
	var kekID string
	b.Pool.QueryRow(ctx(t), `SELECT kek_id FROM vault_keysets`).Scan(&kekID)
	if kekID != fresh.ID() {
		t.Fatalf("keyset under %q, want %q", kekID, fresh.ID())
	}
	// The new KEK alone now runs the vault; the old one no longer does.
	nb := &vaults.Backend{Pool: b.Pool, Vaults: vaults.NewStore(b.Pool, fresh), Publisher: b.Publisher}
	got, err := records.New(nb, "/tests").GetOne(ctx(t), app, v.ID, "people", ins.Records[0].SkyflowID, records.GetParams{Redaction: "PLAIN_TEXT"})
	if err != nil || string(got.Fields["name"]) != `"Ada"` {
		t.Fatalf("read with the new KEK: %+v, %v", got, err)
	}
	if _, err := vaults.NewStore(b.Pool, old).Load(ctx(t), v.ID, admin); status(err) != 500 {
		t.Fatalf("the old KEK still opens the vault: %v", err)
	}
}
