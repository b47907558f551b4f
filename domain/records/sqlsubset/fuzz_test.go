package sqlsubset_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/records/sqlsubset"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// FuzzParse checks Parse never panics, refuses only with a 400, and never
// accepts a Query the vault could not answer.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"SELECT * FROM customers WHERE email = 'a@example.com'",
		"select name, email from customers where ssn = '123-45-6789';",
		`SELECT "Full Name" FROM "Customer Data" WHERE "E-mail" = 'O''Brien'`,
		"SELECT * FROM t WHERE a IN ('x', 'y') AND b = -4.5 AND c = true LIMIT 25 OFFSET 3",
		"SELECT * FROM t WHERE a = 0 LIMIT 1",
		"SELECT * FROM t WHERE a = 'x' OR '1'='1'",
		"SELECT * FROM t WHERE a = 'x'; DROP TABLE t",
		"SELECT * FROM t WHERE a = 'x' UNION SELECT * FROM u WHERE b = 'y'",
		"SELECT * FROM t WHERE a = 'admin'--' AND pin = '1'",
		"SELECT * FROM t WHERE a = 'x' /* */ OR /* */ 1=1",
		"SELECT * FROM t WHERE a = $1 ORDER BY b LIMIT 26",
		"WITH x AS (SELECT 1) SELECT * FROM x WHERE a = E'\\x41'",
		"SELECT t.a, count(*) FROM s.t JOIN u ON true WHERE a::int > 1 GROUP BY 1",
		"SELECT * FROM t WHERE a NOT IN (SELECT b FROM u) AND c IS NULL",
		"SELECT * FROM t WHERE a = - -1 AND b BETWEEN 1 AND 2",
		"INSERT INTO t VALUES (1)",
		"",
		";",
		"SELECT * FROM t WHERE a = '",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		q, err := sqlsubset.Parse(sql)
		if err != nil {
			var ae *apierr.Error
			if q != nil || !errors.As(err, &ae) || ae.HTTPCode != http.StatusBadRequest || ae.Message == "" {
				t.Fatalf("Parse(%q) = %v, %v; want nil and a 400 *apierr.Error", sql, q, err)
			}
			return
		}
		if q.Table == "" || len(q.Where) == 0 {
			t.Fatalf("Parse(%q) accepted %#v without a table or condition", sql, q)
		}
		if q.Limit < 0 || q.Limit > sqlsubset.MaxLimit || q.Offset < 0 {
			t.Fatalf("Parse(%q) accepted limit %d offset %d", sql, q.Limit, q.Offset)
		}
		if q.Columns != nil && len(q.Columns) == 0 {
			t.Fatalf("Parse(%q) returned empty non-nil Columns", sql)
		}
		seen := map[string]bool{}
		for _, c := range q.Columns {
			if c == "" || seen[c] {
				t.Fatalf("Parse(%q) accepted columns %q", sql, q.Columns)
			}
			seen[c] = true
		}
		seen = map[string]bool{}
		for _, c := range q.Where {
			if c.Column == "" || seen[c.Column] || len(c.Values) == 0 {
				t.Fatalf("Parse(%q) accepted condition %#v", sql, c)
			}
			seen[c.Column] = true
		}
	})
}
