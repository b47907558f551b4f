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

	"github.com/skyflow-oss/skyflow/domain/crypto"
	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/domain/keys/rotation"
	"github.com/skyflow-oss/skyflow/domain/records"
	"github.com/skyflow-oss/skyflow/domain/shredding"
	"github.com/skyflow-oss/skyflow/domain/vaults"
	"github.com/skyflow-oss/skyflow/eventing/catalog"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/runtime/sender"
	"github.com/skyflow-oss/skyflow/testkit/functest"
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

func rotated(t *testing.T, env *functest.Env, vault string) *rotation.KeysView {
	t.Helper()
	v, err := rotation.NewManager(env.Backend(), "/skyflow/functions/keys-rotate").RotateKeys(context.Background(), admin, vault)
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
	p, err := rotation.NewManager(env.Backend(), Source).RewrapProgress(context.Background(), vault)
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
	if _, err := rotation.NewManager(env.Backend(), Source).Rewrap(context.Background(), vault, 5, time.Now(), 0); err != nil {
		t.Fatal(err)
	}
	p, _ := rotation.NewManager(env.Backend(), Source).RewrapProgress(context.Background(), vault)
	if p == nil || p.FinishedAt != nil || p.Rewrapped != 5 {
		t.Fatalf("after the cut: %+v", p)
	}
	ctx := sender.NewContext(context.Background(), sender.Ping)
	if _, err := f.Handle(ctx, functest.Event(PingType, map[string]string{"task": "keys-rewrap"})); err != nil {
		t.Fatal(err)
	}
	p, _ = rotation.NewManager(env.Backend(), Source).RewrapProgress(context.Background(), vault)
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
	if _, err := rotation.NewManager(env.Backend(), "/skyflow/functions/keys-destroy").DestroyOldKeys(ctx, admin, vault); err != nil {
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
		"rotation from the gateway":  {sender.Gateway, RotatedType},
		"rotation from the ping":     {sender.Ping, RotatedType},
		"ping from the broker":       {sender.Broker, PingType},
		"forgotten from the gateway": {sender.Gateway, ForgottenType},
		"forgotten from the ping":    {sender.Ping, ForgottenType},
	} {
		_, err := f.Handle(sender.NewContext(context.Background(), c.sender), functest.Event(c.typ, nil, rotatedEvent(vault)...))
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	_ = env
}

func jsonString(raw []byte, out *string) error { return json.Unmarshal(raw, out) }

// clinicSchema has two data_subject tables.
const clinicSchema = `{"name": "clinic", "tables": [
	{"name": "patients", "columns": [
		{"name": "patient_id", "data_type": "string", "data_subject": true, "unique": true},
		{"name": "name", "data_type": "string", "token_type": "NON_DETERMINISTIC_UUID"}]},
	{"name": "visits", "columns": [
		{"name": "patient", "data_type": "string", "data_subject": true},
		{"name": "note", "data_type": "string", "token_type": "NON_DETERMINISTIC_UUID"}]}],
  "policy": {"roles": {"owner": {"tables": {"*": {"insert": true, "update": true, "delete": true, "read": {"*": "PLAIN_TEXT"}}}}}}}`

// A forget whose inline shredding had no time (pending) is finished by the
// com.skyflow.vault.subject.forgotten event it emitted, and one whose event
// was lost by the ping: each time the old epoch's key is destroyed, the
// forget is recorded as shredded and announced, and the subjects left
// still read.
func TestRewrapFinishesPendingSubjectShreds(t *testing.T) {
	if ForgottenType != records.SubjectForgottenType {
		t.Fatalf("ForgottenType %q is not records.SubjectForgottenType %q", ForgottenType, records.SubjectForgottenType)
	}
	env := functest.New(t)
	f := env.Start(New()).(*Function)
	ctx := context.Background()
	b := env.Backend()
	v, err := vaults.NewManager(b, "/skyflow/functions/vaults-create").Create(ctx, admin, []byte(clinicSchema))
	if err != nil {
		t.Fatal(err)
	}
	vault := v.ID
	owner := request.Principal{ID: "sa:owner", Roles: []string{"owner"}}
	svc := records.New(b, "/skyflow/functions/records-insert")
	insert := func(table string, fields map[string]any) string {
		t.Helper()
		raw := records.Fields{}
		for k, v := range fields {
			raw[k], _ = json.Marshal(v)
		}
		res, err := svc.Insert(ctx, owner, vault, table, records.InsertRequest{Records: []records.RecordFields{{Fields: raw}}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Records[0].SkyflowID
	}
	insert("patients", map[string]any{"patient_id": "alice", "name": "Alice"})
	insert("visits", map[string]any{"patient": "alice", "note": "x"})
	insert("patients", map[string]any{"patient_id": "bob", "name": "Bob"})
	carol := insert("visits", map[string]any{"patient": "carol", "note": "carol's visit"})
	pool, err := pgxpool.New(ctx, env.Config["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	forget := func(subject string) *records.ForgetResponse {
		t.Helper()
		res, err := records.New(b, "/skyflow/functions/subjects-forget").Forget(ctx, owner, vault, records.ForgetRequest{Subject: subject}, 0)
		if err != nil || res.CryptoShredding != records.ShredPending {
			t.Fatalf("forgetting %s with no time to shred: %+v, %v", subject, res, err)
		}
		return res
	}
	shredded := func(stage string, res *records.ForgetResponse, epoch int) {
		t.Helper()
		if _, err := env.VaultKeys.For(ctx, kek.SubjectEpochKeyID(vault, epoch), false); !errors.Is(err, kek.ErrVaultKeyDestroyed) {
			t.Fatalf("%s: subject epoch %d's key: %v, want it destroyed", stage, epoch, err)
		}
		var at *time.Time
		if err := pool.QueryRow(ctx, `SELECT shredded_at FROM vault_subject_forgets WHERE id = $1`, res.ForgetID).Scan(&at); err != nil || at == nil {
			t.Fatalf("%s: the forget's shredded_at: %v, %v", stage, at, err)
		}
		var announced int
		for _, e := range env.Sink.OfType(shredding.SubjectShreddedType) {
			if e.Subject() == res.ForgetID {
				announced++
				if e.Source() != Source {
					t.Errorf("%s: the shredding was announced by %s", stage, e.Source())
				}
				if err := catalog.Validate(e); err != nil {
					t.Error(err)
				}
			}
		}
		if announced != 1 {
			t.Fatalf("%s: the shredding was announced %d times", stage, announced)
		}
		rec, err := records.New(b, "/skyflow/functions/records-get-one").GetOne(ctx, owner, vault, "visits", carol, records.GetParams{Redaction: "PLAIN_TEXT"})
		if err != nil || string(rec.Fields["note"]) != `"carol's visit"` {
			t.Fatalf("%s: carol's visit reads %v, %v", stage, rec, err)
		}
	}

	// The forget's own event finishes it.
	alice := forget("alice")
	if _, err := env.VaultKeys.For(ctx, kek.SubjectEpochKeyID(vault, 1), false); err != nil {
		t.Fatalf("epoch 1's key is gone before keys-rewrap ran: %v", err)
	}
	events := env.Sink.OfType(ForgottenType)
	if len(events) != 1 || events[0].Subject() != alice.ForgetID {
		t.Fatalf("the forget's events: %v", events)
	}
	if _, err := f.Handle(sender.NewContext(ctx, sender.Broker), events[0]); err != nil {
		t.Fatal(err)
	}
	shredded("after the forgotten event", alice, 1)
	// A redelivery finds nothing left to do.
	if _, err := f.Handle(sender.NewContext(ctx, sender.Broker), events[0]); err != nil {
		t.Fatal(err)
	}
	if n := len(env.Sink.OfType(shredding.SubjectShreddedType)); n != 1 {
		t.Fatalf("%d shredded events after a redelivery, want 1", n)
	}

	// The ping finishes a forget whose event never came.
	bob := forget("bob")
	if _, err := f.Handle(sender.NewContext(ctx, sender.Ping), functest.Event(PingType, map[string]string{"task": "keys-rewrap"})); err != nil {
		t.Fatal(err)
	}
	shredded("after the ping", bob, 2)
}
