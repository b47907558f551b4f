package migrate

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/runtime/db"
)

// lockKey names the advisory lock that serializes migration runs on one
// database: "skymigr" in ASCII, unlikely to collide with other users' keys.
const lockKey int64 = 0x736b79_6d696772

// Up applies the pending migrations to the database named by url, in version
// order, each in its own transaction, and returns the ids (NNNN_name) of
// those it applied. Progress lines go to log, which may be nil.
//
// Up fails without applying anything when an applied migration's file was
// changed or removed. A migration that fails is rolled back; the ones before
// it stay applied.
func Up(ctx context.Context, url string, log io.Writer) (applied []string, err error) {
	return up(ctx, url, embedded, log)
}

func up(ctx context.Context, url string, fsys fs.FS, log io.Writer) ([]string, error) {
	if log == nil {
		log = io.Discard
	}
	ms, err := load(fsys)
	if err != nil {
		return nil, err
	}
	conn, err := connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))

	unlock, err := lock(ctx, conn, log)
	if err != nil {
		return nil, err
	}
	defer unlock()

	if _, err := conn.Exec(ctx, createHistory); err != nil {
		return nil, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	history, err := readHistory(ctx, conn)
	if err != nil {
		return nil, err
	}
	if err := verify(ms, history); err != nil {
		return nil, err
	}

	var done []string
	for _, m := range ms {
		if _, ok := history[m.version]; ok {
			continue
		}
		start := time.Now()
		if err := apply(ctx, conn, m); err != nil {
			return done, err
		}
		done = append(done, m.id())
		fmt.Fprintf(log, "migrate: applied %s in %s\n", m.id(), time.Since(start).Round(time.Millisecond))
	}
	if len(done) == 0 {
		fmt.Fprintln(log, "migrate: database is up to date")
	}
	return done, nil
}

// apply runs one migration and records it in the same transaction, so a
// migration is either applied and recorded or neither.
func apply(ctx context.Context, conn *pgx.Conn, m migration) error {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// Without arguments pgx uses the simple protocol, which accepts
		// several statements in one string.
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return err
		}
		_, err := tx.Exec(ctx,
			`INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`,
			m.version, m.name, m.checksum)
		return err
	})
	if err != nil {
		return fmt.Errorf("migrate: %s: %w", m.id(), err)
	}
	return nil
}

// lock takes the session advisory lock, saying so on log when it has to wait
// for another run.
func lock(ctx context.Context, conn *pgx.Conn, log io.Writer) (unlock func(), err error) {
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey).Scan(&got); err != nil {
		return nil, fmt.Errorf("migrate: lock: %w", err)
	}
	if !got {
		fmt.Fprintln(log, "migrate: waiting for another migration run to finish")
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey); err != nil {
			return nil, fmt.Errorf("migrate: lock: %w", err)
		}
	}
	return func() {
		// Closing the connection releases the lock too; this is for tidiness.
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockKey)
	}, nil
}

// connect opens one connection (not a pool: the advisory lock belongs to a
// session), with the same URL handling and password-free errors as db.Open.
func connect(ctx context.Context, url string) (*pgx.Conn, error) {
	cfg, err := db.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return nil, fmt.Errorf("migrate: connect: %w", err)
	}
	return conn, nil
}

func sortedRecords(m map[int64]record) []record {
	return slices.SortedFunc(maps.Values(m), func(a, b record) int { return cmp.Compare(a.version, b.version) })
}
