package schema_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/vaults/schema"
)

func TestMasked(t *testing.T) {
	tests := []struct {
		mask, text, want string
	}{
		// The examples in API.md.
		{"SHOW_LAST_4", "4155558889", "XXXXXX8889"},
		{"EMAIL", "sallyyyy@gmail.com", "s******y@gmail.com"},
		{"SHOW_LAST_4", "123-45-6789", "XXX-XX-6789"},

		{"", "123-45-6789", "XXX-XX-XXXX"},
		{"SHOW_NONE", "Sally Smith", "XXXXX XXXXX"},
		{"SHOW_NONE", "Zoë Ångström", "XXX XXXXXXXX"},
		{"SHOW_LAST_2", "+1 (415) 555-0199", "+X (XXX) XXX-XX99"},
		{"SHOW_LAST_0", "abc", "XXX"},
		{"SHOW_FIRST_6_LAST_4", "4111111111111111", "411111XXXXXX1111"},
		{"SHOW_FIRST_6_LAST_4", "4111 1111 1111 1111", "4111 11XX XXXX 1111"},
		{"SHOW_FIRST_1_LAST_0", "secret", "sXXXXX"},
		{"SHOW_FIRST_0_LAST_3", "secret", "XXXret"},

		// A value no longer than what the mask shows is hidden entirely.
		{"SHOW_LAST_4", "1234", "XXXX"},
		{"SHOW_LAST_4", "12-3", "XX-X"},
		{"SHOW_FIRST_2_LAST_2", "abcd", "XXXX"},
		{"SHOW_FIRST_2_LAST_2", "abcde", "abXde"},
		{"SHOW_LAST_4", "", ""},

		{"EMAIL", "sallyy@gmail.com", "s****y@gmail.com"},
		{"EMAIL", "abc@x.io", "a*c@x.io"},
		{"EMAIL", "ab@x.io", "**@x.io"},
		{"EMAIL", "a@x.io", "*@x.io"},
		{"EMAIL", "zoë.ångström@example.se", "z**********m@example.se"},
		{"EMAIL", `"a@b"@example.com`, `"***"@example.com`},
		{"EMAIL", "no-at-sign", "XX-XX-XXXX"},
		{"EMAIL", "@example.com", "@XXXXXXX.XXX"},

		// Validate refuses unknown masks; if one gets through it hides all.
		{"SHOW_MIDDLE", "4155558889", "XXXXXXXXXX"},
	}
	for _, tt := range tests {
		c := &schema.Column{Name: "c", DataType: schema.String, Mask: tt.mask}
		got := c.Masked(schema.Value{Canonical: mustJSON(tt.text), Text: tt.text})
		var s string
		if err := json.Unmarshal(got, &s); err != nil {
			t.Fatalf("%s %q: Masked gave invalid JSON %s", tt.mask, tt.text, got)
		}
		if s != tt.want {
			t.Errorf("%s %q = %q, want %q", tt.mask, tt.text, s, tt.want)
		}
	}
}

// The API.md email example, counted: the first and last character of the
// local part stay and each of the others becomes one *.
func TestMaskedEmailCounts(t *testing.T) {
	c := &schema.Column{Name: "e", DataType: schema.String, Mask: "EMAIL"}
	got := string(c.Masked(schema.Value{Text: "sallyyyy@gmail.com"}))
	if got != `"s******y@gmail.com"` {
		t.Fatalf("got %s", got)
	}
	if n := strings.Count(got, "*"); n != len("sallyyyy")-2 {
		t.Errorf("%d stars, want %d", n, len("sallyyyy")-2)
	}
}

// Masks work on the text of a coerced value, whatever its data type.
func TestMaskedCoercedValues(t *testing.T) {
	tests := []struct {
		dt   schema.DataType
		mask string
		raw  string
		want string
	}{
		{schema.Integer, "SHOW_LAST_2", `"0123456"`, `"XXXX56"`},
		{schema.Date, "SHOW_FIRST_4_LAST_0", `"1990-05-17"`, `"1990-XX-XX"`},
		{schema.String, "SHOW_LAST_1", `"<a&b>"`, `"<X&b>"`},
		{schema.JSON, "SHOW_NONE", `{"k": "v1"}`, `"{\"X\":\"XX\"}"`},
	}
	for _, tt := range tests {
		c := column(t, schema.Column{Name: "c", DataType: tt.dt, Mask: tt.mask})
		v, err := c.Coerce(json.RawMessage(tt.raw))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(c.Masked(v)); got != tt.want {
			t.Errorf("%s %s %s = %s, want %s", tt.dt, tt.mask, tt.raw, got, tt.want)
		}
	}
}

func mustJSON(s string) []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return b
}
