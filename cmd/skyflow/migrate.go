package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/skyflow-oss/skyflow/runtime/db/migrate"
)

// runMigrate is `skyflow migrate [status]` on DATABASE_URL. Functions never
// migrate on a cold start: this command (or `skyflow dev`) does.
func runMigrate(ctx context.Context, args []string) error {
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		return errors.New("DATABASE_URL is not set: it must name the PostgreSQL database to migrate (postgres://user@host:port/db)")
	}
	if len(args) > 0 && args[0] == "status" {
		list, err := migrate.Status(ctx, url)
		if err != nil {
			return err
		}
		for _, m := range list {
			at := ""
			if !m.AppliedAt.IsZero() {
				at = m.AppliedAt.Format(time.RFC3339)
			}
			fmt.Printf("%-30s %-8s %s\n", m.ID, m.State, at)
		}
		return nil
	}
	if len(args) > 0 {
		return fmt.Errorf("usage: skyflow migrate [status]: unknown argument %q", args[0])
	}
	applied, err := migrate.Up(ctx, url, os.Stdout)
	if err != nil {
		return err
	}
	fmt.Printf("%d migration(s) applied\n", len(applied))
	return nil
}
