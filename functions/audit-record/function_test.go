package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/skyflow-oss/skyflow/domain/audit"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/sender"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

var newOnce sync.Once
var shared *Function

// start returns a started function on a fresh database; New registers
// metrics, so the process has one Function.
func start(t *testing.T) (*Function, *pgxpool.Pool) {
	t.Helper()
	newOnce.Do(func() { shared = New() })
	dbURL := testenv.Database(t)
	f := &Function{m: shared.m}
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
	before := testutil.ToFloat64(f.m.recorded.WithLabelValues(typ))
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
	if got := testutil.ToFloat64(f.m.recorded.WithLabelValues(typ)) - before; got != 1 {
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

// Concurrent deliveries, as the unordered Trigger makes them, share
// transactions: while one waits for the chain head, the rest gather and go
// in the next one. Each Handle returns once its entry is committed, a
// redelivery among them adds nothing, and the chain verifies.
func TestConcurrentDeliveriesShareOneTransaction(t *testing.T) {
	f, pool := start(t)
	ctx := sender.NewContext(context.Background(), sender.Broker)
	committedBefore := testutil.ToFloat64(f.m.batches.WithLabelValues("committed"))

	// A transaction of another writer holds the chain head.
	hold, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(ctx)
	if _, err := hold.Exec(ctx, `SELECT 1 FROM audit_chain_head FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	handle := func(e event.Event) <-chan error {
		c := make(chan error, 1)
		go func() {
			reply, err := f.Handle(ctx, e)
			if reply != nil {
				err = errors.New("a reply")
			}
			c <- err
		}()
		return c
	}
	first := handle(domainEvent("first", "com.skyflow.vault.record.created"))
	waitUntil(t, func() bool {
		var n int
		pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		return n > 0
	})
	const n = 40
	var rest []<-chan error
	for i := range n {
		rest = append(rest, handle(domainEvent(fmt.Sprintf("e%d", i), "com.skyflow.audit.record.read")))
	}
	rest = append(rest, handle(domainEvent("e7", "com.skyflow.audit.record.read"))) // a redelivery, at the same moment
	waitUntil(t, func() bool { return f.writer.Waiting() == n+1 })
	select {
	case err := <-first:
		t.Fatalf("Handle returned (%v) before its entry could commit", err)
	default:
	}
	hold.Rollback(ctx)

	for _, c := range append(rest, first) {
		if err := <-c; err != nil {
			t.Fatal(err)
		}
	}
	if got := testutil.ToFloat64(f.m.batches.WithLabelValues("committed")) - committedBefore; got != 2 {
		t.Fatalf("%v transactions, want 2 (the first, then the other %d deliveries together)", got, n+1)
	}
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log`).Scan(&rows); err != nil || rows != n+1 {
		t.Fatalf("%d rows (%v), want %d", rows, err, n+1)
	}
	checked, broken, err := audit.Verify(ctx, pool)
	if err != nil || broken != nil || checked != n+1 {
		t.Fatalf("Verify = %d, %v, %v", checked, broken, err)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An event the log cannot hold is refused with 400 (straight to the
// dead-letter sink: no retry would change it), alone.
func TestAnEventTheLogCannotHoldIsRefused(t *testing.T) {
	f, _ := start(t)
	ctx := sender.NewContext(context.Background(), sender.Broker)
	e := domainEvent("nul", "com.skyflow.vault.record.created")
	e.SetExtension("principal", "svc\x00billing")
	_, err := f.Handle(ctx, e)
	var apiErr *apierr.Error
	if !errors.As(err, &apiErr) || apiErr.HTTPCode != 400 {
		t.Fatalf("Handle = %v, want a 400", err)
	}
}
