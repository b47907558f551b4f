package tests

import (
	"context"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/outbox"
)

// An event goes ingress → Kafka → trigger → echo; echo's reply goes back
// through the broker and reaches the recorder, whose trigger matches it.
func TestReplyEventsReachTheirOwnSubscribers(t *testing.T) {
	p := startPlatform(t, options{})
	id := uniqueID("echo")
	p.publish(t, "com.skyflow.test.echo", id, map[string]string{"hello": "world"})

	p.recorded(t, "echo", id, 30*time.Second)
	// The reply has its own id; the recorder sees it with echoedid = id.
	deadline := time.Now().Add(30 * time.Second)
	for p.recordCount("recorder") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the reply never reached the recorder")
		}
		time.Sleep(20 * time.Millisecond)
	}
	replies := p.recordedEvents(t, "recorder")
	if len(replies) != 1 || replies[0].Type() != "com.skyflow.test.echoed" || replies[0].Extensions()["echoedid"] != id {
		t.Fatalf("recorder got %v", replies)
	}
	if string(replies[0].Data()) != `{"hello":"world"}` {
		t.Fatalf("reply data %s", replies[0].Data())
	}
}

// A function publishes through its outbox: the event is written in the
// transaction, sent to the broker after commit, and delivered.
func TestOutboxEventIsDeliveredThroughTheBroker(t *testing.T) {
	p := startPlatform(t, options{})
	ctx := context.Background()
	pool, err := db.Open(ctx, p.DatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	pub, err := outbox.NewPublisher(pool, p.SinkURL())
	if err != nil {
		t.Fatal(err)
	}
	id := uniqueID("outbox")
	err = pub.Transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		return []event.Event{testEvent(id, "com.skyflow.test.record.outbox")}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := p.recorded(t, "recorder", id, 30*time.Second)
	if got.Source() != "/tests" || got.Type() != "com.skyflow.test.record.outbox" {
		t.Fatalf("delivered %v", got)
	}
}

// The broker is down while a function commits: the event waits in the
// outbox, and the outbox-sweep function (started on demand by its
// PingSource) sends it once the broker is reachable.
func TestOutboxSweepSendsWhatTheBrokerMissed(t *testing.T) {
	p := startPlatform(t, options{})
	ctx := context.Background()
	pool, err := db.Open(ctx, p.DatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// A sink nobody listens on: the send after commit fails.
	down, err := outbox.NewPublisher(pool, "http://127.0.0.1:1/skyflow/default")
	if err != nil {
		t.Fatal(err)
	}
	id := uniqueID("swept")
	if err := down.Transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		return []event.Event{testEvent(id, "com.skyflow.test.record.swept")}, nil
	}); err != nil {
		t.Fatal(err)
	}
	// Its own relay cannot reach the broker; the row waits, committed.
	var attempts int
	for deadline := time.Now().Add(10 * time.Second); attempts == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err := pool.QueryRow(ctx, `SELECT attempts FROM outbox WHERE id = $1 AND sent_at IS NULL`, id).Scan(&attempts); err != nil {
			t.Fatalf("the event's outbox row: %v", err)
		}
	}
	if attempts == 0 {
		t.Fatal("the relay never tried the event")
	}
	down.Close(ctx) // the process goes away; the sweep is what is left
	if err := p.FirePing(ctx, "outbox-sweep"); err != nil {
		t.Fatalf("ping: %v", err)
	}
	p.recorded(t, "recorder", id, 30*time.Second)
	var pending int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE id = $1 AND sent_at IS NULL`, id).Scan(&pending); err != nil || pending != 0 {
		t.Fatalf("the event unsent after the sweep (%d rows, %v)", pending, err)
	}
}

// TC-SKY-ARCH-002: events published before a full platform restart are
// delivered after it, and a new trigger replays the topic from its first
// offset.
func TestTC_SKY_ARCH_002_DurableTopicsAndReplay(t *testing.T) {
	devDir, records := t.TempDir(), t.TempDir()
	database := ""
	// First run: the recorder is down (503), so nothing is delivered; the
	// events are in Kafka and the trigger's offset is not committed.
	first := startPlatform(t, options{devDir: devDir, records: records, env: map[string]string{"FAIL_WITH_STATUS": "503"}})
	database = first.DatabaseURL()
	ids := []string{uniqueID("durable-1"), uniqueID("durable-2"), uniqueID("durable-3")}
	for _, id := range ids {
		first.publish(t, "com.skyflow.test.record.durable", id, map[string]int{"n": 1})
	}
	time.Sleep(300 * time.Millisecond) // let the dispatcher fail at least once
	if n := first.recordCount("recorder"); n != 0 {
		t.Fatalf("the recorder recorded %d events while down", n)
	}
	first.stop(t)

	// Second run, same Kafka data, the recorder healthy, and a new trigger
	// that starts at the earliest offset.
	second := startPlatform(t, options{devDir: devDir, records: records, databaseURL: database,
		extra: []string{root(t) + "/tests/testdata/replay"}})
	for _, id := range ids {
		second.recorded(t, "recorder", id, 60*time.Second)
		second.recorded(t, "replayer", id, 60*time.Second)
	}
}

func testEvent(id, typ string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("/tests")
	e.SetType(typ)
	e.SetData("application/json", map[string]string{"token": "tok_123"})
	return e
}
