package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/domain/crypto"
	"github.com/skyflow-oss/skyflow/domain/keys/rotation"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

// keyIDs are the key versions that sealed the vault's cells, per record.
func keyIDs(t *testing.T, env *functest.Env, vault string) map[string]uint32 {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), env.Config["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	rows, err := pool.Query(context.Background(), `SELECT record_id::text, ciphertext FROM vault_cells WHERE vault_id = $1::uuid`, vault)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]uint32{}
	for rows.Next() {
		var id string
		var ct []byte
		if err := rows.Scan(&id, &ct); err != nil {
			t.Fatal(err)
		}
		kid, ok := crypto.KeyID(ct)
		if !ok || (out[id] != 0 && out[id] != kid) {
			t.Fatalf("record %s: cells under several keys", id)
		}
		out[id] = kid
	}
	return out
}

// A rotation makes a new primary key: new writes use it at once, values
// written before still read, and the event names the new key.
func TestRotateMakesANewPrimaryKey(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	vault := env.Vault()
	before := env.Insert(vault, map[string]string{"name": "Ada", "email": "ada@example.com", "ssn": "123-45-6789"})

	var res rotation.KeysView
	env.Call(f, functest.Event(RequestType, nil, functest.Admin, map[string]string{request.ExtVaultID: vault}), ReplyType, &res)
	if res.VaultID != vault || res.KeysVersion != 2 || res.PrimaryKeyID == 0 || res.RotatedAt.IsZero() {
		t.Fatalf("rotate answered %+v", res)
	}
	after := env.Insert(vault, map[string]string{"name": "Grace", "email": "grace@example.com", "ssn": "234-56-7890"})
	ids := keyIDs(t, env, vault)
	if ids[after.SkyflowID] != res.PrimaryKeyID || ids[before.SkyflowID] == res.PrimaryKeyID || ids[before.SkyflowID] == 0 {
		t.Fatalf("key ids %v, new primary %d", ids, res.PrimaryKeyID)
	}
	// Both still read (and the deterministic token of the old value is unchanged).
	for _, r := range []string{before.SkyflowID, after.SkyflowID} {
		got := env.Get(vault, r)
		if len(got.Fields) == 0 {
			t.Fatalf("record %s does not read after the rotation", r)
		}
	}
	if again := env.Insert(vault, map[string]string{"name": "Ada", "email": "ada2@example.com", "ssn": "123-45-6789"}); again.Tokens["ssn"] != before.Tokens["ssn"] {
		t.Error("a deterministic token changed with the rotation of the values key")
	}
	var second rotation.KeysView
	env.Call(f, functest.Event(RequestType, nil, functest.Admin, map[string]string{request.ExtVaultID: vault}), ReplyType, &second)
	if second.KeysVersion != 3 || second.PrimaryKeyID == res.PrimaryKeyID {
		t.Fatalf("second rotation %+v", second)
	}
	events := env.Sink.OfType(rotation.KeyRotatedType)
	if len(events) != 2 || !bytes.Contains(events[0].Data(), []byte(`"primary_key_id"`)) || request.Extension(events[0], request.ExtVaultID) != vault {
		t.Fatalf("key.rotated events: %v", events)
	}
}

// Only principals who may manage the vault rotate its keys; a vault they
// cannot see is not found.
func TestOnlyManagersRotate(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	vault := env.Vault()
	env.Refuses(f, functest.Event(RequestType, nil, functest.Owner, map[string]string{request.ExtVaultID: vault}), 403)
	env.Refuses(f, functest.Event(RequestType, nil, map[string]string{request.ExtPrincipal: "sa:stranger", request.ExtRoles: "nobody"}, map[string]string{request.ExtVaultID: vault}), 404)
	env.Refuses(f, functest.Event(RequestType, nil, functest.Admin, map[string]string{request.ExtVaultID: "not-a-vault"}), 404)
	env.Refuses(f, functest.Event(RequestType, nil), 401)
}
