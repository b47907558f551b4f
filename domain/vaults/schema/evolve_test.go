package schema_test

import (
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/vaults/schema"
)

func TestCheckEvolution(t *testing.T) {
	col := func(v *schema.Vault, ti, ci int) *schema.Column { return &v.Tables[ti].Columns[ci] }
	tests := []struct {
		name   string
		change func(v *schema.Vault)
		// want is part of the refusal; "" means the change is allowed.
		want []string
	}{
		{"no change", func(v *schema.Vault) {}, nil},
		{"add a table", func(v *schema.Vault) {
			v.Tables = append(v.Tables, schema.Table{Name: "accounts", Columns: []schema.Column{{Name: "iban", DataType: schema.String, Unique: true}}})
		}, nil},
		{"add a column", func(v *schema.Vault) {
			v.Tables[1].Columns = append(v.Tables[1].Columns, schema.Column{Name: "phone", DataType: schema.String, Unique: true, TokenType: schema.DeterministicUUID})
		}, nil},
		{"rename the vault", func(v *schema.Vault) { v.Name = "Payments (EU)" }, nil},
		{"change the description", func(v *schema.Vault) { v.Description = "" }, nil},
		{"change a redaction", func(v *schema.Vault) { col(v, 1, 0).Redaction = schema.PlainText }, nil},
		{"change a mask", func(v *schema.Vault) { col(v, 1, 0).Mask = "SHOW_NONE" }, nil},
		{"change a validation", func(v *schema.Vault) {
			col(v, 1, 0).Validation = &schema.Validation{Regex: `[0-9]{3}-[0-9]{2}-[0-9]{4}`}
		}, nil},
		{"remove a validation", func(v *schema.Vault) { col(v, 1, 0).Validation = nil }, nil},
		{"add a validation", func(v *schema.Vault) { col(v, 0, 2).Validation = &schema.Validation{Kind: "EMAIL"} }, nil},
		{"turn unique off", func(v *schema.Vault) { col(v, 1, 1).Unique = false }, nil},
		{"reorder tables and columns", func(v *schema.Vault) {
			v.Tables[0], v.Tables[1] = v.Tables[1], v.Tables[0]
			cs := v.Tables[0].Columns
			cs[0], cs[2] = cs[2], cs[0]
		}, nil},

		{"remove a table", func(v *schema.Vault) { v.Tables = v.Tables[1:] }, []string{`table "cards" cannot be removed`, "stranded"}},
		{"rename a table", func(v *schema.Vault) { v.Tables[0].Name = "payment_cards" }, []string{`table "cards" cannot be removed`}},
		{"remove a column", func(v *schema.Vault) { v.Tables[1].Columns = v.Tables[1].Columns[:2] }, []string{`column "profile" of table "people" cannot be removed`, "stranded"}},
		{"change a data type", func(v *schema.Vault) { col(v, 1, 2).DataType = schema.String }, []string{`column "profile" of table "people": data_type cannot change from "json" to "string"`}},
		{"add tokens", func(v *schema.Vault) { col(v, 1, 2).TokenType = schema.NonDeterministicUUID }, []string{`column "profile" of table "people": token_type cannot change from none to NON_DETERMINISTIC_UUID`}},
		{"change tokens", func(v *schema.Vault) { col(v, 1, 0).TokenType = schema.NonDeterministicFPT }, []string{`column "ssn" of table "people": token_type cannot change from DETERMINISTIC_FPT to NON_DETERMINISTIC_FPT`}},
		{"remove tokens", func(v *schema.Vault) { col(v, 1, 0).TokenType = "" }, []string{`token_type cannot change from DETERMINISTIC_FPT to none`}},
		{"join a group", func(v *schema.Vault) {
			c := col(v, 1, 0)
			c.TokenType, c.ColumnGroup = schema.DeterministicUUID, "email"
		}, []string{`column "ssn" of table "people": token_type cannot change`}},
		{"change a group", func(v *schema.Vault) {
			col(v, 1, 1).ColumnGroup = "mail"
			col(v, 0, 2).ColumnGroup = "mail"
		}, []string{`column "holder_email" of table "cards": column_group cannot change from "email" to "mail"`}},
		{"leave a group", func(v *schema.Vault) { col(v, 0, 2).ColumnGroup = "" }, []string{`column_group cannot change from "email" to none (its own group cards.holder_email)`}},
		{"turn unique on", func(v *schema.Vault) { col(v, 1, 0).Unique = true }, []string{`column "ssn" of table "people": unique cannot be turned on`}},
		{"add a table with a data_subject column", func(v *schema.Vault) {
			v.Tables = append(v.Tables, schema.Table{Name: "visits", Columns: []schema.Column{{Name: "patient_id", DataType: schema.String, DataSubject: true}}})
		}, nil},
		{"set data_subject on an existing table", func(v *schema.Vault) { col(v, 1, 0).DataSubject = true }, []string{`table "people": column "ssn" cannot become its data_subject column`, "set when its table is made"}},
		{"set data_subject on a new column of an existing table", func(v *schema.Vault) {
			v.Tables[1].Columns = append(v.Tables[1].Columns, schema.Column{Name: "person_id", DataType: schema.String, DataSubject: true})
		}, []string{`table "people": column "person_id" cannot become its data_subject column`}},
		{"invalid new schema", func(v *schema.Vault) { col(v, 1, 0).Mask = "SHOW_HALF" }, []string{"tables[1].columns[0].mask:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, new := baseVault(), baseVault()
			old.Normalize()
			tt.change(new)
			new.Normalize()
			err := schema.CheckEvolution(old, new)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("want allowed, got %v", err)
				}
				return
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

func TestCheckEvolutionKeepsTheDataSubjectColumn(t *testing.T) {
	withSubject := func() *schema.Vault {
		v := baseVault()
		v.Tables[1].Columns[0].DataSubject = true
		v.Normalize()
		return v
	}
	for name, change := range map[string]func(v *schema.Vault){
		"cleared": func(v *schema.Vault) { v.Tables[1].Columns[0].DataSubject = false },
		"moved": func(v *schema.Vault) {
			v.Tables[1].Columns[0].DataSubject = false
			v.Tables[1].Columns[1].DataSubject = true
		},
	} {
		t.Run(name, func(t *testing.T) {
			new := withSubject()
			change(new)
			msg := apiError(t, schema.CheckEvolution(withSubject(), new))
			if !strings.Contains(msg, `table "people": its data_subject column "ssn" cannot change`) {
				t.Errorf("message %q does not name the kept column", msg)
			}
		})
	}
	if err := schema.CheckEvolution(withSubject(), withSubject()); err != nil {
		t.Fatalf("an unchanged data_subject column: %v", err)
	}
}

func TestCheckEvolutionFromNothing(t *testing.T) {
	if err := schema.CheckEvolution(nil, baseVault()); err != nil {
		t.Fatal(err)
	}
	apiError(t, schema.CheckEvolution(baseVault(), nil))
}
