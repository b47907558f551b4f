package schema

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// Limits on a schema: enough for real vaults, small enough that a schema
// stays cheap to load and check on every request.
const (
	MaxTables          = 64
	MaxColumns         = 256
	maxVaultName       = 100
	maxDescription     = 1000
	maxRegex           = 512
	reservedColumnName = "skyflow_id"
)

// identifier is the shape of table, column and column group names: safe in
// URLs, SQL and the default group "<table>.<column>".
var identifier = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

const identifierRule = "must be 1 to 63 lower-case letters, digits or underscores, starting with a letter"

// reservedTables are names a table may not take because a Data API path
// under /v1/vaults/{vaultID}/ already means something else.
var reservedTables = map[string]bool{"detokenize": true, "tokenize": true, "query": true}

// Validation kinds.
const (
	KindCardNumber = "CARD_NUMBER"
	KindSSN        = "SSN"
	KindEmail      = "EMAIL"
	KindPhoneE164  = "PHONE_E164"
	KindDate       = "DATE"
)

var kinds = []string{KindCardNumber, KindSSN, KindEmail, KindPhoneE164, KindDate}

// Validate checks the schema and returns the first problem as an
// InvalidArgument error whose message starts with the path of the
// offending field, e.g. `tables[1].columns[2].token_type: …`.
func (v *Vault) Validate() error {
	if v == nil {
		return apierr.InvalidArgument("the vault schema is missing; send an object with name and tables")
	}
	if err := checkVaultName(v.Name); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(v.Description); n > maxDescription {
		return apierr.InvalidArgument("description: is %d characters long; shorten it to at most %d", n, maxDescription)
	}
	if len(v.Tables) == 0 {
		return apierr.InvalidArgument("tables: a vault needs at least one table")
	}
	if len(v.Tables) > MaxTables {
		return apierr.InvalidArgument("tables: a vault may have at most %d tables, not %d", MaxTables, len(v.Tables))
	}
	tables := map[string]int{}
	for i := range v.Tables {
		t := &v.Tables[i]
		path := fmt.Sprintf("tables[%d]", i)
		if !identifier.MatchString(t.Name) {
			return apierr.InvalidArgument("%s.name: %s is not a valid table name; a table name %s", path, quoteShort(t.Name), identifierRule)
		}
		if reservedTables[t.Name] {
			return apierr.InvalidArgument("%s.name: %q is reserved by the Data API (POST /v1/vaults/{vaultID}/%s); choose another table name", path, t.Name, t.Name)
		}
		if j, dup := tables[t.Name]; dup {
			return apierr.InvalidArgument("%s.name: table %q is already defined at tables[%d]; table names must be unique", path, t.Name, j)
		}
		tables[t.Name] = i
		if err := t.validate(path); err != nil {
			return err
		}
	}
	return v.checkGroups()
}

func checkVaultName(name string) error {
	n := utf8.RuneCountInString(name)
	switch {
	case strings.TrimSpace(name) == "":
		return apierr.InvalidArgument("name: the vault needs a name (1 to %d characters)", maxVaultName)
	case n > maxVaultName:
		return apierr.InvalidArgument("name: the vault name is %d characters long; shorten it to at most %d", n, maxVaultName)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return apierr.InvalidArgument("name: the vault name may not contain control characters such as newlines or tabs")
	}
	return nil
}

func (t *Table) validate(path string) error {
	if len(t.Columns) == 0 {
		return apierr.InvalidArgument("%s.columns: table %q needs at least one column", path, t.Name)
	}
	if len(t.Columns) > MaxColumns {
		return apierr.InvalidArgument("%s.columns: table %q may have at most %d columns, not %d", path, t.Name, MaxColumns, len(t.Columns))
	}
	seen := map[string]int{}
	subject := -1
	for j := range t.Columns {
		c := &t.Columns[j]
		cpath := fmt.Sprintf("%s.columns[%d]", path, j)
		if !identifier.MatchString(c.Name) {
			return apierr.InvalidArgument("%s.name: %s is not a valid column name; a column name %s", cpath, quoteShort(c.Name), identifierRule)
		}
		if c.Name == reservedColumnName {
			return apierr.InvalidArgument("%s.name: %q is reserved: every record already has a skyflow_id; choose another column name", cpath, c.Name)
		}
		if k, dup := seen[c.Name]; dup {
			return apierr.InvalidArgument("%s.name: column %q is already defined at %s.columns[%d]; column names must be unique within a table", cpath, c.Name, path, k)
		}
		seen[c.Name] = j
		if err := c.validate(cpath); err != nil {
			return err
		}
		if c.DataSubject {
			if subject >= 0 {
				return apierr.InvalidArgument("%s.data_subject: column %q is already the data_subject column of table %q; a record belongs to one data subject, so a table has at most one", cpath, t.Columns[subject].Name, t.Name)
			}
			subject = j
		}
	}
	return nil
}

func (c *Column) validate(path string) error {
	if !c.DataType.known() {
		return apierr.InvalidArgument("%s.data_type: %s is not a data type; use one of %s", path, quoteShort(string(c.DataType)), joinNames(dataTypes))
	}
	if !c.TokenType.known() {
		return apierr.InvalidArgument("%s.token_type: %s is not a token type; use one of %s, or leave it out for no tokens", path, quoteShort(string(c.TokenType)), joinNames(tokenTypes))
	}
	if c.TokenType.FormatPreserving() && c.DataType != String {
		return apierr.InvalidArgument("%s.token_type: %s tokens keep the shape of text, so they need data_type \"string\", not %q; use DETERMINISTIC_UUID or NON_DETERMINISTIC_UUID", path, c.TokenType, c.DataType)
	}
	switch c.Redaction {
	case "", Redacted, Masked, PlainText:
	case Default:
		return apierr.InvalidArgument("%s.redaction: DEFAULT only has a meaning in requests and policies; a column's own redaction must be REDACTED, MASKED or PLAIN_TEXT", path)
	default:
		return apierr.InvalidArgument("%s.redaction: %s is not a column redaction; use one of REDACTED, MASKED, PLAIN_TEXT", path, quoteShort(string(c.Redaction)))
	}
	m, ok := parseMask(c.Mask)
	if !ok {
		return apierr.InvalidArgument("%s.mask: %s is not a mask; use SHOW_NONE, SHOW_LAST_<n>, SHOW_FIRST_<n>_LAST_<m> (n, m from 0 to %d) or EMAIL", path, quoteShort(c.Mask), maxMaskShow)
	}
	if m.email && c.DataType != String {
		return apierr.InvalidArgument("%s.mask: the EMAIL mask needs data_type \"string\", not %q", path, c.DataType)
	}
	if err := c.validateValidation(path + ".validation"); err != nil {
		return err
	}
	if c.TokenType == PreserveLeft6Right4 && (c.Validation == nil || c.Validation.Kind != KindCardNumber) {
		return apierr.InvalidArgument("%s.token_type: DETERMINISTIC_PRESERVE_LEFT_6_RIGHT_4 is for card numbers; add \"validation\": {\"kind\": \"CARD_NUMBER\"} to the column", path)
	}
	if c.Unique {
		switch c.DataType {
		case JSON, Array:
			return apierr.InvalidArgument("%s.unique: %s values are never looked up, so they cannot be unique; remove unique", path, c.DataType)
		case Bool:
			return apierr.InvalidArgument("%s.unique: a bool column has only two values, so a unique one could hold only two records; remove unique", path)
		}
	}
	if c.DataSubject && c.DataType != String && c.DataType != Integer {
		return apierr.InvalidArgument("%s.data_subject: a data_subject column names a person by an identifier, so it needs data_type \"string\" or \"integer\", not %q", path, c.DataType)
	}
	if c.ColumnGroup != "" {
		if !identifier.MatchString(c.ColumnGroup) {
			return apierr.InvalidArgument("%s.column_group: %s is not a valid column group name; a column group name %s", path, quoteShort(c.ColumnGroup), identifierRule)
		}
		if !c.TokenType.Deterministic() {
			return apierr.InvalidArgument("%s.column_group: a column group shares deterministic tokens, so it needs a deterministic token_type (DETERMINISTIC_UUID, DETERMINISTIC_FPT or DETERMINISTIC_PRESERVE_LEFT_6_RIGHT_4)", path)
		}
		if c.DataType == JSON || c.DataType == Array {
			return apierr.InvalidArgument("%s.column_group: %s values are never looked up by token, so they cannot be in a column group; remove column_group", path, c.DataType)
		}
	}
	return nil
}

func (c *Column) validateValidation(path string) error {
	val := c.Validation
	if val == nil {
		return nil
	}
	if (val.Kind == "") == (val.Regex == "") {
		return apierr.InvalidArgument("%s: give exactly one of kind and regex", path)
	}
	if c.DataType != String && c.DataType != Date {
		return apierr.InvalidArgument("%s: validation applies to string and date columns only, not %q; remove it", path, c.DataType)
	}
	if val.Kind != "" {
		if !knownKind(val.Kind) {
			return apierr.InvalidArgument("%s.kind: %s is not a validation kind; use one of %s", path, quoteShort(val.Kind), strings.Join(kinds, ", "))
		}
		if c.DataType == Date {
			return apierr.InvalidArgument("%s.kind: a date column already checks that values are dates; remove the validation or use a regex", path)
		}
		return nil
	}
	if n := utf8.RuneCountInString(val.Regex); n > maxRegex {
		return apierr.InvalidArgument("%s.regex: is %d characters long; shorten it to at most %d", path, n, maxRegex)
	}
	if _, err := compileAnchored(val.Regex); err != nil {
		return apierr.InvalidArgument("%s.regex: does not compile as an RE2 regular expression: %s", path, regexProblem(err))
	}
	return nil
}

// regexProblem is the reason a regex failed without its text (which the
// schema's author wrote, but keep messages short).
func regexProblem(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "error parsing regexp: ")
	if i := strings.Index(msg, ": `"); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

func knownKind(k string) bool {
	for _, known := range kinds {
		if k == known {
			return true
		}
	}
	return false
}

type groupMember struct {
	path     string
	table    string
	column   string
	dataType DataType
	token    TokenType
}

// checkGroups makes sure every column of a named group can share tokens:
// a token maps back to one value, so the columns must encode values the
// same way and mint the same kind of token.
func (v *Vault) checkGroups() error {
	groups := map[string]groupMember{}
	for i := range v.Tables {
		t := &v.Tables[i]
		for j := range t.Columns {
			c := &t.Columns[j]
			if c.ColumnGroup == "" {
				continue
			}
			m := groupMember{fmt.Sprintf("tables[%d].columns[%d]", i, j), t.Name, c.Name, c.DataType, c.TokenType}
			first, ok := groups[c.ColumnGroup]
			if !ok {
				groups[c.ColumnGroup] = m
				continue
			}
			if first.dataType != m.dataType || first.token != m.token {
				return apierr.InvalidArgument("%s.column_group: column group %q joins column %q of table %q (%s, %s) with column %q of table %q (%s, %s); the columns of a group must have the same data_type and token_type",
					m.path, c.ColumnGroup, m.column, m.table, m.dataType, m.token, first.column, first.table, first.dataType, first.token)
			}
		}
	}
	return nil
}

func joinNames[T ~string](list []T) string {
	parts := make([]string, len(list))
	for i, s := range list {
		parts[i] = string(s)
	}
	return strings.Join(parts, ", ")
}
