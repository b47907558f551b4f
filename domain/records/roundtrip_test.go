package records_test

import (
	"encoding/json"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/records"
)

// every holds a value for every column of customers, as a client sends it,
// and the text detokenize must answer for it.
var every = map[string]struct {
	value any
	text  string
}{
	"name":        {"Sally Fields", "Sally Fields"},
	"email":       {"sallyyyy@gmail.com", "sallyyyy@gmail.com"},
	"ssn":         {"123-45-6789", "123-45-6789"},
	"card_number": {"4111111111111111", "4111111111111111"},
	"phone":       {"+14155558889", "+14155558889"},
	"age":         {42, "42"},
	"score":       {97.5, "97.5"},
	"active":      {true, "true"},
	"birthday":    {"1990-02-28", "1990-02-28"},
	"seen_at":     {"2026-11-23T10:00:00+01:00", "2026-11-23T09:00:00Z"},
	"profile":     {map[string]any{"tier": "gold", "n": 1}, `{"n":1,"tier":"gold"}`},
	"tags":        {[]any{"a", 1, true}, `["a",1,true]`},
}

func TestDetokenizeOfInsertIsTheValueForEveryTypeAndTokenType(t *testing.T) {
	f := setup(t)
	fields := map[string]any{}
	for col, v := range every {
		fields[col] = v.value
	}
	rec := f.insert("customers", fields)
	if len(rec.Tokens) != len(every) {
		t.Fatalf("insert returned %d tokens, want one per tokenized column (%d): %v", len(rec.Tokens), len(every), rec.Tokens)
	}
	var params []records.DetokenizeParameter
	var cols []string
	for col := range every {
		params = append(params, records.DetokenizeParameter{Token: rec.Tokens[col], Redaction: "PLAIN_TEXT"})
		cols = append(cols, col)
	}
	res, err := f.svc.Detokenize(f.ctx, owner, f.vault, records.DetokenizeRequest{Parameters: params})
	if err != nil {
		t.Fatalf("detokenize: %v", err)
	}
	for i, got := range res.Records {
		col := cols[i]
		if got.Value != every[col].text || got.Error != nil {
			t.Errorf("detokenize(%s token) = %q (error %v), want %q", col, got.Value, got.Error, every[col].text)
		}
	}

	one, err := f.svc.GetOne(f.ctx, owner, f.vault, "customers", rec.SkyflowID, records.GetParams{Redaction: "PLAIN_TEXT"})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	for col, v := range every {
		want, _ := json.Marshal(v.value)
		var a, b any
		json.Unmarshal(want, &a)
		json.Unmarshal(one.Fields[col], &b)
		if col == "seen_at" {
			a = "2026-11-23T09:00:00Z"
		}
		if ja, _ := json.Marshal(a); string(ja) != mustJSON(b) {
			t.Errorf("get %s = %s, want %s", col, one.Fields[col], ja)
		}
	}
	if string(one.Fields["skyflow_id"]) != `"`+rec.SkyflowID+`"` {
		t.Errorf("get skyflow_id = %s, want %q", one.Fields["skyflow_id"], rec.SkyflowID)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
