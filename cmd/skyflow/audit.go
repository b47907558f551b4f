package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/skyflow-oss/skyflow/domain/audit"
	"github.com/skyflow-oss/skyflow/runtime/db"
)

const auditUsage = "usage: skyflow audit verify: recompute the audit log's hash chain on DATABASE_URL"

// runAudit is `skyflow audit verify`: it walks the audit log on
// DATABASE_URL recomputing its hash chain, prints whether it is intact, and
// exits 1 when it is not.
func runAudit(ctx context.Context, args []string) error {
	if len(args) != 1 || args[0] != "verify" {
		if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Println(auditUsage)
			return nil
		}
		return errors.New(auditUsage)
	}
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		return errors.New("DATABASE_URL is not set: it must name the PostgreSQL database whose audit log to verify (postgres://user@host:port/db)")
	}
	pool, err := db.Open(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	checked, broken, err := audit.Verify(ctx, pool)
	if err != nil {
		return err
	}
	if broken != nil {
		fmt.Printf("audit log BROKEN at entry seq %d: %s (%d entries before it are intact)\n", broken.Seq, broken.Reason, checked)
		return exitError(1)
	}
	fmt.Printf("audit log intact: %d entries\n", checked)
	return nil
}
