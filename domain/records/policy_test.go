package records_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/records"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// TestPolicyMatrix checks each role × operation × redaction against the
// policy of testSchema.
func TestPolicyMatrix(t *testing.T) {
	f := setup(t)
	rec := f.insert("customers", map[string]any{"name": "Sally Fields", "email": "sallyyyy@gmail.com", "ssn": "123-45-6789", "notes": "vip"})
	insertReq := records.InsertRequest{Records: []records.RecordFields{{Fields: raw(t, map[string]any{"notes": "x"})}}}

	type op struct {
		name string
		run  func(p request.Principal) error
	}
	ops := []op{
		{"insert customers", func(p request.Principal) error {
			_, err := f.svc.Insert(f.ctx, p, f.vault, "customers", insertReq)
			return err
		}},
		{"insert payments", func(p request.Principal) error {
			_, err := f.svc.Insert(f.ctx, p, f.vault, "payments", records.InsertRequest{Records: []records.RecordFields{{Fields: raw(t, map[string]any{"amount": 1.5})}}})
			return err
		}},
		{"update", func(p request.Principal) error {
			_, err := f.svc.Update(f.ctx, p, f.vault, "customers", rec.SkyflowID, records.UpdateRequest{Record: records.RecordFields{Fields: raw(t, map[string]any{"notes": "y"})}})
			return err
		}},
		{"read DEFAULT", func(p request.Principal) error {
			_, err := f.svc.GetOne(f.ctx, p, f.vault, "customers", rec.SkyflowID, records.GetParams{})
			return err
		}},
		{"read PLAIN_TEXT", func(p request.Principal) error {
			_, err := f.svc.GetOne(f.ctx, p, f.vault, "customers", rec.SkyflowID, records.GetParams{Redaction: "PLAIN_TEXT"})
			return err
		}},
		{"read MASKED", func(p request.Principal) error {
			_, err := f.svc.GetOne(f.ctx, p, f.vault, "customers", rec.SkyflowID, records.GetParams{Redaction: "MASKED"})
			return err
		}},
		{"read REDACTED", func(p request.Principal) error {
			_, err := f.svc.GetOne(f.ctx, p, f.vault, "customers", rec.SkyflowID, records.GetParams{Redaction: "REDACTED"})
			return err
		}},
		{"detokenize", func(p request.Principal) error {
			_, err := f.svc.Detokenize(f.ctx, p, f.vault, records.DetokenizeRequest{Parameters: []records.DetokenizeParameter{{Token: rec.Tokens["ssn"]}}})
			return err
		}},
		{"tokenize", func(p request.Principal) error {
			_, err := f.svc.Tokenize(f.ctx, p, f.vault, records.TokenizeRequest{Parameters: []records.TokenizeParameter{{Value: json.RawMessage(`"123-45-6789"`), ColumnGroup: "customers.ssn"}}})
			return err
		}},
		{"delete payments", func(p request.Principal) error {
			_, err := f.svc.DeleteMany(f.ctx, p, f.vault, "payments", records.DeleteManyRequest{SkyflowIDs: []string{"6ba7b810-9dad-11d1-80b4-00c04fd430c8"}})
			return err
		}},
	}
	// want[role][op] is the status: 0 allowed, 404 for the delete of a
	// record that does not exist (allowed, nothing to delete). support
	// reads ssn at its column default, REDACTED, so asking MASKED for the
	// whole record is refused rather than quietly lowered.
	want := map[string]map[string]int{
		"owner":   {"insert customers": 0, "insert payments": 0, "update": 0, "read DEFAULT": 0, "read PLAIN_TEXT": 0, "read MASKED": 0, "read REDACTED": 0, "detokenize": 0, "tokenize": 0, "delete payments": 404},
		"writer":  {"insert customers": 0, "insert payments": 403, "update": 0, "read DEFAULT": 403, "read PLAIN_TEXT": 403, "read MASKED": 403, "read REDACTED": 403, "detokenize": 403, "tokenize": 403, "delete payments": 403},
		"support": {"insert customers": 403, "insert payments": 403, "update": 403, "read DEFAULT": 0, "read PLAIN_TEXT": 403, "read MASKED": 403, "read REDACTED": 0, "detokenize": 0, "tokenize": 403, "delete payments": 403},
		"auditor": {"insert customers": 403, "insert payments": 403, "update": 403, "read DEFAULT": 0, "read PLAIN_TEXT": 403, "read MASKED": 403, "read REDACTED": 0, "detokenize": 403, "tokenize": 403, "delete payments": 403},
		// Known to the vault (manage) but with no data rights at all.
		"steward": {"insert customers": 403, "insert payments": 403, "update": 403, "read DEFAULT": 403, "read PLAIN_TEXT": 403, "read MASKED": 403, "read REDACTED": 403, "detokenize": 403, "tokenize": 403, "delete payments": 403},
		// Unknown to the vault: the vault does not exist for it.
		"stranger": {"insert customers": 404, "insert payments": 404, "update": 404, "read DEFAULT": 404, "read PLAIN_TEXT": 404, "read MASKED": 404, "read REDACTED": 404, "detokenize": 404, "tokenize": 404, "delete payments": 404},
		// A platform administrator manages vaults but reads no data.
		"admin": {"insert customers": 403, "insert payments": 403, "update": 403, "read DEFAULT": 403, "read PLAIN_TEXT": 403, "read MASKED": 403, "read REDACTED": 403, "detokenize": 403, "tokenize": 403, "delete payments": 403},
	}
	for role, ops2 := range want {
		p := request.Principal{ID: "p:" + role, Roles: []string{role}}
		for _, o := range ops {
			if got := status(o.run(p)); got != ops2[o.name] {
				t.Errorf("%s %s: status %d, want %d", role, o.name, got, ops2[o.name])
			}
		}
	}
}

// TestRedactionLevels checks what each level returns: support reads name
// in plain text (granted) and ssn at the column's default (REDACTED since
// testSchema gives ssn no redaction), email MASKED when asked.
func TestRedactionLevels(t *testing.T) {
	f := setup(t)
	rec := f.insert("customers", map[string]any{"name": "Sally Fields", "email": "sallyyyy@gmail.com", "ssn": "123-45-6789", "phone": "+14155558889"})
	get := func(p request.Principal, red string, fields ...string) map[string]string {
		t.Helper()
		r, err := f.svc.GetOne(f.ctx, p, f.vault, "customers", rec.SkyflowID, records.GetParams{Redaction: red, Fields: fields})
		if err != nil {
			t.Fatalf("get %s as %s: %v", red, p.ID, err)
		}
		out := map[string]string{}
		for k, v := range r.Fields {
			out[k] = string(v)
		}
		return out
	}
	for _, c := range []struct {
		p      request.Principal
		red    string
		fields []string
		want   map[string]string
	}{
		{owner, "PLAIN_TEXT", []string{"name", "email", "ssn"}, map[string]string{"name": `"Sally Fields"`, "email": `"sallyyyy@gmail.com"`, "ssn": `"123-45-6789"`}},
		{owner, "MASKED", []string{"email", "ssn", "phone"}, map[string]string{"email": `"s******y@gmail.com"`, "ssn": `"XXX-XX-6789"`, "phone": `"+XXXXXXX8889"`}},
		{owner, "REDACTED", []string{"name", "ssn"}, map[string]string{"name": `"*REDACTED*"`, "ssn": `"*REDACTED*"`}},
		{support, "DEFAULT", []string{"name", "ssn"}, map[string]string{"name": `"Sally Fields"`, "ssn": `"*REDACTED*"`}},
		{support, "MASKED", []string{"name"}, map[string]string{"name": `"SXXXX XXXXXX"`}},
		{auditor, "DEFAULT", []string{"name", "email"}, map[string]string{"name": `"*REDACTED*"`, "email": `"*REDACTED*"`}},
	} {
		got := get(c.p, c.red, c.fields...)
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%s %s %s = %s, want %s", c.p.ID, c.red, k, got[k], v)
			}
		}
		if len(got) != len(c.want)+1 {
			t.Errorf("%s %s returned %v, want only %v and skyflow_id", c.p.ID, c.red, got, c.fields)
		}
	}
	// Without fields, a read returns the columns the caller may read and
	// the ones the record has.
	if got := get(auditor, ""); len(got) != 5 {
		t.Errorf("auditor read %v, want skyflow_id and the 4 stored columns", got)
	}
}

// TestOtherVaultsAreIndistinguishableFromNothing: a token or record id of
// vault A used on vault B answers exactly as one that never existed, and
// a vault the caller has no role in answers exactly as a missing vault.
func TestOtherVaultsAreIndistinguishableFromNothing(t *testing.T) {
	f := setup(t)
	recA := f.insert("customers", map[string]any{"ssn": "123-45-6789", "name": "A"})
	vaultA := f.vault
	f.vault = f.newVault(testSchema)
	recB := f.insert("customers", map[string]any{"ssn": "234-56-7891"})

	detok := func(tok string) (int, string) {
		_, err := f.svc.Detokenize(f.ctx, owner, f.vault, records.DetokenizeRequest{Parameters: []records.DetokenizeParameter{{Token: tok}}})
		return status(err), fmt.Sprint(err)
	}
	fromA, fromAMsg := detok(recA.Tokens["ssn"])
	never, neverMsg := detok("00000000-0000-4000-8000-000000000000")
	if fromA != 404 || fromA != never || fromAMsg != neverMsg {
		t.Errorf("vault A's token in vault B: %d %q; a token that never existed: %d %q; want the same 404", fromA, fromAMsg, never, neverMsg)
	}
	res, err := f.svc.Detokenize(f.ctx, owner, f.vault, records.DetokenizeRequest{ContinueOnError: true, Parameters: []records.DetokenizeParameter{{Token: recA.Tokens["ssn"]}, {Token: recB.Tokens["ssn"]}}})
	if err != nil || res.Records[0].Error == nil || *res.Records[0].Error != "Token Not Found" || res.Records[0].ValueType != "NONE" || res.Records[1].Value != "234-56-7891" {
		t.Errorf("continueOnError with A's and B's tokens = %+v, %v", res, err)
	}

	get := func(id string) (int, string) {
		_, err := f.svc.GetOne(f.ctx, owner, f.vault, "customers", id, records.GetParams{})
		return status(err), fmt.Sprint(err)
	}
	fromA, fromAMsg = get(recA.SkyflowID)
	never, neverMsg = get("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
	if fromA != 404 || fromA != never || fromAMsg != neverMsg {
		t.Errorf("vault A's record id in vault B: %d %q; an id that never existed: %d %q; want the same 404", fromA, fromAMsg, never, neverMsg)
	}
	if _, err := f.svc.Delete(f.ctx, owner, f.vault, "customers", recA.SkyflowID); status(err) != 404 {
		t.Errorf("deleting vault A's record through vault B: %v, want 404", err)
	}

	// A principal no role of vault A's policy names.
	strangerA, strangerMsg := status2(f.svc.GetOne(f.ctx, nobody, vaultA, "customers", recA.SkyflowID, records.GetParams{}))
	missing, missingMsg := status2(f.svc.GetOne(f.ctx, owner, "0123456789abcdef0123456789abcdef", "customers", recA.SkyflowID, records.GetParams{}))
	if strangerA != 404 || strangerA != missing || strangerMsg != missingMsg {
		t.Errorf("stranger on vault A: %d %q; owner on a missing vault: %d %q; want the same 404", strangerA, strangerMsg, missing, missingMsg)
	}
	// Vault A's record is untouched.
	if _, err := f.svc.GetOne(f.ctx, owner, vaultA, "customers", recA.SkyflowID, records.GetParams{}); err != nil {
		t.Errorf("vault A's record after the attempts: %v", err)
	}
}

func status2(_ any, err error) (int, string) { return status(err), fmt.Sprint(err) }
