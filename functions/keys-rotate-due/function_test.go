package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/domain/keys/rotation"
	"github.com/skyflow-oss/skyflow/domain/records"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/runtime/sender"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

var admin = request.Principal{ID: functest.Admin[request.ExtPrincipal], Roles: []string{"admin"}}

func ping(t *testing.T, f *Function) {
	t.Helper()
	if _, err := f.Handle(sender.NewContext(context.Background(), sender.Ping), functest.Event(PingType, map[string]string{"task": "keys-rotate-due"})); err != nil {
		t.Fatal(err)
	}
}

func keys(t *testing.T, env *functest.Env, vault string) *rotation.KeysStatus {
	t.Helper()
	st, err := rotation.NewManager(env.Backend(), "/skyflow/functions/keys-get").Keys(context.Background(), admin, vault)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// rotations are the reasons of the key.rotated events published for vault.
func rotations(env *functest.Env, vault string) []string {
	var out []string
	for _, e := range env.Sink.OfType(rotation.KeyRotatedType) {
		var d struct {
			VaultID string `json:"vault_id"`
			Reason  string `json:"reason"`
		}
		if json.Unmarshal(e.Data(), &d) == nil && d.VaultID == vault {
			out = append(out, d.Reason)
		}
	}
	return out
}

// A key that sealed its limit of values is rotated, with reason usage; the
// count comes from the processes that sealed (flushed to the table), and
// the rotation retires the old version.
func TestRotatesAKeyAtItsEncryptionLimit(t *testing.T) {
	env := functest.New(t)
	env.Config["SKYFLOW_KEY_MAX_ENCRYPTIONS"] = "10"
	f := env.Start(New()).(*Function)
	vault := env.Vault()
	backend := env.Backend()
	svc := records.New(backend, "/skyflow/functions/records-insert")
	owner := request.Principal{ID: "sa:owner", Roles: []string{"owner"}}
	for i := range 3 { // 9 values: under the limit
		if _, err := svc.Insert(context.Background(), owner, vault, "customers", records.InsertRequest{Records: []records.RecordFields{{Fields: records.Fields{
			"name": []byte(`"n"`), "email": []byte(fmt.Sprintf(`"c%d@example.com"`, i)), "ssn": []byte(`"123-45-6789"`)}}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := backend.Vaults.Keyring().FlushUsage(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := keys(t, env, vault)
	if len(before.Versions) != 1 || before.Versions[0].Encryptions != 9 || before.Versions[0].KeyID != before.PrimaryKeyID || before.Versions[0].RetiredAt != nil {
		t.Fatalf("after 9 values: %+v", before.Versions)
	}
	ping(t, f)
	if got := rotations(env, vault); len(got) != 0 {
		t.Fatalf("rotated under the limit: %v", got)
	}
	if _, err := svc.Insert(context.Background(), owner, vault, "customers", records.InsertRequest{Records: []records.RecordFields{{Fields: records.Fields{"name": []byte(`"n"`)}}}}); err != nil {
		t.Fatal(err)
	}
	if err := backend.Vaults.Keyring().FlushUsage(context.Background()); err != nil {
		t.Fatal(err)
	}
	ping(t, f)
	if got := rotations(env, vault); len(got) != 1 || got[0] != rotation.RotationUsage {
		t.Fatalf("rotations at the limit: %v, want one for usage", got)
	}
	after := keys(t, env, vault)
	if after.PrimaryKeyID == before.PrimaryKeyID || len(after.Versions) != 2 || after.Versions[0].RetiredAt == nil ||
		after.Versions[1].KeyID != after.PrimaryKeyID || after.Versions[1].RetiredAt != nil || after.Versions[1].Encryptions != 0 {
		t.Fatalf("after the rotation: %+v", after.Versions)
	}
	ping(t, f) // the new key has sealed nothing: no second rotation
	if got := rotations(env, vault); len(got) != 1 {
		t.Fatalf("rotations after a second sweep: %v", got)
	}
}

// A primary older than the vault's rotation period is rotated, with reason
// age; period 0 turns that off; sweeps at once rotate a vault once.
func TestRotatesAKeyAtItsRotationPeriod(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New()).(*Function)
	m := rotation.NewManager(env.Backend(), "/skyflow/functions/keys-policy-update")
	pool, err := pgxpool.New(context.Background(), env.Config["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	age := func(vault string, days int) {
		t.Helper()
		if _, err := pool.Exec(context.Background(), `UPDATE vault_key_versions SET created_at = now() - make_interval(days => $2) WHERE vault_id = $1::uuid AND retired_at IS NULL`, vault, days); err != nil {
			t.Fatal(err)
		}
	}
	period := func(vault string, days int) {
		t.Helper()
		if _, err := m.SetKeyPolicy(context.Background(), admin, vault, rotation.KeyPolicy{RotationPeriodDays: &days}); err != nil {
			t.Fatal(err)
		}
	}
	young, old, off := env.Vault(), env.Vault(), env.Vault()
	if st := keys(t, env, young); st.RotationPeriodDays != 90 {
		t.Fatalf("default rotation period: %d days", st.RotationPeriodDays)
	}
	period(old, 30)
	period(off, 0)
	age(young, 89)
	age(old, 31)
	age(off, 4000)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { ping(t, f) })
	}
	wg.Wait()
	if got := rotations(env, old); len(got) != 1 || got[0] != rotation.RotationAge {
		t.Errorf("vault past its period: rotations %v, want one for age", got)
	}
	if got := rotations(env, young); len(got) != 0 {
		t.Errorf("vault within its period: rotations %v", got)
	}
	if got := rotations(env, off); len(got) != 0 {
		t.Errorf("vault with period 0: rotations %v", got)
	}
	if st := keys(t, env, old); len(st.KeyIDs) != 2 || st.RotationPeriodDays != 30 {
		t.Errorf("rotated vault's keys: %+v", st)
	}
}

// Only the ping source may start a sweep.
func TestSweepsOnlyOnThePing(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New()).(*Function)
	for _, s := range []string{sender.Gateway, sender.Broker} {
		if _, err := f.Handle(sender.NewContext(context.Background(), s), functest.Event(PingType, nil)); err == nil {
			t.Errorf("a ping from %s was accepted", s)
		}
	}
}
