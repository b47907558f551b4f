package db

import "net/url"

// PoolerExecMode is the pgx query execution mode for a pool that reaches
// PostgreSQL through PgBouncer in transaction pooling mode, as
// default_query_exec_mode in the URL.
//
// pgx's default, cache_statement, prepares a named statement on the server
// connection and executes it by name later, but under transaction pooling
// the next transaction may run on another server connection, where that
// name does not exist, or does with another statement's text: PgBouncer
// 1.21 learned to track prepared statements, older ones (Debian 12 has
// 1.18) do not. cache_describe keeps pgx's single round trip: it caches
// each statement's parameter and result types, learned once through the
// unnamed statement, and sends every execution as a self-contained Parse,
// Bind, Execute. The other modes cost more: describe_exec takes two round
// trips and binds the unnamed statement in the second, which a pooler may
// have moved to another server in between; exec and simple_protocol guess
// parameter types from Go types (a string for a jsonb or uuid parameter
// fails or changes meaning) and return results as text.
//
// Like cache_statement, cache_describe assumes a statement's result
// columns do not change: the first execution after a migration that
// changes them may fail, and pgx forgets the description on that error.
const PoolerExecMode = "cache_describe"

// ThroughPooler returns the connection string connString with
// default_query_exec_mode set to [PoolerExecMode], for a pool that goes
// through PgBouncer in transaction pooling mode. A mode the string names
// already is kept: the deployment's choice wins.
//
// A malformed connString gives an error that never contains the password.
func ThroughPooler(connString string) (string, error) {
	if hasParam(connString, "default_query_exec_mode") {
		return connString, nil
	}
	if !isURL(connString) {
		// Keyword/value: a later keyword overrides an earlier one.
		return connString + " default_query_exec_mode=" + PoolerExecMode, nil
	}
	u, err := url.Parse(connString)
	if err != nil {
		return "", parseError(connString, err)
	}
	q := u.Query()
	q.Set("default_query_exec_mode", PoolerExecMode)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
