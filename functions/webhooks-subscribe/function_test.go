package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
	"github.com/skyflow-oss/skyflow/domain/webhooks/webhookstest"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/runtime/sender"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

// A public address that needs no name lookup.
const publicURL = "https://93.184.216.34/hooks/skyflow?tenant=7"

// The subscription answers the endpoint with its secret, the only time it
// is shown: the list shows no secret, the database holds it only wrapped,
// and the subscribed event carries none.
func TestSubscribeShowsTheSecretOnce(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	vault := env.Vault()
	var ep webhooks.NewEndpoint
	env.Call(f, functest.Event(RequestType, map[string]any{"url": publicURL, "eventTypes": []string{"com.skyflow.vault.record.*", "com.skyflow.vault.record.", "com.skyflow.user.registered"},
		"description": "billing sync", "vaultID": vault}, functest.Admin), ReplyType, &ep)
	if ep.ID == "" || ep.URL != publicURL || ep.Status != "active" || ep.Owner != functest.Admin[request.ExtPrincipal] || ep.VaultID != vault ||
		strings.Join(ep.EventTypes, " ") != "com.skyflow.vault.record.* com.skyflow.user.registered" || ep.SecretVersion != 1 {
		t.Fatalf("subscribed %+v", ep.Endpoint)
	}
	if _, err := standardwebhooks.NewWebhook(ep.Secret); err != nil || !strings.HasPrefix(ep.Secret, "whsec_") {
		t.Fatalf("secret %q is not a Standard Webhooks secret: %v", ep.Secret, err)
	}

	s := webhookstest.Service(env)
	list, err := s.List(context.Background(), webhookstest.Admin, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(list)
	if len(list.Webhooks) != 1 || strings.Contains(string(raw), ep.Secret) || strings.Contains(string(raw), `"secret"`) {
		t.Fatalf("the list shows a secret: %s", raw)
	}
	if leaked := dumpContains(t, s.Pool, ep.Secret); leaked {
		t.Fatal("the database holds the secret in the clear")
	}
	events := webhookstest.Emitted(env, webhooks.SubscribedType)
	if len(events) != 1 {
		t.Fatalf("%d subscribed events", len(events))
	}
	if strings.Contains(string(events[0].Data()), strings.TrimPrefix(ep.Secret, "whsec_")) || events[0].Subject() != ep.ID {
		t.Fatalf("subscribed event %s", events[0])
	}
}

func dumpContains(t *testing.T, pool *pgxpool.Pool, s string) bool {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM webhook_endpoints w WHERE w::text LIKE '%' || $1 || '%'`, strings.TrimPrefix(s, "whsec_")).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// Mistakes are 400s that say what to fix, and never echo the URL; an
// internal destination (SSRF) is refused when subscribing.
func TestSubscribeRefusesMistakesAndInternalDestinations(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	types := []string{"com.skyflow.vault.*"}
	many := make([]string, 51)
	for i := range many {
		many[i] = "com.skyflow.vault.record.created"
	}
	for name, c := range map[string]struct {
		body map[string]any
		want string
	}{
		"metadata service":      {map[string]any{"url": "http://169.254.169.254/latest/meta-data/", "eventTypes": types}, "link-local"},
		"private address":       {map[string]any{"url": "https://10.0.0.1/hooks", "eventTypes": types}, "private"},
		"loopback":              {map[string]any{"url": "http://127.0.0.1:8080/", "eventTypes": types}, "loopback"},
		"IPv6 loopback":         {map[string]any{"url": "http://[::1]:8080/", "eventTypes": types}, "loopback"},
		"mapped loopback":       {map[string]any{"url": "http://[::ffff:127.0.0.1]/", "eventTypes": types}, "loopback"},
		"a name resolving in":   {map[string]any{"url": "http://localhost:8080/", "eventTypes": types}, "resolves to"},
		"metadata name":         {map[string]any{"url": "http://metadata.google.internal/", "eventTypes": types}, "metadata"},
		"CGNAT":                 {map[string]any{"url": "https://100.64.1.1/", "eventTypes": types}, "carrier-grade"},
		"user information":      {map[string]any{"url": "https://ops:hunter2@93.184.216.34/", "eventTypes": types}, "user name or password"},
		"scheme":                {map[string]any{"url": "ftp://93.184.216.34/", "eventTypes": types}, "https"},
		"no url":                {map[string]any{"eventTypes": types}, "url is required"},
		"no event types":        {map[string]any{"url": publicURL}, "eventTypes is required"},
		"too many event types":  {map[string]any{"url": publicURL, "eventTypes": many}, "at most 50"},
		"a foreign type":        {map[string]any{"url": publicURL, "eventTypes": []string{"com.example.x"}}, "eventTypes[0]"},
		"a reply type":          {map[string]any{"url": publicURL, "eventTypes": []string{"com.skyflow.vault.records.get.response"}}, "replies"},
		"a long description":    {map[string]any{"url": publicURL, "eventTypes": types, "description": strings.Repeat("d", 501)}, "description"},
		"a vault that is not":   {map[string]any{"url": publicURL, "eventTypes": types, "vaultID": strings.Repeat("a", 32)}, "names no vault"},
		"a malformed vault id":  {map[string]any{"url": publicURL, "eventTypes": types, "vaultID": "nope"}, "vaultID must be"},
		"an unknown field":      {map[string]any{"url": publicURL, "eventTypes": types, "secret": "mine"}, "unknown field"},
		"event types as string": {map[string]any{"url": publicURL, "eventTypes": "com.skyflow.*"}, "eventTypes must be an array"},
	} {
		ae := refused(f, c.body)
		if ae == nil || ae.HTTPCode != 400 || !strings.Contains(ae.Message, c.want) {
			t.Errorf("%s: %v, want a 400 saying %q", name, ae, c.want)
			continue
		}
		if strings.Contains(ae.Message, "hunter2") || strings.Contains(ae.Message, "/latest/meta-data") {
			t.Errorf("%s: the message echoes the URL: %s", name, ae.Message)
		}
	}
	if n := len(env.Sink.Events()); n != 0 {
		t.Fatalf("%d events for refused subscriptions", n)
	}
	env.Refuses(f, functest.Event(RequestType, map[string]any{"url": publicURL, "eventTypes": types}, functest.Owner), 403)
	env.Refuses(f, functest.Event(RequestType, map[string]any{"url": publicURL, "eventTypes": types}), 401)
	env.Refuses(f, functest.Event("com.skyflow.other", map[string]any{}, functest.Admin), 400)
}

// refused has f handle a request from an administrator, as the gateway
// sends it, and returns its API error (nil when it succeeded).
func refused(f functest.Function, body map[string]any) *apierr.Error {
	_, err := f.Handle(sender.NewContext(context.Background(), sender.Gateway), functest.Event(RequestType, body, functest.Admin))
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return ae
	}
	return nil
}

// An operator who allows a network (SKYFLOW_WEBHOOK_ALLOWED_NETWORKS)
// can subscribe receivers there, and only there.
func TestAllowedNetworks(t *testing.T) {
	env := functest.New(t)
	env.Config["SKYFLOW_WEBHOOK_ALLOWED_NETWORKS"] = "127.0.0.0/8,::1/128"
	f := env.Start(New())
	var ep webhooks.NewEndpoint
	env.Call(f, functest.Event(RequestType, map[string]any{"url": "http://localhost:9/hooks", "eventTypes": []string{"com.skyflow.*"}}, functest.Admin), ReplyType, &ep)
	if ep.URL != "http://localhost:9/hooks" {
		t.Fatalf("subscribed %+v", ep.Endpoint)
	}
	ae := refused(f, map[string]any{"url": "http://169.254.169.254/", "eventTypes": []string{"com.skyflow.*"}})
	if ae == nil || ae.HTTPCode != 400 {
		t.Fatalf("the metadata service with loopback allowed: %v", ae)
	}
}
