package db

import (
	"errors"
	"log/slog"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// APIError keeps an API error and turns any other failure into a 503 with
// message, for a service's callers; nil stays nil. Database errors can
// quote the values they were given, so the original is logged under
// service by its SQLSTATE code and constraint only, never its message.
func APIError(err error, service, message string) error {
	if err == nil {
		return nil
	}
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return ae
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		slog.Error(service+" database error", "code", pe.Code, "constraint", pe.ConstraintName)
	} else {
		slog.Error(service+" error", "error", err)
	}
	return apierr.Unavailable("%s", message)
}
