package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/shared/apierr"
	"github.com/skyflow-oss/skyflow/shared/crypto"
	"github.com/skyflow-oss/skyflow/shared/functest"
	"github.com/skyflow-oss/skyflow/shared/records"
	"github.com/skyflow-oss/skyflow/shared/request"
	"github.com/skyflow-oss/skyflow/shared/sender"
	"github.com/skyflow-oss/skyflow/shared/vaults"
)

var admin = request.Principal{ID: functest.Admin[request.ExtPrincipal], Roles: []string{"admin"}}

// setup makes a vault with n customers (3 cells each) and a rewrap
// function with batch cells a transaction and no settle period.
func setup(t *testing.T, n, batch int) (*functest.Env, *Function, string, []string) {
	env := functest.New(t)
	env.Config["SKYFLOW_REWRAP_SETTLE"] = "0s"
	env.Config["SKYFLOW_REWRAP_BATCH"] = fmt.Sprint(batch)
	f := env.Start(New()).(*Function)
	vault := env.Vault()
	var ids []string
	for i := range n {
		r := env.Insert(vault, map[string]string{"name": fmt.Sprintf("n%d", i), "email": fmt.Sprintf("c%d@example.com", i), "ssn": fmt.Sprintf("123-45-%04d", 1000+i)})
		ids = append(ids, r.SkyflowID)
	}
	return env, f, vault, ids
}

// keyCounts counts the vault's cells per data key id.
func keyCounts(t *testing.T, env *functest.Env, vault string) map[uint32]int {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), env.Config["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	rows, err := pool.Query(context.Background(), `SELECT ciphertext FROM vault_cells WHERE vault_id = $1::uuid`, vault)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[uint32]int{}
	for rows.Next() {
		var ct []byte
		rows.Scan(&ct)
		kid, _ := crypto.KeyID(ct)
		out[kid]++
	}
	return out
}

func rotated(t *testing.T, env *functest.Env, vault string) *vaults.KeysView {
	t.Helper()
	v, err := vaults.NewManager(env.Backend(), "/skyflow/functions/keys-rotate").RotateKeys(context.Background(), admin, vault)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func rotatedEvent(vault string) []map[string]string {
	return []map[string]string{{request.ExtVaultID: vault}}
}

// A rotation under load: reads and inserts keep working through the
// rewrap, and afterwards every cell is under the new key, each moved once,
// and every record reads.
func TestRewrapMovesEveryCellWhileTrafficRuns(t *testing.T) {
	env, f, vault, ids := setup(t, 40, 7)
	keys := rotated(t, env, vault)

	var failures atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if got := env.Get(vault, ids[i%len(ids)]); len(got.Fields) == 0 {
				failures.Add(1)
			}
			env.Insert(vault, map[string]string{"name": "live", "email": fmt.Sprintf("live%d@example.com", i), "ssn": fmt.Sprintf("234-56-%04d", 1000+i)})
		}
	})
	ctx := sender.NewContext(context.Background(), sender.Broker)
	if _, err := f.Handle(ctx, functest.Event(RotatedType, nil, rotatedEvent(vault)...)); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if failures.Load() > 0 {
		t.Fatalf("%d reads failed during the rewrap", failures.Load())
	}
	counts := keyCounts(t, env, vault)
	if len(counts) != 1 || counts[keys.PrimaryKeyID] == 0 {
		t.Fatalf("cells per key after the rewrap: %v (primary %d)", counts, keys.PrimaryKeyID)
	}
	p, err := env.Backend().Vaults.RewrapProgress(context.Background(), vault)
	if err != nil || p == nil || p.FinishedAt == nil || p.Rewrapped != int64(3*len(ids)) || *p.Remaining != 0 || p.TargetKeyID != keys.PrimaryKeyID {
		t.Fatalf("progress %+v (%v), want %d cells moved once each", p, err, 3*len(ids))
	}
	for i, id := range ids {
		var email string
		if err := jsonString(env.Get(vault, id).Fields["email"], &email); err != nil || email != fmt.Sprintf("c%d@example.com", i) {
			t.Fatalf("record %d reads %q after the rewrap (%v)", i, email, err)
		}
	}
}

// A rewrap cut short (a crash, a redeploy, the budget) is resumed by the
// ping from where it stopped; no cell is lost or moved twice.
func TestRewrapResumes(t *testing.T) {
	env, f, vault, ids := setup(t, 30, 5)
	keys := rotated(t, env, vault)
	// One batch before the "crash" (a deadline already past allows one).
	if _, err := env.Backend().Vaults.Rewrap(context.Background(), vault, 5, time.Now(), 0); err != nil {
		t.Fatal(err)
	}
	p, _ := env.Backend().Vaults.RewrapProgress(context.Background(), vault)
	if p == nil || p.FinishedAt != nil || p.Rewrapped != 5 {
		t.Fatalf("after the cut: %+v", p)
	}
	ctx := sender.NewContext(context.Background(), sender.Ping)
	if _, err := f.Handle(ctx, functest.Event(PingType, map[string]string{"task": "keys-rewrap"})); err != nil {
		t.Fatal(err)
	}
	p, _ = env.Backend().Vaults.RewrapProgress(context.Background(), vault)
	if p.FinishedAt == nil || p.Rewrapped != int64(3*len(ids)) {
		t.Fatalf("after the resume: %+v, want %d moved", p, 3*len(ids))
	}
	if counts := keyCounts(t, env, vault); len(counts) != 1 || counts[keys.PrimaryKeyID] != 3*len(ids) {
		t.Fatalf("cells per key: %v", counts)
	}
	// A second rotation starts a new pass to the newer key.
	newer := rotated(t, env, vault)
	if _, err := f.Handle(sender.NewContext(context.Background(), sender.Broker), functest.Event(RotatedType, nil, rotatedEvent(vault)...)); err != nil {
		t.Fatal(err)
	}
	if counts := keyCounts(t, env, vault); len(counts) != 1 || counts[newer.PrimaryKeyID] != 3*len(ids) {
		t.Fatalf("after the second rotation: %v", counts)
	}
}

// Rotation turns the index key too, which changes blind indexes and the
// digests deterministic tokens are filed under. Tokens handed out before
// keep detokenizing, a value keeps its token, and lookups by value and
// unique checks stay right before, during and after the rewrap, and after
// the older keys are destroyed.
func TestDeterministicTokensAndLookupsSurviveIndexRotation(t *testing.T) {
	env, f, vault, ids := setup(t, 12, 5)
	owner := request.Principal{ID: "sa:owner", Roles: []string{"owner"}}
	svc := records.New(env.Backend(), "/skyflow/functions/records-get")
	ctx := context.Background()
	var emailTokens, ssnTokens []string
	for _, id := range ids {
		r, err := svc.GetOne(ctx, owner, vault, "customers", id, records.GetParams{Tokenization: true})
		if err != nil {
			t.Fatal(err)
		}
		var e, s string
		jsonString(r.Fields["email"], &e)
		jsonString(r.Fields["ssn"], &s)
		emailTokens, ssnTokens = append(emailTokens, e), append(ssnTokens, s)
	}
	check := func(stage string) {
		t.Helper()
		for i := range ids {
			var params []records.DetokenizeParameter
			for _, tok := range []string{emailTokens[i], ssnTokens[i]} {
				params = append(params, records.DetokenizeParameter{Token: tok, Redaction: "PLAIN_TEXT"})
			}
			res, err := svc.Detokenize(ctx, owner, vault, records.DetokenizeRequest{Parameters: params})
			if err != nil || res.Records[0].Value != fmt.Sprintf("c%d@example.com", i) || res.Records[1].Value != fmt.Sprintf("123-45-%04d", 1000+i) {
				t.Fatalf("%s: record %d's old tokens detokenize to %+v (%v)", stage, i, res, err)
			}
			found, err := svc.Get(ctx, owner, vault, "customers", records.GetParams{ColumnName: "email", ColumnValues: []string{fmt.Sprintf("c%d@example.com", i)}, Limit: 25})
			if err != nil || len(found.Records) != 1 || found.Records[0].Fields["skyflow_id"] == nil {
				t.Fatalf("%s: lookup of record %d by email: %+v (%v)", stage, i, found, err)
			}
		}
		// The same SSN in a new record gets the token handed out before.
		again := env.Insert(vault, map[string]string{"name": "again", "email": uniqueEmail(), "ssn": "123-45-1003"})
		if again.Tokens["ssn"] != ssnTokens[3] {
			t.Fatalf("%s: the same SSN got token %q, had %q", stage, again.Tokens["ssn"], ssnTokens[3])
		}
		// A unique value held under any index key is refused.
		_, err := records.New(env.Backend(), "/skyflow/functions/records-insert").Insert(ctx, owner, vault, "customers",
			records.InsertRequest{Records: []records.RecordFields{{Fields: records.Fields{"email": []byte(`"c5@example.com"`)}}}})
		if status(err) != 409 {
			t.Fatalf("%s: a second c5@example.com: %v, want 409", stage, err)
		}
	}
	check("before the rotation")
	rotated(t, env, vault)
	check("after the rotation, before the rewrap")
	if _, err := f.Handle(sender.NewContext(ctx, sender.Broker), functest.Event(RotatedType, nil, rotatedEvent(vault)...)); err != nil {
		t.Fatal(err)
	}
	check("after the rewrap")
	if _, err := vaults.NewManager(env.Backend(), "/skyflow/functions/keys-destroy").DestroyOldKeys(ctx, admin, vault); err != nil {
		t.Fatal(err)
	}
	check("after the older keys were destroyed")
}

var emails atomic.Int64

func uniqueEmail() string { return fmt.Sprintf("u%d@example.com", emails.Add(1)) }

func status(err error) int {
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return ae.HTTPCode
	}
	return 0
}

// Each event type is accepted only from its sender.
func TestRewrapAcceptsEachEventOnlyFromItsSender(t *testing.T) {
	env, f, vault, _ := setup(t, 1, 5)
	for name, c := range map[string]struct {
		sender, typ string
	}{
		"rotation from the gateway": {sender.Gateway, RotatedType},
		"rotation from the ping":    {sender.Ping, RotatedType},
		"ping from the broker":      {sender.Broker, PingType},
	} {
		_, err := f.Handle(sender.NewContext(context.Background(), c.sender), functest.Event(c.typ, nil, rotatedEvent(vault)...))
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	_ = env
}

func jsonString(raw []byte, out *string) error { return json.Unmarshal(raw, out) }
