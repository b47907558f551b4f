package schema_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/skyflow-oss/skyflow/domain/vaults/schema"
)

// FuzzDecode: Decode never panics, and a schema it accepts encodes and
// decodes to the same thing (what is stored reads back as it was).
func FuzzDecode(f *testing.F) {
	f.Add([]byte(goodSchema))
	f.Add([]byte(`{"name":"v","tables":[{"name":"t","columns":[{"name":"a","data_type":"json"}]}]}`))
	f.Add([]byte(`{"name":"v","tables":[{"name":"t","columns":[{"name":"a","data_type":"string","validation":{"regex":"[a-z]+"},"mask":"SHOW_LAST_2"}]}]}`))
	f.Add([]byte(`{"name":"v","tables":[{"name":"t","columns":[{"name":"a","data_type":"integer","token_type":"DETERMINISTIC_UUID","column_group":"g"}]},{"name":"u","columns":[{"name":"b","data_type":"integer","token_type":"DETERMINISTIC_UUID","column_group":"g"}]}]}`))
	f.Add([]byte(`{"name":"\u00e9\ud800","tables":[]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"name":"v","name":"w"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		v, err := schema.Decode(raw)
		if err != nil {
			if v != nil {
				t.Fatal("a vault as well as an error")
			}
			return
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("encoding an accepted schema: %v", err)
		}
		again, err := schema.Decode(b)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", b, err)
		}
		if !reflect.DeepEqual(v, again) {
			t.Fatalf("round trip changed the schema:\n%+v\n%+v", v, again)
		}
	})
}

// fuzzColumns are the columns FuzzCoerce picks from: every data type, and
// string columns with every validation.
var fuzzColumns = func() []*schema.Column {
	var cs []*schema.Column
	for _, dt := range []schema.DataType{schema.String, schema.Integer, schema.Float, schema.Bool, schema.Date, schema.DateTime, schema.JSON, schema.Array} {
		cs = append(cs, &schema.Column{Name: "c", DataType: dt})
	}
	for _, k := range []string{"CARD_NUMBER", "SSN", "EMAIL", "PHONE_E164", "DATE"} {
		cs = append(cs, &schema.Column{Name: "c", DataType: schema.String, Validation: &schema.Validation{Kind: k}})
	}
	cs = append(cs, &schema.Column{Name: "c", DataType: schema.String, Validation: &schema.Validation{Regex: `[a-z]+|[0-9]{2,4}`}})
	return cs
}()

// FuzzCoerce: Coerce never panics; the canonical form coerces to itself
// and its text reads back to it; masks keep the value's length in runes.
func FuzzCoerce(f *testing.F) {
	for i := range fuzzColumns {
		for _, raw := range []string{`"x"`, `42`, `"42"`, `-0.0`, `1e21`, `true`, `"2024-02-29"`, `"2024-01-02T03:04:05.5+01:00"`, `{"a":[1]}`, `[1,"2"]`, `null`, `"4111 1111 1111 1111"`, `"123-45-6789"`, `"a@b.co"`, `"+14155550123"`} {
			f.Add(uint8(i), []byte(raw))
		}
	}
	f.Fuzz(func(t *testing.T, pick uint8, raw []byte) {
		c := fuzzColumns[int(pick)%len(fuzzColumns)]
		v, err := c.Coerce(raw)
		if err != nil {
			return
		}
		if !json.Valid(v.Canonical) {
			t.Fatalf("canonical %q is not JSON", v.Canonical)
		}
		again, err := c.Coerce(v.Canonical)
		if err != nil {
			t.Fatalf("Coerce(canonical %q): %v", v.Canonical, err)
		}
		if string(again.Canonical) != string(v.Canonical) || again.Text != v.Text {
			t.Fatalf("Coerce(canonical) = (%q, %q), want (%q, %q)", again.Canonical, again.Text, v.Canonical, v.Text)
		}
		fromText, err := c.CoerceString(v.Text)
		if err != nil || string(fromText.Canonical) != string(v.Canonical) {
			t.Fatalf("CoerceString(text %q) = %q, %v; want %q", v.Text, fromText.Canonical, err, v.Canonical)
		}
		for _, mask := range []string{"", "SHOW_LAST_4", "SHOW_FIRST_6_LAST_4", "EMAIL"} {
			m := *c
			m.Mask = mask
			var s string
			if err := json.Unmarshal(m.Masked(v), &s); err != nil {
				t.Fatalf("mask %s: invalid JSON: %v", mask, err)
			}
			if utf8.RuneCountInString(s) != utf8.RuneCountInString(v.Text) {
				t.Fatalf("mask %s of %q gave %q: length changed", mask, v.Text, s)
			}
		}
	})
}
