package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
	"github.com/skyflow-oss/skyflow/domain/webhooks/webhookstest"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

func query(q string) map[string]string { return map[string]string{request.ExtQuery: q} }

// The list is paged, newest first, filtered by status, and never shows a
// secret.
func TestListPagesNewestFirstWithoutSecrets(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	s := webhookstest.Service(env)
	var made []*webhooks.NewEndpoint
	for range 5 {
		made = append(made, webhookstest.Subscribe(t, s))
	}
	s.Pool.Exec(context.Background(), `UPDATE webhook_endpoints SET status = 'disabled' WHERE id = $1`, made[0].ID)
	var ids []string
	token := ""
	for page := 0; ; page++ {
		q := "page_size=2"
		if token != "" {
			q += "&page_token=" + token
		}
		var res webhooks.Endpoints
		env.Call(f, functest.Event(RequestType, nil, functest.Admin, query(q)), ReplyType, &res)
		raw, _ := json.Marshal(res)
		for _, ep := range made {
			if strings.Contains(string(raw), strings.TrimPrefix(ep.Secret, "whsec_")) {
				t.Fatal("the list shows a secret")
			}
		}
		for _, w := range res.Webhooks {
			ids = append(ids, w.ID)
		}
		if token = res.NextPageToken; token == "" {
			break
		}
		if page > 5 {
			t.Fatal("the pages never end")
		}
	}
	if len(ids) != 5 || ids[0] != made[4].ID || ids[4] != made[0].ID {
		t.Fatalf("listed %v, want the five newest first", ids)
	}
	var disabled webhooks.Endpoints
	env.Call(f, functest.Event(RequestType, nil, functest.Admin, query("status=disabled")), ReplyType, &disabled)
	if len(disabled.Webhooks) != 1 || disabled.Webhooks[0].ID != made[0].ID || disabled.NextPageToken != "" {
		t.Fatalf("disabled: %+v", disabled)
	}
	for _, q := range []string{"page_size=0", "page_size=201", "page_token=nope", "status=gone", "limit=2", "page_size=1&page_size=2"} {
		env.Refuses(f, functest.Event(RequestType, nil, functest.Admin, query(q)), 400)
	}
	env.Refuses(f, functest.Event(RequestType, nil, functest.Owner), 403)
	env.Refuses(f, functest.Event(RequestType, nil), 401)
}
