package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/domain/records"
	"github.com/skyflow-oss/skyflow/domain/shredding"
	"github.com/skyflow-oss/skyflow/domain/vaults"
	"github.com/skyflow-oss/skyflow/eventing/catalog"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/runtime/sender"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

// clinicSchema has two data_subject tables and one without. Role "clerk"
// may delete patients but not visits.
const clinicSchema = `{"name": "clinic", "tables": [
	{"name": "patients", "columns": [
		{"name": "patient_id", "data_type": "string", "data_subject": true, "unique": true},
		{"name": "name", "data_type": "string", "token_type": "NON_DETERMINISTIC_UUID"},
		{"name": "email", "data_type": "string", "token_type": "DETERMINISTIC_UUID", "unique": true}]},
	{"name": "visits", "columns": [
		{"name": "patient", "data_type": "string", "data_subject": true},
		{"name": "note", "data_type": "string", "token_type": "NON_DETERMINISTIC_UUID"}]},
	{"name": "doctors", "columns": [{"name": "name", "data_type": "string"}]}],
  "policy": {"roles": {
	"owner": {"tables": {"*": {"insert": true, "update": true, "delete": true, "read": {"*": "PLAIN_TEXT"}}}, "detokenize": true},
	"clerk": {"tables": {"patients": {"insert": true, "delete": true, "read": {"*": "PLAIN_TEXT"}}, "visits": {"insert": true, "read": {"*": "PLAIN_TEXT"}}}}}}}`

var (
	owner = request.Principal{ID: functest.Owner[request.ExtPrincipal], Roles: []string{"owner"}}
	clerk = map[string]string{request.ExtPrincipal: "sa:clerk", request.ExtRoles: "clerk"}
)

type clinic struct {
	env   *functest.Env
	f     functest.Function
	vault string
	svc   *records.Service
}

func newClinic(t *testing.T) *clinic {
	env := functest.New(t)
	f := env.Start(New())
	b := env.Backend()
	v, err := vaults.NewManager(b, "/skyflow/functions/vaults-create").Create(context.Background(), request.Principal{ID: functest.Admin[request.ExtPrincipal], Roles: []string{"admin"}}, []byte(clinicSchema))
	if err != nil {
		t.Fatalf("creating the vault: %v", err)
	}
	return &clinic{env: env, f: f, vault: v.ID, svc: records.New(b, "/skyflow/functions/records-insert")}
}

func (c *clinic) insert(table string, fields map[string]string) string {
	c.env.T.Helper()
	raw := records.Fields{}
	for k, v := range fields {
		raw[k], _ = json.Marshal(v)
	}
	res, err := c.svc.Insert(context.Background(), owner, c.vault, table, records.InsertRequest{Tokenization: true, Records: []records.RecordFields{{Fields: raw}}})
	if err != nil {
		c.env.T.Fatalf("inserting into %s: %v", table, err)
	}
	return res.Records[0].SkyflowID
}

func (c *clinic) get(table, id string) (*records.Record, error) {
	return c.svc.GetOne(context.Background(), owner, c.vault, table, id, records.GetParams{Redaction: "PLAIN_TEXT"})
}

// request is a forget as the gateway sends it.
func (c *clinic) request(body any, principal map[string]string) event.Event {
	return functest.Event(RequestType, body, principal, map[string]string{request.ExtVaultID: c.vault})
}

func status(err error) int {
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return ae.HTTPCode
	}
	return 0
}

// Forgetting a subject deletes its records in every data_subject table and
// shreds its key from the backups before answering; the other subject and
// the table without subjects are untouched; the events tell what happened
// with ids and counts only, never the subject's identifier.
func TestForgetDeletesTheSubjectsRecordsAndShredsItsKey(t *testing.T) {
	c := newClinic(t)
	alice := []struct{ table, id string }{
		{"patients", c.insert("patients", map[string]string{"patient_id": "alice", "name": "Alice Liddell", "email": "alice@example.com"})},
		{"visits", c.insert("visits", map[string]string{"patient": "alice", "note": "sprained ankle"})},
		{"visits", c.insert("visits", map[string]string{"patient": "alice", "note": "follow-up"})},
	}
	bob := c.insert("patients", map[string]string{"patient_id": "bob", "name": "Bob Stone", "email": "bob@example.com"})
	bobsVisit := c.insert("visits", map[string]string{"patient": "bob", "note": "checkup"})
	doctor := c.insert("doctors", map[string]string{"name": "Dr. Who"})
	before := len(c.env.Sink.Events())

	var res records.ForgetResponse
	c.env.Call(c.f, c.request(map[string]any{"subject": "alice"}, functest.Owner), ReplyType, &res)
	if res.RecordsDeleted != 3 || len(res.Tables) != 2 || res.Tables["patients"] != 1 || res.Tables["visits"] != 2 ||
		res.CryptoShredding != records.ShredDone || res.ForgetID == "" || res.VaultID != c.vault {
		t.Fatalf("the forget answered %+v", res)
	}

	// The events: one record.deleted per record, the forget, its shredding
	// and the audit entry, each as the catalog describes it.
	events := c.env.Sink.Events()[before:] // before any read below adds its audit event
	count := map[string]int{}
	for _, e := range events {
		count[e.Type()]++
		if e.Source() != Source {
			t.Errorf("%s from %s, want %s", e.Type(), e.Source(), Source)
		}
		if err := catalog.Validate(e); err != nil {
			t.Error(err)
		}
	}
	if count[records.DeletedType] != 3 || count[records.SubjectForgottenType] != 1 || count[shredding.SubjectShreddedType] != 1 || count[records.AccessType] != 1 || len(events) != 6 {
		t.Fatalf("events after the forget: %v", count)
	}
	var forgotten, shredded, audit event.Event
	for _, e := range events {
		switch e.Type() {
		case records.SubjectForgottenType:
			forgotten = e
		case shredding.SubjectShreddedType:
			shredded = e
		case records.AccessType:
			audit = e
		}
	}
	if forgotten.Subject() != res.ForgetID || shredded.Subject() != res.ForgetID || request.Extension(forgotten, request.ExtVaultID) != c.vault || request.Extension(shredded, request.ExtVaultID) != c.vault {
		t.Fatalf("the forget's events are about %q and %q, want the forget %s", forgotten.Subject(), shredded.Subject(), res.ForgetID)
	}
	var fd struct {
		ForgetID        string         `json:"forget_id"`
		Records         int            `json:"records"`
		Tables          map[string]int `json:"tables"`
		CryptoShredding string         `json:"crypto_shredding"`
	}
	if err := json.Unmarshal(forgotten.Data(), &fd); err != nil || fd.ForgetID != res.ForgetID || fd.Records != 3 || fd.Tables["visits"] != 2 || fd.CryptoShredding != records.ShredPending {
		t.Errorf("the forgotten event's data: %s (%v)", forgotten.Data(), err)
	}
	var sd struct {
		ForgetID    string `json:"forget_id"`
		Records     int    `json:"records"`
		RequestedBy string `json:"requested_by"`
		Epoch       int    `json:"epoch"`
	}
	if err := json.Unmarshal(shredded.Data(), &sd); err != nil || sd.ForgetID != res.ForgetID || sd.Records != 3 || sd.RequestedBy != owner.ID || sd.Epoch != 1 {
		t.Errorf("the shredded event's data: %s (%v)", shredded.Data(), err)
	}
	var ad map[string]any
	if err := json.Unmarshal(audit.Data(), &ad); err != nil || ad["action"] != "forget" || ad["result"] != "allowed" || ad["principal"] != owner.ID {
		t.Errorf("the audit event's data: %s (%v)", audit.Data(), err)
	}
	// Not one event, before or after, names the subject.
	for _, e := range c.env.Sink.Events() {
		raw, _ := json.Marshal(e)
		if strings.Contains(strings.ToLower(string(raw)), "alice") {
			t.Errorf("a %s event names the subject: %s", e.Type(), raw)
		}
	}

	for _, r := range alice {
		if _, err := c.get(r.table, r.id); status(err) != 404 {
			t.Errorf("alice's %s/%s after the forget: %v, want a 404", r.table, r.id, err)
		}
	}
	for _, r := range []struct{ table, id, field, want string }{
		{"patients", bob, "name", `"Bob Stone"`}, {"visits", bobsVisit, "note", `"checkup"`}, {"doctors", doctor, "name", `"Dr. Who"`},
	} {
		rec, err := c.get(r.table, r.id)
		if err != nil || string(rec.Fields[r.field]) != r.want {
			t.Fatalf("%s/%s after alice's forget: %v, %v", r.table, r.id, rec, err)
		}
	}
	// Epoch 1 wrapped alice's key: its outside key is gone.
	if _, err := c.env.VaultKeys.For(context.Background(), kek.SubjectEpochKeyID(c.vault, 1), false); !errors.Is(err, kek.ErrVaultKeyDestroyed) {
		t.Fatalf("subject epoch 1's key after the forget: %v, want it destroyed", err)
	}

	// Forgetting her again, or someone the vault never held, needs no
	// shredding and emits no forget.
	for _, subject := range []string{"alice", "carol"} {
		var again records.ForgetResponse
		c.env.Call(c.f, c.request(map[string]any{"subject": subject}, functest.Owner), ReplyType, &again)
		if again.RecordsDeleted != 0 || again.CryptoShredding != records.ShredNotNeeded || again.ForgetID != "" {
			t.Fatalf("forgetting %s, whom the vault does not hold: %+v", subject, again)
		}
	}
	if n := len(c.env.Sink.OfType(records.SubjectForgottenType)); n != 1 {
		t.Fatalf("%d forget events, want 1", n)
	}
}

// A body without a subject or with a field it does not know is a 400; a
// role that may not delete from every data_subject table is a 403 and
// deletes nothing; a vault without data_subject tables is a 400.
func TestForgetRefusals(t *testing.T) {
	c := newClinic(t)
	patient := c.insert("patients", map[string]string{"patient_id": "alice", "name": "Alice", "email": "a@example.com"})
	visit := c.insert("visits", map[string]string{"patient": "alice", "note": "x"})
	for name, body := range map[string]any{
		"no subject":        map[string]any{},
		"an empty subject":  map[string]any{"subject": ""},
		"an unknown field":  map[string]any{"subject": "alice", "cascade": true},
		"a subject number":  map[string]any{"subject": 42},
		"not a JSON object": []string{"alice"},
	} {
		if _, err := c.f.Handle(sender.NewContext(context.Background(), sender.Gateway), c.request(body, functest.Owner)); status(err) != 400 {
			t.Errorf("%s: %v, want a 400", name, err)
		}
	}
	c.env.Refuses(c.f, c.request(nil, functest.Owner), 400)
	c.env.Refuses(c.f, c.request(map[string]any{"subject": "alice"}, clerk), 403)
	for _, r := range []struct{ table, id string }{{"patients", patient}, {"visits", visit}} {
		if _, err := c.get(r.table, r.id); err != nil {
			t.Fatalf("%s/%s after refused forgets: %v", r.table, r.id, err)
		}
	}
	if n := len(c.env.Sink.OfType(records.DeletedType)); n != 0 {
		t.Fatalf("%d records deleted by refused forgets", n)
	}

	plain := c.env.Vault() // functest.Schema: no data_subject column
	c.env.Refuses(c.f, functest.Event(RequestType, map[string]any{"subject": "alice"}, functest.Owner, map[string]string{request.ExtVaultID: plain}), 400)
}

// Dropping the shredding budget to zero leaves it pending for keys-rewrap.
func TestAZeroBudgetLeavesTheShreddingPending(t *testing.T) {
	env := functest.New(t)
	env.Config["SKYFLOW_FORGET_SHRED_BUDGET"] = "0s"
	f := env.Start(New())
	b := env.Backend()
	v, err := vaults.NewManager(b, "/skyflow/functions/vaults-create").Create(context.Background(), request.Principal{ID: functest.Admin[request.ExtPrincipal], Roles: []string{"admin"}}, []byte(clinicSchema))
	if err != nil {
		t.Fatal(err)
	}
	c := &clinic{env: env, f: f, vault: v.ID, svc: records.New(b, "/skyflow/functions/records-insert")}
	c.insert("visits", map[string]string{"patient": "alice", "note": "x"})
	var res records.ForgetResponse
	env.Call(f, c.request(map[string]any{"subject": "alice"}, functest.Owner), ReplyType, &res)
	if res.RecordsDeleted != 1 || res.CryptoShredding != records.ShredPending {
		t.Fatalf("a forget with no shredding budget: %+v", res)
	}
	pool, err := pgxpool.New(context.Background(), env.Config["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var pending int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM vault_subject_forgets WHERE id = $1 AND shredded_at IS NULL`, res.ForgetID).Scan(&pending); err != nil || pending != 1 {
		t.Fatalf("the pending forget: %d, %v", pending, err)
	}
	if n := len(env.Sink.OfType(shredding.SubjectShreddedType)); n != 0 {
		t.Fatalf("%d shredded events for a pending forget", n)
	}

	env.Config["SKYFLOW_FORGET_SHRED_BUDGET"] = "soon"
	if err := New().Start(context.Background(), env.Config); err == nil || !strings.Contains(err.Error(), "SKYFLOW_FORGET_SHRED_BUDGET") {
		t.Fatalf("a bad budget: %v", err)
	}
}

// TestRefusesWhatIsNotItsRequest: another event type is a 400, and a
// request without a principal is a 401 (deny by default).
func TestRefusesWhatIsNotItsRequest(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	env.Refuses(f, functest.Event("com.skyflow.other", map[string]any{}, functest.Admin), 400)
	env.Refuses(f, functest.Event(RequestType, map[string]any{}), 401)
}
