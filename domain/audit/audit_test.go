package audit_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/domain/audit"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

const card = "4111111111111111"

func readEvent(id string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("/skyflow/functions/records-get")
	e.SetType("com.skyflow.audit.record.read")
	e.SetSubject("vault/v1/table/cards")
	e.SetTime(time.Date(2026, 11, 23, 21, 0, 0, 123456789, time.UTC))
	e.SetExtension("principal", "svc-billing")
	e.SetExtension("vaultid", "v1")
	e.SetExtension("resource", "cards")
	e.SetData(event.ApplicationJSON, map[string]any{
		"action":      "read",
		"record_ids":  []string{"r1", "r2"},
		"columns":     []string{"card_number"},
		"redaction":   "PLAIN_TEXT",
		"card_number": card,
		"values":      map[string]string{"card_number": card},
		"result":      map[string]string{"card_number": card}, // an object: dropped
	})
	return e
}

func TestFromEventKeepsOnlyContextAndAllowListedData(t *testing.T) {
	en := audit.FromEvent(readEvent("e1"), time.Now())
	c, err := en.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"com.skyflow.audit.record.read","source":"/skyflow/functions/records-get","id":"e1",` +
		`"subject":"vault/v1/table/cards","time":"2026-11-23T21:00:00.123456Z","principal":"svc-billing","vault_id":"v1",` +
		`"resource":"cards","action":"read","data":{"action":"read","columns":["card_number"],"record_ids":["r1","r2"],"redaction":"PLAIN_TEXT"}}`
	if string(c) != want {
		t.Fatalf("canonical form\n got %s\nwant %s", c, want)
	}
	sum := sha256.Sum256(append([]byte("prev"), c...))
	if got := audit.Hash([]byte("prev"), en); hex.EncodeToString(got) != hex.EncodeToString(sum[:]) {
		t.Fatalf("Hash is not SHA-256(prev || canonical)")
	}

	// Other event types keep no data at all.
	other := readEvent("e2")
	other.SetType("com.skyflow.vault.record.created")
	if en := audit.FromEvent(other, time.Now()); en.Data != nil || en.Action != "" {
		t.Fatalf("data kept from a non-audit event: %+v", en)
	}
}

func appendAll(t *testing.T, pool *pgxpool.Pool, events ...event.Event) (appended int) {
	t.Helper()
	ctx := context.Background()
	for _, e := range events {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, ok, err := audit.Append(ctx, tx, audit.FromEvent(e, time.Now()))
			if ok {
				appended++
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return appended
}

func TestAppendIsIdempotentChainedAndNeverStoresSensitiveData(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	n := appendAll(t, pool, readEvent("a"), readEvent("b"), readEvent("a"), readEvent("c"))
	if n != 3 {
		t.Fatalf("%d appended, want 3 (one duplicate)", n)
	}
	checked, broken, err := audit.Verify(ctx, pool)
	if err != nil || broken != nil || checked != 3 {
		t.Fatalf("Verify = %d, %v, %v", checked, broken, err)
	}
	var leaked int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE audit_log::text LIKE '%' || $1 || '%'`, card).Scan(&leaked); err != nil || leaked != 0 {
		t.Fatalf("%d rows contain the card number (%v)", leaked, err)
	}
	var firstPrev []byte
	var linked bool
	pool.QueryRow(ctx, `SELECT prev_hash FROM audit_log ORDER BY seq LIMIT 1`).Scan(&firstPrev)
	pool.QueryRow(ctx, `SELECT bool_and(b.prev_hash = a.hash) FROM audit_log a JOIN audit_log b ON b.seq = (SELECT min(seq) FROM audit_log WHERE seq > a.seq)`).Scan(&linked)
	if firstPrev != nil || !linked {
		t.Fatalf("first prev_hash %x, linked %v", firstPrev, linked)
	}
}

func TestTheTableIsAppendOnly(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	appendAll(t, pool, readEvent("a"))
	for _, sql := range []string{`UPDATE audit_log SET subject = 'x'`, `DELETE FROM audit_log`, `TRUNCATE audit_log`} {
		if _, err := pool.Exec(ctx, sql); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", sql, err)
		}
	}
}

// tamper runs sql with the append-only trigger disabled, as a superuser
// could.
func tamper(t *testing.T, pool *pgxpool.Pool, sql string) {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, s := range []string{`ALTER TABLE audit_log DISABLE TRIGGER USER`, sql, `ALTER TABLE audit_log ENABLE TRIGGER USER`} {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestVerifyFindsTheFirstTamperedEntry(t *testing.T) {
	for name, c := range map[string]struct {
		sql     string
		seq     int64
		checked int64
		reason  string
	}{
		"entry changed":         {`UPDATE audit_log SET entry = jsonb_set(entry, '{subject}', '"other"') WHERE seq = 2`, 2, 1, "hash does not match"},
		"column changed":        {`UPDATE audit_log SET principal = 'someone-else' WHERE seq = 3`, 3, 2, "columns disagree"},
		"entry removed":         {`DELETE FROM audit_log WHERE seq = 2`, 3, 1, "prev_hash does not match"},
		"last entry removed":    {`DELETE FROM audit_log WHERE seq = 4`, 4, 3, "chain head"},
		"field added to entry":  {`UPDATE audit_log SET entry = entry || '{"note":"x"}' WHERE seq = 1`, 1, 0, "not in the hashed form"},
		"hash recomputed wrong": {`UPDATE audit_log SET hash = sha256(hash) WHERE seq = 1`, 1, 0, "hash does not match"},
	} {
		t.Run(name, func(t *testing.T) {
			pool := testenv.Pool(t)
			appendAll(t, pool, readEvent("a"), readEvent("b"), readEvent("c"), readEvent("d"))
			tamper(t, pool, c.sql)
			checked, broken, err := audit.Verify(context.Background(), pool)
			if err != nil || broken == nil || broken.Seq != c.seq || checked != c.checked || !strings.Contains(broken.Reason, c.reason) {
				t.Fatalf("Verify = %d, %+v, %v; want broken at %d after %d (%s)", checked, broken, err, c.seq, c.checked, c.reason)
			}
		})
	}
}

func TestVerifyOfAnEmptyLog(t *testing.T) {
	checked, broken, err := audit.Verify(context.Background(), testenv.Pool(t))
	if checked != 0 || broken != nil || err != nil {
		t.Fatalf("Verify = %d, %v, %v", checked, broken, err)
	}
}
