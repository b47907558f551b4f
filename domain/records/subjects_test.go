package records_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/skyflow-oss/skyflow/domain/crypto"
	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/domain/keys/rotation"
	"github.com/skyflow-oss/skyflow/domain/records"
	"github.com/skyflow-oss/skyflow/domain/shredding"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// clinicSchema has two data_subject tables (one keyed by a string, one by
// an integer-free string column of another name) and a table without.
const clinicSchema = `{
  "name": "clinic",
  "tables": [
    {"name": "patients", "columns": [
      {"name": "patient_id", "data_type": "string", "data_subject": true, "unique": true},
      {"name": "name",       "data_type": "string", "token_type": "NON_DETERMINISTIC_UUID"},
      {"name": "email",      "data_type": "string", "token_type": "DETERMINISTIC_UUID", "unique": true}
    ]},
    {"name": "visits", "columns": [
      {"name": "patient", "data_type": "string", "data_subject": true},
      {"name": "note",    "data_type": "string", "token_type": "NON_DETERMINISTIC_UUID"}
    ]},
    {"name": "doctors", "columns": [{"name": "name", "data_type": "string"}]}
  ],
  "policy": {"roles": {
    "owner":   {"tables": {"*": {"insert": true, "update": true, "delete": true, "read": {"*": "PLAIN_TEXT"}}}, "detokenize": true, "tokenize": true},
    "clerk":   {"tables": {"patients": {"insert": true, "delete": true, "read": {"*": "PLAIN_TEXT"}}, "visits": {"insert": true, "read": {"*": "PLAIN_TEXT"}}}}
  }}
}`

var clerk = request.Principal{ID: "sa:clerk", Roles: []string{"clerk"}}

func clinic(t *testing.T) *fixture {
	f := setup(t)
	f.vault = f.newVault(clinicSchema)
	return f
}

func (f *fixture) mustGet(table, id string) map[string]json.RawMessage {
	f.t.Helper()
	rec, err := f.svc.GetOne(f.ctx, owner, f.vault, table, id, records.GetParams{Redaction: "PLAIN_TEXT"})
	if err != nil {
		f.t.Fatalf("get %s/%s: %v", table, id, err)
	}
	return rec.Fields
}

func (f *fixture) forget(p request.Principal, subject string) (*records.ForgetResponse, error) {
	return f.svc.Forget(f.ctx, p, f.vault, records.ForgetRequest{Subject: subject}, time.Minute)
}

func (f *fixture) subjectKeyOf(id string) *uuid.UUID {
	f.t.Helper()
	var ref *uuid.UUID
	if err := f.pool.QueryRow(f.ctx, `SELECT subject_key FROM vault_records WHERE id = $1`, id).Scan(&ref); err != nil {
		f.t.Fatal(err)
	}
	return ref
}

func field(t *testing.T, fields map[string]json.RawMessage, name string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(fields[name], &s); err != nil {
		t.Fatalf("field %s = %s", name, fields[name])
	}
	return s
}

// Records of a data_subject table are sealed for their subject: one key per
// subject, shared by the subject's records in every table; the vault's keys
// alone do not open them; reads, lookups and detokenize work as usual.
func TestSubjectRecordsAreSealedForTheirSubject(t *testing.T) {
	f := clinic(t)
	alice := f.insert("patients", map[string]any{"patient_id": "p-alice", "name": "Alice Liddell", "email": "alice@example.com"})
	visit := f.insert("visits", map[string]any{"patient": "p-alice", "note": "sprained ankle"})
	bob := f.insert("patients", map[string]any{"patient_id": "p-bob", "name": "Bob Stone", "email": "bob@example.com"})
	doctor := f.insert("doctors", map[string]any{"name": "Dr. Who"})

	ka, kv, kb := f.subjectKeyOf(alice.SkyflowID), f.subjectKeyOf(visit.SkyflowID), f.subjectKeyOf(bob.SkyflowID)
	if ka == nil || kv == nil || *ka != *kv {
		t.Fatalf("alice's patient and visit records have subject keys %v and %v; want one key", ka, kv)
	}
	if kb == nil || *kb == *ka {
		t.Fatalf("bob's key %v is alice's %v", kb, ka)
	}
	if f.subjectKeyOf(doctor.SkyflowID) != nil {
		t.Fatal("a record of a table without a data_subject column has a subject key")
	}

	if got := field(t, f.mustGet("visits", visit.SkyflowID), "note"); got != "sprained ankle" {
		t.Fatalf("visit note = %q", got)
	}
	res, err := f.svc.Get(f.ctx, owner, f.vault, "patients", records.GetParams{ColumnName: "email", ColumnValues: []string{"bob@example.com"}, Redaction: "PLAIN_TEXT", Limit: 25})
	if err != nil || len(res.Records) != 1 || field(t, res.Records[0].Fields, "name") != "Bob Stone" {
		t.Fatalf("lookup by email: %+v, %v", res, err)
	}
	det, err := f.svc.Detokenize(f.ctx, owner, f.vault, records.DetokenizeRequest{Parameters: []records.DetokenizeParameter{{Token: alice.Tokens["name"], Redaction: "PLAIN_TEXT"}}})
	if err != nil || det.Records[0].Value != "Alice Liddell" {
		t.Fatalf("detokenize: %+v, %v", det, err)
	}

	// The vault's keys open only the outer layer.
	v, err := f.backend.Vaults.Load(f.ctx, f.vault, owner)
	if err != nil {
		t.Fatal(err)
	}
	var ct []byte
	if err := f.pool.QueryRow(f.ctx, `SELECT ciphertext FROM vault_cells WHERE record_id = $1 AND column_name = 'note'`, visit.SkyflowID).Scan(&ct); err != nil {
		t.Fatal(err)
	}
	cell := crypto.Cell{VaultID: f.vault, Table: "visits", Column: "note", RecordID: visit.SkyflowID}
	if _, err := v.Keys.Open(ct, cell); !errors.Is(err, crypto.ErrSubjectKeyNeeded) {
		t.Fatalf("the vault's keys alone: %v, want ErrSubjectKeyNeeded", err)
	}
}

func TestSubjectColumnIsRequired(t *testing.T) {
	f := clinic(t)
	_, err := f.svc.Insert(f.ctx, owner, f.vault, "visits", records.InsertRequest{Records: []records.RecordFields{{Fields: raw(t, map[string]any{"note": "no patient"})}}})
	if status(err) != 400 || !strings.Contains(err.Error(), `column "patient" is the data_subject column of table "visits"`) {
		t.Fatalf("insert without the subject: %v", err)
	}
	if n := f.count(`SELECT count(*) FROM vault_records`); n != 0 {
		t.Fatalf("%d records written", n)
	}
}

// Forget deletes the subject's records in every table, and only those.
// Afterwards a backup taken before the forget, restored row for row, still
// holds the subject's ciphertext and wrapped key, and opens for no one:
// the epoch key that wrapped the subject's key is destroyed. The other
// subjects' keys moved to the new epoch and still read.
func TestForgetShredsTheSubjectFromBackups(t *testing.T) {
	f := clinic(t)
	alice := f.insert("patients", map[string]any{"patient_id": "p-alice", "name": "Alice Liddell", "email": "alice@example.com"})
	visits := []records.Inserted{
		f.insert("visits", map[string]any{"patient": "p-alice", "note": "sprained ankle"}),
		f.insert("visits", map[string]any{"patient": "p-alice", "note": "follow-up"}),
	}
	bob := f.insert("patients", map[string]any{"patient_id": "p-bob", "name": "Bob Stone", "email": "bob@example.com"})
	doctor := f.insert("doctors", map[string]any{"name": "Dr. Who"})

	backup := f.takeBackup(alice.SkyflowID, visits[0].SkyflowID, visits[1].SkyflowID)
	tokenize := func(email string) error {
		_, err := f.svc.Tokenize(f.ctx, owner, f.vault, records.TokenizeRequest{Parameters: []records.TokenizeParameter{{Value: json.RawMessage(`"` + email + `"`), ColumnGroup: "patients.email"}}})
		return err
	}
	if err := tokenize("alice@example.com"); err != nil {
		t.Fatalf("tokenize before the forget: %v", err)
	}

	res, err := f.forget(owner, "p-alice")
	if err != nil {
		t.Fatal(err)
	}
	if res.RecordsDeleted != 3 || res.Tables["patients"] != 1 || res.Tables["visits"] != 2 || res.CryptoShredding != records.ShredDone || res.ForgetID == "" {
		t.Fatalf("forget answered %+v", res)
	}
	for _, r := range []struct{ table, id string }{{"patients", alice.SkyflowID}, {"visits", visits[0].SkyflowID}, {"visits", visits[1].SkyflowID}} {
		if _, err := f.svc.GetOne(f.ctx, owner, f.vault, r.table, r.id, records.GetParams{}); status(err) != 404 {
			t.Errorf("%s/%s after the forget: %v, want 404", r.table, r.id, err)
		}
	}
	if got := field(t, f.mustGet("patients", bob.SkyflowID), "name"); got != "Bob Stone" {
		t.Fatalf("bob after alice's forget: %q", got)
	}
	f.mustGet("doctors", doctor.SkyflowID)
	det, err := f.svc.Detokenize(f.ctx, owner, f.vault, records.DetokenizeRequest{Parameters: []records.DetokenizeParameter{{Token: alice.Tokens["name"]}}, ContinueOnError: true})
	if err != nil || det.Records[0].Error == nil {
		t.Fatalf("alice's token after the forget: %+v, %v", det, err)
	}
	if err := tokenize("alice@example.com"); status(err) != 404 {
		t.Fatalf("tokenize of the forgotten subject's email: %v, want 404", err)
	}
	if err := tokenize("bob@example.com"); err != nil {
		t.Fatalf("tokenize of bob's email: %v", err)
	}
	if n := f.count(`SELECT count(*) FROM vault_subject_keys WHERE epoch <> 2`); n != 0 {
		t.Fatalf("%d subject keys are not under the new epoch", n)
	}
	if n := f.count(`SELECT count(*) FROM vault_subject_forgets WHERE shredded_at IS NOT NULL`); n != 1 {
		t.Fatalf("%d forgets recorded as shredded, want 1", n)
	}
	if _, err := f.keys.For(f.ctx, kek.SubjectEpochKeyID(f.vault, 1), false); !errors.Is(err, kek.ErrVaultKeyDestroyed) {
		t.Fatalf("epoch 1's outside key: %v, want ErrVaultKeyDestroyed", err)
	}

	// Restore the backup's rows, epoch key row included, as a restore of
	// the database would, and read.
	backup.restore(t, f)
	for _, r := range []struct{ table, id string }{{"patients", alice.SkyflowID}, {"visits", visits[0].SkyflowID}} {
		rec, err := f.svc.GetOne(f.ctx, owner, f.vault, r.table, r.id, records.GetParams{Redaction: "PLAIN_TEXT"})
		if err == nil {
			t.Fatalf("the restored backup of %s/%s opened: %s", r.table, r.id, rec.Fields)
		}
		if s := status(err); s != 500 && s != 503 {
			t.Fatalf("reading the restored backup: %v", err)
		}
	}
	if got := field(t, f.mustGet("patients", bob.SkyflowID), "name"); got != "Bob Stone" {
		t.Fatalf("bob after the restore: %q", got)
	}
}

// backup is the rows a database backup holds for some records: the
// records, their cells, their subject keys and the epoch keys' rows.
type backup struct {
	records, cells, keys, epochs []map[string]any
}

func (f *fixture) takeBackup(ids ...string) backup {
	f.t.Helper()
	rows := func(sql string, args ...any) []map[string]any {
		r, err := f.pool.Query(f.ctx, sql, args...)
		if err != nil {
			f.t.Fatal(err)
		}
		defer r.Close()
		var out []map[string]any
		for r.Next() {
			vals, err := r.Values()
			if err != nil {
				f.t.Fatal(err)
			}
			m := map[string]any{}
			for i, fd := range r.FieldDescriptions() {
				m[fd.Name] = vals[i]
			}
			out = append(out, m)
		}
		return out
	}
	return backup{
		records: rows(`SELECT vault_id, id, table_name, subject_key FROM vault_records WHERE id = ANY($1::uuid[])`, ids),
		cells:   rows(`SELECT vault_id, record_id, column_name, table_name, ciphertext, blind_index, unique_index, token FROM vault_cells WHERE record_id = ANY($1::uuid[])`, ids),
		keys:    rows(`SELECT id, vault_id, subject_index, wrapped, epoch FROM vault_subject_keys WHERE id IN (SELECT subject_key FROM vault_records WHERE id = ANY($1::uuid[]))`, ids),
		epochs:  rows(`SELECT vault_id, epoch, wrapped FROM vault_subject_epochs`),
	}
}

// restore writes the backup's rows back.
func (b backup) restore(t *testing.T, f *fixture) {
	t.Helper()
	exec := func(sql string, args ...any) {
		if _, err := f.pool.Exec(f.ctx, sql, args...); err != nil {
			t.Fatalf("restore: %v", err)
		}
	}
	for _, e := range b.epochs {
		exec(`UPDATE vault_subject_epochs SET wrapped = $3, destroyed_at = NULL WHERE vault_id = $1 AND epoch = $2`, e["vault_id"], e["epoch"], e["wrapped"])
	}
	for _, k := range b.keys {
		exec(`INSERT INTO vault_subject_keys (id, vault_id, subject_index, wrapped, epoch) VALUES ($1, $2, $3, $4, $5)`, k["id"], k["vault_id"], k["subject_index"], k["wrapped"], k["epoch"])
	}
	for _, r := range b.records {
		exec(`INSERT INTO vault_records (vault_id, id, table_name, subject_key) VALUES ($1, $2, $3, $4)`, r["vault_id"], r["id"], r["table_name"], r["subject_key"])
	}
	for _, c := range b.cells {
		exec(`INSERT INTO vault_cells (vault_id, record_id, column_name, table_name, ciphertext, blind_index, unique_index, token) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			c["vault_id"], c["record_id"], c["column_name"], c["table_name"], c["ciphertext"], c["blind_index"], c["unique_index"], c["token"])
	}
	if len(b.keys) == 0 || len(b.cells) == 0 {
		t.Fatal("the backup holds nothing to restore")
	}
}

// An update that names another subject moves the record: its values are
// sealed again for the new subject, so forgetting the old one spares it and
// forgetting the new one takes it. An upsert does the same.
func TestUpdateMovesARecordToAnotherSubject(t *testing.T) {
	f := clinic(t)
	f.insert("patients", map[string]any{"patient_id": "p-alice", "name": "Alice", "email": "alice@example.com"})
	visit := f.insert("visits", map[string]any{"patient": "p-alice", "note": "misfiled under alice"})
	if _, err := f.svc.Update(f.ctx, owner, f.vault, "visits", visit.SkyflowID, records.UpdateRequest{Record: records.RecordFields{Fields: raw(t, map[string]any{"patient": "p-bob"})}}); err != nil {
		t.Fatal(err)
	}
	// An update that leaves the subject out keeps it.
	if _, err := f.svc.Update(f.ctx, owner, f.vault, "visits", visit.SkyflowID, records.UpdateRequest{Record: records.RecordFields{Fields: raw(t, map[string]any{"note": "bob's visit"})}}); err != nil {
		t.Fatal(err)
	}
	if res, err := f.forget(owner, "p-alice"); err != nil || res.RecordsDeleted != 1 {
		t.Fatalf("forgetting alice: %+v, %v", res, err)
	}
	got := f.mustGet("visits", visit.SkyflowID)
	if field(t, got, "note") != "bob's visit" || field(t, got, "patient") != "p-bob" {
		t.Fatalf("the moved visit: %s", got)
	}

	// Upsert on the unique subject column of patients: same subject, same key.
	up := func(name string) string {
		res, err := f.svc.Insert(f.ctx, owner, f.vault, "patients", records.InsertRequest{Upsert: "email", Records: []records.RecordFields{{Fields: raw(t, map[string]any{"patient_id": name, "name": "Carol", "email": "carol@example.com"})}}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Records[0].SkyflowID
	}
	first := up("p-carol")
	if second := up("p-bob"); second != first {
		t.Fatalf("the upsert made a new record %s, not %s", second, first)
	}
	if res, err := f.forget(owner, "p-carol"); err != nil || res.RecordsDeleted != 0 {
		t.Fatalf("forgetting carol after her record moved to bob: %+v, %v", res, err)
	}
	if res, err := f.forget(owner, "p-bob"); err != nil || res.RecordsDeleted != 2 {
		t.Fatalf("forgetting bob: %+v, %v", res, err)
	}
}

func TestForgetRefusals(t *testing.T) {
	f := clinic(t)
	f.insert("visits", map[string]any{"patient": "p-alice", "note": "x"})
	if _, err := f.forget(clerk, "p-alice"); status(err) != 403 || !strings.Contains(err.Error(), `"visits"`) {
		t.Fatalf("a role that may not delete visits: %v", err)
	}
	for _, bad := range []string{"", strings.Repeat("x", 40<<10), "\xff"} {
		if _, err := f.forget(owner, bad); status(err) != 400 {
			t.Fatalf("subject of %d bytes: %v", len(bad), err)
		}
	}
	if _, err := f.forget(nobody, "p-alice"); status(err) != 404 {
		t.Fatalf("a stranger: %v", err)
	}
	res, err := f.forget(owner, "p-nobody")
	if err != nil || res.RecordsDeleted != 0 || res.CryptoShredding != records.ShredNotNeeded {
		t.Fatalf("an unknown subject: %+v, %v", res, err)
	}
	if n := f.count(`SELECT count(*) FROM vault_records`); n != 1 {
		t.Fatalf("%d records left, want 1", n)
	}
	f.vault = f.newVault(testSchema)
	if _, err := f.forget(owner, "p-alice"); status(err) != 400 {
		t.Fatalf("a vault without data_subject tables: %v", err)
	}
}

// New subjects written while forgets change the epoch are never left under
// an epoch whose key is destroyed: every record reads afterwards.
func TestConcurrentWritesDuringForgets(t *testing.T) {
	f := clinic(t)
	for i := range 5 {
		f.insert("visits", map[string]any{"patient": fmt.Sprintf("gone-%d", i), "note": "to forget"})
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var kept []string
	for w := range 3 {
		wg.Go(func() {
			for i := range 20 {
				res, err := f.svc.Insert(f.ctx, owner, f.vault, "visits", records.InsertRequest{Records: []records.RecordFields{{Fields: raw(t, map[string]any{"patient": fmt.Sprintf("w%d-%d", w, i), "note": "kept"})}}})
				if status(err) == 409 {
					continue // raced a forget's lock; never a lost write
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				kept = append(kept, res.Records[0].SkyflowID)
				mu.Unlock()
			}
		})
	}
	for i := range 5 {
		if res, err := f.forget(owner, fmt.Sprintf("gone-%d", i)); err != nil || res.CryptoShredding != records.ShredDone {
			t.Errorf("forget %d: %+v, %v", i, res, err)
		}
	}
	wg.Wait()
	for _, id := range kept {
		if got := field(t, f.mustGet("visits", id), "note"); got != "kept" {
			t.Fatalf("record %s: %q", id, got)
		}
	}
	var epoch int
	if err := f.pool.QueryRow(f.ctx, `SELECT subject_epoch FROM vaults WHERE id = $1`, f.vault).Scan(&epoch); err != nil {
		t.Fatal(err)
	}
	if epoch != 6 {
		t.Fatalf("epoch %d after 5 forgets, want 6", epoch)
	}
	// Keys made under the epoch current at the end may stay; none older.
	if n := f.count(`SELECT count(*) FROM vault_subject_keys WHERE epoch < $1`, epoch); n != 0 {
		t.Fatalf("%d subject keys under destroyed epochs", n)
	}
	if n := f.count(`SELECT count(*) FROM vault_subject_epochs WHERE epoch < $1 AND destroyed_at IS NULL`, epoch); n != 0 {
		t.Fatalf("%d ended epochs not destroyed", n)
	}
}

// Index-key rotation: the subject's key row is refiled by the rewrap, the
// subject keeps its one key across the rotation, and forget still finds it
// before and after the older keys are destroyed.
func TestSubjectsSurviveIndexKeyRotation(t *testing.T) {
	f := clinic(t)
	m := rotation.NewManager(f.backend, "/tests/vaults")
	before := f.insert("visits", map[string]any{"patient": "p-alice", "note": "before"})
	if _, err := m.RotateKeys(f.ctx, admin, f.vault); err != nil {
		t.Fatal(err)
	}
	during := f.insert("visits", map[string]any{"patient": "p-alice", "note": "during"})
	if *f.subjectKeyOf(before.SkyflowID) != *f.subjectKeyOf(during.SkyflowID) {
		t.Fatal("the rotation gave alice a second key")
	}
	if _, err := m.Rewrap(f.ctx, f.vault, 100, time.Now().Add(time.Minute), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := m.DestroyOldKeys(f.ctx, admin, f.vault); err != nil {
		t.Fatal(err)
	}
	after := f.insert("visits", map[string]any{"patient": "p-alice", "note": "after"})
	if *f.subjectKeyOf(after.SkyflowID) != *f.subjectKeyOf(before.SkyflowID) {
		t.Fatal("after the older index keys were destroyed, alice got a second key: the rewrap did not refile hers")
	}
	if got := field(t, f.mustGet("visits", before.SkyflowID), "note"); got != "before" {
		t.Fatalf("a rewrapped subject record: %q", got)
	}
	if res, err := f.forget(owner, "p-alice"); err != nil || res.RecordsDeleted != 3 {
		t.Fatalf("forget after the rotation: %+v, %v", res, err)
	}
}

// Deleting a vault destroys its subject epoch keys along with its own key.
func TestDeletingAVaultDestroysItsSubjectEpochKeys(t *testing.T) {
	f := clinic(t)
	f.insert("visits", map[string]any{"patient": "p-alice", "note": "x"})
	f.insert("visits", map[string]any{"patient": "p-bob", "note": "y"})
	if _, err := f.forget(owner, "p-alice"); err != nil { // epoch 2 begins
		t.Fatal(err)
	}
	if _, err := f.keys.For(f.ctx, kek.SubjectEpochKeyID(f.vault, 2), false); err != nil {
		t.Fatalf("epoch 2's key before the deletion: %v", err)
	}
	res, err := shredding.New(f.backend, "/tests/vaults").DeleteVault(f.ctx, admin, f.vault)
	if err != nil || res.CryptoShredding != shredding.ShredDone {
		t.Fatalf("delete: %+v, %v", res, err)
	}
	for _, name := range []string{f.vault, kek.SubjectEpochKeyID(f.vault, 1), kek.SubjectEpochKeyID(f.vault, 2)} {
		if _, err := f.keys.For(f.ctx, name, false); !errors.Is(err, kek.ErrVaultKeyDestroyed) {
			t.Errorf("key %s after the vault's deletion: %v, want ErrVaultKeyDestroyed", name, err)
		}
	}
}
