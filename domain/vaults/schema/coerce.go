package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// Value is a column value in canonical form.
type Value struct {
	// Canonical is the value's canonical JSON encoding: what is encrypted,
	// blind-indexed and answered as the value. Two spellings of one value
	// (42 and "42" for an integer) give the same bytes.
	Canonical []byte
	// Text is the value as text, what tokens and masks work on: a string's
	// contents, 42, 3.5, true, 2024-01-02, 2024-01-02T03:04:05Z, or the
	// compact JSON of a json or array value.
	Text string
}

// Coerce checks a JSON value from a request against the column (its data
// type and validation) and returns its canonical form. Integers, floats and
// bools may also come as JSON strings, as the SDKs sometimes send them.
func (c *Column) Coerce(raw json.RawMessage) (Value, error) {
	raw = bytes.Trim(raw, " \t\r\n") // JSON's whitespace only
	switch {
	case len(raw) == 0:
		return Value{}, c.fail("has no value; send %s", c.expected())
	case !utf8.Valid(raw):
		return Value{}, c.fail("is not valid UTF-8 text; send %s", c.expected())
	case !json.Valid(raw):
		return Value{}, c.fail("is not valid JSON; send %s", c.expected())
	case string(raw) == "null":
		return Value{}, c.fail("may not be null; omit the field instead")
	}
	switch c.DataType {
	case JSON:
		return c.compactJSON(raw)
	case Array:
		if raw[0] != '[' {
			return Value{}, c.wrongType()
		}
		return c.compactJSON(raw)
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Value{}, c.wrongType()
		}
		return c.fromText(s)
	case 't', 'f':
		if c.DataType == Bool {
			return boolValue(raw[0] == 't'), nil
		}
	case '{', '[':
	default: // a number
		switch c.DataType {
		case Integer:
			return c.integer(string(raw))
		case Float:
			return c.float(string(raw))
		}
	}
	return Value{}, c.wrongType()
}

// CoerceString reads a value given as text (a query parameter, a SQL
// literal) and returns the same canonical form Coerce gives for the
// equivalent JSON: the JSON string holding s, or for json and array
// columns the JSON text s itself.
func (c *Column) CoerceString(s string) (Value, error) {
	if !utf8.ValidString(s) {
		return Value{}, c.fail("is not valid UTF-8 text; send %s", c.expected())
	}
	if c.DataType == JSON || c.DataType == Array {
		return c.Coerce(json.RawMessage(s))
	}
	return c.fromText(s)
}

// fromText coerces the contents of a JSON string.
func (c *Column) fromText(s string) (Value, error) {
	switch c.DataType {
	case String:
		if len(s) > MaxValueBytes {
			return Value{}, c.fail("holds a string of %d bytes; the most a value may hold is %d bytes", len(s), MaxValueBytes)
		}
		if err := c.checkValue(s); err != nil {
			return Value{}, err
		}
		return Value{Canonical: encodeString(s), Text: s}, nil
	case Integer:
		return c.integer(s)
	case Float:
		return c.float(s)
	case Bool:
		switch {
		case strings.EqualFold(s, "true"):
			return boolValue(true), nil
		case strings.EqualFold(s, "false"):
			return boolValue(false), nil
		}
	case Date:
		if !validDate(s) {
			return Value{}, c.wrongType()
		}
		if err := c.checkValue(s); err != nil {
			return Value{}, err
		}
		return Value{Canonical: encodeString(s), Text: s}, nil
	case DateTime:
		return c.datetime(s)
	}
	return Value{}, c.wrongType()
}

// integerText is a whole number as text; a fraction of zeros is allowed
// because some SDKs send 42.0 for 42.
var integerText = regexp.MustCompile(`^[+-]?[0-9]+(\.0+)?$`)

func (c *Column) integer(s string) (Value, error) {
	if !integerText.MatchString(s) {
		return Value{}, c.wrongType()
	}
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = s[:i]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return Value{}, c.fail("holds an integer outside the 64-bit range (-2^63 to 2^63-1)")
	}
	text := strconv.FormatInt(n, 10)
	return Value{Canonical: []byte(text), Text: text}, nil
}

// floatText is the JSON number grammar, loosened as people write numbers
// in text (a leading +, .5, 5.), and never hex, Inf or NaN.
var floatText = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$`)

func (c *Column) float(s string) (Value, error) {
	if !floatText.MatchString(s) {
		return Value{}, c.wrongType()
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return Value{}, c.fail("holds a number outside the range of a 64-bit float")
	}
	if f == 0 {
		f = 0 // -0 and 0 are one value: one blind index, one token
	}
	text := strconv.FormatFloat(f, 'g', -1, 64)
	return Value{Canonical: []byte(text), Text: text}, nil
}

func (c *Column) datetime(s string) (Value, error) {
	// RFC3339Nano parses with or without fractional seconds, and insists on
	// an offset: a time without one is ambiguous.
	t, err := time.Parse(time.RFC3339Nano, s)
	if _, offset := t.Zone(); err != nil || offset <= -24*3600 || offset >= 24*3600 {
		return Value{}, c.wrongType() // RFC 3339 offsets stop at ±23:59; time.Parse allows +24:00
	}
	t = t.UTC()
	if t.Year() < 0 || t.Year() > 9999 {
		return Value{}, c.fail("holds a datetime outside the years 0000 to 9999 once converted to UTC")
	}
	text := t.Format(time.RFC3339Nano)
	return Value{Canonical: encodeString(text), Text: text}, nil
}

func (c *Column) compactJSON(raw []byte) (Value, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return Value{}, c.wrongType()
	}
	if buf.Len() > MaxValueBytes {
		return Value{}, c.fail("holds %d bytes of JSON; the most a value may hold is %d bytes", buf.Len(), MaxValueBytes)
	}
	b := buf.Bytes()
	return Value{Canonical: b, Text: string(b)}, nil
}

func boolValue(b bool) Value {
	text := strconv.FormatBool(b)
	return Value{Canonical: []byte(text), Text: text}
}

// encodeString is the canonical JSON string: encoding/json's escaping but
// without HTML escaping, so that <, > and & stay as they are.
func encodeString(s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func (c *Column) checkValue(text string) error {
	if msg := c.checkValidation(text); msg != "" {
		return c.fail("%s", msg)
	}
	return nil
}

// expected says what the column takes, for messages.
func (c *Column) expected() string {
	switch c.DataType {
	case String:
		return "a string"
	case Integer:
		return "an integer (a whole number within the 64-bit range, as a JSON number or a string)"
	case Float:
		return "a float (a finite number, as a JSON number or a string)"
	case Bool:
		return "a bool (true or false)"
	case Date:
		return "a date in the form YYYY-MM-DD (e.g. 2024-01-31)"
	case DateTime:
		return "a datetime in RFC 3339 form with a time zone offset (e.g. 2024-01-31T15:04:05Z)"
	case JSON:
		return "a JSON value"
	case Array:
		return "an array (a JSON array)"
	}
	return fmt.Sprintf("%s %s", c.DataType.article(), c.DataType)
}

func (c *Column) wrongType() error {
	return c.fail("expects %s", c.expected())
}

// fail makes an InvalidArgument error about the column. Callers never pass
// the value.
func (c *Column) fail(format string, args ...any) error {
	return apierr.InvalidArgument("%s %s", c.describe(), fmt.Sprintf(format, args...))
}

func (c *Column) describe() string {
	if c.table == "" {
		return fmt.Sprintf("column %q", c.Name)
	}
	return fmt.Sprintf("column %q of table %q", c.Name, c.table)
}

// TextOf is the Text of a stored canonical value, as masks, detokenize
// and data-subject identifiers use it: a string's contents, anything else
// as its JSON. It never re-validates: a schema change may have tightened
// the column's validation since the value was stored.
func TextOf(canonical []byte) string {
	var s string
	if len(canonical) > 0 && canonical[0] == '"' && json.Unmarshal(canonical, &s) == nil {
		return s
	}
	return string(canonical)
}
