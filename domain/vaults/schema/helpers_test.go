package schema_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/vaults/schema"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// baseVault is a valid schema that the tests change one thing in.
func baseVault() *schema.Vault {
	return &schema.Vault{
		Name:        "Payments",
		Description: "cards and the people who hold them",
		Tables: []schema.Table{
			{Name: "cards", Columns: []schema.Column{
				{Name: "card_number", DataType: schema.String, TokenType: schema.PreserveLeft6Right4, Redaction: schema.Masked, Mask: "SHOW_FIRST_6_LAST_4", Unique: true, Validation: &schema.Validation{Kind: "CARD_NUMBER"}},
				{Name: "expiry", DataType: schema.Date},
				{Name: "holder_email", DataType: schema.String, TokenType: schema.DeterministicUUID, ColumnGroup: "email", Mask: "EMAIL"},
			}},
			{Name: "people", Columns: []schema.Column{
				{Name: "ssn", DataType: schema.String, TokenType: schema.DeterministicFPT, Mask: "SHOW_LAST_4", Validation: &schema.Validation{Kind: "SSN"}},
				{Name: "email", DataType: schema.String, TokenType: schema.DeterministicUUID, ColumnGroup: "email", Unique: true, Mask: "EMAIL"},
				{Name: "profile", DataType: schema.JSON, Redaction: schema.PlainText},
			}},
		},
	}
}

// apiError asserts that err is a 400 *apierr.Error and returns its message.
func apiError(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		t.Fatal("want an error, got nil")
	}
	var e *apierr.Error
	if !errors.As(err, &e) {
		t.Fatalf("error is %T (%v), want *apierr.Error", err, err)
	}
	if e.HTTPCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400 (%s)", e.HTTPCode, e.Message)
	}
	return e.Message
}

// column returns c as a column of table "cards" in a normalized, valid
// vault, so that messages name the table.
func column(t testing.TB, c schema.Column) *schema.Column {
	t.Helper()
	v := &schema.Vault{Name: "v", Tables: []schema.Table{{Name: "cards", Columns: []schema.Column{c}}}}
	v.Normalize()
	if err := v.Validate(); err != nil {
		t.Fatalf("column %+v: %v", c, err)
	}
	return &v.Tables[0].Columns[0]
}
