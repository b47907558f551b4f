package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/domain/audit"
	"github.com/skyflow-oss/skyflow/eventing/catalog"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/runtime/sender"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

var base = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// start returns a started function on a fresh database holding 10 entries:
// seq i happened at base+i minutes, vault v1 for odd i and v2 for even,
// principal alice for i ≤ 5 and bob after, action read for i%3 == 0.
func start(t *testing.T) *Function {
	t.Helper()
	dbURL := testenv.Database(t)
	f := New()
	if err := f.Start(context.Background(), map[string]string{"DATABASE_URL": dbURL}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Stop(context.Background()) })
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ctx := context.Background()
	for i := 1; i <= 10; i++ {
		e := event.New()
		e.SetID(fmt.Sprintf("e%d", i))
		e.SetSource("/skyflow/functions/records-get")
		e.SetType("com.skyflow.audit.record.read")
		e.SetTime(base.Add(time.Duration(i) * time.Minute))
		e.SetExtension("vaultid", map[bool]string{true: "v1", false: "v2"}[i%2 == 1])
		e.SetExtension("principal", map[bool]string{true: "alice", false: "bob"}[i <= 5])
		e.SetExtension("resource", "cards")
		action := "write"
		if i%3 == 0 {
			action = "read"
		}
		e.SetData(event.ApplicationJSON, map[string]any{"action": action, "card_number": "4111111111111111"})
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, _, err := audit.Append(ctx, tx, audit.FromEvent(e, time.Now()))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// fromGateway is the context the host gives Handle for a gateway's event.
var fromGateway = sender.NewContext(context.Background(), sender.Gateway)

// list is GET /v1/audit/events?query by a principal with roles.
func list(query, roles string) event.Event {
	e := event.New()
	e.SetID("req-1")
	e.SetSource("/skyflow/functions/gateway")
	e.SetType(ListType)
	e.SetExtension(request.ExtPrincipal, "user:someone")
	e.SetExtension(request.ExtRoles, roles)
	e.SetExtension(request.ExtQuery, query)
	return e
}

func handle(t *testing.T, f *Function, data string) audit.Listed {
	t.Helper()
	reply, err := f.Handle(fromGateway, list(data, "auditor"))
	if err != nil {
		t.Fatalf("Handle(%s): %v", data, err)
	}
	if err := catalog.Validate(*reply); err != nil {
		t.Fatalf("the reply does not match the catalog: %v", err)
	}
	var out audit.Listed
	if err := json.Unmarshal(reply.Data(), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func seqs(l audit.Listed) string {
	var s []string
	for _, e := range l.Events {
		s = append(s, fmt.Sprint(e.Seq))
	}
	return strings.Join(s, ",")
}

func TestListFiltersAndPagesNewestFirst(t *testing.T) {
	f := start(t)
	all := handle(t, f, "")
	if seqs(all) != "10,9,8,7,6,5,4,3,2,1" || all.NextPageToken != "" {
		t.Fatalf("all: %s, token %q", seqs(all), all.NextPageToken)
	}
	e := all.Events[0]
	if e.Type != "com.skyflow.audit.record.read" || e.ID != "e10" || e.VaultID != "v2" || e.Principal != "bob" ||
		e.Resource != "cards" || e.Action != "write" || !e.OccurredAt.Equal(base.Add(10*time.Minute)) || len(e.Hash) != 64 {
		t.Fatalf("entry %+v", e)
	}
	for query, want := range map[string]string{
		"vault_id=v1":               "9,7,5,3,1",
		"vault_id=v1&principal=bob": "9,7",
		"action=read":               "9,6,3",
		"resource=cards&action=read&principal=alice":        "3",
		"from=2026-11-23T12:03:00Z&to=2026-11-23T12:06:00Z": "5,4,3",
		"vault_id=nobody": "",
	} {
		if got := handle(t, f, query); seqs(got) != want {
			t.Errorf("%s: %s, want %s", query, seqs(got), want)
		}
	}

	var pages []string
	token := ""
	for range 10 {
		req := "page_size=4"
		if token != "" {
			req += "&page_token=" + url.QueryEscape(token)
		}
		page := handle(t, f, req)
		pages = append(pages, seqs(page))
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	if got := strings.Join(pages, "|"); got != "10,9,8,7|6,5,4,3|2,1" {
		t.Fatalf("pages %s", got)
	}
}

func TestBadRequestsAreInvalidArgumentWithAPreciseMessage(t *testing.T) {
	f := start(t)
	for query, want := range map[string]string{
		"from=yesterday": "from must be a time in RFC 3339 form",
		"to=2026-11-23":  "to must be a time in RFC 3339 form",
		"from=2026-11-23T13:00:00Z&to=2026-11-23T12:00:00Z": "from must be before to",
		"page_size=0":                  "page_size must be an integer between 1 and 200",
		"page_size=201":                "page_size must be an integer between 1 and 200",
		"page_size=2.5":                "page_size must be an integer",
		"vault_id=a&vault_id=b":        "vault_id may be given once",
		"card_number=4111111111111111": `unknown query parameter "card_number"`,
		"page_token=not-a-token":       "page_token is not a token this service issued",
		"page_token=czA":               "page_token is not a token this service issued", // "s0"
		"vault_id=%zz":                 "not valid URL encoding",
	} {
		_, err := f.Handle(fromGateway, list(query, "admin"))
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.HTTPCode != http.StatusBadRequest || !strings.Contains(ae.Message, want) {
			t.Errorf("%s: %v, want a 400 saying %q", query, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "4111111111111111") {
			t.Errorf("%s: the message echoes a value: %v", query, err)
		}
	}
	wrong := list("", "admin")
	wrong.SetType("com.skyflow.audit.events.delete")
	if _, err := f.Handle(fromGateway, wrong); err == nil || !strings.Contains(err.Error(), ListType) {
		t.Errorf("wrong type: %v", err)
	}
}

// Only administrators and auditors read the audit log, and only through the gateway.
func TestOnlyAuditorsThroughTheGatewayMayList(t *testing.T) {
	f := start(t)
	for name, c := range map[string]struct {
		ctx   context.Context
		roles string
		want  int
	}{
		"a role without the right": {fromGateway, "checkout", http.StatusForbidden},
		"from the broker":          {sender.NewContext(context.Background(), sender.Broker), "admin", http.StatusForbidden},
		"unverified":               {context.Background(), "admin", http.StatusForbidden},
	} {
		_, err := f.Handle(c.ctx, list("", c.roles))
		if apierr.From(err).HTTPCode != c.want {
			t.Errorf("%s: %v, want %d", name, err, c.want)
		}
	}
}

func TestStartNamesMissingSettings(t *testing.T) {
	err := New().Start(context.Background(), map[string]string{})
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("Start = %v, want an error naming DATABASE_URL", err)
	}
}
