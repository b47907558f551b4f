package schema_test

import (
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/vaults/schema"
)

func TestValidationKinds(t *testing.T) {
	tests := []struct {
		kind      string
		good, bad []string
		complaint string
	}{
		{
			kind: "CARD_NUMBER",
			good: []string{
				"4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111",
				"378282246310005",     // 15 digits (Amex)
				"6011111111111117",    // Discover
				"123456789015",        // 12 digits, the fewest
				"1234567890123456785", // 19 digits, the most
			},
			bad: []string{
				"4111111111111112",     // Luhn check fails
				"4111111111111121",     // two digits swapped
				"12345678903",          // Luhn-valid but 11 digits
				"41111111111111111115", // Luhn-valid but 20 digits
				"4111  1111 1111 1111", // two separators in a row
				" 4111111111111111",    // leading separator
				"4111111111111111-",    // trailing separator
				"4111.1111.1111.1111",  // not a separator we allow
				"411111111111111a",     // a letter
				"４１１１１１１１１１１１１１１１", // full-width digits
				"",
			},
			complaint: "expects a card number",
		},
		{
			kind: "SSN",
			good: []string{"123-45-6789", "078-05-1120", "899-99-9999", "001-01-0001"},
			bad: []string{
				"000-12-3456", "666-12-3456", "900-12-3456", "999-12-3456", // areas never issued
				"123-00-4567", // group 00
				"123-45-0000", // serial 0000
				"123456789", "123-45-678", "123-456-789", "12a-45-6789", "123 45 6789", " 123-45-6789",
			},
			complaint: "expects a US social security number in the form AAA-GG-SSSS",
		},
		{
			kind: "EMAIL",
			good: []string{"sally@example.com", "a.b+tag@sub.example.co", "x@localhost", "o'brien@example.ie"},
			bad: []string{
				"Sally <sally@example.com>", "<sally@example.com>", "sally@example.com (home)",
				"sally", "sally@", "@example.org", "sally@@example.com", "sally @example.com", "",
				strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com", // 255 characters
			},
			complaint: "expects an email address",
		},
		{
			kind: "PHONE_E164",
			good: []string{"+14155552671", "+442071838750", "+12345678", "+123456789012345"},
			bad: []string{
				"14155550123",       // no +
				"+04155552671",      // first digit 0
				"+1234567",          // 7 digits
				"+1234567890123456", // 16 digits
				"+1 415 555 2671", "+1-415-555-2671", "+", "++14155552671", "+1415555267a",
			},
			complaint: "expects a phone number in E.164 form",
		},
		{
			kind:      "DATE",
			good:      []string{"2024-02-29", "2023-12-31", "0001-01-01"},
			bad:       []string{"2023-02-29", "2024-13-01", "2024-04-31", "2024-1-01", "24-01-01", "2024/01/01", "2024-01-01T00:00:00Z", " 2024-01-01"},
			complaint: "expects a date in the form YYYY-MM-DD",
		},
	}
	for _, tt := range tests {
		c := column(t, schema.Column{Name: "v", DataType: schema.String, Validation: &schema.Validation{Kind: tt.kind}})
		for _, s := range tt.good {
			if _, err := c.CoerceString(s); err != nil {
				t.Errorf("%s %q refused: %v", tt.kind, s, err)
			}
		}
		for _, s := range tt.bad {
			_, err := c.CoerceString(s)
			if err == nil {
				t.Errorf("%s %q accepted", tt.kind, s)
				continue
			}
			msg := apiError(t, err)
			if !strings.HasPrefix(msg, `column "v" of table "cards" `+tt.complaint) {
				t.Errorf("%s %q: message %q", tt.kind, s, msg)
			}
			noValueIn(t, msg, s)
		}
	}
}

func TestEmailLength(t *testing.T) {
	c := column(t, schema.Column{Name: "v", DataType: schema.String, Validation: &schema.Validation{Kind: "EMAIL"}})
	local := strings.Repeat("a", 64)
	domain := strings.Repeat("b", 254-len(local)-1-4) + ".com"
	if _, err := c.CoerceString(local + "@" + domain); err != nil {
		t.Errorf("254 characters refused: %v", err)
	}
	if _, err := c.CoerceString(local + "@b" + domain); err == nil {
		t.Error("255 characters accepted")
	}
}
