package migrate

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

const createHistory = `
CREATE TABLE IF NOT EXISTS schema_migrations (
	version    bigint      PRIMARY KEY,
	name       text        NOT NULL,
	checksum   text        NOT NULL CHECK (length(checksum) = 64),
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// An applied migration as schema_migrations records it.
type record struct {
	version   int64
	name      string
	checksum  string
	appliedAt time.Time
}

func (r record) id() string { return fmt.Sprintf("%04d_%s", r.version, r.name) }

// readHistory returns the applied migrations by version. A database that was
// never migrated has no history table, which is not an error.
func readHistory(ctx context.Context, conn *pgx.Conn) (map[int64]record, error) {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("migrate: read history: %w", err)
	}
	applied := map[int64]record{}
	if !exists {
		return applied, nil
	}
	rows, err := conn.Query(ctx, `SELECT version, name, checksum, applied_at FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("migrate: read history: %w", err)
	}
	var r record
	_, err = pgx.ForEachRow(rows, []any{&r.version, &r.name, &r.checksum, &r.appliedAt}, func() error {
		applied[r.version] = r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("migrate: read history: %w", err)
	}
	return applied, nil
}

// verify refuses a history that the files no longer describe: an applied
// migration whose file is gone, renamed or edited.
func verify(ms []migration, applied map[int64]record) error {
	files := map[int64]migration{}
	for _, m := range ms {
		files[m.version] = m
	}
	for _, r := range sortedRecords(applied) {
		m, ok := files[r.version]
		switch {
		case !ok:
			return fmt.Errorf("migrate: applied migration %s has no file: restore it (the database was migrated by a newer or different build)", r.id())
		case m.checksum != r.checksum:
			return fmt.Errorf("migrate: applied migration %s has changed since it was applied (checksum %.12s, applied %.12s): restore the file and add a new migration instead", m.id(), m.checksum, r.checksum)
		case m.name != r.name:
			return fmt.Errorf("migrate: applied migration %s was renamed to %s: restore its name", r.id(), m.id())
		}
	}
	return nil
}
