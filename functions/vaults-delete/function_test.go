package main

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/domain/crypto"
	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/domain/shredding"
	"github.com/skyflow-oss/skyflow/domain/vaults"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

// backup is what a database backup holds of a vault: its wrapped keysets
// and its cells' ciphertext.
type backup struct {
	values, index []byte
	kekID         string
	cells         []cell
}

type cell struct {
	record, table, column string
	ciphertext            []byte
}

func takeBackup(t *testing.T, pool *pgxpool.Pool, vault string) backup {
	t.Helper()
	var b backup
	var layered bool
	if err := pool.QueryRow(context.Background(), `SELECT values_keyset, index_keyset, kek_id, vault_key FROM vault_keysets WHERE vault_id = $1::uuid`, vault).
		Scan(&b.values, &b.index, &b.kekID, &layered); err != nil {
		t.Fatal(err)
	}
	if !layered {
		t.Fatal("the vault's keysets are not wrapped by its own key")
	}
	rows, err := pool.Query(context.Background(), `SELECT record_id::text, table_name, column_name, ciphertext FROM vault_cells WHERE vault_id = $1::uuid`, vault)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var c cell
		if err := rows.Scan(&c.record, &c.table, &c.column, &c.ciphertext); err != nil {
			t.Fatal(err)
		}
		b.cells = append(b.cells, c)
	}
	if len(b.cells) == 0 {
		t.Fatal("the backup holds no cells")
	}
	return b
}

// restore tries to read a backup as an attacker holding it and the KEK
// (and the vault key store as it is now) would: unwrap the keysets, open
// the cells.
func restore(env *functest.Env, vault string, b backup) error {
	vk, err := env.VaultKeys.For(context.Background(), vault, false)
	if err != nil {
		return err
	}
	w := crypto.Wrapped{KEKID: b.kekID}
	if w.Values, err = vk.Decrypt(b.values, []byte("skyflow/vault-key/"+vault+"/values")); err != nil {
		return err
	}
	if w.Index, err = vk.Decrypt(b.index, []byte("skyflow/vault-key/"+vault+"/index")); err != nil {
		return err
	}
	keys, err := crypto.Unwrap(env.KEK, vault, w)
	if err != nil {
		return err
	}
	for _, c := range b.cells {
		if _, err := keys.Open(c.ciphertext, crypto.Cell{VaultID: vault, Table: c.table, Column: c.column, RecordID: c.record}); err != nil {
			return err
		}
	}
	return nil
}

// Deleting a vault deletes its rows and destroys its own key: a backup
// taken before, which opened with the KEK and the vault key until then, no
// longer opens. The deletion and the destruction are announced.
func TestDeletingAVaultShredsItsBackups(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	vault, other := env.Vault(), env.Vault()
	env.Insert(vault, map[string]string{"name": "Ada", "email": "ada@example.com", "ssn": "123-45-6789"})
	rec := env.Insert(other, map[string]string{"name": "Bob", "email": "bob@example.com", "ssn": "234-56-7890"})
	pool, err := pgxpool.New(context.Background(), env.Config["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	b := takeBackup(t, pool, vault)
	if err := restore(env, vault, b); err != nil {
		t.Fatalf("the backup does not open before the deletion, so the test proves nothing: %v", err)
	}

	env.Refuses(f, functest.Event(RequestType, nil, functest.Owner, map[string]string{request.ExtVaultID: vault}), 403)
	var res shredding.Deleted
	env.Call(f, functest.Event(RequestType, nil, functest.Admin, map[string]string{request.ExtVaultID: vault}), ReplyType, &res)
	if !res.Deleted || res.CryptoShredding != shredding.ShredDone {
		t.Fatalf("reply %+v", res)
	}
	if err := restore(env, vault, b); !errors.Is(err, kek.ErrVaultKeyDestroyed) {
		t.Fatalf("the backup after the deletion: %v, want the vault key destroyed", err)
	}
	var left int
	if err := pool.QueryRow(context.Background(), `
		SELECT (SELECT count(*) FROM vaults WHERE id = $1::uuid) + (SELECT count(*) FROM vault_cells WHERE vault_id = $1::uuid)
		     + (SELECT count(*) FROM vault_keysets WHERE vault_id = $1::uuid) + (SELECT count(*) FROM vault_tokens WHERE vault_id = $1::uuid)`, vault).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d rows of the deleted vault left (%v)", left, err)
	}
	var destroyedAt *string
	if err := pool.QueryRow(context.Background(), `SELECT destroyed_at::text FROM vault_shreds WHERE vault_id = $1::uuid`, vault).Scan(&destroyedAt); err != nil || destroyedAt == nil {
		t.Fatalf("the shredding record: %v, %v", destroyedAt, err)
	}
	if len(env.Sink.OfType(shredding.VaultDeletedType)) != 1 || len(env.Sink.OfType(shredding.VaultShreddedType)) != 1 {
		t.Fatal("the deletion and the shredding were not both announced")
	}
	env.Refuses(f, functest.Event(RequestType, nil, functest.Admin, map[string]string{request.ExtVaultID: vault}), 404)
	// The other vault is untouched.
	if got := env.Get(other, rec.SkyflowID); string(got.Fields["name"]) != `"Bob"` {
		t.Fatalf("the other vault reads %+v", got.Fields)
	}
}

// A key whose destruction failed after the deletion committed is pending,
// and the next sweep (FinishShreds) destroys it.
func TestAPendingShredIsFinishedLater(t *testing.T) {
	env := functest.New(t)
	vault := env.Vault()
	env.Insert(vault, map[string]string{"name": "Ada"})
	backend := env.Backend()
	broken := *backend
	broken.Vaults = vaults.NewStore(backend.Pool, env.KEK).WithVaultKeys(failingDestroy{env.VaultKeys})
	admin := request.Principal{ID: functest.Admin[request.ExtPrincipal], Roles: []string{"admin"}}
	res, err := shredding.New(&broken, Source).DeleteVault(context.Background(), admin, vault)
	if err != nil || res.CryptoShredding != shredding.ShredPending {
		t.Fatalf("deletion with a failing key store: %+v, %v", res, err)
	}
	if _, err := env.VaultKeys.For(context.Background(), vault, false); err != nil {
		t.Fatalf("the key is gone already: %v", err)
	}
	n, err := shredding.New(backend, "/skyflow/functions/keys-rotate-due").FinishShreds(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("FinishShreds: %d, %v", n, err)
	}
	if _, err := env.VaultKeys.For(context.Background(), vault, false); !errors.Is(err, kek.ErrVaultKeyDestroyed) {
		t.Fatalf("after the sweep the key: %v", err)
	}
	if n, _ := shredding.New(backend, "/skyflow/functions/keys-rotate-due").FinishShreds(context.Background()); n != 0 {
		t.Fatalf("a second sweep destroyed %d", n)
	}
}

type failingDestroy struct{ kek.VaultKeys }

func (failingDestroy) Destroy(context.Context, string) error {
	return errors.New("the key store is down")
}
