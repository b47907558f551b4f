package db

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
)

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

// CancelRequestsParam is a connection string parameter of ours (pgx would
// send it to the server; [ParseConfig] takes it out): "off" stops the pool
// from sending cancel requests, "on" (the default) lets it.
//
// pgx sends one whenever it abandons a query (its context ended): on a new
// connection, while it closes the old one. PgBouncer before 1.19 crashes
// when the client of a cancel request goes away before the request is
// done (pgbouncer#801), as it does when a function process exits right
// after abandoning a query; Debian 12's 1.18, which the local platform
// runs, is such a PgBouncer, so its URLs say off. Without the request the
// abandoned query is still stopped: pgx closes its connection, and
// PgBouncer closes the server connection that ran it.
const CancelRequestsParam = "skyflow_cancel_requests"

// cancelRequests applies and removes CancelRequestsParam.
func cancelRequests(cfg *pgx.ConnConfig) error {
	v, ok := cfg.RuntimeParams[CancelRequestsParam]
	if !ok {
		return nil
	}
	delete(cfg.RuntimeParams, CancelRequestsParam)
	switch v {
	case "on":
	case "off":
		dial := cfg.DialFunc
		cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &cancelDropper{Conn: c}, nil
		}
	default:
		return fmt.Errorf("%w: %s is %q, want on or off", ErrInvalidURL, CancelRequestsParam, v)
	}
	return nil
}

// cancelDropper is a connection that sends nothing when the first message
// written to it is a cancel request: pgx opens a connection of its own for
// each (pgconn.PgConn.CancelRequest) and reads until the server closes it,
// which it now sees at once.
type cancelDropper struct {
	net.Conn
	state atomic.Int32 // one of the states below
}

const (
	unwritten = iota // nothing written yet
	passing          // a connection like any other
	dropping         // a cancel request, not sent
)

func (c *cancelDropper) Write(b []byte) (int, error) {
	switch c.state.Load() {
	case passing:
		return c.Conn.Write(b)
	case dropping:
		return len(b), nil
	}
	if isCancelRequest(b) {
		c.state.Store(dropping)
		return len(b), nil
	}
	c.state.Store(passing)
	return c.Conn.Write(b)
}

func (c *cancelDropper) Read(b []byte) (int, error) {
	if c.state.Load() == dropping {
		return 0, io.EOF
	}
	return c.Conn.Read(b)
}

// cancelRequestCode identifies a CancelRequest message (PostgreSQL's
// protocol: length, then 1234 << 16 | 5678, then the key).
const cancelRequestCode = 80877102

func isCancelRequest(b []byte) bool {
	return len(b) >= 12 && int(binary.BigEndian.Uint32(b[0:4])) == len(b) &&
		binary.BigEndian.Uint32(b[4:8]) == cancelRequestCode
}
