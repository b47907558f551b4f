package tests

// End-to-end golden tests of the vault API: every Data API operation of
// API.md and the vault management operations, called over real HTTP on
// the local platform exactly as the gateway will call them (a binary-mode
// CloudEvent per request, runtime/request's extensions), with each answer
// compared, volatile values replaced by named placeholders, with a golden
// file under testdata/golden/vault_api. The golden files are the wire
// contract: field names, nesting, enum spellings, masks and the error
// envelope exactly as the Skyflow Data API v1 has them. Rewrite them with
//
//	go test -run TestVaultAPI ./tests/ -update-golden
//
// and review every change against API.md.

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// vaultAPISchema is domain/records' test schema (fixture_test.go; here
// ssn is MASKED by default): a column of every data type and token type, a
// unique column, validations, masks and a column group shared by two
// tables.
const vaultAPISchema = `{
  "name": "customers vault",
  "description": "golden tests",
  "tables": [
    {"name": "customers", "columns": [
      {"name": "name",        "data_type": "string",   "token_type": "NON_DETERMINISTIC_UUID", "redaction": "MASKED", "mask": "SHOW_FIRST_1_LAST_0"},
      {"name": "email",       "data_type": "string",   "token_type": "DETERMINISTIC_UUID", "unique": true, "mask": "EMAIL", "validation": {"kind": "EMAIL"}},
      {"name": "ssn",         "data_type": "string",   "token_type": "DETERMINISTIC_FPT", "redaction": "MASKED", "mask": "SHOW_LAST_4", "validation": {"kind": "SSN"}},
      {"name": "card_number", "data_type": "string",   "token_type": "DETERMINISTIC_PRESERVE_LEFT_6_RIGHT_4", "mask": "SHOW_LAST_4", "validation": {"kind": "CARD_NUMBER"}, "column_group": "cards"},
      {"name": "phone",       "data_type": "string",   "token_type": "NON_DETERMINISTIC_FPT", "mask": "SHOW_LAST_4", "validation": {"kind": "PHONE_E164"}},
      {"name": "age",         "data_type": "integer",  "token_type": "DETERMINISTIC_UUID"},
      {"name": "score",       "data_type": "float",    "token_type": "NON_DETERMINISTIC_UUID"},
      {"name": "active",      "data_type": "bool",     "token_type": "NON_DETERMINISTIC_UUID"},
      {"name": "birthday",    "data_type": "date",     "token_type": "DETERMINISTIC_UUID"},
      {"name": "seen_at",     "data_type": "datetime", "token_type": "NON_DETERMINISTIC_UUID"},
      {"name": "profile",     "data_type": "json",     "token_type": "NON_DETERMINISTIC_UUID"},
      {"name": "tags",        "data_type": "array",    "token_type": "NON_DETERMINISTIC_UUID"},
      {"name": "notes",       "data_type": "string"}
    ]},
    {"name": "payments", "columns": [
      {"name": "card", "data_type": "string", "token_type": "DETERMINISTIC_PRESERVE_LEFT_6_RIGHT_4", "validation": {"kind": "CARD_NUMBER"}, "column_group": "cards"},
      {"name": "amount", "data_type": "float"}
    ]}
  ]
}`

// vaultAPIPolicy is the vault's first policy.
const vaultAPIPolicy = `{"roles": {
  "owner":   {"tables": {"*": {"insert": true, "update": true, "delete": true, "read": {"*": "PLAIN_TEXT"}}}, "tokenize": true, "detokenize": true},
  "writer":  {"tables": {"customers": {"insert": true, "update": true}}},
  "support": {"tables": {"customers": {"read": {"*": "DEFAULT", "name": "PLAIN_TEXT"}}}, "detokenize": true},
  "auditor": {"tables": {"customers": {"read": {"*": "REDACTED"}}}},
  "steward": {"manage": true}
}}`

// vaultAPIPolicyWithAnalyst is the second: an analyst may read two columns masked.
const vaultAPIPolicyWithAnalyst = `{"roles": {
  "owner":   {"tables": {"*": {"insert": true, "update": true, "delete": true, "read": {"*": "PLAIN_TEXT"}}}, "tokenize": true, "detokenize": true},
  "writer":  {"tables": {"customers": {"insert": true, "update": true}}},
  "support": {"tables": {"customers": {"read": {"*": "DEFAULT", "name": "PLAIN_TEXT"}}}, "detokenize": true},
  "auditor": {"tables": {"customers": {"read": {"*": "REDACTED"}}}},
  "steward": {"manage": true},
  "analyst": {"tables": {"customers": {"read": {"email": "MASKED", "card_number": "MASKED"}}}}
}}`

// The principals, as the gateway names them in the extensions.
var (
	asAdmin    = ext{"principal": "user:admin", "roles": "admin"}
	asOwner    = ext{"principal": "sa:owner", "roles": "owner"}
	asWriter   = ext{"principal": "sa:writer", "roles": "writer"}
	asSupport  = ext{"principal": "user:support", "roles": "support"}
	asAuditor  = ext{"principal": "user:auditor", "roles": "auditor"}
	asSteward  = ext{"principal": "user:steward", "roles": "steward"}
	asAnalyst  = ext{"principal": "user:analyst", "roles": "analyst"}
	asStranger = ext{"principal": "user:stranger", "roles": "stranger other"}
)

// The records the test stores. Every string value is sensitive: no error
// body may contain one.
var (
	annFields = map[string]any{
		"name": "Ann Smith", "email": "ann.smith@example.com", "ssn": "123-45-6789",
		"card_number": "4111111111111111", "phone": "+14155558889", "age": 42, "score": 7.5,
		"active": true, "birthday": "1984-02-29", "seen_at": "2024-05-01T10:00:00Z",
		"profile": map[string]any{"tier": "gold"}, "tags": []string{"a", "b"}, "notes": "prefers email",
	}
	bobFields = map[string]any{
		"name": "Bob Jones", "email": "bob.jones@example.com", "ssn": "234-56-7890",
		"card_number": "5555555555554444", "phone": "+442071838750", "age": 35, "score": 0.25,
		"active": false, "birthday": "1990-07-04", "seen_at": "2024-06-02T08:30:00Z",
		"profile": map[string]any{"vip": true}, "tags": []string{"x"}, "notes": "none",
	}
	caraFields = map[string]any{
		"name": "Cara Diaz", "email": "cara.diaz@example.com", "ssn": "345-67-8901",
		"card_number": "378282246310005", "phone": "+14155550123",
	}
	danFields = map[string]any{"name": "Dan Brown", "email": "dan.brown@example.com"}
	// unheldCard is a valid card number the vault never stores.
	unheldCard = "4012888888881881"
	// badCard fails the Luhn check.
	badCard = "4111111111111112"
)

// sensitiveValues are the values sent that no error may echo.
func sensitiveValues() []string {
	out := []string{unheldCard, badCard, "Eve Adams", "eve.adams@example.com", "Fay Ray", "fay.ray@example.com",
		"Gus Grant", "gus.grant@example.com", "+14155550000", "Annie"}
	for _, f := range []map[string]any{annFields, bobFields, caraFields, danFields} {
		for _, v := range f {
			if s, ok := v.(string); ok && len(s) >= 4 {
				out = append(out, s)
			}
		}
	}
	return out
}

// inserted is one record of an insert answer.
type inserted struct {
	SkyflowID string            `json:"skyflow_id"`
	Tokens    map[string]string `json:"tokens"`
}

type insertAnswer struct {
	Records []inserted `json:"records"`
}

func recordsBody(rs ...map[string]any) map[string]any {
	out := make([]any, len(rs))
	for i, r := range rs {
		out[i] = map[string]any{"fields": r}
	}
	return map[string]any{"records": out}
}

func TestVaultAPI(t *testing.T) {
	p := startPlatform(t, options{})
	c := newVaultClient(t, p)

	var (
		vaultA, vaultB string
		ann, bob, cara inserted
		dan, eve, gus  inserted
		annTokens      map[string]string // from a tokenized read
		pay            inserted
	)
	// in is the extensions of a request on a vault, table and record.
	in := func(who ext, vault string, kv ...string) ext {
		return who.with(append([]string{"vaultid", vault}, kv...)...)
	}
	missingVault := strings.ReplaceAll(uuid.NewString(), "-", "")
	randomID := uuid.NewString()
	randomToken := uuid.NewString()
	c.name(missingVault, "<vault:missing>")
	c.name(randomID, "<id:random>")
	c.name(randomToken, "<token:random>")

	t.Run("vaults/create", func(t *testing.T) {
		body := json.RawMessage(strings.TrimSuffix(vaultAPISchema, "}") + `, "policy": ` + vaultAPIPolicy + `}`)
		status, b, _ := c.call(t, opVaultCreate, asAdmin, body)
		if status != 200 {
			t.Fatalf("creating vault A: %d %s", status, b)
		}
		vaultA = decode[struct{ ID string }](t, b).ID
		c.name(vaultA, "<vault:A>")
		c.golden(t, "vault_create", status, b)

		status, b, _ = c.call(t, opVaultCreate, asAdmin, body)
		if status != 200 {
			t.Fatalf("creating vault B: %d %s", status, b)
		}
		vaultB = decode[struct{ ID string }](t, b).ID
		c.name(vaultB, "<vault:B>")
		if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(vaultA) || vaultA == vaultB {
			t.Fatalf("vault ids %q and %q", vaultA, vaultB)
		}

		c.expect(t, "vault_create_not_admin", 403, opVaultCreate, asOwner, body)
		c.expect(t, "vault_create_bad_schema", 400, opVaultCreate, asAdmin,
			json.RawMessage(`{"name":"v","tables":[{"name":"t","columns":[{"name":"c","data_type":"money"}]}]}`))
		c.expect(t, "vault_create_bad_policy", 400, opVaultCreate, asAdmin,
			json.RawMessage(strings.TrimSuffix(vaultAPISchema, "}")+`, "policy": {"roles": {"r": {"tables": {"customers": {"read": {"nope": "PLAIN_TEXT"}}}}}}}`))
	})
	if vaultA == "" || vaultB == "" {
		t.Fatal("no vaults to test on")
	}

	t.Run("vaults/get", func(t *testing.T) {
		c.expect(t, "vault_get", 200, opVaultGet, in(asSteward, vaultA), nil)
		_, admin, _ := c.call(t, opVaultGet, in(asAdmin, vaultA), nil)
		_, steward, _ := c.call(t, opVaultGet, in(asSteward, vaultA), nil)
		if !jsonEqual(t, admin, steward) {
			t.Errorf("the administrator and the steward see different vaults:\n%s\n%s", admin, steward)
		}
		c.expect(t, "vault_get_not_manager", 403, opVaultGet, in(asWriter, vaultA), nil)
		stranger := c.expect(t, "vault_not_found", 404, opVaultGet, in(asStranger, vaultA), nil)
		_, missing, _ := c.call(t, opVaultGet, in(asAdmin, missingVault), nil)
		if string(stranger) != string(missing) {
			t.Errorf("a vault the caller does not know and a missing vault answer differently:\n%s\n%s", stranger, missing)
		}
	})

	t.Run("insert/plain", func(t *testing.T) {
		status, b, _ := c.call(t, opInsert, in(asOwner, vaultA, "table", "customers"), recordsBody(annFields))
		if status != 200 {
			t.Fatalf("insert: %d %s", status, b)
		}
		ann = decode[insertAnswer](t, b).Records[0]
		c.nameRecord("ann", ann.SkyflowID, nil)
		c.golden(t, "insert_plain", status, b)
		if len(ann.Tokens) != 0 {
			t.Errorf("an insert without tokenization returned tokens %v", ann.Tokens)
		}
	})

	t.Run("insert/tokenized", func(t *testing.T) {
		status, b, _ := c.call(t, opInsert, in(asWriter, vaultA, "table", "customers"),
			map[string]any{"records": recordsBody(bobFields, caraFields)["records"], "tokenization": true})
		if status != 200 {
			t.Fatalf("insert: %d %s", status, b)
		}
		recs := decode[insertAnswer](t, b).Records
		if len(recs) != 2 {
			t.Fatalf("%d records answered for 2 inserted", len(recs))
		}
		bob, cara = recs[0], recs[1]
		c.nameRecord("bob", bob.SkyflowID, bob.Tokens)
		c.nameRecord("cara", cara.SkyflowID, cara.Tokens)
		c.golden(t, "insert_tokenized", status, b)
		checkTokenShapes(t, bobFields, bob.Tokens)
		checkTokenShapes(t, caraFields, cara.Tokens)
	})

	t.Run("insert/upsert", func(t *testing.T) {
		status, b, _ := c.call(t, opInsert, in(asWriter, vaultA, "table", "customers"), map[string]any{
			"records":      recordsBody(map[string]any{"email": bobFields["email"], "notes": "upserted"}, danFields)["records"],
			"tokenization": true, "upsert": "email",
		})
		if status != 200 {
			t.Fatalf("upsert: %d %s", status, b)
		}
		recs := decode[insertAnswer](t, b).Records
		if len(recs) != 2 || recs[0].SkyflowID != bob.SkyflowID || recs[1].SkyflowID == bob.SkyflowID {
			t.Fatalf("upsert answered %s; want bob's record updated and a new one", b)
		}
		if recs[0].Tokens["email"] != bob.Tokens["email"] {
			t.Errorf("the deterministic email token changed on upsert")
		}
		dan = recs[1]
		c.nameRecord("dan", dan.SkyflowID, dan.Tokens)
		c.golden(t, "insert_upsert", status, b)
		// Without upsert the same email is a conflict that names the
		// column, not the value.
		c.expect(t, "insert_unique_conflict", 409, opInsert, in(asWriter, vaultA, "table", "customers"),
			recordsBody(map[string]any{"email": bobFields["email"]}))
		c.expect(t, "insert_upsert_not_unique", 400, opInsert, in(asWriter, vaultA, "table", "customers"),
			map[string]any{"records": recordsBody(map[string]any{"notes": "x"})["records"], "upsert": "notes"})
	})

	t.Run("insert/refused", func(t *testing.T) {
		c.expect(t, "insert_denied", 403, opInsert, in(asSupport, vaultA, "table", "customers"), recordsBody(map[string]any{"notes": "x"}))
		c.expect(t, "insert_bad_value", 400, opInsert, in(asOwner, vaultA, "table", "customers"),
			recordsBody(map[string]any{"notes": "fine"}, map[string]any{"card_number": badCard}))
		c.expect(t, "insert_unknown_column", 400, opInsert, in(asOwner, vaultA, "table", "customers"),
			recordsBody(map[string]any{"nope": unheldCard}))
		c.expect(t, "insert_wrong_type", 400, opInsert, in(asOwner, vaultA, "table", "customers"),
			recordsBody(map[string]any{"age": unheldCard + "x"}))
	})

	// A record that a batch DELETE removes.
	var tmp inserted
	t.Run("batch/atomic", func(t *testing.T) {
		_, b, _ := c.call(t, opInsert, in(asOwner, vaultA, "table", "customers"), recordsBody(map[string]any{"notes": "temporary"}))
		tmp = decode[insertAnswer](t, b).Records[0]
		c.nameRecord("tmp", tmp.SkyflowID, nil)

		status, b, _ := c.call(t, opBatch, in(asOwner, vaultA), map[string]any{"records": []any{
			// quorum: as Skyflow's Node SDK sends every insert.
			map[string]any{"tableName": "customers", "method": "POST", "quorum": true, "fields": map[string]any{"name": "Eve Adams", "email": "eve.adams@example.com"}, "tokenization": true},
			map[string]any{"tableName": "customers", "method": "GET", "ID": ann.SkyflowID, "redaction": "MASKED"},
			map[string]any{"tableName": "customers", "method": "PUT", "ID": bob.SkyflowID, "fields": map[string]any{"notes": "batch put"}},
			map[string]any{"tableName": "payments", "method": "POST", "fields": map[string]any{"card": bobFields["card_number"], "amount": 12.5}, "tokenization": true},
			map[string]any{"tableName": "customers", "method": "DELETE", "ID": tmp.SkyflowID},
		}})
		if status != 200 {
			t.Fatalf("batch: %d %s", status, b)
		}
		res := decode[struct {
			VaultID   string            `json:"vaultID"`
			Responses []json.RawMessage `json:"responses"`
		}](t, b)
		if res.VaultID != vaultA || len(res.Responses) != 5 {
			t.Fatalf("batch answered %s", b)
		}
		eve = decode[insertAnswer](t, res.Responses[0]).Records[0]
		pay = decode[insertAnswer](t, res.Responses[3]).Records[0]
		if pay.Tokens["card"] != bob.Tokens["card_number"] {
			t.Errorf("the same card in column group cards got two tokens: %q and %q", pay.Tokens["card"], bob.Tokens["card_number"])
		}
		c.nameRecord("eve", eve.SkyflowID, eve.Tokens)
		c.nameRecord("pay", pay.SkyflowID, pay.Tokens)
		c.golden(t, "batch", status, b)
	})

	t.Run("batch/atomic_failure", func(t *testing.T) {
		c.expect(t, "batch_failure", 400, opBatch, in(asOwner, vaultA), map[string]any{"records": []any{
			map[string]any{"tableName": "customers", "method": "POST", "fields": map[string]any{"name": "Fay Ray", "email": "fay.ray@example.com"}},
			map[string]any{"tableName": "customers", "method": "POST", "fields": map[string]any{"nope": unheldCard}},
		}})
		// Nothing of the batch was written.
		c.expect(t, "batch_failure_wrote_nothing", 200, opGet, in(asOwner, vaultA, "table", "customers",
			"query", queryOf("column_name", "email", "column_values", "fay.ray@example.com")), nil)
		c.expect(t, "batch_bad_method", 400, opBatch, in(asOwner, vaultA), map[string]any{"records": []any{
			map[string]any{"tableName": "customers", "method": "PATCH", "ID": ann.SkyflowID},
		}})
	})

	t.Run("batch/continueOnError", func(t *testing.T) {
		status, b, _ := c.call(t, opBatch, in(asOwner, vaultA), map[string]any{"continueOnError": true, "records": []any{
			map[string]any{"tableName": "customers", "method": "POST", "fields": map[string]any{"name": "Gus Grant", "email": "gus.grant@example.com"}},
			map[string]any{"tableName": "customers", "method": "POST", "fields": map[string]any{"card_number": badCard}},
			map[string]any{"tableName": "customers", "method": "GET", "ID": randomID},
			map[string]any{"tableName": "customers", "method": "DELETE", "ID": "not-a-uuid"},
			map[string]any{"tableName": "nope", "method": "PUT", "ID": ann.SkyflowID, "fields": map[string]any{"notes": "x"}},
		}})
		if status != 200 {
			t.Fatalf("batch: %d %s", status, b)
		}
		res := decode[struct {
			Responses []struct {
				Body   json.RawMessage `json:"Body"`
				Status int             `json:"Status"`
			} `json:"responses"`
		}](t, b)
		if len(res.Responses) != 5 {
			t.Fatalf("batch answered %s", b)
		}
		gus = decode[insertAnswer](t, res.Responses[0].Body).Records[0]
		c.nameRecord("gus", gus.SkyflowID, nil)
		c.golden(t, "batch_continue", status, b)
		for _, r := range res.Responses[1:] {
			if r.Status == 200 || decode[struct{ Error *string }](t, r.Body).Error == nil {
				t.Errorf("a failed operation answered %d %s", r.Status, r.Body)
			}
			c.mu.Lock()
			c.errors = append(c.errors, string(r.Body))
			c.mu.Unlock()
		}
		c.expect(t, "batch_too_many", 400, opBatch, in(asOwner, vaultA), map[string]any{"records": manyOps(26)})
	})

	t.Run("get/by_skyflow_ids", func(t *testing.T) {
		ids := func(extra ...string) string {
			return queryOf(append([]string{"skyflow_ids", ann.SkyflowID, "skyflow_ids", bob.SkyflowID}, extra...)...)
		}
		c.expect(t, "get_ids_plain", 200, opGet, in(asOwner, vaultA, "table", "customers", "query", ids("redaction", "PLAIN_TEXT")), nil)
		c.expect(t, "get_ids_masked_fields", 200, opGet, in(asOwner, vaultA, "table", "customers", "query",
			queryOf("skyflow_ids", ann.SkyflowID, "skyflow_ids", cara.SkyflowID, "redaction", "MASKED",
				"fields", "name", "fields", "email", "fields", "ssn", "fields", "card_number", "fields", "phone")), nil)
		c.expect(t, "get_ids_redacted", 200, opGet, in(asOwner, vaultA, "table", "customers", "query",
			queryOf("skyflow_ids", ann.SkyflowID, "redaction", "REDACTED")), nil)

		// With tokenization the fields are tokens: bob's are those his
		// insert returned; ann's are named here and checked by
		// detokenize below.
		status, b, _ := c.call(t, opGet, in(asOwner, vaultA, "table", "customers", "query",
			queryOf("skyflow_ids", bob.SkyflowID, "skyflow_ids", ann.SkyflowID, "tokenization", "true")), nil)
		if status != 200 {
			t.Fatalf("tokenized get: %d %s", status, b)
		}
		recs := decode[struct {
			Records []struct {
				Fields map[string]any `json:"fields"`
			} `json:"records"`
		}](t, b).Records
		if len(recs) != 2 {
			t.Fatalf("tokenized get: %s", b)
		}
		annTokens = map[string]string{}
		for col, v := range recs[1].Fields {
			if s, ok := v.(string); ok && col != "skyflow_id" && col != "notes" {
				annTokens[col] = s
			}
		}
		c.nameRecord("ann", ann.SkyflowID, annTokens)
		c.golden(t, "get_ids_tokenized", status, b)
		checkTokenShapes(t, annFields, annTokens)

		c.expect(t, "get_ids_support_default", 200, opGet, in(asSupport, vaultA, "table", "customers", "query", ids()), nil)
		c.expect(t, "get_ids_auditor", 200, opGet, in(asAuditor, vaultA, "table", "customers", "query", ids("redaction", "DEFAULT")), nil)
		c.expect(t, "get_support_clearer_than_allowed", 403, opGet, in(asSupport, vaultA, "table", "customers", "query",
			ids("redaction", "MASKED", "fields", "email")), nil)
		c.expect(t, "get_no_read_right", 403, opGet, in(asWriter, vaultA, "table", "customers", "query", ids()), nil)
		c.expect(t, "get_admin_reads_no_data", 403, opGet, in(asAdmin, vaultA, "table", "customers", "query", ids()), nil)
		c.expect(t, "get_ids_missing", 404, opGet, in(asOwner, vaultA, "table", "customers", "query", queryOf("skyflow_ids", randomID)), nil)
		c.expect(t, "get_ids_malformed", 400, opGet, in(asOwner, vaultA, "table", "customers", "query", queryOf("skyflow_ids", "1 OR 1=1")), nil)
		c.expect(t, "get_tokenization_with_redaction", 400, opGet, in(asOwner, vaultA, "table", "customers", "query",
			ids("tokenization", "true", "redaction", "PLAIN_TEXT")), nil)
	})

	t.Run("get/by_column_values", func(t *testing.T) {
		values := []string{"column_name", "email", "column_values", annFields["email"].(string), "column_values", bobFields["email"].(string),
			"column_values", danFields["email"].(string), "column_values", "nobody@example.com", "redaction", "PLAIN_TEXT", "fields", "email", "fields", "name"}
		c.expect(t, "get_column_values", 200, opGet, in(asOwner, vaultA, "table", "customers", "query", queryOf(values...)), nil)
		c.expect(t, "get_column_values_page", 200, opGet, in(asOwner, vaultA, "table", "customers", "query",
			queryOf(append(values, "order_by", "DESCENDING", "limit", "2", "offset", "1")...)), nil)
		c.expect(t, "get_column_values_masked", 200, opGet, in(asOwner, vaultA, "table", "customers", "query",
			queryOf("column_name", "ssn", "column_values", bobFields["ssn"].(string), "redaction", "MASKED", "fields", "ssn", "fields", "email")), nil)
		c.expect(t, "get_column_name_without_values", 400, opGet, in(asOwner, vaultA, "table", "customers", "query", queryOf("column_name", "email")), nil)
		c.expect(t, "get_column_and_ids", 400, opGet, in(asOwner, vaultA, "table", "customers", "query",
			queryOf("column_name", "email", "column_values", annFields["email"].(string), "skyflow_ids", ann.SkyflowID)), nil)
		c.expect(t, "get_column_not_indexed", 400, opGet, in(asOwner, vaultA, "table", "customers", "query",
			queryOf("column_name", "profile", "column_values", "{}")), nil)
	})

	t.Run("get/pages", func(t *testing.T) {
		// Records in order of creation: ann, bob and cara, dan, eve, gus
		// (tmp is deleted); the fourth and fifth are dan and eve.
		c.expect(t, "get_page", 200, opGet, in(asOwner, vaultA, "table", "customers", "query",
			queryOf("offset", "3", "limit", "2", "order_by", "ASCENDING", "fields", "email", "redaction", "PLAIN_TEXT")), nil)
		c.expect(t, "get_page_payments", 200, opGet, in(asOwner, vaultA, "table", "payments"), nil)
		c.expect(t, "get_limit_too_big", 400, opGet, in(asOwner, vaultA, "table", "customers", "query", queryOf("limit", "26")), nil)
		c.expect(t, "get_unknown_parameter", 400, opGet, in(asOwner, vaultA, "table", "customers", "query", queryOf("skyflowids", ann.SkyflowID)), nil)
		c.expect(t, "get_bad_order_by", 400, opGet, in(asOwner, vaultA, "table", "customers", "query", queryOf("order_by", "UP")), nil)
		c.expect(t, "get_bad_redaction", 400, opGet, in(asOwner, vaultA, "table", "customers", "query", queryOf("redaction", "plain")), nil)
	})

	t.Run("get_one", func(t *testing.T) {
		c.expect(t, "get_one", 200, opGetOne, in(asOwner, vaultA, "table", "customers", "skyflowid", ann.SkyflowID, "query", queryOf("redaction", "PLAIN_TEXT")), nil)
		c.expect(t, "get_one_masked_fields", 200, opGetOne, in(asOwner, vaultA, "table", "customers", "skyflowid", ann.SkyflowID,
			"query", queryOf("redaction", "MASKED", "fields", "card_number", "fields", "ssn", "fields", "phone", "fields", "email", "fields", "name")), nil)
		c.expect(t, "get_one_tokenized", 200, opGetOne, in(asOwner, vaultA, "table", "customers", "skyflowid", bob.SkyflowID,
			"query", queryOf("tokenization", "true", "fields", "card_number", "fields", "notes")), nil)
		c.expect(t, "get_one_missing", 404, opGetOne, in(asOwner, vaultA, "table", "customers", "skyflowid", randomID), nil)
		c.expect(t, "get_one_other_table", 404, opGetOne, in(asOwner, vaultA, "table", "payments", "skyflowid", ann.SkyflowID), nil)
		c.expect(t, "get_one_malformed_id", 400, opGetOne, in(asOwner, vaultA, "table", "customers", "skyflowid", "../etc/passwd"), nil)
		c.expect(t, "get_one_unknown_field", 400, opGetOne, in(asOwner, vaultA, "table", "customers", "skyflowid", ann.SkyflowID,
			"query", queryOf("fields", "nope")), nil)
	})

	t.Run("update", func(t *testing.T) {
		status, b, _ := c.call(t, opUpdate, in(asWriter, vaultA, "table", "customers", "skyflowid", ann.SkyflowID), map[string]any{
			"record": map[string]any{"fields": map[string]any{"phone": "+14155550000", "notes": "moved"}}, "tokenization": true,
		})
		if status != 200 {
			t.Fatalf("update: %d %s", status, b)
		}
		res := decode[inserted](t, b)
		if res.Tokens["phone"] == "" || res.Tokens["phone"] == annTokens["phone"] {
			t.Errorf("the new phone number's random token %q; the old one was %q", res.Tokens["phone"], annTokens["phone"])
		}
		c.nameRecord("ann.v2", "", res.Tokens)
		c.golden(t, "update_tokenized", status, b)
		c.expect(t, "update_plain", 200, opUpdate, in(asWriter, vaultA, "table", "customers", "skyflowid", ann.SkyflowID),
			map[string]any{"record": map[string]any{"fields": map[string]any{"notes": "moved again"}}})
		c.expect(t, "update_read_back", 200, opGetOne, in(asOwner, vaultA, "table", "customers", "skyflowid", ann.SkyflowID,
			"query", queryOf("fields", "phone", "fields", "notes")), nil)
		c.expect(t, "update_missing", 404, opUpdate, in(asWriter, vaultA, "table", "customers", "skyflowid", randomID),
			map[string]any{"record": map[string]any{"fields": map[string]any{"notes": "x"}}})
		c.expect(t, "update_unknown_column", 400, opUpdate, in(asWriter, vaultA, "table", "customers", "skyflowid", ann.SkyflowID),
			map[string]any{"record": map[string]any{"fields": map[string]any{"nope": unheldCard}}})
		c.expect(t, "update_skyflow_id", 400, opUpdate, in(asWriter, vaultA, "table", "customers", "skyflowid", ann.SkyflowID),
			map[string]any{"record": map[string]any{"fields": map[string]any{"skyflow_id": randomID}}})
		c.expect(t, "update_denied", 403, opUpdate, in(asSupport, vaultA, "table", "customers", "skyflowid", ann.SkyflowID),
			map[string]any{"record": map[string]any{"fields": map[string]any{"notes": "x"}}})
	})

	t.Run("delete", func(t *testing.T) {
		c.expect(t, "delete", 200, opDelete, in(asOwner, vaultA, "table", "customers", "skyflowid", cara.SkyflowID), nil)
		c.expect(t, "delete_again", 404, opDelete, in(asOwner, vaultA, "table", "customers", "skyflowid", cara.SkyflowID), nil)
		c.expect(t, "delete_read_back", 404, opGetOne, in(asOwner, vaultA, "table", "customers", "skyflowid", cara.SkyflowID), nil)
		c.expect(t, "delete_denied", 403, opDelete, in(asWriter, vaultA, "table", "customers", "skyflowid", ann.SkyflowID), nil)
	})

	t.Run("delete_many", func(t *testing.T) {
		_, b, _ := c.call(t, opInsert, in(asOwner, vaultA, "table", "payments"), recordsBody(map[string]any{"amount": 1}, map[string]any{"amount": 2}))
		two := decode[insertAnswer](t, b).Records
		c.nameRecord("p1", two[0].SkyflowID, nil)
		c.nameRecord("p2", two[1].SkyflowID, nil)
		c.expect(t, "delete_many", 200, opDeleteMany, in(asOwner, vaultA, "table", "payments"),
			map[string]any{"skyflow_ids": []string{two[0].SkyflowID, two[1].SkyflowID}})
		c.expect(t, "delete_many_one_missing", 404, opDeleteMany, in(asOwner, vaultA, "table", "payments"),
			map[string]any{"skyflow_ids": []string{pay.SkyflowID, randomID}})
		// All or none: pay is still there.
		if status, b, _ := c.call(t, opGetOne, in(asOwner, vaultA, "table", "payments", "skyflowid", pay.SkyflowID), nil); status != 200 {
			t.Errorf("a refused delete many deleted a record: %d %s", status, b)
		}
		c.expect(t, "delete_many_empty", 400, opDeleteMany, in(asOwner, vaultA, "table", "payments"), map[string]any{"skyflow_ids": []string{}})
		c.expect(t, "delete_many_too_many", 400, opDeleteMany, in(asOwner, vaultA, "table", "payments"), map[string]any{"skyflow_ids": manyIDs(26)})
	})

	t.Run("detokenize", func(t *testing.T) {
		// Bob's card is in payments too, several times: its token names
		// cells of two columns, and the answer must not depend on which
		// records hold it (support may read customers.card_number but not
		// payments.card; the columns have different masks).
		more := make([]map[string]any, 4)
		for i := range more {
			more[i] = map[string]any{"card": bobFields["card_number"], "amount": i}
		}
		if status, b, _ := c.call(t, opInsert, in(asOwner, vaultA, "table", "payments"), recordsBody(more...)); status != 200 {
			t.Fatalf("inserting payments: %d %s", status, b)
		} else {
			for i, r := range decode[insertAnswer](t, b).Records {
				c.nameRecord(fmt.Sprintf("pay%d", i+2), r.SkyflowID, nil)
			}
		}
		param := func(tok, redaction string) map[string]any {
			return map[string]any{"token": tok, "redaction": redaction}
		}
		c.expect(t, "detokenize_continue", 200, opDetokenize, in(asOwner, vaultA), map[string]any{"continueOnError": true, "detokenizationParameters": []any{
			param(bob.Tokens["name"], "PLAIN_TEXT"),
			param(bob.Tokens["card_number"], "MASKED"),
			param(bob.Tokens["ssn"], "REDACTED"),
			param(bob.Tokens["email"], "DEFAULT"),
			param(bob.Tokens["phone"], "MASKED"),
			param(bob.Tokens["age"], "PLAIN_TEXT"),
			param(bob.Tokens["score"], "PLAIN_TEXT"),
			param(bob.Tokens["active"], "PLAIN_TEXT"),
			param(bob.Tokens["birthday"], "PLAIN_TEXT"),
			param(bob.Tokens["seen_at"], "PLAIN_TEXT"),
			param(bob.Tokens["profile"], "PLAIN_TEXT"),
			param(bob.Tokens["tags"], ""),
			param(annTokens["ssn"], "MASKED"),
			param(randomToken, "PLAIN_TEXT"),
			param(annTokens["phone"], "PLAIN_TEXT"),  // replaced by the update: its random token is gone
			param(cara.Tokens["name"], "PLAIN_TEXT"), // deleted with cara
		}})
		c.expect(t, "detokenize_one_invalid", 404, opDetokenize, in(asOwner, vaultA), map[string]any{"detokenizationParameters": []any{
			param(bob.Tokens["name"], "PLAIN_TEXT"), param(randomToken, "PLAIN_TEXT"),
		}})
		_, b, _ := c.call(t, opDetokenize, in(asOwner, vaultA), map[string]any{"detokenizationParameters": []any{param(randomToken, "")}})
		if m := envelopeMessage(t, b); m != "Detokenize failed. All tokens are invalid. Specify valid tokens." {
			t.Errorf("all tokens invalid: message %q, want API.md's", m)
		}
		c.golden(t, "detokenize_all_invalid", 404, b)
		c.expect(t, "detokenize_support", 200, opDetokenize, in(asSupport, vaultA), map[string]any{"continueOnError": true, "detokenizationParameters": []any{
			param(bob.Tokens["name"], ""),
			param(bob.Tokens["ssn"], "DEFAULT"),
			param(bob.Tokens["ssn"], "REDACTED"),
			param(bob.Tokens["card_number"], "DEFAULT"),
			param(bob.Tokens["card_number"], "PLAIN_TEXT"),
		}})
		c.expect(t, "detokenize_support_clearer_than_allowed", 403, opDetokenize, in(asSupport, vaultA), map[string]any{"detokenizationParameters": []any{
			param(bob.Tokens["card_number"], "PLAIN_TEXT"),
		}})
		c.expect(t, "detokenize_denied", 403, opDetokenize, in(asAuditor, vaultA), map[string]any{"detokenizationParameters": []any{
			param(bob.Tokens["name"], ""),
		}})
		c.expect(t, "detokenize_bad_redaction", 400, opDetokenize, in(asOwner, vaultA), map[string]any{"detokenizationParameters": []any{
			param(bob.Tokens["name"], "plain"),
		}})
		many := make([]any, 26)
		for i := range many {
			many[i] = param(bob.Tokens["name"], "")
		}
		c.expect(t, "detokenize_too_many", 400, opDetokenize, in(asOwner, vaultA), map[string]any{"detokenizationParameters": many})
	})

	t.Run("tokenize", func(t *testing.T) {
		status, b, _ := c.call(t, opTokenize, in(asOwner, vaultA), map[string]any{"tokenizationParameters": []any{
			map[string]any{"value": bobFields["card_number"], "columnGroup": "cards"},
			map[string]any{"value": bobFields["email"], "columnGroup": "customers.email"},
			map[string]any{"value": bobFields["ssn"], "columnGroup": "customers.ssn"},
			map[string]any{"value": "35", "columnGroup": "customers.age"},
		}})
		c.golden(t, "tokenize", status, b)
		toks := decode[struct {
			Records []struct{ Token string } `json:"records"`
		}](t, b).Records
		want := []string{bob.Tokens["card_number"], bob.Tokens["email"], bob.Tokens["ssn"], bob.Tokens["age"]}
		if len(toks) != len(want) {
			t.Fatalf("tokenize answered %s", b)
		}
		for i, w := range want {
			if toks[i].Token != w {
				t.Errorf("tokenize %d gave %q, the insert %q", i, toks[i].Token, w)
			}
		}
		c.expect(t, "tokenize_unheld_value", 404, opTokenize, in(asOwner, vaultA), map[string]any{"tokenizationParameters": []any{
			map[string]any{"value": unheldCard, "columnGroup": "cards"},
		}})
		c.expect(t, "tokenize_unknown_group", 400, opTokenize, in(asOwner, vaultA), map[string]any{"tokenizationParameters": []any{
			map[string]any{"value": unheldCard, "columnGroup": "nope"},
		}})
		c.expect(t, "tokenize_random_token_column", 400, opTokenize, in(asOwner, vaultA), map[string]any{"tokenizationParameters": []any{
			map[string]any{"value": "Bob Jones", "columnGroup": "customers.name"},
		}})
		c.expect(t, "tokenize_denied", 403, opTokenize, in(asSupport, vaultA), map[string]any{"tokenizationParameters": []any{
			map[string]any{"value": unheldCard, "columnGroup": "cards"},
		}})
	})

	t.Run("query", func(t *testing.T) {
		q := func(sql string) map[string]any { return map[string]any{"query": sql} }
		c.expect(t, "query", 200, opQuery, in(asOwner, vaultA), q("SELECT * FROM customers WHERE email = 'bob.jones@example.com'"))
		c.expect(t, "query_columns_in", 200, opQuery, in(asOwner, vaultA),
			q("SELECT email, ssn FROM customers WHERE email IN ('ann.smith@example.com', 'dan.brown@example.com')"))
		c.expect(t, "query_support", 200, opQuery, in(asSupport, vaultA), q("SELECT name, card_number FROM customers WHERE email = 'bob.jones@example.com'"))
		c.expect(t, "query_no_match", 200, opQuery, in(asOwner, vaultA), q("SELECT * FROM customers WHERE card_number = '"+unheldCard+"'"))
		c.expect(t, "query_not_subset", 400, opQuery, in(asOwner, vaultA), q("DELETE FROM customers WHERE card_number = '"+unheldCard+"'"))
		c.expect(t, "query_unknown_table", 404, opQuery, in(asOwner, vaultA), q("SELECT * FROM nope WHERE email = 'x@example.com'"))
		c.expect(t, "query_denied", 403, opQuery, in(asWriter, vaultA), q("SELECT * FROM customers WHERE email = 'bob.jones@example.com'"))
	})

	t.Run("vaults/schema_update", func(t *testing.T) {
		withNickname := strings.Replace(vaultAPISchema, `{"name": "notes",       "data_type": "string"}`,
			`{"name": "notes",       "data_type": "string"}, {"name": "nickname", "data_type": "string", "token_type": "NON_DETERMINISTIC_UUID"}`, 1)
		if withNickname == vaultAPISchema {
			t.Fatal("the test schema changed: nickname was not added")
		}
		update := func(schema string, version int) json.RawMessage {
			return json.RawMessage(strings.TrimSuffix(schema, "}") + fmt.Sprintf(`, "version": %d}`, version))
		}
		c.expect(t, "schema_update", 200, opSchemaUpdate, in(asSteward, vaultA), update(withNickname, 1))
		c.expect(t, "schema_update_conflict", 409, opSchemaUpdate, in(asAdmin, vaultA), update(withNickname, 1))
		changedType := strings.Replace(withNickname, `"name": "age",         "data_type": "integer"`, `"name": "age",         "data_type": "string"`, 1)
		c.expect(t, "schema_update_refused", 400, opSchemaUpdate, in(asSteward, vaultA), update(changedType, 2))
		removed := strings.Replace(withNickname, `{"name": "notes",       "data_type": "string"}, `, ``, 1)
		c.expect(t, "schema_update_removes_column", 400, opSchemaUpdate, in(asSteward, vaultA), update(removed, 2))
		c.expect(t, "schema_update_no_version", 400, opSchemaUpdate, in(asSteward, vaultA), json.RawMessage(withNickname))
		c.expect(t, "schema_update_denied", 403, opSchemaUpdate, in(asWriter, vaultA), update(withNickname, 2))
		// The new column takes values at once.
		status, b, _ := c.call(t, opUpdate, in(asOwner, vaultA, "table", "customers", "skyflowid", ann.SkyflowID),
			map[string]any{"record": map[string]any{"fields": map[string]any{"nickname": "Annie"}}})
		if status != 200 {
			t.Errorf("writing the new column: %d %s", status, b)
		}
	})

	t.Run("vaults/policy_update", func(t *testing.T) {
		update := func(policy string, version int) json.RawMessage {
			return json.RawMessage(strings.TrimSuffix(policy, "}") + fmt.Sprintf(`, "version": %d}`, version))
		}
		// The analyst is not known to the vault yet.
		c.expect(t, "policy_before", 404, opGetOne, in(asAnalyst, vaultA, "table", "customers", "skyflowid", ann.SkyflowID), nil)
		c.expect(t, "policy_update", 200, opPolicyUpdate, in(asSteward, vaultA), update(vaultAPIPolicyWithAnalyst, 1))
		c.expect(t, "policy_update_conflict", 409, opPolicyUpdate, in(asSteward, vaultA), update(vaultAPIPolicyWithAnalyst, 1))
		c.expect(t, "policy_update_bad", 400, opPolicyUpdate, in(asSteward, vaultA),
			json.RawMessage(`{"roles": {"r": {"tables": {"nope": {"insert": true}}}}, "version": 2}`))
		c.expect(t, "policy_update_denied", 403, opPolicyUpdate, in(asSupport, vaultA), update(vaultAPIPolicyWithAnalyst, 2))
		c.expect(t, "policy_after", 200, opGetOne, in(asAnalyst, vaultA, "table", "customers", "skyflowid", ann.SkyflowID), nil)
		c.expect(t, "policy_after_clearer_than_allowed", 403, opGetOne, in(asAnalyst, vaultA, "table", "customers", "skyflowid", ann.SkyflowID,
			"query", queryOf("redaction", "PLAIN_TEXT")), nil)
	})

	// Every operation refuses a request without a principal, with the same
	// 401 envelope.
	t.Run("auth/no_principal", func(t *testing.T) {
		var first string
		for _, op := range allOps {
			x := ext{"vaultid": vaultA, "table": "customers", "skyflowid": ann.SkyflowID, "roles": "owner admin"}
			status, b, _ := c.call(t, op, x, map[string]any{})
			if status != 401 {
				t.Errorf("%s without a principal: %d %s", op.fn, status, b)
			}
			if first == "" {
				first = string(b)
				c.golden(t, "no_principal", status, b)
			} else if string(b) != first {
				t.Errorf("%s answers a missing principal differently:\n%s\n%s", op.fn, b, first)
			}
		}
	})

	// A principal whose roles the vault does not know gets exactly the
	// answer of a vault that does not exist, whatever the operation.
	t.Run("auth/unknown_roles", func(t *testing.T) {
		tableExt := []string{"table", "customers", "skyflowid", ann.SkyflowID}
		bodies := map[apiOp]any{
			opInsert:       recordsBody(map[string]any{"notes": "x"}),
			opBatch:        map[string]any{"records": []any{map[string]any{"tableName": "customers", "method": "GET", "ID": ann.SkyflowID}}},
			opGet:          nil,
			opGetOne:       nil,
			opUpdate:       map[string]any{"record": map[string]any{"fields": map[string]any{"notes": "x"}}},
			opDelete:       nil,
			opDeleteMany:   map[string]any{"skyflow_ids": []string{ann.SkyflowID}},
			opQuery:        map[string]any{"query": "SELECT * FROM customers WHERE email = 'bob.jones@example.com'"},
			opDetokenize:   map[string]any{"detokenizationParameters": []any{map[string]any{"token": bob.Tokens["name"]}}},
			opTokenize:     map[string]any{"tokenizationParameters": []any{map[string]any{"value": bobFields["card_number"], "columnGroup": "cards"}}},
			opVaultGet:     nil,
			opSchemaUpdate: json.RawMessage(strings.TrimSuffix(vaultAPISchema, "}") + `, "version": 9}`),
			opPolicyUpdate: json.RawMessage(strings.TrimSuffix(vaultAPIPolicy, "}") + `, "version": 9}`),
		}
		for _, op := range allOps {
			body, ok := bodies[op]
			if !ok {
				continue // vault creation names no vault
			}
			kv := tableExt
			if op == opGet {
				kv = append(kv, "query", queryOf("skyflow_ids", ann.SkyflowID))
			}
			status, stranger, _ := c.call(t, op, in(asStranger, vaultA, kv...), body)
			_, missing, _ := c.call(t, op, in(asOwner, missingVault, kv...), body)
			_, malformed, _ := c.call(t, op, in(asOwner, "../"+vaultA, kv...), body)
			_, noRoles, _ := c.call(t, op, in(ext{"principal": "user:nobody"}, vaultA, kv...), body)
			if status != 404 || string(stranger) != string(missing) || string(missing) != string(malformed) || string(noRoles) != string(missing) {
				t.Errorf("%s: an unknown principal, a missing vault, a malformed vault id and no roles answer differently (or not 404):\n%s\n%s\n%s\n%s",
					op.fn, stranger, missing, malformed, noRoles)
			}
			if op == opGetOne {
				c.golden(t, "unknown_roles", status, stranger)
			}
		}
	})

	// A token or record id of vault A used on vault B gets the answer of a
	// random one: vault B's owner learns nothing about vault A.
	t.Run("auth/cross_vault", func(t *testing.T) {
		same := func(name string, op apiOp, x ext, withA, withRandom any, fix func([]byte) []byte) {
			t.Helper()
			sa, a, _ := c.call(t, op, x, withA)
			sr, r, _ := c.call(t, op, x, withRandom)
			if fix != nil {
				a = fix(a)
			}
			if sa != sr || string(a) != string(r) {
				t.Errorf("%s: vault A's value on vault B answers %d %s; a random one %d %s", name, sa, a, sr, r)
			}
			c.golden(t, "cross_vault_"+name, sr, r)
		}
		detok := func(tok string, cont bool) map[string]any {
			return map[string]any{"continueOnError": cont, "detokenizationParameters": []any{map[string]any{"token": tok, "redaction": "PLAIN_TEXT"}}}
		}
		swap := func(b []byte) []byte {
			return []byte(strings.ReplaceAll(string(b), bob.Tokens["card_number"], randomToken))
		}
		same("detokenize", opDetokenize, in(asOwner, vaultB), detok(bob.Tokens["card_number"], false), detok(randomToken, false), nil)
		same("detokenize_continue", opDetokenize, in(asOwner, vaultB), detok(bob.Tokens["card_number"], true), detok(randomToken, true), swap)
		tokenize := func(v string) map[string]any {
			return map[string]any{"tokenizationParameters": []any{map[string]any{"value": v, "columnGroup": "cards"}}}
		}
		same("tokenize", opTokenize, in(asOwner, vaultB), tokenize(bobFields["card_number"].(string)), tokenize(unheldCard), nil)
		query := func(email string) map[string]any {
			return map[string]any{"query": "SELECT * FROM customers WHERE email = '" + email + "'"}
		}
		same("query", opQuery, in(asOwner, vaultB), query(bobFields["email"].(string)), query("nobody@example.com"), nil)

		for _, x := range []struct {
			name string
			op   apiOp
			body any
		}{
			{"get_one", opGetOne, nil},
			{"update", opUpdate, map[string]any{"record": map[string]any{"fields": map[string]any{"notes": "x"}}}},
			{"delete", opDelete, nil},
		} {
			sa, a, _ := c.call(t, x.op, in(asOwner, vaultB, "table", "customers", "skyflowid", ann.SkyflowID), x.body)
			sr, r, _ := c.call(t, x.op, in(asOwner, vaultB, "table", "customers", "skyflowid", randomID), x.body)
			if sa != 404 || sa != sr || string(a) != string(r) {
				t.Errorf("%s: vault A's record on vault B answers %d %s; a random id %d %s", x.name, sa, a, sr, r)
			}
		}
		_, a, _ := c.call(t, opGet, in(asOwner, vaultB, "table", "customers", "query", queryOf("skyflow_ids", ann.SkyflowID)), nil)
		_, r, _ := c.call(t, opGet, in(asOwner, vaultB, "table", "customers", "query", queryOf("skyflow_ids", randomID)), nil)
		if string(a) != string(r) {
			t.Errorf("get: vault A's id on vault B answers %s; a random id %s", a, r)
		}
		_, a, _ = c.call(t, opDeleteMany, in(asOwner, vaultB, "table", "customers"), map[string]any{"skyflow_ids": []string{ann.SkyflowID}})
		_, r, _ = c.call(t, opDeleteMany, in(asOwner, vaultB, "table", "customers"), map[string]any{"skyflow_ids": []string{randomID}})
		if string(a) != string(r) {
			t.Errorf("delete many: vault A's id on vault B answers %s; a random id %s", a, r)
		}
		// And vault A's record is untouched.
		if status, b, _ := c.call(t, opGetOne, in(asOwner, vaultA, "table", "customers", "skyflowid", ann.SkyflowID), nil); status != 200 {
			t.Errorf("ann after the cross-vault attempts: %d %s", status, b)
		}
	})

	t.Run("bad_requests", func(t *testing.T) {
		x := in(asOwner, vaultA, "table", "customers")
		c.expect(t, "unknown_table", 404, opInsert, in(asOwner, vaultA, "table", "nope"), recordsBody(map[string]any{"notes": "x"}))
		c.expect(t, "unknown_table_get", 404, opGet, in(asOwner, vaultA, "table", "nope"), nil)
		c.expect(t, "bad_json", 400, opInsert, x, rawBody(`{"records": [{"fields": {"card_number": "`+unheldCard+`"}}`))
		c.expect(t, "bad_json_type", 400, opInsert, x, rawBody(`{"records": {"fields": {"card_number": "`+unheldCard+`"}}}`))
		c.expect(t, "unknown_field", 400, opInsert, x, rawBody(`{"records": [{"fields": {"notes": "x"}}], "tokenisation": true}`))
		c.expect(t, "unknown_field_nested", 400, opInsert, x, rawBody(`{"records": [{"fields": {"notes": "x"}, "table": "customers"}]}`))
		c.expect(t, "empty_body", 400, opInsert, x, nil)
		c.expect(t, "trailing_data", 400, opInsert, x, rawBody(`{"records": [{"fields": {"notes": "x"}}]} {}`))
		many := make([]map[string]any, 26)
		for i := range many {
			many[i] = map[string]any{"card_number": unheldCard}
		}
		c.expect(t, "too_many_records", 400, opInsert, x, recordsBody(many...))
		c.expect(t, "no_records", 400, opInsert, x, recordsBody())
		c.expect(t, "byot", 400, opInsert, x, map[string]any{"records": recordsBody(map[string]any{"notes": "x"})["records"], "byot": "ENABLE"})
		// A function refuses an event of another operation's type.
		status, b, _ := c.call(t, apiOp{opInsert.fn, opDelete.typ}, x, recordsBody(map[string]any{"notes": "x"}))
		if status != 400 {
			t.Errorf("records-insert took a %s event: %d %s", opDelete.typ, status, b)
		}
		c.golden(t, "wrong_event_type", status, b)
	})

	// Every golden file is one of this test's answers.
	if !t.Failed() {
		t.Run("golden_files", func(t *testing.T) { c.checkGoldenFiles(t) })
	}

	// No error body, of any request above, contains a value that was sent.
	t.Run("no_echo", func(t *testing.T) {
		bodies := c.errorBodies()
		if len(bodies) < 50 {
			t.Fatalf("only %d error bodies recorded", len(bodies))
		}
		for _, b := range bodies {
			for _, v := range sensitiveValues() {
				if strings.Contains(b, v) {
					t.Errorf("an error body contains the value %q: %s", v, b)
				}
			}
		}
	})
}

// checkTokenShapes checks the tokens of a record against the token type of
// each column of vaultAPISchema.
func checkTokenShapes(t *testing.T, fields map[string]any, tokens map[string]string) {
	t.Helper()
	uuidTok := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	for col, v := range fields {
		tok, ok := tokens[col]
		if col == "notes" {
			if ok {
				t.Errorf("column notes has no token type but got token %q", tok)
			}
			continue
		}
		if !ok {
			t.Errorf("no token for column %s", col)
			continue
		}
		value := fmt.Sprint(v)
		switch col {
		case "card_number": // DETERMINISTIC_PRESERVE_LEFT_6_RIGHT_4
			if len(tok) != len(value) || strings.Trim(tok, "0123456789") != "" || tok[:6] != value[:6] || tok[len(tok)-4:] != value[len(value)-4:] || tok == value || luhn(tok) {
				t.Errorf("card token %q for a %d-digit card: want the same length, first 6 and last 4, and no valid Luhn check", tok, len(value))
			}
		case "ssn", "phone": // format preserving
			shape := regexp.MustCompile(`[0-9]`)
			if shape.ReplaceAllString(tok, "9") != shape.ReplaceAllString(value, "9") || tok == value {
				t.Errorf("%s token %q does not keep the value's format", col, tok)
			}
		default:
			if !uuidTok.MatchString(tok) {
				t.Errorf("%s token %q is not a UUID", col, tok)
			}
		}
	}
}

// jsonEqual reports whether two JSON documents are equal as values.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// manyOps is n batch GETs.
func manyOps(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"tableName": "customers", "method": "GET", "ID": uuid.NewString()}
	}
	return out
}

// manyIDs is n random skyflow ids.
func manyIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = uuid.NewString()
	}
	return out
}
