package schema_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/vaults/schema"
)

const goodSchema = `{
  "name": "Payments",
  "description": "cards",
  "tables": [
    {"name": "cards", "columns": [
      {"name": "card_number", "data_type": "string", "token_type": "DETERMINISTIC_PRESERVE_LEFT_6_RIGHT_4",
       "redaction": "MASKED", "mask": "SHOW_FIRST_6_LAST_4", "unique": true, "validation": {"kind": "CARD_NUMBER"}},
      {"name": "holder_email", "data_type": "string", "token_type": "DETERMINISTIC_UUID", "column_group": "email", "mask": "EMAIL"},
      {"name": "expiry", "data_type": "date"}
    ]}
  ]
}`

func TestDecode(t *testing.T) {
	v, err := schema.Decode([]byte(goodSchema))
	if err != nil {
		t.Fatal(err)
	}
	tab, ok := v.Table("cards")
	if !ok {
		t.Fatal("no table cards")
	}
	card, _ := tab.Column("card_number")
	want := schema.Column{Name: "card_number", DataType: schema.String, TokenType: schema.PreserveLeft6Right4,
		Redaction: schema.Masked, Mask: "SHOW_FIRST_6_LAST_4", Unique: true, Validation: &schema.Validation{Kind: "CARD_NUMBER"}}
	if card.Name != want.Name || card.DataType != want.DataType || card.TokenType != want.TokenType || card.Redaction != want.Redaction ||
		card.Mask != want.Mask || card.Unique != want.Unique || !reflect.DeepEqual(card.Validation, want.Validation) {
		t.Errorf("card_number = %+v", *card)
	}
	expiry, _ := tab.Column("expiry")
	if expiry.Redaction != schema.Redacted {
		t.Errorf("expiry redaction = %q, want the default REDACTED", expiry.Redaction)
	}
	// Decode normalizes, so messages name the table.
	_, err = expiry.Coerce(json.RawMessage(`"tomorrow"`))
	if msg := apiError(t, err); !strings.HasPrefix(msg, `column "expiry" of table "cards" expects a date`) {
		t.Errorf("message %q", msg)
	}
}

func TestDecodeRefuses(t *testing.T) {
	tests := []struct {
		name, raw string
		want      []string
	}{
		{"unknown top-level field", `{"name":"v","owner":"me","tables":[]}`,
			[]string{`the vault schema: unknown field "owner"; the fields are name, description, tables`}},
		{"unknown table field", `{"name":"v","tables":[{"name":"t","columns":[],"primary_key":"x"}]}`,
			[]string{`tables[0]: unknown field "primary_key"; the fields are name, columns`}},
		{"unknown column field", `{"name":"v","tables":[{"name":"t","columns":[{"name":"a","data_type":"string"},{"name":"b","data_type":"string","tokenType":"DETERMINISTIC_UUID"}]}]}`,
			[]string{`tables[0].columns[1]: unknown field "tokenType"`, "token_type"}},
		{"unknown validation field", `{"name":"v","tables":[{"name":"t","columns":[{"name":"a","data_type":"string","validation":{"pattern":"x"}}]}]}`,
			[]string{`tables[0].columns[0].validation: unknown field "pattern"; the fields are kind, regex`}},
		{"wrong case", `{"Name":"v","tables":[]}`, []string{`unknown field "Name"`}},
		{"repeated field", `{"name":"v","name":"w","tables":[]}`, []string{`field "name" appears twice`}},
		{"wrong type", `{"name":"v","tables":[{"name":"t","columns":[{"name":"a","data_type":"string","unique":"yes"}]}]}`,
			[]string{"tables.columns.unique: is a JSON string; it must be true or false"}},
		{"tables not an array", `{"name":"v","tables":{}}`, []string{"tables: is a JSON object; it must be an array"}},
		{"not an object", `["v"]`, []string{"must be a JSON object"}},
		{"not JSON", `{"name":`, []string{"not valid JSON"}},
		{"syntax error", `{"name" "v"}`, []string{"not valid JSON (at byte"}},
		{"trailing data", `{"name":"v","tables":[]} {}`, []string{"single JSON object"}},
		{"empty", ``, []string{"not valid JSON"}},
		{"null", `null`, []string{"needs a name"}},
		{"invalid schema", `{"name":"v","tables":[]}`, []string{"tables: a vault needs at least one table"}},
		{"too deep", `{"name":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, []string{"nested too deeply"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := schema.Decode([]byte(tt.raw))
			if v != nil {
				t.Errorf("got a vault as well as an error")
			}
			msg := apiError(t, err)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not say %q", msg, w)
				}
			}
		})
	}
}

// A decoded schema encodes to the documented field names and back.
func TestDecodeRoundTrip(t *testing.T) {
	v, err := schema.Decode([]byte(goodSchema))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"data_type":"string"`, `"token_type":"DETERMINISTIC_UUID"`, `"column_group":"email"`, `"redaction":"REDACTED"`, `"validation":{"kind":"CARD_NUMBER"}`} {
		if !strings.Contains(string(b), field) {
			t.Errorf("encoding %s lacks %s", b, field)
		}
	}
	again, err := schema.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v, again) {
		t.Errorf("round trip changed the schema:\n%+v\n%+v", v, again)
	}
}
