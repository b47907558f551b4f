package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/skyflow-oss/skyflow/domain/audit"
	"github.com/skyflow-oss/skyflow/eventing/catalog"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/sender"
)

// A scripted session of domain events goes through the broker to
// audit-record: one entry per distinct event (a redelivered id adds none),
// no sensitive value in the table, an intact chain, and audit-query lists
// what was recorded.
func TestAuditLogRecordsEverySkyflowEventOnceAndStaysIntact(t *testing.T) {
	p := startPlatform(t, options{})
	ctx := context.Background()
	const card = "4111111111111111"
	session := []struct {
		typ  string
		id   string
		data any
	}{
		{"com.skyflow.vault.record.created", uniqueID("created"), map[string]any{"card_number": card, "token": "tok_1"}},
		{"com.skyflow.audit.record.read", uniqueID("read"), map[string]any{
			"action": "read", "vault_id": "v1", "principal": "svc-billing", "table": "cards",
			"columns": []string{"card_number"}, "record_ids": []string{"rec-1"}, "redaction": "PLAIN_TEXT",
			"card_number": card, "values": map[string]string{"card_number": card},
		}},
		{"com.skyflow.vault.record.updated", uniqueID("updated"), map[string]any{"card_number": card}},
		{"com.skyflow.audit.record.deleted", uniqueID("deleted"), map[string]any{"action": "delete", "vault_id": "v1", "record_ids": []string{"rec-1"}}},
	}
	ids := []string{}
	for _, s := range session {
		p.publish(t, s.typ, s.id, s.data)
		ids = append(ids, s.id)
	}
	// The same event again, twice: a redelivery.
	p.publish(t, session[1].typ, session[1].id, session[1].data)
	p.publish(t, session[1].typ, session[1].id, session[1].data)

	pool, err := db.Open(ctx, p.DatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	count := func() int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE event_source = '/tests' AND event_id = ANY($1)`, ids).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	deadline := time.Now().Add(60 * time.Second)
	for count() < len(session) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events in the audit log after 60s", count(), len(session))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // time for a wrongly recorded duplicate to show
	var rows, perEvent, leaked int
	if err := pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT (event_source, event_id)),
		count(*) FILTER (WHERE audit_log::text LIKE '%' || $1 || '%') FROM audit_log WHERE event_id = ANY($2)`, card, ids).Scan(&rows, &perEvent, &leaked); err != nil {
		t.Fatal(err)
	}
	if rows != len(session) || perEvent != len(session) || leaked != 0 {
		t.Fatalf("%d rows for %d distinct events (want %d each), %d rows with the card number", rows, perEvent, len(session), leaked)
	}
	var anywhere int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE audit_log::text LIKE '%' || $1 || '%'`, card).Scan(&anywhere); err != nil || anywhere != 0 {
		t.Fatalf("%d audit_log rows contain the card number (%v)", anywhere, err)
	}
	var recordIDs string
	if err := pool.QueryRow(ctx, `SELECT entry->'data'->>'record_ids' FROM audit_log WHERE event_id = $1`, session[1].id).Scan(&recordIDs); err != nil || recordIDs != `["rec-1"]` {
		t.Fatalf("allow-listed record_ids %q (%v)", recordIDs, err)
	}
	checked, broken, err := audit.Verify(ctx, pool)
	if err != nil || broken != nil || checked < int64(len(session)) {
		t.Fatalf("Verify = %d, %v, %v", checked, broken, err)
	}

	// audit-query lists the session's vault.
	var queryURL string
	for _, fn := range p.Status() {
		if fn.Name == "audit-query" {
			queryURL = fn.URL.String()
		}
	}
	if queryURL == "" {
		t.Fatal("no audit-query function on the platform")
	}
	req := event.New()
	req.SetID(uniqueID("list"))
	req.SetSource("/tests")
	req.SetType("com.skyflow.audit.events.list")
	req.SetExtension("principal", "user:00000000-0000-4000-8000-00000000a0d1")
	req.SetExtension("roles", "auditor")
	req.SetExtension("query", "vault_id=v1&page_size=10")
	hr, _ := http.NewRequest(http.MethodPost, queryURL, nil)
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(&req), hr); err != nil {
		t.Fatal(err)
	}
	if err := p.Signer(sender.Gateway).Authorize(hr, req, "audit-query"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	reply, err := binding.ToEvent(ctx, cehttp.NewMessageFromHttpResponse(resp))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("audit-query answered %d: %v", resp.StatusCode, err)
	}
	if err := catalog.Validate(*reply); err != nil {
		t.Fatal(err)
	}
	var listed struct {
		Events []struct {
			ID  string `json:"id"`
			Seq int64  `json:"seq"`
		} `json:"events"`
	}
	json.Unmarshal(reply.Data(), &listed)
	// Events in different partitions may be recorded in either order; the
	// listing is newest (highest seq) first.
	var got []string
	for i, e := range listed.Events {
		got = append(got, e.ID)
		if i > 0 && e.Seq >= listed.Events[i-1].Seq {
			t.Errorf("not newest first: %+v", listed.Events)
		}
	}
	slices.Sort(got)
	want := []string{session[1].id, session[3].id}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("audit-query listed %v, want the read and the deleted events %v", got, want)
	}
}
