package main

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/skyflow-oss/skyflow/shared/audit"
	"github.com/skyflow-oss/skyflow/shared/sender"
	"github.com/skyflow-oss/skyflow/shared/testenv"
)

var newOnce sync.Once
var shared *Function

// start returns a started function on a fresh database; New registers
// metrics, so the process has one Function.
func start(t *testing.T) (*Function, *pgxpool.Pool) {
	t.Helper()
	newOnce.Do(func() { shared = New() })
	dbURL := testenv.Database(t)
	f := &Function{recorded: shared.recorded, types: shared.types}
	if err := f.Start(context.Background(), map[string]string{"DATABASE_URL": dbURL}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Stop(context.Background()) })
	p, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return f, p
}

const card = "4111111111111111"

func domainEvent(id, typ string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("/skyflow/functions/records-insert")
	e.SetType(typ)
	e.SetExtension("principal", "svc-billing")
	e.SetExtension("vaultid", "v1")
	e.SetData(event.ApplicationJSON, map[string]any{"card_number": card, "record_ids": []string{"r1"}, "action": "read"})
	return e
}

func TestEveryEventIsRecordedOnceWithoutSensitiveData(t *testing.T) {
	f, pool := start(t)
	ctx := sender.NewContext(context.Background(), sender.Broker)
	const typ = "com.skyflow.audit.record.read"
	before := testutil.ToFloat64(f.recorded.WithLabelValues(typ))
	for _, e := range []event.Event{
		domainEvent("e1", "com.skyflow.vault.record.created"),
		domainEvent("e2", typ),
		domainEvent("e2", typ), // a redelivery
		domainEvent("e1", "com.skyflow.vault.record.created"),
	} {
		if reply, err := f.Handle(ctx, e); err != nil || reply != nil {
			t.Fatalf("Handle = %v, %v", reply, err)
		}
	}
	var rows, leaked int
	var principal, action string
	if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE audit_log::text LIKE '%' || $1 || '%') FROM audit_log`, card).Scan(&rows, &leaked); err != nil {
		t.Fatal(err)
	}
	if rows != 2 || leaked != 0 {
		t.Fatalf("%d rows (want 2), %d with the card number (want 0)", rows, leaked)
	}
	if err := pool.QueryRow(ctx, `SELECT principal, action FROM audit_log WHERE event_id = 'e2'`).Scan(&principal, &action); err != nil || principal != "svc-billing" || action != "read" {
		t.Fatalf("principal %q action %q (%v)", principal, action, err)
	}
	if got := testutil.ToFloat64(f.recorded.WithLabelValues(typ)) - before; got != 1 {
		t.Fatalf("counter grew by %v, want 1", got)
	}
	checked, broken, err := audit.Verify(ctx, pool)
	if err != nil || broken != nil || checked != 2 {
		t.Fatalf("Verify = %d, %v, %v", checked, broken, err)
	}
}

func TestStartNamesMissingSettings(t *testing.T) {
	err := (&Function{}).Start(context.Background(), map[string]string{})
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("Start = %v, want an error naming DATABASE_URL", err)
	}
}
