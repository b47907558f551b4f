package sqlsubset_test

import (
	"errors"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/records/sqlsubset"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

func eq(col string, vals ...string) sqlsubset.Condition {
	return sqlsubset.Condition{Column: col, Values: vals}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		sql  string
		want sqlsubset.Query
	}{
		{"SELECT * FROM customers WHERE email = 'a@example.com'",
			sqlsubset.Query{Table: "customers", Where: []sqlsubset.Condition{eq("email", "a@example.com")}}},
		{"select name, email from customers where ssn = '123-45-6789';",
			sqlsubset.Query{Table: "customers", Columns: []string{"name", "email"}, Where: []sqlsubset.Condition{eq("ssn", "123-45-6789")}}},
		{"  SELECT *\n\tFROM Customers\nWHERE Email = 'X'  ;  ",
			sqlsubset.Query{Table: "customers", Where: []sqlsubset.Condition{eq("email", "X")}}},
		{`SELECT "Full Name", "select" FROM "Customer Data" WHERE "E-mail" = 'a'`,
			sqlsubset.Query{Table: "Customer Data", Columns: []string{"Full Name", "select"}, Where: []sqlsubset.Condition{eq("E-mail", "a")}}},
		{"SELECT * FROM t WHERE name = 'O''Brien'",
			sqlsubset.Query{Table: "t", Where: []sqlsubset.Condition{eq("name", "O'Brien")}}},
		{"SELECT * FROM t WHERE name = ''",
			sqlsubset.Query{Table: "t", Where: []sqlsubset.Condition{eq("name", "")}}},
		{"SELECT * FROM t WHERE note = 'a OR 1=1 -- /* x */; DROP TABLE t'",
			sqlsubset.Query{Table: "t", Where: []sqlsubset.Condition{eq("note", "a OR 1=1 -- /* x */; DROP TABLE t")}}},
		{"SELECT * FROM t WHERE name = 'Zoë 東京'",
			sqlsubset.Query{Table: "t", Where: []sqlsubset.Condition{eq("name", "Zoë 東京")}}},
		{"SELECT * FROM t WHERE a = 42 AND b = 4.5 AND c = TRUE AND d = false AND e = -7 AND f = - 2.5 AND g = 0 AND h = .5",
			sqlsubset.Query{Table: "t", Where: []sqlsubset.Condition{
				eq("a", "42"), eq("b", "4.5"), eq("c", "true"), eq("d", "false"),
				eq("e", "-7"), eq("f", "-2.5"), eq("g", "0"), eq("h", ".5")}}},
		{"SELECT * FROM t WHERE big = 123456789012345678901234567890",
			sqlsubset.Query{Table: "t", Where: []sqlsubset.Condition{eq("big", "123456789012345678901234567890")}}},
		{"SELECT * FROM t WHERE state IN ('CA', 'NY', 'WA') AND active = true",
			sqlsubset.Query{Table: "t", Where: []sqlsubset.Condition{eq("state", "CA", "NY", "WA"), eq("active", "true")}}},
		{"SELECT * FROM t WHERE id IN (1)",
			sqlsubset.Query{Table: "t", Where: []sqlsubset.Condition{eq("id", "1")}}},
		{"SELECT * FROM t WHERE (a = 'x' AND (b = 'y')) AND c = 'z'",
			sqlsubset.Query{Table: "t", Where: []sqlsubset.Condition{eq("a", "x"), eq("b", "y"), eq("c", "z")}}},
		{"SELECT id FROM t WHERE a = 'x' LIMIT 25",
			sqlsubset.Query{Table: "t", Columns: []string{"id"}, Where: []sqlsubset.Condition{eq("a", "x")}, Limit: 25}},
		{"SELECT id FROM t WHERE a = 'x' LIMIT 1 OFFSET 0",
			sqlsubset.Query{Table: "t", Columns: []string{"id"}, Where: []sqlsubset.Condition{eq("a", "x")}, Limit: 1}},
		{"SELECT id FROM t WHERE a = 'x' OFFSET 50 LIMIT 10",
			sqlsubset.Query{Table: "t", Columns: []string{"id"}, Where: []sqlsubset.Condition{eq("a", "x")}, Limit: 10, Offset: 50}},
		{"SELECT id FROM t WHERE a = 'x' OFFSET 3",
			sqlsubset.Query{Table: "t", Columns: []string{"id"}, Where: []sqlsubset.Condition{eq("a", "x")}, Offset: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			got, err := sqlsubset.Parse(tt.sql)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", *got, tt.want)
			}
		})
	}
}

// literalRE finds the literals of a refused query (strings, and numbers long
// enough not to match by chance) so each refusal can check none of them leaks
// into the message; the test values are distinctive for the same reason.
var literalRE = regexp.MustCompile(`'((?:[^']|'')+)'|\b(\d{4,})\b`)

func TestParseRefuses(t *testing.T) {
	long := "SELECT * FROM t WHERE a = '" + strings.Repeat("x", sqlsubset.MaxQueryBytes) + "'"
	tests := []struct{ sql, want string }{
		// The shape of the request.
		{"", "empty"},
		{"   \n\t", "empty"},
		{";", "empty"},
		{long, "longer than 4096 bytes"},
		{"SELECT * FROM t WHERE a = 'secret-1'\x00 OR 1=1", "NUL"},
		{"SELECT * FROM t WHERE a = '\xff\xfe'", "UTF-8"},
		{"SELECT * FROM t WHERE a = 'secret-1' -- note", "Comments"},
		{"SELECT * FROM t /* hi */ WHERE a = 'secret-1'", "Comments"},
		{"SELECT * FROM t WHERE a = 'secret-1'; SELECT * FROM t WHERE a = 'secret-2'", "one statement"},

		// Syntax errors name the position, never the text near it.
		{"SELECT * FROM t WHERE a = 'secret-1' b = 'secret-2'", "not valid SQL near position 38"},
		{"SELECT * FROM t WHERE a = 'secret-1", "not valid SQL near position"},
		{"SELECT * FROM t WHERE a = = 'secret-1'", "not valid SQL near position 27"},
		{"SELECT select FROM t WHERE a = 'secret-1'", "not valid SQL near position 8"},
		{"SELECT * FROM t WHERE a IN () ", "not valid SQL near position"},
		{"SELECT * FROM t WHERE a = 'secret-1' LIMIT 1 LIMIT 2", "not valid SQL"},

		// Statements other than SELECT.
		{"INSERT INTO t (a) VALUES ('secret-1')", "not INSERT"},
		{"UPDATE t SET a = 'secret-1' WHERE b = 'secret-2'", "not UPDATE"},
		{"DELETE FROM t WHERE a = 'secret-1'", "not DELETE"},
		{"DROP TABLE t", "not DROP"},
		{"TRUNCATE t", "not TRUNCATE"},
		{"VALUES ('secret-1')", "not VALUES"},
		{"CREATE TABLE x AS SELECT * FROM t WHERE a = 'secret-1'", "not CREATE"},
		{"SET search_path = 'secret-1'", "Only SELECT queries are supported"},
		{"SELECT * INTO x FROM t WHERE a = 'secret-1'", "SELECT INTO"},

		// Clauses outside the subset.
		{"SELECT * FROM t", "needs a WHERE clause"},
		{"SELECT * FROM t WHERE a = 'secret-1' UNION SELECT * FROM u WHERE b = 'secret-2'", "UNION"},
		{"WITH x AS (SELECT * FROM t) SELECT * FROM x WHERE a = 'secret-1'", "WITH"},
		{"SELECT DISTINCT a FROM t WHERE a = 'secret-1'", "DISTINCT"},
		{"SELECT a FROM t WHERE a = 'secret-1' GROUP BY a", "GROUP BY"},
		{"SELECT a FROM t WHERE a = 'secret-1' HAVING true", "GROUP BY"},
		{"SELECT * FROM t WHERE a = 'secret-1' ORDER BY a", "ordering is not possible"},
		{"SELECT * FROM t WHERE a = 'secret-1' FOR UPDATE", "FOR UPDATE"},
		{"SELECT * FROM t WHERE a = 'secret-1' WINDOW w AS ()", "Window"},

		// The select list.
		{"SELECT FROM t WHERE a = 'secret-1'", "at least one column"},
		{"SELECT *, a FROM t WHERE a = 'secret-1'", "cannot be combined"},
		{"SELECT a, a FROM t WHERE b = 'secret-1'", `Column "a" is selected twice`},
		{"SELECT a AS b FROM t WHERE a = 'secret-1'", "Aliases"},
		{"SELECT t.a FROM t WHERE a = 'secret-1'", "table.column"},
		{"SELECT t.* FROM t WHERE a = 'secret-1'", "table.column"},
		{"SELECT 'secret-9' FROM t WHERE a = 'secret-1'", "expressions and literals"},
		{"SELECT a || b FROM t WHERE a = 'secret-1'", "expressions and literals"},
		{"SELECT count(*) FROM t WHERE a = 'secret-1'", "Function calls"},
		{"SELECT a::text FROM t WHERE a = 'secret-1'", "Casts"},
		{"SELECT (SELECT 1) FROM t WHERE a = 'secret-1'", "Subqueries"},

		// FROM.
		{"SELECT 1 WHERE true", "expressions and literals"},
		{"SELECT a WHERE a = 'secret-1'", "needs FROM"},
		{"SELECT * FROM t, u WHERE a = 'secret-1'", "Only one table"},
		{"SELECT * FROM t JOIN u ON t.id = u.id WHERE a = 'secret-1'", "Joins"},
		{"SELECT * FROM (SELECT * FROM t) s WHERE a = 'secret-1'", "Subqueries"},
		{"SELECT * FROM generate_series(1, 3) WHERE a = 'secret-1'", "Function calls"},
		{"SELECT * FROM public.t WHERE a = 'secret-1'", "Schema-qualified"},
		{"SELECT * FROM db.public.t WHERE a = 'secret-1'", "Schema-qualified"},
		{"SELECT * FROM t AS x WHERE a = 'secret-1'", "Aliases"},
		{"SELECT * FROM t x WHERE a = 'secret-1'", "Aliases"},
		{"SELECT * FROM ONLY t WHERE a = 'secret-1'", "FROM ONLY"},

		// WHERE.
		{"SELECT * FROM t WHERE a = 'secret-1' OR b = 'secret-2'", "OR is not supported"},
		{"SELECT * FROM t WHERE NOT a = 'secret-1'", "NOT is not supported"},
		{"SELECT * FROM t WHERE a < 'secret-1'", "The < operator"},
		{"SELECT * FROM t WHERE a >= 4242", "The >= operator"},
		{"SELECT * FROM t WHERE a != 'secret-1'", "The <> operator"},
		{"SELECT * FROM t WHERE a OPERATOR(pg_catalog.=) 'secret-1'", "OPERATOR()"},
		{"SELECT * FROM t WHERE a LIKE 'secret-1%'", "LIKE"},
		{"SELECT * FROM t WHERE a ILIKE 'secret-1'", "LIKE"},
		{"SELECT * FROM t WHERE a SIMILAR TO 'secret-1'", "SIMILAR TO"},
		{"SELECT * FROM t WHERE a IS NULL", "IS NULL"},
		{"SELECT * FROM t WHERE a IS NOT NULL", "IS NULL"},
		{"SELECT * FROM t WHERE a IS TRUE", "IS TRUE"},
		{"SELECT * FROM t WHERE a = NULL", "NULL cannot be looked up"},
		{"SELECT * FROM t WHERE a BETWEEN 1000 AND 9999", "BETWEEN"},
		{"SELECT * FROM t WHERE a NOT IN ('secret-1')", "NOT IN"},
		{"SELECT * FROM t WHERE a IS DISTINCT FROM 'secret-1'", "DISTINCT FROM"},
		{"SELECT * FROM t WHERE a = ANY('{secret-1}')", "ANY / ALL"},
		{"SELECT * FROM t WHERE a = lower('secret-1')", "Function calls"},
		{"SELECT * FROM t WHERE lower(a) = 'secret-1'", "Function calls"},
		{"SELECT * FROM t WHERE a = 'secret-1'::text", "Casts"},
		{"SELECT * FROM t WHERE a = CAST('secret-1' AS text)", "Casts"},
		{"SELECT * FROM t WHERE a = date '2024-01-01'", "Casts"},
		{"SELECT * FROM t WHERE a = (SELECT b FROM u WHERE c = 'secret-1')", "Subqueries"},
		{"SELECT * FROM t WHERE a IN (SELECT b FROM u)", "Subqueries"},
		{"SELECT * FROM t WHERE EXISTS (SELECT 1)", "Subqueries"},
		{"SELECT * FROM t WHERE a = $1", "Parameters like $1"},
		{"SELECT * FROM t WHERE t.a = 'secret-1'", "table.column"},
		{"SELECT * FROM t WHERE 'secret-1' = a", "column on the left"},
		{"SELECT * FROM t WHERE a = 'secret-1' AND a = 'secret-2'", `Column "a" appears more than once`},
		{"SELECT * FROM t WHERE a IN ('secret-1') AND a = 'secret-2'", "more than once"},
		{"SELECT * FROM t WHERE a = 'secret-1' || 'secret-2'", "not expressions"},
		{"SELECT * FROM t WHERE a = 'secret-1' AND true", "Each condition must be"},
		{"SELECT * FROM t WHERE a", "Each condition must be"},
		{"SELECT * FROM t WHERE (a, b) = ('secret-1', 'secret-2')", "not expressions"},
		{"SELECT * FROM t WHERE a + 1 = 4242", "Each condition must be"},
		{"SELECT * FROM t WHERE a == 'secret-1'", "The == operator"},

		// Values.
		{`SELECT * FROM t WHERE name = "Secret Alice"`, "single quotes"},
		{`SELECT * FROM t WHERE name = SecretAlice`, "single quotes"},
		{"SELECT * FROM t WHERE a = E'secret-1'", "E'…'"},
		{"SELECT * FROM t WHERE a = $$secret-1$$", "E'…'"},
		{"SELECT * FROM t WHERE a = U&'secret-1'", "E'…'"},
		{"SELECT * FROM t WHERE a = B'1010101'", "Bit-string"},
		{"SELECT * FROM t WHERE a = - -4242", "Numbers must be written plainly"},
		{"SELECT * FROM t WHERE a = +4242", "not expressions"},

		// LIMIT and OFFSET.
		{"SELECT * FROM t WHERE a = 'secret-1' LIMIT 0", "from 1 to 25"},
		{"SELECT * FROM t WHERE a = 'secret-1' LIMIT 26", "from 1 to 25"},
		{"SELECT * FROM t WHERE a = 'secret-1' LIMIT -1", "from 1 to 25"},
		{"SELECT * FROM t WHERE a = 'secret-1' LIMIT ALL", "from 1 to 25"},
		{"SELECT * FROM t WHERE a = 'secret-1' LIMIT '5'", "from 1 to 25"},
		{"SELECT * FROM t WHERE a = 'secret-1' LIMIT 2.5", "from 1 to 25"},
		{"SELECT * FROM t WHERE a = 'secret-1' LIMIT 1+1", "from 1 to 25"},
		{"SELECT * FROM t WHERE a = 'secret-1' OFFSET -1", "OFFSET must be"},
		{"SELECT * FROM t WHERE a = 'secret-1' OFFSET 99999999999", "OFFSET must be"},
		{"SELECT * FROM t WHERE a = 'secret-1' OFFSET $1", "OFFSET must be"},
		{"SELECT * FROM t WHERE a = 'secret-1' FETCH FIRST 3 ROWS WITH TIES", "not valid SQL"},
		{"SELECT * FROM t WHERE a = 'secret-1' ORDER BY a FETCH FIRST 3 ROWS WITH TIES", "ordering"},
	}
	for _, tt := range tests {
		name := tt.sql
		if len(name) > 80 {
			name = name[:80]
		}
		t.Run(name, func(t *testing.T) {
			assertRefused(t, tt.sql, tt.want)
		})
	}
}

// Typical injection attempts, as they arrive when a client concatenates user
// input into the query.
func TestParseRefusesInjection(t *testing.T) {
	tests := []struct{ sql, want string }{
		{"SELECT * FROM users WHERE name = 'x' OR '1'='1'", "OR is not supported"},
		{"SELECT * FROM users WHERE name = '' OR 1=1", "OR is not supported"},
		{"SELECT * FROM users WHERE name = 'x' OR TRUE", "OR is not supported"},
		{"SELECT * FROM users WHERE name = 'x'; DROP TABLE users", "one statement"},
		{"SELECT * FROM users WHERE name = 'x'; DROP TABLE users; --'", "Comments"},
		{"SELECT * FROM users WHERE name = 'x';DELETE FROM users WHERE 'a'='a'", "one statement"},
		{"SELECT * FROM users WHERE name = 'x' UNION SELECT * FROM secrets WHERE id = 'y'", "UNION"},
		{"SELECT * FROM users WHERE name = 'x' UNION ALL SELECT password FROM admins", "UNION"},
		{"SELECT * FROM users WHERE name = 'admin'--' AND pin = 'secret-1'", "Comments"},
		{"SELECT * FROM users WHERE name = 'admin'/*' AND pin = 'secret-1'*/", "Comments"},
		{"SELECT * FROM users WHERE name = 'x'/**/OR/**/'1'='1'", "Comments"},
		{"SELECT * FROM users WHERE name = 'x' /* */ OR /* */ 1=1", "Comments"},
		{"SELECT * FROM users WHERE name = 'x'\nOR 1=1", "OR is not supported"},
		{"SELECT * FROM users WHERE name = 'x' AND 1=1", "column on the left"},
		{"SELECT * FROM users WHERE name = 'x' AND pg_sleep(10) IS NOT NULL", "IS NULL"},
		{"SELECT * FROM users WHERE name = (SELECT password FROM admins LIMIT 1)", "Subqueries"},
		{"SELECT * FROM users WHERE name = 'x' AND id IN (SELECT id FROM admins)", "Subqueries"},
		{"SELECT * FROM users WHERE name = 'x'\x00' OR '1'='1'", "NUL"},
		{"SELECT * FROM users WHERE name = 'x'' OR ''1''=''1'", ""}, // one harmless string: accepted below
	}
	for _, tt := range tests[:len(tests)-1] {
		t.Run(tt.sql, func(t *testing.T) { assertRefused(t, tt.sql, tt.want) })
	}
	// Quoting done right keeps the payload inside the value.
	q, err := sqlsubset.Parse(tests[len(tests)-1].sql)
	if err != nil {
		t.Fatal(err)
	}
	if want := []sqlsubset.Condition{eq("name", "x' OR '1'='1")}; !reflect.DeepEqual(q.Where, want) {
		t.Errorf("Where = %#v, want %#v", q.Where, want)
	}
}

func assertRefused(t *testing.T, sql, want string) {
	t.Helper()
	q, err := sqlsubset.Parse(sql)
	if err == nil {
		t.Fatalf("accepted: %#v", q)
	}
	if q != nil {
		t.Errorf("Query %#v returned with error", q)
	}
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.HTTPCode != http.StatusBadRequest {
		t.Fatalf("error %T %v, want a 400 *apierr.Error", err, err)
	}
	if !strings.Contains(ae.Message, want) {
		t.Errorf("message %q, want it to contain %q", ae.Message, want)
	}
	for _, m := range literalRE.FindAllStringSubmatch(sql, -1) {
		for _, lit := range m[1:] {
			if len(lit) >= 4 && strings.Contains(ae.Message, strings.ReplaceAll(lit, "''", "'")) {
				t.Errorf("message %q echoes the literal %q", ae.Message, lit)
			}
		}
	}
	for _, secret := range []string{"secret", "Secret", "4242", "1010101"} {
		if strings.Contains(ae.Message, secret) {
			t.Errorf("message %q echoes a value", ae.Message)
		}
	}
}
