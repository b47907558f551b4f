package db

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

func TestAPIError(t *testing.T) {
	var logs bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))

	if APIError(nil, "svc", "down") != nil {
		t.Fatal("nil did not stay nil")
	}
	kept := apierr.InvalidArgument("bad")
	if got := APIError(fmt.Errorf("wrapped: %w", kept), "svc", "down"); got != kept { //nolint:errorlint // the very same value must come back, not one that wraps it
		t.Fatalf("an API error was not kept: %v", got)
	}
	// A database error that quotes a value: the caller gets the service's
	// 503, and the log has the code and constraint, never the message.
	pe := &pgconn.PgError{Code: "22P02", ConstraintName: "c1", Message: `invalid input syntax for type uuid: "4111111111111111"`}
	var ae *apierr.Error
	if err := APIError(pe, "svc", "the svc is down; try again"); !errors.As(err, &ae) || ae.HTTPCode != 503 || ae.Message != "the svc is down; try again" {
		t.Fatalf("a database error became %v", err)
	}
	if !strings.Contains(logs.String(), "22P02") || !strings.Contains(logs.String(), "c1") || strings.Contains(logs.String(), "4111") {
		t.Fatalf("log: %s", logs.String())
	}
}
