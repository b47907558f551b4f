package sqlsubset

import "github.com/skyflow-oss/skyflow/runtime/apierr"

// Every refusal is worded here so the messages stay consistent. They say what
// is not supported and what to write instead, and they never quote a value
// from the query: values may be sensitive and end up in logs. Only keywords,
// operators, positions and column names in column position are echoed.
const (
	example = "SELECT * FROM <table> WHERE <column> = '<value>'"

	msgEmpty     = "The query is empty; send one SELECT, e.g. " + example + "."
	msgTooLong   = "The query is longer than %d bytes; select fewer columns or split the lookup into several queries."
	msgEncoding  = "The query must be valid UTF-8 text without NUL characters."
	msgSyntax    = "The query is not valid SQL near position %d; the supported form is " + example + " [AND …] [LIMIT n] [OFFSET n]."
	msgSyntaxAny = "The query is not valid SQL; the supported form is " + example + " [AND …] [LIMIT n] [OFFSET n]."
	msgComment   = "Comments (-- or /* */) are not supported in a query; remove them."
	msgMultiple  = "Only one statement per query is supported; remove everything after the first ';'."
	msgNotSelect = "Only SELECT queries are supported, not %s; use the records API to change data."
	msgNotSelAny = "Only SELECT queries are supported; use the records API to change data."

	msgSetOp     = "UNION, INTERSECT and EXCEPT are not supported; send one query per lookup."
	msgWith      = "WITH (common table expressions) is not supported; query the table directly."
	msgInto      = "SELECT INTO is not supported; queries are read-only."
	msgDistinct  = "DISTINCT is not supported; select the columns and de-duplicate the results yourself."
	msgGroupBy   = "GROUP BY, HAVING and aggregates are not supported; the vault only looks records up by exact match."
	msgWindow    = "Window clauses are not supported; the vault only looks records up by exact match."
	msgOrderBy   = "ORDER BY is not supported: ordering is not possible because values are stored as keyed hashes; sort the results yourself."
	msgLocking   = "FOR UPDATE / FOR SHARE is not supported; queries are read-only."
	msgNoColumns = "Select * or at least one column, e.g. " + example + "."
	msgStarMix   = "* cannot be combined with column names; select either * or a list of columns."
	msgSelectExp = "Only column names or * can be selected; expressions and literals are not supported."
	msgAlias     = "Aliases (AS) are not supported; use the plain table and column names."
	msgQualified = "Qualified column references like table.column are not supported; write the bare column name."
	msgDupColumn = "Column %q is selected twice; select each column once."

	msgNoFrom   = "The query needs FROM <table>, e.g. " + example + "."
	msgManyFrom = "Only one table can be queried at a time; joins and several FROM items are not supported."
	msgJoin     = "Joins are not supported; query one table at a time."
	msgSchema   = "Schema-qualified table names are not supported; write the bare table name."
	msgOnly     = "FROM ONLY is not supported; write FROM <table>."
	msgFromItem = "Only a plain table name is supported after FROM."
	msgSubquery = "Subqueries are not supported; send each lookup as its own query."
	msgFunction = "Function calls are not supported; compare a column with a literal value."
	msgCast     = "Casts (:: or CAST) are not supported; write the value as a plain literal such as '…' or 42."
	msgParam    = "Parameters like $1 are not supported; write the value as a literal such as '…' or 42."

	msgNoWhere   = "The query needs a WHERE clause: the vault only finds records by exact match, e.g. " + example + "."
	msgOr        = "OR is not supported; use <column> IN ('…', '…') for several values of one column, or send one query per alternative."
	msgNot       = "NOT is not supported; only <column> = <value> and <column> IN (…) conditions joined by AND are."
	msgOperator  = "The %s operator is not supported: values are stored as keyed hashes, so only = and IN (…) can match them."
	msgNotIn     = "NOT IN is not supported; only <column> = <value> and <column> IN (…) can match hashed values."
	msgLike      = "LIKE, ILIKE and SIMILAR TO are not supported: values are stored as keyed hashes, so only whole values can be matched with = or IN (…)."
	msgBetween   = "BETWEEN is not supported: values are stored as keyed hashes, so ranges cannot be searched; use = or IN (…)."
	msgDistFrom  = "IS [NOT] DISTINCT FROM is not supported; use <column> = <value>."
	msgAnyAll    = "ANY / ALL comparisons are not supported; use <column> IN ('…', '…')."
	msgNullTest  = "IS NULL / IS NOT NULL is not supported: only stored values can be looked up; use <column> = <value>."
	msgBoolTest  = "IS TRUE / IS FALSE is not supported; use <column> = true or <column> = false."
	msgCondition = "Each condition must be <column> = <value> or <column> IN (<value>, …), joined by AND."
	msgLeftSide  = "Put the column on the left of = and the value on the right: <column> = <value>."
	msgDupWhere  = "Column %q appears more than once in WHERE; use %s IN (…) to match several values."

	msgNull      = "NULL cannot be looked up; compare with a stored value."
	msgNotValue  = "Values must be literals: '…' strings, numbers, true or false, not expressions. Double quotes name a column, so put text values in single quotes."
	msgStrQuote  = "Only plain single-quoted strings are supported ('…', with '' for a quote); E'…', U&'…' and $$…$$ are not."
	msgNumber    = "Numbers must be written plainly, e.g. 42, -7 or 4.5."
	msgBitString = "Bit-string literals (B'…', X'…') are not supported; write the value as a '…' string."

	msgLimit  = "LIMIT must be an integer from 1 to %d."
	msgOffset = "OFFSET must be a non-negative integer."
)

// refuse makes the client error every refusal is answered with (HTTP 400).
func refuse(format string, args ...any) error {
	return apierr.InvalidArgument(format, args...)
}
