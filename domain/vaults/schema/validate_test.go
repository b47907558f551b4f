package schema_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/vaults/schema"
)

func TestBaseVaultIsValid(t *testing.T) {
	if err := baseVault().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	col := func(v *schema.Vault, ti, ci int) *schema.Column { return &v.Tables[ti].Columns[ci] }
	columns := func(n int) []schema.Column {
		cs := make([]schema.Column, n)
		for i := range cs {
			cs[i] = schema.Column{Name: fmt.Sprintf("c%d", i), DataType: schema.String}
		}
		return cs
	}
	tables := func(n int) []schema.Table {
		ts := make([]schema.Table, n)
		for i := range ts {
			ts[i] = schema.Table{Name: fmt.Sprintf("t%d", i), Columns: columns(1)}
		}
		return ts
	}
	tests := []struct {
		name   string
		change func(v *schema.Vault)
		// path is the start of the message; "" means the change is valid.
		path string
		// want is another part of the message.
		want string
	}{
		// The vault.
		{"empty name", func(v *schema.Vault) { v.Name = "" }, "name:", "needs a name"},
		{"blank name", func(v *schema.Vault) { v.Name = "   " }, "name:", "needs a name"},
		{"name 100 chars", func(v *schema.Vault) { v.Name = strings.Repeat("é", 100) }, "", ""},
		{"name 101 chars", func(v *schema.Vault) { v.Name = strings.Repeat("a", 101) }, "name:", "at most 100"},
		{"name with newline", func(v *schema.Vault) { v.Name = "a\nb" }, "name:", "control characters"},
		{"long description", func(v *schema.Vault) { v.Description = strings.Repeat("d", 1001) }, "description:", "at most 1000"},
		{"no tables", func(v *schema.Vault) { v.Tables = nil }, "tables:", "at least one table"},
		{"64 tables", func(v *schema.Vault) { v.Tables = tables(64) }, "", ""},
		{"65 tables", func(v *schema.Vault) { v.Tables = tables(65) }, "tables:", "at most 64 tables"},

		// Tables.
		{"table name upper case", func(v *schema.Vault) { v.Tables[1].Name = "People" }, "tables[1].name:", "lower-case"},
		{"table name starts with digit", func(v *schema.Vault) { v.Tables[1].Name = "1people" }, "tables[1].name:", "starting with a letter"},
		{"table name with dash", func(v *schema.Vault) { v.Tables[1].Name = "the-people" }, "tables[1].name:", "not a valid table name"},
		{"table name 63 chars", func(v *schema.Vault) { v.Tables[1].Name = "p" + strings.Repeat("x", 62) }, "", ""},
		{"table name 64 chars", func(v *schema.Vault) { v.Tables[1].Name = "p" + strings.Repeat("x", 63) }, "tables[1].name:", "1 to 63"},
		{"table name empty", func(v *schema.Vault) { v.Tables[1].Name = "" }, "tables[1].name:", "not a valid table name"},
		{"table name reserved by the API", func(v *schema.Vault) { v.Tables[1].Name = "detokenize" }, "tables[1].name:", "reserved"},
		{"duplicate table", func(v *schema.Vault) { v.Tables[1].Name = "cards" }, "tables[1].name:", `table "cards" is already defined at tables[0]`},
		{"table without columns", func(v *schema.Vault) { v.Tables[1].Columns = nil }, "tables[1].columns:", `table "people" needs at least one column`},
		{"256 columns", func(v *schema.Vault) { v.Tables[1].Columns = columns(256) }, "", ""},
		{"257 columns", func(v *schema.Vault) { v.Tables[1].Columns = columns(257) }, "tables[1].columns:", "at most 256 columns"},

		// Column names.
		{"column name invalid", func(v *schema.Vault) { col(v, 1, 2).Name = "Profile" }, "tables[1].columns[2].name:", "not a valid column name"},
		{"column skyflow_id", func(v *schema.Vault) { col(v, 1, 2).Name = "skyflow_id" }, "tables[1].columns[2].name:", "reserved"},
		{"duplicate column", func(v *schema.Vault) { col(v, 1, 2).Name = "ssn" }, "tables[1].columns[2].name:", `column "ssn" is already defined at tables[1].columns[0]`},
		{"same column name in two tables", func(v *schema.Vault) { col(v, 1, 2).Name = "expiry" }, "", ""},

		// Data types.
		{"unknown data type", func(v *schema.Vault) { col(v, 1, 2).DataType = "text" }, "tables[1].columns[2].data_type:", `"text" is not a data type; use one of string, integer, float, bool, date, datetime, json, array`},
		{"missing data type", func(v *schema.Vault) { col(v, 1, 2).DataType = "" }, "tables[1].columns[2].data_type:", "is not a data type"},
		{"upper-case data type", func(v *schema.Vault) { col(v, 1, 2).DataType = "STRING" }, "tables[1].columns[2].data_type:", "is not a data type"},

		// Token types.
		{"unknown token type", func(v *schema.Vault) { col(v, 1, 2).TokenType = "FOO" }, "tables[1].columns[2].token_type:", `"FOO" is not a token type; use one of DETERMINISTIC_UUID, NON_DETERMINISTIC_UUID, DETERMINISTIC_FPT, NON_DETERMINISTIC_FPT, DETERMINISTIC_PRESERVE_LEFT_6_RIGHT_4`},
		{"uuid token on json", func(v *schema.Vault) { col(v, 1, 2).TokenType = schema.NonDeterministicUUID }, "", ""},
		{"FPT on integer", func(v *schema.Vault) {
			col(v, 1, 2).DataType, col(v, 1, 2).TokenType = schema.Integer, schema.NonDeterministicFPT
		}, "tables[1].columns[2].token_type:", `need data_type "string", not "integer"`},
		{"deterministic FPT on date", func(v *schema.Vault) { col(v, 0, 1).TokenType = schema.DeterministicFPT }, "tables[0].columns[1].token_type:", `not "date"`},
		{"preserve 6/4 on integer", func(v *schema.Vault) {
			c := col(v, 0, 0)
			c.DataType, c.Validation = schema.Integer, nil
		}, "tables[0].columns[0].token_type:", `need data_type "string"`},
		{"preserve 6/4 without card validation", func(v *schema.Vault) { col(v, 0, 0).Validation = nil }, "tables[0].columns[0].token_type:", `"kind": "CARD_NUMBER"`},
		{"preserve 6/4 with another kind", func(v *schema.Vault) { col(v, 0, 0).Validation.Kind = "SSN" }, "tables[0].columns[0].token_type:", "CARD_NUMBER"},

		// Redaction.
		{"redaction DEFAULT", func(v *schema.Vault) { col(v, 1, 2).Redaction = schema.Default }, "tables[1].columns[2].redaction:", "must be REDACTED, MASKED or PLAIN_TEXT"},
		{"redaction lower case", func(v *schema.Vault) { col(v, 1, 2).Redaction = "masked" }, "tables[1].columns[2].redaction:", `"masked" is not a column redaction`},
		{"redaction empty", func(v *schema.Vault) { col(v, 1, 2).Redaction = "" }, "", ""},

		// Masks.
		{"unknown mask", func(v *schema.Vault) { col(v, 1, 0).Mask = "SHOW_MIDDLE" }, "tables[1].columns[0].mask:", `"SHOW_MIDDLE" is not a mask`},
		{"mask with leading zero", func(v *schema.Vault) { col(v, 1, 0).Mask = "SHOW_LAST_04" }, "tables[1].columns[0].mask:", "is not a mask"},
		{"mask shows too much", func(v *schema.Vault) { col(v, 1, 0).Mask = "SHOW_LAST_33" }, "tables[1].columns[0].mask:", "from 0 to 32"},
		{"mask negative", func(v *schema.Vault) { col(v, 1, 0).Mask = "SHOW_LAST_-1" }, "tables[1].columns[0].mask:", "is not a mask"},
		{"mask first without last", func(v *schema.Vault) { col(v, 1, 0).Mask = "SHOW_FIRST_6" }, "tables[1].columns[0].mask:", "is not a mask"},
		{"mask lower case", func(v *schema.Vault) { col(v, 1, 0).Mask = "show_last_4" }, "tables[1].columns[0].mask:", "is not a mask"},
		{"mask SHOW_NONE", func(v *schema.Vault) { col(v, 1, 0).Mask = "SHOW_NONE" }, "", ""},
		{"mask SHOW_LAST_32", func(v *schema.Vault) { col(v, 1, 0).Mask = "SHOW_LAST_32" }, "", ""},
		{"mask SHOW_FIRST_0_LAST_4", func(v *schema.Vault) { col(v, 1, 0).Mask = "SHOW_FIRST_0_LAST_4" }, "", ""},
		{"EMAIL mask on json", func(v *schema.Vault) { col(v, 1, 2).Mask = "EMAIL" }, "tables[1].columns[2].mask:", `needs data_type "string", not "json"`},
		{"SHOW_LAST mask on integer", func(v *schema.Vault) {
			c := col(v, 1, 2)
			c.DataType, c.Mask = schema.Integer, "SHOW_LAST_2"
		}, "", ""},

		// Validation.
		{"validation with both", func(v *schema.Vault) { col(v, 1, 0).Validation.Regex = "[0-9-]+" }, "tables[1].columns[0].validation:", "exactly one of kind and regex"},
		{"validation with neither", func(v *schema.Vault) { col(v, 1, 0).Validation = &schema.Validation{} }, "tables[1].columns[0].validation:", "exactly one of kind and regex"},
		{"unknown kind", func(v *schema.Vault) { col(v, 1, 0).Validation.Kind = "IBAN" }, "tables[1].columns[0].validation.kind:", `"IBAN" is not a validation kind; use one of CARD_NUMBER, SSN, EMAIL, PHONE_E164, DATE`},
		{"regex that does not compile", func(v *schema.Vault) { col(v, 1, 0).Validation = &schema.Validation{Regex: "([0-9]"} }, "tables[1].columns[0].validation.regex:", "does not compile"},
		{"regex with lookahead (not RE2)", func(v *schema.Vault) { col(v, 1, 0).Validation = &schema.Validation{Regex: "(?=a)a"} }, "tables[1].columns[0].validation.regex:", "RE2"},
		{"regex breaking out of the anchors", func(v *schema.Vault) { col(v, 1, 0).Validation = &schema.Validation{Regex: "a)|(b"} }, "tables[1].columns[0].validation.regex:", "does not compile"},
		{"regex 512 bytes", func(v *schema.Vault) { col(v, 1, 0).Validation = &schema.Validation{Regex: strings.Repeat("a", 512)} }, "", ""},
		{"regex 513 bytes", func(v *schema.Vault) { col(v, 1, 0).Validation = &schema.Validation{Regex: strings.Repeat("a", 513)} }, "tables[1].columns[0].validation.regex:", "at most 512"},
		{"validation on json", func(v *schema.Vault) { col(v, 1, 2).Validation = &schema.Validation{Regex: "x"} }, "tables[1].columns[2].validation:", `string and date columns only, not "json"`},
		{"validation on integer", func(v *schema.Vault) {
			c := col(v, 1, 2)
			c.DataType, c.Validation = schema.Integer, &schema.Validation{Kind: "PHONE_E164"}
		}, "tables[1].columns[2].validation:", `not "integer"`},
		{"kind on a date column", func(v *schema.Vault) { col(v, 0, 1).Validation = &schema.Validation{Kind: "DATE"} }, "tables[0].columns[1].validation.kind:", "already checks"},
		{"regex on a date column", func(v *schema.Vault) { col(v, 0, 1).Validation = &schema.Validation{Regex: `20[0-9]{2}-.*`} }, "", ""},
		{"DATE kind on a string column", func(v *schema.Vault) { col(v, 1, 0).Validation.Kind = "DATE" }, "", ""},

		// Unique.
		{"unique json", func(v *schema.Vault) { col(v, 1, 2).Unique = true }, "tables[1].columns[2].unique:", "json values are never looked up"},
		{"unique array", func(v *schema.Vault) {
			c := col(v, 1, 2)
			c.DataType, c.Unique = schema.Array, true
		}, "tables[1].columns[2].unique:", "array values"},
		{"unique bool", func(v *schema.Vault) {
			c := col(v, 1, 2)
			c.DataType, c.Unique = schema.Bool, true
		}, "tables[1].columns[2].unique:", "only two values"},
		{"unique integer", func(v *schema.Vault) {
			c := col(v, 1, 2)
			c.DataType, c.Unique = schema.Integer, true
		}, "", ""},

		// Column groups.
		{"group name invalid", func(v *schema.Vault) { col(v, 1, 1).ColumnGroup = "E-mail" }, "tables[1].columns[1].column_group:", "not a valid column group name"},
		{"group without tokens", func(v *schema.Vault) { col(v, 1, 1).TokenType = "" }, "tables[1].columns[1].column_group:", "deterministic token_type"},
		{"group with random tokens", func(v *schema.Vault) { col(v, 1, 1).TokenType = schema.NonDeterministicUUID }, "tables[1].columns[1].column_group:", "deterministic token_type"},
		{"group on json", func(v *schema.Vault) {
			c := col(v, 1, 2)
			c.TokenType, c.ColumnGroup = schema.DeterministicUUID, "blob"
		}, "tables[1].columns[2].column_group:", "json values"},
		{"group mixing data types", func(v *schema.Vault) {
			c := col(v, 1, 2)
			c.DataType, c.TokenType, c.ColumnGroup = schema.Integer, schema.DeterministicUUID, "email"
		}, "tables[1].columns[2].column_group:", `column group "email" joins column "profile" of table "people" (integer, DETERMINISTIC_UUID) with column "holder_email" of table "cards" (string, DETERMINISTIC_UUID)`},
		{"group mixing token types", func(v *schema.Vault) { col(v, 1, 1).TokenType = schema.DeterministicFPT }, "tables[1].columns[1].column_group:", "same data_type and token_type"},
		{"a data_subject column", func(v *schema.Vault) { col(v, 1, 0).DataSubject = true }, "", ""},
		{"an integer data_subject column", func(v *schema.Vault) {
			v.Tables[0].Columns = append(v.Tables[0].Columns, schema.Column{Name: "holder_id", DataType: schema.Integer, DataSubject: true})
		}, "", ""},
		{"two data_subject columns", func(v *schema.Vault) {
			col(v, 1, 0).DataSubject = true
			col(v, 1, 1).DataSubject = true
		}, "tables[1].columns[1].data_subject:", `column "ssn" is already the data_subject column of table "people"`},
		{"a json data_subject column", func(v *schema.Vault) { col(v, 1, 2).DataSubject = true }, "tables[1].columns[2].data_subject:", `needs data_type "string" or "integer", not "json"`},
		{"a date data_subject column", func(v *schema.Vault) { col(v, 0, 1).DataSubject = true }, "tables[0].columns[1].data_subject:", `not "date"`},
		{"group within one table", func(v *schema.Vault) {
			c := col(v, 1, 2)
			c.DataType, c.Redaction, c.TokenType, c.ColumnGroup = schema.String, "", schema.DeterministicUUID, "email"
		}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := baseVault()
			tt.change(v)
			err := v.Validate()
			if tt.path == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			msg := apiError(t, err)
			if !strings.HasPrefix(msg, tt.path+" ") {
				t.Errorf("message %q does not start with the path %q", msg, tt.path)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("message %q does not say %q", msg, tt.want)
			}
		})
	}
}

func TestValidateNil(t *testing.T) {
	var v *schema.Vault
	apiError(t, v.Validate())
}

// Validate only reads: a caller may validate before normalizing.
func TestValidateDoesNotNormalize(t *testing.T) {
	v := baseVault()
	if err := v.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := v.Tables[0].Columns[1].Redaction; got != "" {
		t.Errorf("Validate changed a redaction to %q", got)
	}
}

func TestNormalize(t *testing.T) {
	v := baseVault()
	v.Normalize()
	v.Normalize() // idempotent
	for _, tc := range []struct {
		table, column string
		want          schema.Redaction
	}{
		{"cards", "card_number", schema.Masked},
		{"cards", "expiry", schema.Redacted},
		{"people", "profile", schema.PlainText},
	} {
		tab, ok := v.Table(tc.table)
		if !ok {
			t.Fatalf("no table %q", tc.table)
		}
		c, ok := tab.Column(tc.column)
		if !ok {
			t.Fatalf("no column %q", tc.column)
		}
		if c.Redaction != tc.want {
			t.Errorf("%s.%s redaction = %q, want %q", tc.table, tc.column, c.Redaction, tc.want)
		}
	}
	var nilVault *schema.Vault
	nilVault.Normalize()
}

func TestLookups(t *testing.T) {
	v := baseVault()
	if _, ok := v.Table("nope"); ok {
		t.Error("found a table that does not exist")
	}
	tab, _ := v.Table("people")
	if _, ok := tab.Column("skyflow_id"); ok {
		t.Error("found a column that does not exist")
	}
	// Lookups point into the vault, so that changes through them stick.
	c, _ := tab.Column("ssn")
	c.Mask = "SHOW_NONE"
	if v.Tables[1].Columns[0].Mask != "SHOW_NONE" {
		t.Error("Column returned a copy")
	}
	var nilVault *schema.Vault
	if _, ok := nilVault.Table("cards"); ok {
		t.Error("nil vault has a table")
	}
	email, _ := tab.Column("email")
	if got := email.Group("people"); got != "email" {
		t.Errorf("Group = %q, want the named group", got)
	}
	if got := c.Group("people"); got != "people.ssn" {
		t.Errorf("Group = %q, want people.ssn", got)
	}
}

func TestTypes(t *testing.T) {
	for d, want := range map[schema.DataType]string{
		schema.String: "STRING", schema.Integer: "INTEGER", schema.Float: "FLOAT", schema.Bool: "BOOL",
		schema.Date: "DATE", schema.DateTime: "DATETIME", schema.JSON: "JSON", schema.Array: "ARRAY", "blob": "NONE",
	} {
		if got := d.ValueType(); got != want {
			t.Errorf("%q.ValueType() = %q, want %q", d, got, want)
		}
	}
	for _, tc := range []struct {
		t           schema.TokenType
		det, format bool
	}{
		{schema.NoToken, false, false},
		{schema.DeterministicUUID, true, false},
		{schema.NonDeterministicUUID, false, false},
		{schema.DeterministicFPT, true, true},
		{schema.NonDeterministicFPT, false, true},
		{schema.PreserveLeft6Right4, true, true},
	} {
		if got := tc.t.Deterministic(); got != tc.det {
			t.Errorf("%q.Deterministic() = %v", tc.t, got)
		}
		if got := tc.t.FormatPreserving(); got != tc.format {
			t.Errorf("%q.FormatPreserving() = %v", tc.t, got)
		}
	}
}

func TestRedaction(t *testing.T) {
	for in, want := range map[string]schema.Redaction{
		"": schema.Default, "DEFAULT": schema.Default, "REDACTED": schema.Redacted, "MASKED": schema.Masked, "PLAIN_TEXT": schema.PlainText,
	} {
		got, err := schema.ParseRedaction(in)
		if err != nil || got != want {
			t.Errorf("ParseRedaction(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"plain_text", "Masked", "PLAINTEXT", " REDACTED", "NONE"} {
		_, err := schema.ParseRedaction(in)
		msg := apiError(t, err)
		if !strings.Contains(msg, "DEFAULT, REDACTED, MASKED, PLAIN_TEXT") {
			t.Errorf("ParseRedaction(%q): message %q does not list the redactions", in, msg)
		}
	}
	if !(schema.Default.Rank() < schema.Redacted.Rank() && schema.Redacted.Rank() < schema.Masked.Rank() && schema.Masked.Rank() < schema.PlainText.Rank()) {
		t.Error("ranks are out of order")
	}
	if schema.Redaction("nope").Rank() != 0 {
		t.Error("an unknown redaction outranks DEFAULT")
	}
	if string(schema.RedactedValue) != `"*REDACTED*"` {
		t.Errorf("RedactedValue = %s", schema.RedactedValue)
	}
	_ = append(schema.RedactedValue, 'x')
	if string(schema.RedactedValue) != `"*REDACTED*"` {
		t.Error("appending to RedactedValue changed it")
	}
}
