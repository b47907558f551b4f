package records_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skyflow-oss/skyflow/domain/records"
	"github.com/skyflow-oss/skyflow/domain/records/tokens"
	"github.com/skyflow-oss/skyflow/eventing/catalog"
)

// known are values no table may hold in plaintext after they are inserted.
var known = map[string]any{
	"name": "Bartholomew Quixote", "email": "bart.quixote@example.org", "ssn": "321-54-9876",
	"card_number": "5555555555554444", "phone": "+442071838750", "notes": "allergic to penicillin",
	"profile": map[string]any{"secret": "correct horse battery staple"},
}

// TestTheDatabaseNeverHoldsPlaintext scans every table of the database,
// as text, after inserts, an update, a batch and reads, and finds none of
// the values.
func TestTheDatabaseNeverHoldsPlaintext(t *testing.T) {
	f := setup(t)
	rec := f.insert("customers", known)
	if _, err := f.svc.Update(f.ctx, owner, f.vault, "customers", rec.SkyflowID, records.UpdateRequest{Record: records.RecordFields{Fields: raw(t, map[string]any{"notes": "allergic to penicillin"})}}); err != nil {
		t.Fatal(err)
	}
	f.insert("payments", map[string]any{"card": "5555555555554444", "amount": 10})
	if _, err := f.svc.Get(f.ctx, owner, f.vault, "customers", records.GetParams{ColumnName: "email", ColumnValues: []string{"bart.quixote@example.org"}, Limit: 25}); err != nil {
		t.Fatal(err)
	}
	waitForEvents(t, f)

	rows, err := f.pool.Query(f.ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		rows.Scan(&name)
		tables = append(tables, name)
	}
	searched := 0
	for _, table := range tables {
		var dump string
		// Every row as text; bytea columns print as hex, so also look for
		// the values' hex forms.
		if err := f.pool.QueryRow(f.ctx, `SELECT coalesce(string_agg(t::text, E'\n'), '') FROM `+quoteIdent(table)+` t`).Scan(&dump); err != nil {
			t.Fatalf("dumping %s: %v", table, err)
		}
		searched += len(dump)
		for col, v := range known {
			s, ok := v.(string)
			if !ok {
				s = "correct horse battery staple"
			}
			if strings.Contains(dump, s) || strings.Contains(dump, hexOf(s)) {
				t.Errorf("table %s holds the plaintext of %s", table, col)
			}
		}
	}
	if searched < 1000 {
		t.Fatalf("the dump of %v was only %d bytes: the scan looked at nothing", tables, searched)
	}
}

func hexOf(s string) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(digits[s[i]>>4])
		b.WriteByte(digits[s[i]&15])
	}
	return b.String()
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// waitForEvents waits until the outbox has sent everything.
func waitForEvents(t *testing.T, f *fixture) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for f.count(`SELECT count(*) FROM outbox WHERE sent_at IS NULL`) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the outbox did not empty")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAFailingItemOfABatchWritesNothing: without continueOnError the first
// failure fails the request, and neither records nor events are written.
func TestAFailingItemOfABatchWritesNothing(t *testing.T) {
	f := setup(t)
	existing := f.insert("customers", map[string]any{"email": "taken@example.org"})
	before := f.counts()
	for name, bad := range map[string]records.BatchRecord{
		"invalid value":   {TableName: "customers", Method: "POST", Fields: raw(t, map[string]any{"ssn": "not an ssn"})},
		"unknown table":   {TableName: "nope", Method: "POST", Fields: raw(t, map[string]any{"x": 1})},
		"unique conflict": {TableName: "customers", Method: "POST", Fields: raw(t, map[string]any{"email": "taken@example.org"})},
		"missing record":  {TableName: "customers", Method: "DELETE", ID: "6ba7b810-9dad-11d1-80b4-00c04fd430c8"},
	} {
		_, err := f.svc.Batch(f.ctx, owner, f.vault, records.BatchRequest{Records: []records.BatchRecord{
			{TableName: "customers", Method: "POST", Fields: raw(t, map[string]any{"name": "first"})},
			{TableName: "payments", Method: "POST", Fields: raw(t, map[string]any{"card": "4111111111111111"})},
			{TableName: "customers", Method: "PUT", ID: existing.SkyflowID, Fields: raw(t, map[string]any{"notes": "changed"})},
			bad,
		}})
		if status(err) < 400 || status(err) >= 500 {
			t.Errorf("%s: batch error %v, want a 4xx", name, err)
		}
		if !strings.Contains(err.Error(), "records[3]") {
			t.Errorf("%s: the error %q does not name the failing operation records[3]", name, err)
		}
		if after := f.counts(); after != before {
			t.Errorf("%s: the batch left rows behind: before %v, after %v", name, before, after)
		}
	}
	// The update in the failed batches never landed.
	one, err := f.svc.GetOne(f.ctx, owner, f.vault, "customers", existing.SkyflowID, records.GetParams{})
	if err != nil || one.Fields["notes"] != nil {
		t.Errorf("the record after failed batches: %v, %v; want no notes", one, err)
	}
}

// counts is the number of rows of every vault table and of the outbox,
// audit events included (a failed request writes none either).
func (f *fixture) counts() [5]int {
	return [5]int{
		f.count(`SELECT count(*) FROM vault_records`), f.count(`SELECT count(*) FROM vault_cells`),
		f.count(`SELECT count(*) FROM vault_tokens`), f.count(`SELECT count(*) FROM outbox WHERE type <> 'com.skyflow.audit.vault.accessed'`),
		f.count(`SELECT count(*) FROM outbox WHERE type = 'com.skyflow.audit.vault.accessed' AND convert_from(event, 'UTF8')::jsonb -> 'data' ->> 'result' = 'allowed'`),
	}
}

func TestBatchWithContinueOnErrorAnswersEachOperation(t *testing.T) {
	f := setup(t)
	rec := f.insert("customers", map[string]any{"name": "Ann"})
	res, err := f.svc.Batch(f.ctx, owner, f.vault, records.BatchRequest{ContinueOnError: true, Records: []records.BatchRecord{
		{TableName: "customers", Method: "POST", Fields: raw(t, map[string]any{"name": "Bob"}), Tokenization: true},
		{TableName: "customers", Method: "POST", Fields: raw(t, map[string]any{"ssn": "bad"})},
		{TableName: "customers", Method: "GET", ID: rec.SkyflowID, Redaction: "PLAIN_TEXT"},
		{TableName: "customers", Method: "PUT", ID: rec.SkyflowID, Fields: raw(t, map[string]any{"notes": "n"})},
		{TableName: "customers", Method: "DELETE", ID: "6ba7b810-9dad-11d1-80b4-00c04fd430c8"},
		{TableName: "customers", Method: "PATCH"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var statuses []int
	for _, r := range res.Responses {
		statuses = append(statuses, r.(records.BatchItem).Status)
	}
	if want := []int{200, 400, 200, 200, 404, 400}; !slices.Equal(statuses, want) {
		t.Fatalf("statuses %v, want %v", statuses, want)
	}
	body, _ := json.Marshal(res)
	if !regexp.MustCompile(`"Body":\{"error":"records\[1\]: `).Match(body) {
		t.Errorf("a failed operation's Body is not {\"error\": …} naming it: %s", body)
	}
	if strings.Contains(string(body), "bad") {
		t.Errorf("the response echoes a value sent: %s", body)
	}
	// Ann, Bob: the failed insert left nothing.
	if n := f.count(`SELECT count(*) FROM vault_records`); n != 2 {
		t.Errorf("%d records after the batch, want 2", n)
	}
}

func TestUpsertUpdatesTheRecordHoldingTheUniqueValue(t *testing.T) {
	f := setup(t)
	first := f.insert("customers", map[string]any{"email": "u@example.org", "notes": "one"})
	res, err := f.svc.Insert(f.ctx, owner, f.vault, "customers", records.InsertRequest{Upsert: "email", Tokenization: true, Records: []records.RecordFields{
		{Fields: raw(t, map[string]any{"email": "u@example.org", "notes": "two"})},
		{Fields: raw(t, map[string]any{"email": "v@example.org", "notes": "new"})},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records[0].SkyflowID != first.SkyflowID {
		t.Errorf("upsert of an existing email made %s, want the existing record %s", res.Records[0].SkyflowID, first.SkyflowID)
	}
	if res.Records[1].SkyflowID == first.SkyflowID {
		t.Error("upsert of a new email reused the existing record")
	}
	if res.Records[0].Tokens["email"] != first.Tokens["email"] {
		t.Error("the deterministic token of the upserted email changed")
	}
	one, _ := f.svc.GetOne(f.ctx, owner, f.vault, "customers", first.SkyflowID, records.GetParams{Redaction: "PLAIN_TEXT"})
	if string(one.Fields["notes"]) != `"two"` {
		t.Errorf("notes after upsert = %s, want \"two\"", one.Fields["notes"])
	}
	// Without upsert, the same unique value is a conflict that writes nothing.
	before := f.counts()
	_, err = f.svc.Insert(f.ctx, owner, f.vault, "customers", records.InsertRequest{Records: []records.RecordFields{{Fields: raw(t, map[string]any{"email": "u@example.org"})}}})
	if status(err) != http.StatusConflict || strings.Contains(err.Error(), "u@example.org") {
		t.Errorf("duplicate unique value: %v, want a 409 that does not echo it", err)
	}
	if f.counts() != before {
		t.Error("the refused duplicate left rows behind")
	}
}

func TestDeterministicTokensAreStableAndSharedByAColumnGroup(t *testing.T) {
	f := setup(t)
	a := f.insert("customers", map[string]any{"ssn": "123-45-6789", "card_number": "4111111111111111", "age": 42})
	b := f.insert("customers", map[string]any{"ssn": "123-45-6789", "card_number": "4111111111111111", "age": 42})
	p := f.insert("payments", map[string]any{"card": "4111111111111111"})
	for _, col := range []string{"ssn", "card_number", "age"} {
		if a.Tokens[col] != b.Tokens[col] || a.Tokens[col] == "" {
			t.Errorf("%s: tokens %q and %q for the same value, want the same", col, a.Tokens[col], b.Tokens[col])
		}
	}
	if p.Tokens["card"] != a.Tokens["card_number"] {
		t.Errorf("column group cards: payments.card token %q, customers.card_number token %q, want the same", p.Tokens["card"], a.Tokens["card_number"])
	}
	c := f.insert("customers", map[string]any{"ssn": "234-56-7891", "name": "x"})
	d := f.insert("customers", map[string]any{"name": "x"})
	if c.Tokens["ssn"] == a.Tokens["ssn"] {
		t.Error("different values got the same deterministic token")
	}
	if c.Tokens["name"] == d.Tokens["name"] {
		t.Error("NON_DETERMINISTIC_UUID gave equal values the same token")
	}
	// tokenize answers the issued token.
	res, err := f.svc.Tokenize(f.ctx, owner, f.vault, records.TokenizeRequest{Parameters: []records.TokenizeParameter{
		{Value: json.RawMessage(`"123-45-6789"`), ColumnGroup: "customers.ssn"},
		{Value: json.RawMessage(`"4111111111111111"`), ColumnGroup: "cards"},
	}})
	if err != nil || res.Records[0].Token != a.Tokens["ssn"] || res.Records[1].Token != a.Tokens["card_number"] {
		t.Errorf("tokenize = %+v, %v; want the issued tokens", res, err)
	}
	if _, err := f.svc.Tokenize(f.ctx, owner, f.vault, records.TokenizeRequest{Parameters: []records.TokenizeParameter{{Value: json.RawMessage(`"345-67-8912"`), ColumnGroup: "customers.ssn"}}}); status(err) != 404 || strings.Contains(err.Error(), "345-67-8912") {
		t.Errorf("tokenize of a value the vault does not hold: %v, want a 404 without the value", err)
	}
}

func TestFormatPreservingTokensKeepTheFormat(t *testing.T) {
	f := setup(t)
	for i, card := range []string{"4111111111111111", "5555555555554444", "378282246310005", "6011111111111117"} {
		ssn := []string{"123-45-6789", "234-56-7891", "345-67-8912", "456-78-9123"}[i]
		r := f.insert("customers", map[string]any{"card_number": card, "ssn": ssn, "phone": "+14155558889"})
		tok := r.Tokens["card_number"]
		if len(tok) != len(card) || tok[:6] != card[:6] || tok[len(tok)-4:] != card[len(card)-4:] || tok == card {
			t.Errorf("card %s: PRESERVE_LEFT_6_RIGHT_4 token %s", card[:6]+"…", tok)
		}
		if tokens.Luhn(tok) {
			t.Errorf("card token %s passes the Luhn check", tok)
		}
		if !regexp.MustCompile(`^\d{3}-\d{2}-\d{4}$`).MatchString(r.Tokens["ssn"]) || r.Tokens["ssn"] == ssn {
			t.Errorf("DETERMINISTIC_FPT token of an SSN = %q", r.Tokens["ssn"])
		}
		if !regexp.MustCompile(`^\+\d{11}$`).MatchString(r.Tokens["phone"]) {
			t.Errorf("NON_DETERMINISTIC_FPT token of a phone = %q", r.Tokens["phone"])
		}
	}
}

func TestQueryAnswersFromBlindIndexes(t *testing.T) {
	f := setup(t)
	a := f.insert("customers", map[string]any{"name": "Ann", "email": "ann@example.org", "age": 30, "notes": "x"})
	f.insert("customers", map[string]any{"name": "Bob", "email": "bob@example.org", "age": 30})
	f.insert("customers", map[string]any{"name": "Cy", "email": "cy@example.org", "age": 31})
	q := func(sql string) (*records.GetResponse, error) {
		return f.svc.Query(f.ctx, owner, f.vault, records.QueryRequest{Query: sql})
	}
	res, err := q(`SELECT name, email FROM customers WHERE email = 'ann@example.org'`)
	if err != nil || len(res.Records) != 1 || string(res.Records[0].Fields["name"]) != `"Ann"` || res.Records[0].Fields["skyflow_id"] == nil {
		t.Fatalf("query by email = %+v, %v", res, err)
	}
	if res.Records[0].Fields["notes"] != nil {
		t.Error("the query returned a column it did not select")
	}
	res, err = q(`SELECT * FROM customers WHERE age = 30 AND name IN ('Ann', 'Cy')`)
	if err != nil || len(res.Records) != 1 || string(res.Records[0].Fields["skyflow_id"]) != `"`+a.SkyflowID+`"` {
		t.Errorf("query with AND and IN = %+v, %v; want only Ann", res, err)
	}
	res, err = q(`SELECT name FROM customers WHERE age = '30' LIMIT 1`)
	if err != nil || len(res.Records) != 1 {
		t.Errorf("query with LIMIT 1 = %+v, %v", res, err)
	}
	for _, bad := range []string{
		`SELECT * FROM customers WHERE email = 'a' OR '1'='1'`,
		`SELECT * FROM customers; DROP TABLE vault_cells`,
		`SELECT * FROM customers WHERE profile = '{}'`,
		`SELECT * FROM nope WHERE a = 'b'`,
		`SELECT * FROM customers WHERE age = 'old'`,
	} {
		if _, err := q(bad); status(err) != 400 && status(err) != 404 {
			t.Errorf("query %q: %v, want a 400 or 404", bad, err)
		}
	}
	if n := f.count(`SELECT count(*) FROM vault_cells`); n == 0 {
		t.Fatal("vault_cells is gone")
	}
}

// TestEveryEventMatchesTheCatalogAndCarriesNoValue: the events of a
// session validate against eventing/catalog, and no value appears in them.
func TestEveryEventMatchesTheCatalogAndCarriesNoValue(t *testing.T) {
	f := setup(t)
	// Each operation as its function runs it, with the function's source.
	as := func(fn string) *records.Service { return records.New(f.backend, "/skyflow/functions/"+fn) }
	ins, err := as("records-insert").Insert(f.ctx, owner, f.vault, "customers", records.InsertRequest{Records: []records.RecordFields{{Fields: raw(t, known)}}, Tokenization: true})
	if err != nil {
		t.Fatal(err)
	}
	rec := ins.Records[0]
	as("records-update").Update(f.ctx, owner, f.vault, "customers", rec.SkyflowID, records.UpdateRequest{Record: records.RecordFields{Fields: raw(t, map[string]any{"notes": "allergic to penicillin"})}})
	as("tokens-detokenize").Detokenize(f.ctx, support, f.vault, records.DetokenizeRequest{Parameters: []records.DetokenizeParameter{{Token: rec.Tokens["name"]}}})
	as("records-get-one").GetOne(f.ctx, nobody, f.vault, "customers", rec.SkyflowID, records.GetParams{}) // refused: audited as denied
	as("records-delete").Delete(f.ctx, owner, f.vault, "customers", rec.SkyflowID)
	waitForEvents(t, f)
	seen := map[string]int{}
	results := map[string]bool{}
	for _, e := range f.sink.Events() {
		if e.Source() == "/tests/vaults" {
			continue // the fixture's vault creation
		}
		seen[e.Type()]++
		if e.Type() == records.AccessType {
			var a struct{ Result, Action string }
			json.Unmarshal(e.Data(), &a)
			results[a.Action+":"+a.Result] = true
		}
		if err := catalog.Validate(e); err != nil {
			t.Errorf("%s: %v", e.Type(), err)
		}
		raw, _ := json.Marshal(e)
		for col, v := range known {
			if s, ok := v.(string); ok && strings.Contains(string(raw), s) {
				t.Errorf("a %s event carries the value of %s", e.Type(), col)
			}
		}
	}
	for _, typ := range []string{records.CreatedType, records.UpdatedType, records.DeletedType, records.AccessType} {
		if seen[typ] == 0 {
			t.Errorf("no %s event; got %v", typ, seen)
		}
	}
	for _, want := range []string{"insert:allowed", "update:allowed", "detokenize:allowed", "read:denied", "delete:allowed"} {
		if !results[want] {
			t.Errorf("no audit event %s; got %v", want, results)
		}
	}
}
