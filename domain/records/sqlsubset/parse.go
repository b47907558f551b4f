// Package sqlsubset parses the small SQL subset accepted by
// POST /v1/vaults/{vaultID}/query.
//
// The vault answers queries from blind indexes (keyed hashes of values), so
// only exact-match lookups are possible:
//
//	SELECT * | col[, col…] FROM table
//	WHERE col = literal [AND col = literal | AND col IN (literal, …)]…
//	[LIMIT n] [OFFSET n] [;]
//
// Parsing is done by PostgreSQL's own grammar (pg_query), so identifiers,
// quoting and literals mean exactly what they mean in PostgreSQL; the parse
// tree is then checked against an allow-list. Nothing is ever turned back
// into SQL: callers get a Query, not a string.
package sqlsubset

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pganalyze/pg_query_go/v6/parser"
)

// MaxQueryBytes bounds the query text; a lookup never needs more, and it
// bounds the work done by the parser.
const MaxQueryBytes = 4096

// MaxLimit is the largest LIMIT, the Data API's page size maximum.
const MaxLimit = 25

// Query is a parsed lookup.
type Query struct {
	Table   string      // unqualified table name
	Columns []string    // nil for SELECT *
	Where   []Condition // ANDed, at least one
	Limit   int         // 0 = not given
	Offset  int
}

// Condition matches Column against any of Values.
type Condition struct {
	Column string
	// Values holds one value for =, several for IN (…). Literals are kept as
	// text, as PostgreSQL reads them: 'abc' → abc, 42 → 42, 4.5 → 4.5,
	// true → true.
	Values []string
}

// Parse parses sql and checks it is in the supported subset. Errors are
// *apierr.Error (HTTP 400) and never contain a value from the query.
func Parse(sql string) (*Query, error) {
	switch {
	case strings.TrimSpace(sql) == "":
		return nil, refuse(msgEmpty)
	case len(sql) > MaxQueryBytes:
		return nil, refuse(msgTooLong, MaxQueryBytes)
	case !utf8.ValidString(sql) || strings.IndexByte(sql, 0) >= 0:
		// pg_query reads a C string: a NUL would silently cut the query short.
		return nil, refuse(msgEncoding)
	}
	tree, err := pg_query.Parse(sql)
	if err != nil {
		// The parser's message quotes the text near the error, which may be a
		// value, so only its position is passed on.
		var pe *parser.Error
		if errors.As(err, &pe) && pe.Cursorpos > 0 {
			return nil, refuse(msgSyntax, pe.Cursorpos)
		}
		return nil, refuse(msgSyntaxAny)
	}
	// Comments let a value cut off the rest of a query built by string
	// concatenation ('x'-- AND pin = …), and a lookup never needs one.
	scan, err := pg_query.Scan(sql)
	if err != nil {
		return nil, refuse(msgSyntaxAny)
	}
	for _, t := range scan.Tokens {
		if t.Token == pg_query.Token_SQL_COMMENT || t.Token == pg_query.Token_C_COMMENT {
			return nil, refuse(msgComment)
		}
	}
	switch len(tree.Stmts) {
	case 0:
		return nil, refuse(msgEmpty)
	case 1:
	default:
		return nil, refuse(msgMultiple)
	}
	stmt := tree.Stmts[0].GetStmt()
	sel := stmt.GetSelectStmt()
	if sel == nil {
		if kw := statementKeyword(stmt); kw != "" {
			return nil, refuse(msgNotSelect, kw)
		}
		return nil, refuse(msgNotSelAny)
	}
	return parseSelect(sql, sel)
}

func parseSelect(sql string, s *pg_query.SelectStmt) (*Query, error) {
	switch {
	case s.Op != pg_query.SetOperation_SETOP_NONE:
		return nil, refuse(msgSetOp)
	case s.WithClause != nil:
		return nil, refuse(msgWith)
	case len(s.ValuesLists) > 0:
		return nil, refuse(msgNotSelect, "VALUES")
	case s.IntoClause != nil:
		return nil, refuse(msgInto)
	case len(s.DistinctClause) > 0:
		return nil, refuse(msgDistinct)
	case len(s.GroupClause) > 0 || s.GroupDistinct || s.HavingClause != nil:
		return nil, refuse(msgGroupBy)
	case len(s.WindowClause) > 0:
		return nil, refuse(msgWindow)
	case len(s.SortClause) > 0:
		return nil, refuse(msgOrderBy)
	case len(s.LockingClause) > 0:
		return nil, refuse(msgLocking)
	}
	q := &Query{}
	var err error
	if q.Columns, err = selectList(s.TargetList); err != nil {
		return nil, err
	}
	if q.Table, err = fromTable(s.FromClause); err != nil {
		return nil, err
	}
	if s.WhereClause == nil {
		return nil, refuse(msgNoWhere)
	}
	if q.Where, err = conditions(sql, s.WhereClause, nil); err != nil {
		return nil, err
	}
	var ok bool
	if s.LimitCount != nil {
		if q.Limit, ok = integer(s.LimitCount, 1, MaxLimit); !ok {
			return nil, refuse(msgLimit, MaxLimit)
		}
	}
	if s.LimitOffset != nil {
		if q.Offset, ok = integer(s.LimitOffset, 0, math.MaxInt32); !ok {
			return nil, refuse(msgOffset)
		}
	}
	return q, nil
}

// selectList returns the selected columns, nil for *.
func selectList(targets []*pg_query.Node) ([]string, error) {
	if len(targets) == 0 {
		return nil, refuse(msgNoColumns)
	}
	var cols []string
	star := false
	for _, t := range targets {
		rt := t.GetResTarget()
		if rt == nil || rt.Val == nil {
			return nil, refuse(msgSelectExp)
		}
		if rt.Name != "" {
			return nil, refuse(msgAlias)
		}
		ref := rt.Val.GetColumnRef()
		if ref == nil {
			return nil, unsupported(rt.Val, msgSelectExp)
		}
		if len(ref.Fields) != 1 {
			return nil, refuse(msgQualified)
		}
		if ref.Fields[0].GetAStar() != nil {
			star = true
			continue
		}
		name := ref.Fields[0].GetString_().GetSval()
		if name == "" {
			return nil, refuse(msgSelectExp)
		}
		for _, c := range cols {
			if c == name {
				return nil, refuse(msgDupColumn, name)
			}
		}
		cols = append(cols, name)
	}
	if star && (len(cols) > 0 || len(targets) > 1) {
		return nil, refuse(msgStarMix)
	}
	return cols, nil
}

// fromTable returns the single, unqualified table queried.
func fromTable(from []*pg_query.Node) (string, error) {
	switch len(from) {
	case 0:
		return "", refuse(msgNoFrom)
	case 1:
	default:
		return "", refuse(msgManyFrom)
	}
	rv := from[0].GetRangeVar()
	switch {
	case from[0].GetJoinExpr() != nil:
		return "", refuse(msgJoin)
	case from[0].GetRangeSubselect() != nil:
		return "", refuse(msgSubquery)
	case from[0].GetRangeFunction() != nil:
		return "", refuse(msgFunction)
	case rv == nil || rv.Relname == "":
		return "", refuse(msgFromItem)
	case rv.Schemaname != "" || rv.Catalogname != "":
		return "", refuse(msgSchema)
	case rv.Alias != nil:
		return "", refuse(msgAlias)
	case !rv.Inh:
		return "", refuse(msgOnly)
	}
	return rv.Relname, nil
}

// conditions flattens the AND tree under n into out.
func conditions(sql string, n *pg_query.Node, out []Condition) ([]Condition, error) {
	if b := n.GetBoolExpr(); b != nil {
		switch b.Boolop {
		case pg_query.BoolExprType_AND_EXPR:
			var err error
			for _, arg := range b.Args {
				if out, err = conditions(sql, arg, out); err != nil {
					return nil, err
				}
			}
			return out, nil
		case pg_query.BoolExprType_OR_EXPR:
			return nil, refuse(msgOr)
		default:
			return nil, refuse(msgNot)
		}
	}
	e := n.GetAExpr()
	if e == nil {
		return nil, unsupported(n, msgCondition)
	}
	if e.Lexpr.GetAConst() != nil {
		return nil, refuse(msgLeftSide)
	}
	// The value side is checked before the column is read, so that a value
	// the client meant as text (name = "Alice") is refused as a value
	// rather than echoed as a column name.
	var c Condition
	op := operator(e)
	switch e.Kind {
	case pg_query.A_Expr_Kind_AEXPR_OP:
		if op != "=" {
			return nil, refuse(msgOperator, op)
		}
		v, err := value(sql, e.Rexpr)
		if err != nil {
			return nil, err
		}
		c.Values = []string{v}
	case pg_query.A_Expr_Kind_AEXPR_IN:
		if op != "=" {
			return nil, refuse(msgNotIn)
		}
		items := e.Rexpr.GetList().GetItems()
		if len(items) == 0 {
			return nil, unsupported(e.Rexpr, msgCondition)
		}
		for _, it := range items {
			v, err := value(sql, it)
			if err != nil {
				return nil, err
			}
			c.Values = append(c.Values, v)
		}
	case pg_query.A_Expr_Kind_AEXPR_LIKE, pg_query.A_Expr_Kind_AEXPR_ILIKE, pg_query.A_Expr_Kind_AEXPR_SIMILAR:
		return nil, refuse(msgLike)
	case pg_query.A_Expr_Kind_AEXPR_BETWEEN, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN,
		pg_query.A_Expr_Kind_AEXPR_BETWEEN_SYM, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM:
		return nil, refuse(msgBetween)
	case pg_query.A_Expr_Kind_AEXPR_DISTINCT, pg_query.A_Expr_Kind_AEXPR_NOT_DISTINCT:
		return nil, refuse(msgDistFrom)
	case pg_query.A_Expr_Kind_AEXPR_OP_ANY, pg_query.A_Expr_Kind_AEXPR_OP_ALL:
		return nil, refuse(msgAnyAll)
	default:
		return nil, refuse(msgCondition)
	}
	ref := e.Lexpr.GetColumnRef()
	switch {
	case ref == nil:
		return nil, unsupported(e.Lexpr, msgCondition)
	case len(ref.Fields) != 1 || ref.Fields[0].GetString_() == nil:
		return nil, refuse(msgQualified)
	}
	c.Column = ref.Fields[0].GetString_().GetSval()
	for _, prev := range out {
		if prev.Column == c.Column {
			return nil, refuse(msgDupWhere, c.Column, c.Column)
		}
	}
	return append(out, c), nil
}

// operator is the name of e's operator; a schema-qualified one
// (OPERATOR(pg_catalog.=)) is never needed and reads as "OPERATOR()".
func operator(e *pg_query.A_Expr) string {
	if len(e.Name) != 1 {
		return "OPERATOR()"
	}
	return e.Name[0].GetString_().GetSval()
}

// value returns the text of a literal. The literal's first character is
// checked in sql because the parse tree does not tell 'x' from E'x' or $$x$$,
// nor 5 from - -5.
func value(sql string, n *pg_query.Node) (string, error) {
	c := n.GetAConst()
	if c == nil {
		return "", unsupported(n, msgNotValue)
	}
	if c.Isnull {
		return "", refuse(msgNull)
	}
	src := ""
	if loc := int(c.Location); loc >= 0 && loc < len(sql) {
		src = sql[loc:]
	}
	switch v := c.Val.(type) {
	case *pg_query.A_Const_Sval:
		if !strings.HasPrefix(src, "'") {
			return "", refuse(msgStrQuote)
		}
		return v.Sval.GetSval(), nil
	case *pg_query.A_Const_Ival:
		if !plainNumber(src) {
			return "", refuse(msgNumber)
		}
		return strconv.Itoa(int(v.Ival.GetIval())), nil
	case *pg_query.A_Const_Fval:
		if !plainNumber(src) {
			return "", refuse(msgNumber)
		}
		return v.Fval.GetFval(), nil
	case *pg_query.A_Const_Boolval:
		return strconv.FormatBool(v.Boolval.GetBoolval()), nil
	case *pg_query.A_Const_Bsval:
		return "", refuse(msgBitString)
	}
	return "", refuse(msgNotValue)
}

// plainNumber reports whether src starts with a number, optionally negated
// once: 42, -7, - 7, .5.
func plainNumber(src string) bool {
	if rest, ok := strings.CutPrefix(src, "-"); ok {
		src = strings.TrimLeft(rest, " \t\r\n\f\v")
	}
	return src != "" && (src[0] == '.' || src[0] >= '0' && src[0] <= '9')
}

// integer reads a LIMIT or OFFSET count in [lo, hi].
func integer(n *pg_query.Node, lo, hi int) (int, bool) {
	c, ok := n.GetAConst().GetVal().(*pg_query.A_Const_Ival)
	if !ok {
		return 0, false
	}
	i := int(c.Ival.GetIval())
	return i, i >= lo && i <= hi
}

// unsupported names the construct n is, so the client learns what to remove;
// otherwise it falls back to the message for where n was found.
func unsupported(n *pg_query.Node, fallback string) error {
	switch {
	case n.GetSubLink() != nil:
		return refuse(msgSubquery)
	case n.GetFuncCall() != nil || n.GetCoalesceExpr() != nil || n.GetMinMaxExpr() != nil ||
		n.GetSqlvalueFunction() != nil:
		return refuse(msgFunction)
	case n.GetTypeCast() != nil:
		return refuse(msgCast)
	case n.GetParamRef() != nil:
		return refuse(msgParam)
	case n.GetNullTest() != nil:
		return refuse(msgNullTest)
	case n.GetBooleanTest() != nil:
		return refuse(msgBoolTest)
	}
	return refuse("%s", fallback)
}

// statementKeyword names common statements that are not SELECT.
func statementKeyword(n *pg_query.Node) string {
	switch {
	case n.GetInsertStmt() != nil:
		return "INSERT"
	case n.GetUpdateStmt() != nil:
		return "UPDATE"
	case n.GetDeleteStmt() != nil:
		return "DELETE"
	case n.GetMergeStmt() != nil:
		return "MERGE"
	case n.GetDropStmt() != nil:
		return "DROP"
	case n.GetTruncateStmt() != nil:
		return "TRUNCATE"
	case n.GetCreateStmt() != nil || n.GetCreateTableAsStmt() != nil:
		return "CREATE"
	case n.GetAlterTableStmt() != nil:
		return "ALTER"
	case n.GetCopyStmt() != nil:
		return "COPY"
	case n.GetExplainStmt() != nil:
		return "EXPLAIN"
	case n.GetGrantStmt() != nil:
		return "GRANT/REVOKE"
	}
	return ""
}
