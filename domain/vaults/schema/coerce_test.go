package schema_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/vaults/schema"
)

type coerceCase struct {
	raw string
	// canonical and text are the expected Value; canonical "" means the
	// value is refused and want is part of the message.
	canonical, text string
	want            string
}

func TestCoerce(t *testing.T) {
	long := strings.Repeat("a", schema.MaxValueBytes)
	tests := map[schema.DataType][]coerceCase{
		schema.String: {
			{raw: `"Sally Smith"`, canonical: `"Sally Smith"`, text: "Sally Smith"},
			{raw: ` "x" `, canonical: `"x"`, text: "x"},
			{raw: `""`, canonical: `""`, text: ""},
			{raw: `"<b>&amp;</b>"`, canonical: `"<b>&amp;</b>"`, text: "<b>&amp;</b>"},
			{raw: `"\u00e9t\u00e9 \"q\" \\ \n"`, canonical: `"été \"q\" \\ \n"`, text: "été \"q\" \\ \n"},
			{raw: `"` + long + `"`, canonical: `"` + long + `"`, text: long},
			{raw: `"` + long + `b"`, want: "the most a value may hold is 32768 bytes"},
			{raw: `4111111111111111`, want: `column "c" of table "cards" expects a string`},
			{raw: `true`, want: "expects a string"},
			{raw: `{"number":"4111111111111111"}`, want: "expects a string"},
			{raw: `["4111111111111111"]`, want: "expects a string"},
			{raw: `null`, want: `column "c" of table "cards" may not be null; omit the field instead`},
			{raw: ``, want: "has no value"},
			{raw: `"unterminated`, want: "is not valid JSON"},
			{raw: "\"bad \xff utf8\"", want: "not valid UTF-8"},
		},
		schema.Integer: {
			{raw: `42`, canonical: `42`, text: "42"},
			{raw: `-7`, canonical: `-7`, text: "-7"},
			{raw: `-0`, canonical: `0`, text: "0"},
			{raw: `42.0`, canonical: `42`, text: "42"},
			{raw: `"42"`, canonical: `42`, text: "42"},
			{raw: `"+42"`, canonical: `42`, text: "42"},
			{raw: `"0042"`, canonical: `42`, text: "42"},
			{raw: `9223372036854775807`, canonical: `9223372036854775807`, text: "9223372036854775807"},
			{raw: `-9223372036854775808`, canonical: `-9223372036854775808`, text: "-9223372036854775808"},
			{raw: `9223372036854775808`, want: "outside the 64-bit range"},
			{raw: `"99999999999999999999"`, want: "outside the 64-bit range"},
			{raw: `42.5`, want: `column "c" of table "cards" expects an integer`},
			{raw: `4.2e1`, want: "expects an integer"},
			{raw: `"42abc"`, want: "expects an integer"},
			{raw: `" 42"`, want: "expects an integer"},
			{raw: `""`, want: "expects an integer"},
			{raw: `true`, want: "expects an integer"},
			{raw: `[42]`, want: "expects an integer"},
			{raw: `null`, want: "may not be null"},
		},
		schema.Float: {
			{raw: `3.5`, canonical: `3.5`, text: "3.5"},
			{raw: `42`, canonical: `42`, text: "42"},
			{raw: `42.000`, canonical: `42`, text: "42"},
			{raw: `-0.0`, canonical: `0`, text: "0"},
			{raw: `1e21`, canonical: `1e+21`, text: "1e+21"},
			{raw: `0.000001`, canonical: `1e-06`, text: "1e-06"},
			{raw: `0.1`, canonical: `0.1`, text: "0.1"},
			{raw: `"3.5"`, canonical: `3.5`, text: "3.5"},
			{raw: `".5"`, canonical: `0.5`, text: "0.5"},
			{raw: `"+2.50"`, canonical: `2.5`, text: "2.5"},
			{raw: `1e999`, want: "outside the range of a 64-bit float"},
			{raw: `"NaN"`, want: `column "c" of table "cards" expects a float`},
			{raw: `"Inf"`, want: "expects a float"},
			{raw: `"0x1p-2"`, want: "expects a float"},
			{raw: `"1_000"`, want: "expects a float"},
			{raw: `"12.5 kg"`, want: "expects a float"},
			{raw: `false`, want: "expects a float"},
		},
		schema.Bool: {
			{raw: `true`, canonical: `true`, text: "true"},
			{raw: `false`, canonical: `false`, text: "false"},
			{raw: `"true"`, canonical: `true`, text: "true"},
			{raw: `"False"`, canonical: `false`, text: "false"},
			{raw: `1`, want: `column "c" of table "cards" expects a bool (true or false)`},
			{raw: `"yes"`, want: "expects a bool"},
			{raw: `"t"`, want: "expects a bool"},
		},
		schema.Date: {
			{raw: `"2024-01-02"`, canonical: `"2024-01-02"`, text: "2024-01-02"},
			{raw: `"2024-02-29"`, canonical: `"2024-02-29"`, text: "2024-02-29"},
			{raw: `"2023-02-29"`, want: `column "c" of table "cards" expects a date in the form YYYY-MM-DD`},
			{raw: `"2024-13-01"`, want: "expects a date"},
			{raw: `"2024-1-02"`, want: "expects a date"},
			{raw: `"02/01/2024"`, want: "expects a date"},
			{raw: `"2024-01-02T00:00:00Z"`, want: "expects a date"},
			{raw: `20240102`, want: "expects a date"},
		},
		schema.DateTime: {
			{raw: `"2024-01-02T03:04:05Z"`, canonical: `"2024-01-02T03:04:05Z"`, text: "2024-01-02T03:04:05Z"},
			{raw: `"2024-01-02T03:04:05.000Z"`, canonical: `"2024-01-02T03:04:05Z"`, text: "2024-01-02T03:04:05Z"},
			{raw: `"2024-01-02T03:04:05.120+02:00"`, canonical: `"2024-01-02T01:04:05.12Z"`, text: "2024-01-02T01:04:05.12Z"},
			{raw: `"2024-01-01T23:30:00-01:00"`, canonical: `"2024-01-02T00:30:00Z"`, text: "2024-01-02T00:30:00Z"},
			{raw: `"2024-01-02T03:04:05"`, want: `column "c" of table "cards" expects a datetime in RFC 3339 form with a time zone offset`},
			{raw: `"2024-01-02 03:04:05Z"`, want: "expects a datetime"},
			{raw: `"2024-01-02"`, want: "expects a datetime"},
			{raw: `"2024-01-02T25:04:05Z"`, want: "expects a datetime"},
			{raw: `"2024-01-02T03:04:05+24:00"`, want: "expects a datetime"},
			{raw: `"2024-01-02T03:04:05,5-23:59"`, canonical: `"2024-01-03T03:03:05.5Z"`, text: "2024-01-03T03:03:05.5Z"},
			{raw: `"9999-12-31T23:00:00-02:00"`, want: "outside the years 0000 to 9999"},
			{raw: `1704164645`, want: "expects a datetime"},
		},
		schema.JSON: {
			{raw: `{ "a" : [1, 2], "b": null }`, canonical: `{"a":[1,2],"b":null}`, text: `{"a":[1,2],"b":null}`},
			{raw: `"just a string"`, canonical: `"just a string"`, text: `"just a string"`},
			{raw: `12.50`, canonical: `12.50`, text: `12.50`},
			{raw: `{"html":"<&>"}`, canonical: `{"html":"<&>"}`, text: `{"html":"<&>"}`},
			{raw: `{"big":"` + long + `"}`, want: "the most a value may hold is 32768 bytes"},
			{raw: `null`, want: "may not be null"},
			{raw: `{"a":}`, want: `column "c" of table "cards" is not valid JSON`},
		},
		schema.Array: {
			{raw: `[ 1, "two", {"three": 3} ]`, canonical: `[1,"two",{"three":3}]`, text: `[1,"two",{"three":3}]`},
			{raw: `[]`, canonical: `[]`, text: `[]`},
			{raw: `{"a":1}`, want: `column "c" of table "cards" expects an array`},
			{raw: `"[1,2]"`, want: "expects an array"},
			{raw: `1`, want: "expects an array"},
		},
	}
	for dt, cases := range tests {
		c := column(t, schema.Column{Name: "c", DataType: dt})
		for _, tc := range cases {
			name := string(dt) + " " + tc.raw
			if len(name) > 60 {
				name = name[:60]
			}
			t.Run(name, func(t *testing.T) {
				checkCoerce(t, c, tc)
			})
		}
	}
}

func checkCoerce(t *testing.T, c *schema.Column, tc coerceCase) {
	t.Helper()
	v, err := c.Coerce(json.RawMessage(tc.raw))
	if tc.canonical == "" {
		msg := apiError(t, err)
		if !strings.Contains(msg, tc.want) {
			t.Errorf("message %q does not say %q", msg, tc.want)
		}
		noValueIn(t, msg, tc.raw)
		return
	}
	if err != nil {
		t.Fatalf("Coerce: %v", err)
	}
	if string(v.Canonical) != tc.canonical || v.Text != tc.text {
		t.Errorf("Coerce = (%s, %q), want (%s, %q)", v.Canonical, v.Text, tc.canonical, tc.text)
	}
	// The canonical form is a fixed point, and the text reads back to it.
	again, err := c.Coerce(v.Canonical)
	if err != nil || string(again.Canonical) != string(v.Canonical) {
		t.Errorf("Coerce(canonical) = %s, %v", again.Canonical, err)
	}
	fromText, err := c.CoerceString(v.Text)
	if err != nil || string(fromText.Canonical) != string(v.Canonical) || fromText.Text != v.Text {
		t.Errorf("CoerceString(text) = (%s, %q), %v", fromText.Canonical, fromText.Text, err)
	}
}

// noValueIn fails if a message echoes the value, quoted or not.
func noValueIn(t *testing.T, msg, raw string) {
	t.Helper()
	raw = strings.TrimSpace(raw)
	if raw == "null" {
		return // not a value
	}
	candidates := []string{raw}
	var s string
	if json.Unmarshal([]byte(raw), &s) == nil {
		candidates = append(candidates, s)
	}
	for _, c := range candidates {
		if len(c) >= 4 && strings.Contains(msg, c) {
			t.Errorf("message %q contains the value %q", msg, c)
		}
	}
}

// CoerceString must agree with Coerce of the JSON string holding the same
// text (json and array columns take the text as JSON).
func TestCoerceStringMatchesCoerce(t *testing.T) {
	texts := []string{"42", "-0", "+7", "42.0", "3.50", "1e3", "true", "FALSE", "2024-02-29", "2023-02-29",
		"2024-01-02T03:04:05+01:00", "hello", "", "<&>", "é", "[1, 2]", `{"a": 1}`, "null", " 1"}
	for _, dt := range []schema.DataType{schema.String, schema.Integer, schema.Float, schema.Bool, schema.Date, schema.DateTime, schema.JSON, schema.Array} {
		c := column(t, schema.Column{Name: "c", DataType: dt})
		for _, s := range texts {
			fromText, errText := c.CoerceString(s)
			raw, _ := json.Marshal(s)
			if dt == schema.JSON || dt == schema.Array {
				raw = []byte(s)
			}
			fromJSON, errJSON := c.Coerce(raw)
			if (errText == nil) != (errJSON == nil) || string(fromText.Canonical) != string(fromJSON.Canonical) || fromText.Text != fromJSON.Text {
				t.Errorf("%s %q: CoerceString = (%s, %v), Coerce = (%s, %v)", dt, s, fromText.Canonical, errText, fromJSON.Canonical, errJSON)
			}
		}
	}
	c := column(t, schema.Column{Name: "c", DataType: schema.String})
	msg := apiError(t, func() error { _, err := c.CoerceString("bad \xff"); return err }())
	if !strings.Contains(msg, "UTF-8") {
		t.Errorf("message %q", msg)
	}
}

// Without Normalize a column does not know its table; messages still name
// the column.
func TestCoerceMessageWithoutTable(t *testing.T) {
	c := &schema.Column{Name: "pan", DataType: schema.String}
	_, err := c.Coerce(json.RawMessage(`1`))
	if msg := apiError(t, err); msg != `column "pan" expects a string` {
		t.Errorf("message %q", msg)
	}
}

func TestCoerceRegex(t *testing.T) {
	c := column(t, schema.Column{Name: "code", DataType: schema.String, Validation: &schema.Validation{Regex: `[A-Z]{3}|[0-9]{4}`}})
	for _, ok := range []string{"ABC", "1234"} {
		if _, err := c.CoerceString(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	// Anchored: a match inside the value is not enough, for either side of
	// the alternation.
	for _, bad := range []string{"ABCD", "xABC", "12345", "1234\n", ""} {
		_, err := c.CoerceString(bad)
		msg := apiError(t, err)
		if !strings.Contains(msg, `column "code" of table "cards" does not match the pattern`) {
			t.Errorf("%q: message %q", bad, msg)
		}
		noValueIn(t, msg, bad)
	}
	d := column(t, schema.Column{Name: "day", DataType: schema.Date, Validation: &schema.Validation{Regex: `20[0-9]{2}-.*`}})
	if _, err := d.CoerceString("2024-05-06"); err != nil {
		t.Error(err)
	}
	if _, err := d.CoerceString("1999-05-06"); err == nil {
		t.Error("date regex not applied")
	}
}
