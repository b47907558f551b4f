package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/domain/audit"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

// `skyflow audit verify` passes on an intact log and fails (exit 1), naming
// the entry, once a superuser has changed a row behind the trigger's back.
func TestAuditVerifyFindsATamperedEntry(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "skyflow")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dbURL := testenv.Database(t) // the test server's admin user: a superuser
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for i := 1; i <= 3; i++ {
		e := event.New()
		e.SetID(fmt.Sprintf("e%d", i))
		e.SetSource("/tests")
		e.SetType("com.skyflow.vault.record.created")
		e.SetSubject("cards")
		if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			_, _, err := audit.Append(ctx, tx, audit.FromEvent(e, time.Now()))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	verify := func() (string, int) {
		cmd := exec.Command(bin, "audit", "verify")
		cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL)
		out, err := cmd.CombinedOutput()
		return string(out), exitCode(err)
	}
	out, code := verify()
	if strings.Contains(out, `unknown command "audit"`) {
		t.Fatal("cmd/skyflow/main.go does not run `skyflow audit` yet: add `case \"audit\": err = runAudit(ctx, args)` to its switch")
	}
	if code != 0 || !strings.Contains(out, "audit log intact: 3 entries") {
		t.Fatalf("exit %d: %s", code, out)
	}

	var seq int64
	if err := conn.QueryRow(ctx, `SELECT seq FROM audit_log WHERE event_id = 'e2'`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `UPDATE audit_log SET subject = 'x' WHERE seq = $1`, seq); err == nil {
		t.Fatal("the append-only trigger let an UPDATE through")
	}
	for _, sql := range []string{
		`ALTER TABLE audit_log DISABLE TRIGGER ALL`,
		fmt.Sprintf(`UPDATE audit_log SET entry = jsonb_set(entry, '{subject}', '"tampered"'), subject = 'tampered' WHERE seq = %d`, seq),
		`ALTER TABLE audit_log ENABLE TRIGGER ALL`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	want := fmt.Sprintf("audit log BROKEN at entry seq %d:", seq)
	if out, code := verify(); code != 1 || !strings.Contains(out, want) {
		t.Fatalf("exit %d, want 1 and %q: %s", code, want, out)
	}
}

func TestAuditNeedsVerifyAndDatabaseURL(t *testing.T) {
	ctx := context.Background()
	if err := runAudit(ctx, nil); err == nil || !strings.Contains(err.Error(), "skyflow audit verify") {
		t.Errorf("no subcommand: %v", err)
	}
	t.Setenv("DATABASE_URL", "")
	if err := runAudit(ctx, []string{"verify"}); err == nil || !strings.Contains(err.Error(), "DATABASE_URL is not set") {
		t.Errorf("no DATABASE_URL: %v", err)
	}
}
