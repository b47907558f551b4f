// Package schema is a vault's schema: its tables and columns, and for each
// column what it holds, how it is tokenized, redacted, masked and
// validated; plus the rules for changing a schema once data is stored.
//
// Every value a request carries goes through Column.Coerce (or
// CoerceString) first, so that one value always has one canonical
// encoding: those bytes are what is encrypted, blind-indexed and
// deterministically tokenized, so two spellings of the same value must not
// produce two encodings.
//
// Error messages name the table, column or schema path that is wrong and
// never the value, which may be sensitive.
package schema

import (
	"encoding/json"
	"fmt"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// DataType is what a column holds.
type DataType string

const (
	String   DataType = "string"
	Integer  DataType = "integer"
	Float    DataType = "float"
	Bool     DataType = "bool"
	Date     DataType = "date"
	DateTime DataType = "datetime"
	JSON     DataType = "json"
	Array    DataType = "array"
)

var dataTypes = []DataType{String, Integer, Float, Bool, Date, DateTime, JSON, Array}

// ValueType is the Skyflow valueType of the data type, as detokenize
// answers it; NONE for an unknown data type (what Skyflow answers for a
// failed token).
func (d DataType) ValueType() string {
	switch d {
	case String:
		return "STRING"
	case Integer:
		return "INTEGER"
	case Float:
		return "FLOAT"
	case Bool:
		return "BOOL"
	case Date:
		return "DATE"
	case DateTime:
		return "DATETIME"
	case JSON:
		return "JSON"
	case Array:
		return "ARRAY"
	}
	return "NONE"
}

func (d DataType) known() bool {
	for _, k := range dataTypes {
		if d == k {
			return true
		}
	}
	return false
}

// article is "a" or "an" for messages ("expects an integer").
func (d DataType) article() string {
	if d == Integer || d == Array {
		return "an"
	}
	return "a"
}

// TokenType is how a column's values are tokenized; NoToken means they are
// not.
type TokenType string

const (
	NoToken              TokenType = ""
	DeterministicUUID    TokenType = "DETERMINISTIC_UUID"
	NonDeterministicUUID TokenType = "NON_DETERMINISTIC_UUID"
	DeterministicFPT     TokenType = "DETERMINISTIC_FPT"
	NonDeterministicFPT  TokenType = "NON_DETERMINISTIC_FPT"
	PreserveLeft6Right4  TokenType = "DETERMINISTIC_PRESERVE_LEFT_6_RIGHT_4"
)

var tokenTypes = []TokenType{DeterministicUUID, NonDeterministicUUID, DeterministicFPT, NonDeterministicFPT, PreserveLeft6Right4}

// Deterministic reports whether the same value (in the same column group)
// always gets the same token: what makes tokenize and equality lookups by
// token possible.
func (t TokenType) Deterministic() bool {
	return t == DeterministicUUID || t == DeterministicFPT || t == PreserveLeft6Right4
}

// FormatPreserving reports whether tokens keep the value's length and
// character classes, so they only make sense for string columns.
func (t TokenType) FormatPreserving() bool {
	return t == DeterministicFPT || t == NonDeterministicFPT || t == PreserveLeft6Right4
}

func (t TokenType) known() bool {
	for _, k := range tokenTypes {
		if t == k {
			return true
		}
	}
	return t == NoToken
}

// Redaction is how much of a value a reader sees.
type Redaction string

const (
	// Default is, in a request or a policy, "the level the caller's policy
	// gives"; it is never a column's own redaction.
	Default   Redaction = "DEFAULT"
	Redacted  Redaction = "REDACTED"
	Masked    Redaction = "MASKED"
	PlainText Redaction = "PLAIN_TEXT"
)

// ParseRedaction reads a redaction as the Skyflow API spells it; "" is
// Default, as when a request leaves it out.
func ParseRedaction(s string) (Redaction, error) {
	switch r := Redaction(s); r {
	case "":
		return Default, nil
	case Default, Redacted, Masked, PlainText:
		return r, nil
	}
	return "", apierr.InvalidArgument("%s is not a redaction; use one of DEFAULT, REDACTED, MASKED, PLAIN_TEXT (upper case)", quoteShort(s))
}

// Rank orders redactions from least to most revealing (Redacted 1, Masked
// 2, PlainText 3) so that policies can compare them; Default and unknown
// redactions rank 0.
func (r Redaction) Rank() int {
	switch r {
	case Redacted:
		return 1
	case Masked:
		return 2
	case PlainText:
		return 3
	}
	return 0
}

// RedactedValue is the value a REDACTED read answers with. It is a
// variable for convenience; treat it as a constant (its capacity equals its
// length, so appending to it copies rather than writing into it).
var RedactedValue = func() json.RawMessage {
	b := []byte(`"*REDACTED*"`)
	return b[:len(b):len(b)]
}()

// MaxValueBytes bounds a string value's contents and a json or array
// value's compacted encoding.
const MaxValueBytes = 32 << 10

// Vault is a vault's schema.
type Vault struct {
	Name        string  `json:"name"`
	Description string  `json:"description,omitempty"`
	Tables      []Table `json:"tables"`
}

// Table is a table of a vault; every record also has a skyflow_id.
type Table struct {
	Name    string   `json:"name"`
	Columns []Column `json:"columns"`
}

// Column is a column of a table.
type Column struct {
	Name     string   `json:"name"`
	DataType DataType `json:"data_type"`
	// TokenType is "" when the column is not tokenized.
	TokenType TokenType `json:"token_type,omitempty"`
	// Redaction is the column's default redaction: what a role granted
	// DEFAULT reads. "" means REDACTED (Normalize fills it in).
	Redaction Redaction `json:"redaction,omitempty"`
	// Mask is what MASKED shows: "" or SHOW_NONE, SHOW_LAST_<n>,
	// SHOW_FIRST_<n>_LAST_<m>, EMAIL (see Masked).
	Mask string `json:"mask,omitempty"`
	// Unique columns can be upserted on; uniqueness is enforced through the
	// blind index, since values are stored encrypted.
	Unique bool `json:"unique,omitempty"`
	// ColumnGroup shares deterministic tokens across columns: the same
	// value gives the same token in every column of the group.
	ColumnGroup string      `json:"column_group,omitempty"`
	Validation  *Validation `json:"validation,omitempty"`
	// DataSubject marks the column naming whom a record is about: every
	// record of the table must give it, the record's values are sealed
	// with that subject's own key too, and forgetting the subject
	// destroys the key (domain/shredding/subjects.go). At most one a table.
	DataSubject bool `json:"data_subject,omitempty"`

	// table is the table's name, filled in by Normalize so that Coerce's
	// messages can name it.
	table string
}

// Validation is an extra check on a column's values: exactly one of a
// built-in Kind (CARD_NUMBER, SSN, EMAIL, PHONE_E164, DATE) or a Regex
// (RE2, matched against the whole value).
type Validation struct {
	Kind  string `json:"kind,omitempty"`
	Regex string `json:"regex,omitempty"`
}

// Normalize fills in defaults so that the rest of the platform never sees
// an empty redaction, and records on each column its table's name for
// messages. It is idempotent.
func (v *Vault) Normalize() {
	if v == nil {
		return
	}
	for i := range v.Tables {
		t := &v.Tables[i]
		for j := range t.Columns {
			c := &t.Columns[j]
			if c.Redaction == "" {
				c.Redaction = Redacted
			}
			c.table = t.Name
		}
	}
}

// Table finds a table by name.
func (v *Vault) Table(name string) (*Table, bool) {
	if v == nil {
		return nil, false
	}
	for i := range v.Tables {
		if v.Tables[i].Name == name {
			return &v.Tables[i], true
		}
	}
	return nil, false
}

// Column finds a column by name.
func (t *Table) Column(name string) (*Column, bool) {
	if t == nil {
		return nil, false
	}
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i], true
		}
	}
	return nil, false
}

// SubjectColumn is the table's data_subject column, or nil.
func (t *Table) SubjectColumn() *Column {
	for i := range t.Columns {
		if t.Columns[i].DataSubject {
			return &t.Columns[i]
		}
	}
	return nil
}

// HasSubjects reports whether any table has a data_subject column.
func (v *Vault) HasSubjects() bool {
	for i := range v.Tables {
		if v.Tables[i].SubjectColumn() != nil {
			return true
		}
	}
	return false
}

// GroupIndexTable is the blind-index "table" of column-group value
// indexes (the token map's value_index); no table can have this name,
// since table names are identifiers.
const GroupIndexTable = "#group"

// Group is the column group whose deterministic tokens the column shares:
// its ColumnGroup, or "<table>.<column>" (which no named group can spell,
// since identifiers have no dot).
func (c *Column) Group(table string) string {
	if c.ColumnGroup != "" {
		return c.ColumnGroup
	}
	return table + "." + c.Name
}

// quoteShort quotes a schema word (never a value) for a message, cut short
// so that a message stays readable whatever was sent.
func quoteShort(s string) string {
	const max = 40
	r := []rune(s)
	if len(r) > max {
		return fmt.Sprintf("%q…", string(r[:max]))
	}
	return fmt.Sprintf("%q", s)
}
