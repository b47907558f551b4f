package records_test

import (
	"fmt"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/records"
)

// TestTokensStayUniqueInASmallTokenSpace fills format-preserving columns
// of four-digit values, where a few hundred values are bound to collide
// on a first draw (10,000 possible tokens): every value still gets its own
// token, a deterministic token is the same on every insert, and every
// token detokenizes to its value.
func TestTokensStayUniqueInASmallTokenSpace(t *testing.T) {
	f := setup(t)
	f.vault = f.newVault(`{"name": "pins", "tables": [{"name": "pins", "columns": [
		{"name": "det", "data_type": "string", "token_type": "DETERMINISTIC_FPT"},
		{"name": "rnd", "data_type": "string", "token_type": "NON_DETERMINISTIC_FPT"}]}],
	  "policy": {"roles": {"owner": {"tables": {"*": {"insert": true, "read": {"*": "PLAIN_TEXT"}}}, "detokenize": true}}}}`)
	const n = 400
	byToken := map[string]string{}
	det := map[string]string{}
	for start := 0; start < n; start += records.MaxItems {
		var req records.InsertRequest
		req.Tokenization = true
		for i := start; i < start+records.MaxItems && i < n; i++ {
			v := fmt.Sprintf("%04d", i*7)
			req.Records = append(req.Records, records.RecordFields{Fields: raw(t, map[string]any{"det": v, "rnd": v})})
		}
		res, err := f.svc.Insert(f.ctx, owner, f.vault, "pins", req)
		if err != nil {
			t.Fatal(err)
		}
		for j, r := range res.Records {
			v := fmt.Sprintf("%04d", (start+j)*7)
			for _, col := range []string{"det", "rnd"} {
				tok := r.Tokens[col]
				if len(tok) != 4 || tok == v {
					t.Fatalf("%s token %q of a four-digit value", col, tok)
				}
				if other, taken := byToken[tok]; taken && !(col == "det" && other == "det:"+v) {
					t.Fatalf("token %q issued twice: for %s and for %s:%s", tok, other, col, v)
				}
				byToken[tok] = col + ":" + v
			}
			det[v] = r.Tokens["det"]
		}
	}
	// The same values again: the same deterministic tokens.
	var req records.InsertRequest
	req.Tokenization = true
	for i := 0; i < records.MaxItems; i++ {
		req.Records = append(req.Records, records.RecordFields{Fields: raw(t, map[string]any{"det": fmt.Sprintf("%04d", i*7)})})
	}
	res, err := f.svc.Insert(f.ctx, owner, f.vault, "pins", req)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res.Records {
		if v := fmt.Sprintf("%04d", i*7); r.Tokens["det"] != det[v] {
			t.Errorf("value %s: token %s on the second insert, %s on the first", v, r.Tokens["det"], det[v])
		}
	}
	// Every token names its own value.
	var params []records.DetokenizeParameter
	var want []string
	for tok, what := range byToken {
		params = append(params, records.DetokenizeParameter{Token: tok})
		want = append(want, what[4:])
		if len(params) == records.MaxItems {
			got, err := f.svc.Detokenize(f.ctx, owner, f.vault, records.DetokenizeRequest{Parameters: params})
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range got.Records {
				if r.Value != want[i] {
					t.Fatalf("token %s detokenizes to %q, want %q", r.Token, r.Value, want[i])
				}
			}
			params, want = nil, nil
		}
	}
}
