package request_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/domain/records"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/runtime/sender"
)

func newEvent(data string, ext map[string]string) event.Event {
	e := event.New()
	e.SetID("1")
	e.SetSource("/skyflow/functions/gateway")
	e.SetType("com.skyflow.vault.records.insert")
	if data != "" {
		e.SetData(event.ApplicationJSON, []byte(data))
	}
	for k, v := range ext {
		e.SetExtension(k, v)
	}
	return e
}

func code(err error) int {
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return ae.HTTPCode
	}
	return -1
}

func TestAcceptWantsTheGatewayTheTypeAndAPrincipal(t *testing.T) {
	fromGateway := sender.NewContext(context.Background(), sender.Gateway)
	e := newEvent(`{}`, map[string]string{"principal": "sa:1", "roles": "owner  reader"})
	p, err := request.Accept(fromGateway, e, "com.skyflow.vault.records.insert")
	if err != nil || p.ID != "sa:1" || len(p.Roles) != 2 || !p.Has("reader") || p.Has("admin") {
		t.Fatalf("Accept = %+v, %v", p, err)
	}
	if _, err := request.Accept(fromGateway, e, "com.skyflow.vault.records.get"); code(err) != 400 {
		t.Errorf("another type: %v, want 400", err)
	}
	if _, err := request.Accept(fromGateway, newEvent(`{}`, nil), "com.skyflow.vault.records.insert"); code(err) != 401 {
		t.Errorf("no principal: %v, want 401", err)
	}
	// A client request delivered by the broker (or unverified) is refused.
	for _, ctx := range []context.Context{sender.NewContext(context.Background(), sender.Broker), context.Background()} {
		if _, err := request.Accept(ctx, e, "com.skyflow.vault.records.insert"); code(err) != 403 {
			t.Errorf("sender %q: %v, want 403", sender.From(ctx), err)
		}
		if err := request.AcceptAnonymous(ctx, e, "com.skyflow.vault.records.insert"); code(err) != 403 {
			t.Errorf("anonymous, sender %q: %v, want 403", sender.From(ctx), err)
		}
	}
}

func TestQueryIsTheRawQueryString(t *testing.T) {
	q, err := request.Query(newEvent("", map[string]string{"query": "skyflow_ids=a&skyflow_ids=b&column_values=x%2Cy"}))
	if err != nil || len(q["skyflow_ids"]) != 2 || q.Get("column_values") != "x,y" {
		t.Errorf("Query = %v, %v", q, err)
	}
	if _, err := request.Query(newEvent("", map[string]string{"query": "a=%zz"})); code(err) != 400 {
		t.Errorf("bad escape: %v, want 400", err)
	}
}

func TestDecodeSaysWhatIsWrongWithoutValues(t *testing.T) {
	const secret = "4111111111111111"
	for body, says := range map[string]string{
		``:                                   "empty",
		`{"records": "` + secret + `"}`:      "records must be an array",
		`{"records": [], "x": 1}`:            `unknown field "x"`,
		`{"records": [{"fields": {}}]} {}`:   "one JSON object",
		`{"records": [`:                      "ends too soon",
		`{"records": [}`:                     "not valid JSON",
		`[1]`:                                "JSON object",
		`{"tokenization": "` + secret + `"}`: "tokenization must be a boolean",
	} {
		var req records.InsertRequest
		err := request.Decode(newEvent(body, nil), &req)
		if code(err) != 400 || !strings.Contains(err.Error(), says) || strings.Contains(err.Error(), secret) {
			t.Errorf("%q: %v, want a 400 saying %q", body, err, says)
		}
	}
}

// FuzzDecode: any body decodes into every request type or is a 400;
// never a panic, never another status.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"records":[{"fields":{"a":1}}],"tokenization":true}`, `{"detokenizationParameters":[{"token":"t"}]}`, `{"query":"SELECT"}`, `{"records":[{"method":"POST","tableName":"t"}],"continueOnError":true}`, `{`, `null`, `[]`, `{"skyflow_ids":["x"]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		e := newEvent(body, nil)
		for _, v := range []any{&records.InsertRequest{}, &records.BatchRequest{}, &records.UpdateRequest{}, &records.DetokenizeRequest{}, &records.TokenizeRequest{}, &records.QueryRequest{}, &records.DeleteManyRequest{}} {
			if err := request.Decode(e, v); err != nil && code(err) != 400 {
				t.Fatalf("Decode(%T) = %v, want nil or a 400", v, err)
			}
		}
	})
}
