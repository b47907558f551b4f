package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/domain/crypto"
	"github.com/skyflow-oss/skyflow/domain/keys/rotation"
	"github.com/skyflow-oss/skyflow/domain/vaults"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

type storedCell struct {
	record, table, column string
	ciphertext            []byte
}

// backup copies the vault's cells as a database backup would.
func backup(t *testing.T, env *functest.Env, vault string) []storedCell {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), env.Config["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	rows, err := pool.Query(context.Background(), `SELECT record_id::text, table_name, column_name, ciphertext FROM vault_cells WHERE vault_id = $1::uuid`, vault)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedCell
	for rows.Next() {
		var c storedCell
		rows.Scan(&c.record, &c.table, &c.column, &c.ciphertext)
		out = append(out, c)
	}
	return out
}

// Destroying older key versions is refused while values are still under
// them; after the rewrap it succeeds, and a backup taken before the
// rotation no longer decrypts, while the live records still read.
func TestDestroyAfterTheRewrapOnly(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	vault := env.Vault()
	rec := env.Insert(vault, map[string]string{"name": "Ada", "email": "ada@example.com", "ssn": "123-45-6789"})
	old := backup(t, env, vault)
	admin := request.Principal{ID: functest.Admin[request.ExtPrincipal], Roles: []string{"admin"}}
	backend := env.Backend()
	if _, err := rotation.NewManager(backend, "/skyflow/functions/keys-rotate").RotateKeys(context.Background(), admin, vault); err != nil {
		t.Fatal(err)
	}
	call := functest.Event(RequestType, nil, functest.Admin, map[string]string{request.ExtVaultID: vault})
	env.Refuses(f, call, 409)

	if _, err := rotation.NewManager(backend, "/skyflow/functions/keys-rewrap").Rewrap(context.Background(), vault, 100, time.Now().Add(time.Minute), 0); err != nil {
		t.Fatal(err)
	}
	var res rotation.KeysView
	env.Call(f, functest.Event(RequestType, nil, functest.Admin, map[string]string{request.ExtVaultID: vault}), ReplyType, &res)
	if len(res.Destroyed) != 1 || res.KeysVersion != 3 {
		t.Fatalf("destroy answered %+v", res)
	}
	if id, _ := crypto.KeyID(old[0].ciphertext); id != res.Destroyed[0] {
		t.Fatalf("destroyed %v; the backup is under %d", res.Destroyed, id)
	}
	// The backup's ciphertext no longer opens with the vault's keys.
	v, err := vaults.NewStore(backend.Pool, env.KEK).WithVaultKeys(env.VaultKeys).Load(context.Background(), vault, admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range old {
		if _, err := v.Keys.Open(c.ciphertext, crypto.Cell{VaultID: vault, Table: c.table, Column: c.column, RecordID: c.record}); !errors.Is(err, crypto.ErrCellMismatch) {
			t.Fatalf("a cell of the backup still opens: %v", err)
		}
	}
	if got := env.Get(vault, rec.SkyflowID); string(got.Fields["ssn"]) != `"123-45-6789"` {
		t.Fatalf("the live record does not read: %+v", got)
	}
	if len(env.Sink.OfType(rotation.KeysDestroyedType)) != 1 {
		t.Fatal("no keys.destroyed event")
	}
	env.Refuses(f, functest.Event(RequestType, nil, functest.Admin, map[string]string{request.ExtVaultID: vault}), 409) // nothing left to destroy
	env.Refuses(f, functest.Event(RequestType, nil, functest.Owner, map[string]string{request.ExtVaultID: vault}), 403)
}
