package records_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/records"
)

// TestBadInputIsAClearErrorThatWritesNothing sends each kind of bad
// request and checks the status, that the message says what is wrong
// without echoing the value sent, and that nothing was written.
func TestBadInputIsAClearErrorThatWritesNothing(t *testing.T) {
	f := setup(t)
	rec := f.insert("customers", map[string]any{"name": "Ann"})
	const secret = "4111111111111111"
	ins := func(fields ...map[string]any) records.InsertRequest {
		r := records.InsertRequest{}
		for _, fl := range fields {
			r.Records = append(r.Records, records.RecordFields{Fields: raw(t, fl)})
		}
		return r
	}
	many := make([]map[string]any, records.MaxItems+1)
	for i := range many {
		many[i] = map[string]any{"notes": "n"}
	}
	cases := []struct {
		name   string
		run    func() error
		status int
		says   string
	}{
		{"unknown vault", func() error {
			_, err := f.svc.Insert(f.ctx, owner, "0123456789abcdef0123456789abcdef", "customers", ins(map[string]any{"notes": "x"}))
			return err
		}, 404, "Vault not found"},
		{"malformed vault id", func() error {
			_, err := f.svc.Insert(f.ctx, owner, "../etc", "customers", ins(map[string]any{"notes": "x"}))
			return err
		}, 404, "Vault not found"},
		{"unknown table", func() error {
			_, err := f.svc.Insert(f.ctx, owner, f.vault, "nope", ins(map[string]any{"notes": "x"}))
			return err
		}, 404, `Table "nope" not found`},
		{"unknown column", func() error {
			_, err := f.svc.Insert(f.ctx, owner, f.vault, "customers", ins(map[string]any{"nope": secret}))
			return err
		}, 400, `no column "nope"`},
		{"failed validation", func() error {
			_, err := f.svc.Insert(f.ctx, owner, f.vault, "customers", ins(map[string]any{"card_number": "4111111111111112"}))
			return err
		}, 400, "card_number"},
		{"wrong type", func() error {
			_, err := f.svc.Insert(f.ctx, owner, f.vault, "customers", ins(map[string]any{"age": secret + "x"}))
			return err
		}, 400, "expects"},
		{"null value", func() error {
			_, err := f.svc.Insert(f.ctx, owner, f.vault, "customers", ins(map[string]any{"notes": nil}))
			return err
		}, 400, "null"},
		{"skyflow_id set", func() error {
			_, err := f.svc.Insert(f.ctx, owner, f.vault, "customers", ins(map[string]any{"skyflow_id": rec.SkyflowID}))
			return err
		}, 400, "assigned by the vault"},
		{"empty fields", func() error {
			_, err := f.svc.Insert(f.ctx, owner, f.vault, "customers", ins(map[string]any{}))
			return err
		}, 400, "empty"},
		{"no records", func() error { _, err := f.svc.Insert(f.ctx, owner, f.vault, "customers", ins()); return err }, 400, "1 to 25"},
		{"too many records", func() error { _, err := f.svc.Insert(f.ctx, owner, f.vault, "customers", ins(many...)); return err }, 400, "1 to 25"},
		{"one bad record of two", func() error {
			_, err := f.svc.Insert(f.ctx, owner, f.vault, "customers", ins(map[string]any{"notes": "fine"}, map[string]any{"ssn": secret}))
			return err
		}, 400, "records[1].fields.ssn"},
		{"upsert on a column that is not unique", func() error {
			r := ins(map[string]any{"notes": "x"})
			r.Upsert = "notes"
			_, err := f.svc.Insert(f.ctx, owner, f.vault, "customers", r)
			return err
		}, 400, "unique column"},
		{"bring your own tokens", func() error {
			r := ins(map[string]any{"notes": "x"})
			r.BYOT = "ENABLE"
			_, err := f.svc.Insert(f.ctx, owner, f.vault, "customers", r)
			return err
		}, 400, "byot"},
		{"malformed skyflow_id", func() error {
			_, err := f.svc.Update(f.ctx, owner, f.vault, "customers", "1; DROP TABLE vault_cells", records.UpdateRequest{Record: records.RecordFields{Fields: raw(t, map[string]any{"notes": "x"})}})
			return err
		}, 400, "skyflow_id"},
		{"update of a missing record", func() error {
			_, err := f.svc.Update(f.ctx, owner, f.vault, "customers", "6ba7b810-9dad-11d1-80b4-00c04fd430c8", records.UpdateRequest{Record: records.RecordFields{Fields: raw(t, map[string]any{"notes": "x"})}})
			return err
		}, 404, "No Records Found"},
		{"update in another table", func() error {
			_, err := f.svc.Update(f.ctx, owner, f.vault, "payments", rec.SkyflowID, records.UpdateRequest{Record: records.RecordFields{Fields: raw(t, map[string]any{"amount": 1})}})
			return err
		}, 404, "No Records Found"},
		{"malformed token", func() error {
			_, err := f.svc.Detokenize(f.ctx, owner, f.vault, records.DetokenizeRequest{Parameters: []records.DetokenizeParameter{{Token: "bad\ntoken"}}})
			return err
		}, 400, "well-formed"},
		{"unknown redaction", func() error {
			_, err := f.svc.Detokenize(f.ctx, owner, f.vault, records.DetokenizeRequest{Parameters: []records.DetokenizeParameter{{Token: "x", Redaction: "plain"}}})
			return err
		}, 400, "PLAIN_TEXT"},
		{"all tokens invalid", func() error {
			_, err := f.svc.Detokenize(f.ctx, owner, f.vault, records.DetokenizeRequest{Parameters: []records.DetokenizeParameter{{Token: secret}}})
			return err
		}, 404, "Detokenize failed. All tokens are invalid. Specify valid tokens."},
		{"unknown column group", func() error {
			_, err := f.svc.Tokenize(f.ctx, owner, f.vault, records.TokenizeRequest{Parameters: []records.TokenizeParameter{{Value: json.RawMessage(`"` + secret + `"`), ColumnGroup: "nope"}}})
			return err
		}, 400, "column group"},
		{"SQL outside the subset", func() error {
			_, err := f.svc.Query(f.ctx, owner, f.vault, records.QueryRequest{Query: "DELETE FROM customers WHERE card_number = '" + secret + "'"})
			return err
		}, 400, ""},
		{"ids and column values together", func() error {
			_, err := f.svc.Get(f.ctx, owner, f.vault, "customers", records.GetParams{SkyflowIDs: []string{rec.SkyflowID}, ColumnName: "email", ColumnValues: []string{"a@b.c"}, Limit: 25})
			return err
		}, 400, "not both"},
		{"lookup by a json column", func() error {
			_, err := f.svc.Get(f.ctx, owner, f.vault, "customers", records.GetParams{ColumnName: "profile", ColumnValues: []string{"{}"}, Limit: 25})
			return err
		}, 400, "cannot be looked up"},
		{"tokenization with redaction", func() error {
			_, err := f.svc.Get(f.ctx, owner, f.vault, "customers", records.GetParams{SkyflowIDs: []string{rec.SkyflowID}, Tokenization: true, Redaction: "PLAIN_TEXT", Limit: 25})
			return err
		}, 400, "tokenization"},
		{"delete many with a missing id", func() error {
			_, err := f.svc.DeleteMany(f.ctx, owner, f.vault, "customers", records.DeleteManyRequest{SkyflowIDs: []string{rec.SkyflowID, "6ba7b810-9dad-11d1-80b4-00c04fd430c8"}})
			return err
		}, 404, "No Records Found"},
	}
	for _, c := range cases {
		before := f.counts()
		err := c.run()
		if status(err) != c.status || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v; want %d saying %q", c.name, err, c.status, c.says)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error echoes the value sent: %v", c.name, err)
		}
		if after := f.counts(); after != before {
			t.Errorf("%s: rows were written: before %v, after %v", c.name, before, after)
		}
	}
	// The record of the delete-many with a missing id is still there.
	if _, err := f.svc.GetOne(f.ctx, owner, f.vault, "customers", rec.SkyflowID, records.GetParams{}); err != nil {
		t.Errorf("the record after the refused delete: %v", err)
	}
}

func TestParseGetParamsRefusesWhatItDoesNotKnow(t *testing.T) {
	for q, says := range map[string]string{
		"limit=26":                    "limit",
		"limit=0":                     "limit",
		"offset=-1":                   "offset",
		"order_by=UP":                 "order_by",
		"tokenization=maybe":          "tokenization",
		"redaction=A&redaction=B":     "once",
		"skyflowids=1":                `unknown query parameter "skyflowids"`,
		"column_name=a&column_name=b": "once",
	} {
		v, _ := url.ParseQuery(q)
		if _, err := records.ParseGetParams(v); status(err) != 400 || !strings.Contains(err.Error(), says) {
			t.Errorf("%s: %v, want a 400 saying %q", q, err, says)
		}
	}
	v, _ := url.ParseQuery("skyflow_ids=a&skyflow_ids=b&fields=x&limit=5&offset=10&order_by=DESCENDING&tokenization=true")
	p, err := records.ParseGetParams(v)
	if err != nil || len(p.SkyflowIDs) != 2 || p.Limit != 5 || p.Offset != 10 || !p.Descending || !p.Tokenization || p.Fields[0] != "x" {
		t.Errorf("ParseGetParams = %+v, %v", p, err)
	}
}

// FuzzParseGetParams: any query string gives parameters within bounds or
// a 400, never a panic.
func FuzzParseGetParams(f *testing.F) {
	for _, s := range []string{"", "limit=5", "skyflow_ids=x&column_name=a", "order_by=DESCENDING&offset=3", "%zz", "limit=99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		p, err := records.ParseGetParams(q)
		if err != nil {
			if status(err) != 400 {
				t.Fatalf("error %v is not a 400", err)
			}
			return
		}
		if p.Limit < 1 || p.Limit > records.MaxItems || p.Offset < 0 {
			t.Fatalf("accepted out-of-bounds parameters %+v", p)
		}
	})
}
