package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/domain/notify"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

func ev(typ, source string, data any, ext map[string]string) event.Event {
	e := event.New()
	e.SetID(uuid.NewString())
	e.SetSource(source)
	e.SetType(typ)
	e.SetTime(time.Now())
	e.SetData(event.ApplicationJSON, data)
	for k, v := range ext {
		e.SetExtension(k, v)
	}
	return e
}

func status(err error) int {
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return ae.HTTPCode
	}
	return 0
}

func TestDefaultsAreIdentitys(t *testing.T) {
	if !reflect.DeepEqual(notify.Defaults, identity.DefaultPreferences.Channels) {
		t.Fatalf("notify.Defaults %v, identity.DefaultPreferences %v: they must agree", notify.Defaults, identity.DefaultPreferences.Channels)
	}
}

func TestPreferences(t *testing.T) {
	for _, tc := range []struct {
		prefs         map[string][]string
		kind, channel string
		want          bool
	}{
		{nil, notify.KindSecurity, "email", true},
		{nil, notify.KindSecurity, "push", false},
		{nil, notify.KindWebhooks, "email", true},
		{map[string][]string{"security": {"push"}}, notify.KindSecurity, "email", false},
		{map[string][]string{"security": {"push"}}, notify.KindSecurity, "push", true},
		{map[string][]string{"security": {"push"}}, notify.KindWebhooks, "email", true}, // missing kind: default
		{map[string][]string{"security": {}}, notify.KindSecurity, "email", false},      // opted out
		{map[string][]string{"security": nil}, notify.KindSecurity, "email", false},
		{map[string][]string{"account": {}}, notify.KindAccount, "email", true}, // transactional
		{nil, notify.KindAccount, "push", false},
	} {
		if got := notify.Wants(tc.prefs, tc.kind, tc.channel); got != tc.want {
			t.Errorf("Wants(%v, %s, %s) = %v", tc.prefs, tc.kind, tc.channel, got)
		}
	}
}

func TestOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.example.com/T000/B000/XXXXsecret?token=abc": "https://hooks.example.com",
		"https://user:pass@hooks.example.com:8443/x":               "https://hooks.example.com:8443",
		"ftp://x/y": "the endpoint",
		"":          "the endpoint",
		"/relative": "the endpoint",
	} {
		if got := notify.Origin(in); got != want {
			t.Errorf("Origin(%q) = %q, want %q", in, got, want)
		}
	}
}

type fixture struct {
	ctx  context.Context
	pool *pgxpool.Pool
}

func setup(t *testing.T) *fixture {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return &fixture{ctx: ctx, pool: testenv.Pool(t)}
}

func (f *fixture) user(t *testing.T, name string) uuid.UUID {
	t.Helper()
	id := uuid.New()
	if _, err := f.pool.Exec(f.ctx, `INSERT INTO users (id, email, password_hash, display_name, email_verified_at) VALUES ($1, $2, 'x', $3, now())`,
		id, strings.ToLower(name)+"-"+id.String()[:8]+"@example.com", name); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestNoticesFromEvents(t *testing.T) {
	f := setup(t)
	ada, grace := f.user(t, "Ada"), f.user(t, "Grace")

	n, err := notify.FromEvent(f.ctx, f.pool, ev(notify.UserRegisteredType, "/skyflow/functions/users-register", map[string]string{"user_id": ada.String()}, nil))
	if err != nil || n.Name != notify.NoticeVerifyEmail || n.Kind != notify.KindAccount || len(n.Users) != 1 || n.Users[0] != ada {
		t.Fatalf("registered: %+v, %v", n, err)
	}

	until := time.Now().Add(15 * time.Minute).UTC().Truncate(time.Second)
	n, err = notify.FromEvent(f.ctx, f.pool, ev(notify.UserLoginLockedType, "/skyflow/functions/users-login",
		map[string]string{"user_id": ada.String(), "until": until.Format(time.RFC3339)}, nil))
	if err != nil || n.Name != notify.NoticeLoginLocked || n.Kind != notify.KindSecurity || !n.Details.Until.Equal(until) || n.Urgency != "high" || n.TTL <= 0 {
		t.Fatalf("locked: %+v, %v", n, err)
	}

	// An API key Ada made for a service account Grace made: both hear of it.
	keyID := uuid.New()
	if _, err := f.pool.Exec(f.ctx, `INSERT INTO service_accounts (client_id, name, created_by) VALUES ('c1', 'billing', $1)`, "user:"+grace.String()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pool.Exec(f.ctx, `INSERT INTO api_keys (id, prefix, key_hash, principal, name, created_by) VALUES ($1, 'sky-AbCd', 'h', 'sa:c1', 'ci', $2)`, keyID, "user:"+ada.String()); err != nil {
		t.Fatal(err)
	}
	n, err = notify.FromEvent(f.ctx, f.pool, ev(notify.APIKeyCreatedType, "/skyflow/functions/apikeys-create",
		map[string]string{"key_id": keyID.String(), "principal": "sa:c1"}, map[string]string{"principal": "user:" + ada.String()}))
	if err != nil || n.Kind != notify.KindSecurity || len(n.Users) != 2 || n.Users[0] != ada || n.Users[1] != grace {
		t.Fatalf("apikey: %+v, %v", n, err)
	}
	d := n.Details
	if d.KeyName != "ci" || d.KeyPrefix != "sky-AbCd" || d.ServiceAccountName != "billing" || d.CreatedBy != "Ada (user:"+ada.String()+")" {
		t.Fatalf("apikey details: %+v", d)
	}
	// Made by a service account for one the platform made: nobody to tell.
	n, err = notify.FromEvent(f.ctx, f.pool, ev(notify.APIKeyCreatedType, "/skyflow/functions/apikeys-create",
		map[string]string{"key_id": uuid.NewString(), "principal": "sa:nope"}, map[string]string{"principal": "sa:admin"}))
	if err != nil || len(n.Users) != 0 {
		t.Fatalf("apikey by a service account: %+v, %v", n, err)
	}

	n, err = notify.FromEvent(f.ctx, f.pool, ev(notify.WebhookDisabledType, "/skyflow/functions/notify-webhook",
		map[string]string{"webhook_id": "wh_1", "url": "https://hooks.example.com/services/T0/B0/secretpath?sig=1", "owner": "user:" + grace.String(),
			"reason": "endpoint failed 10 consecutive deliveries"}, nil))
	if err != nil || n.Kind != notify.KindWebhooks || len(n.Users) != 1 || n.Users[0] != grace {
		t.Fatalf("webhook: %+v, %v", n, err)
	}
	if n.Details.WebhookOrigin != "https://hooks.example.com" || strings.Contains(n.Body, "secretpath") || n.Details.Reason != "endpoint failed 10 consecutive deliveries" {
		t.Fatalf("webhook details: %+v %q", n.Details, n.Body)
	}
	// A reason with markup or a link is not repeated.
	n, _ = notify.FromEvent(f.ctx, f.pool, ev(notify.WebhookDisabledType, "/x", map[string]string{"webhook_id": "wh_1", "url": "https://h", "owner": "sa:x",
		"reason": "got <script> from https://evil.example/"}, nil))
	if strings.Contains(n.Details.Reason, "evil") || len(n.Users) != 0 {
		t.Fatalf("webhook with a bad reason: %+v", n)
	}

	// What makes no notice, or is malformed, is a 400 (not retried).
	for _, e := range []event.Event{
		ev("com.skyflow.vault.create", "/x", map[string]string{}, nil),
		ev(notify.UserRegisteredType, "/x", map[string]string{"user_id": "nope"}, nil),
		ev(notify.UserLoginLockedType, "/x", map[string]string{"user_id": ada.String()}, nil),
		ev(notify.APIKeyCreatedType, "/x", map[string]string{"key_id": keyID.String(), "principal": "user:x"}, nil),
		ev(notify.WebhookDisabledType, "/x", map[string]string{"url": "https://h"}, nil),
		ev(notify.UserRegisteredType, "/x", json.RawMessage(`[1]`), nil),
	} {
		if _, err := notify.FromEvent(f.ctx, f.pool, e); status(err) != 400 {
			t.Errorf("%s %s: %v, want a 400", e.Type(), e.Data(), err)
		}
	}
}

func TestRecipientsAndSkips(t *testing.T) {
	f := setup(t)
	ada := f.user(t, "Ada")
	r, err := notify.LoadRecipient(f.ctx, f.pool, ada)
	if err != nil || r == nil || r.DisplayName != "Ada" || !r.Verified {
		t.Fatalf("LoadRecipient = %+v, %v", r, err)
	}
	if r, err := notify.LoadRecipient(f.ctx, f.pool, uuid.New()); r != nil || err != nil {
		t.Fatalf("an unknown user: %+v, %v", r, err)
	}
	verify := &notify.Notice{Kind: notify.KindAccount}
	security := &notify.Notice{Kind: notify.KindSecurity}
	if got := r.Skip(verify, "email"); got != "already_verified" {
		t.Errorf("verification of a verified address: %q", got)
	}
	if got := r.Skip(security, "email"); got != "" {
		t.Errorf("security by email by default: %q", got)
	}
	if got := r.Skip(security, "push"); got != "opted_out" {
		t.Errorf("security by push by default: %q", got)
	}
	r.Verified = false
	if got := r.Skip(security, "email"); got != "unverified" {
		t.Errorf("security to an unverified address: %q", got)
	}
	if got := r.Skip(verify, "email"); got != "" {
		t.Errorf("verification of an unverified address: %q", got)
	}
}

func TestClaims(t *testing.T) {
	f := setup(t)
	n := &notify.Notice{EventID: uuid.NewString(), EventSource: "/skyflow/functions/users-login"}
	c, state, err := notify.Take(f.ctx, f.pool, "email", n, "u1")
	if err != nil || state != notify.Claimed {
		t.Fatalf("first Take = %v, %v", state, err)
	}
	// While it is being sent, another delivery waits its turn.
	if _, state, err := notify.Take(f.ctx, f.pool, "email", n, "u1"); err != nil || state != notify.Busy {
		t.Fatalf("concurrent Take = %v, %v", state, err)
	}
	// Other recipients and channels are claimed apart.
	if _, state, _ := notify.Take(f.ctx, f.pool, "email", n, "u2"); state != notify.Claimed {
		t.Fatalf("another recipient: %v", state)
	}
	if _, state, _ := notify.Take(f.ctx, f.pool, "push", n, "u1"); state != notify.Claimed {
		t.Fatalf("another channel: %v", state)
	}
	// A failed send releases the claim: the retry sends.
	if err := c.Release(f.ctx); err != nil {
		t.Fatal(err)
	}
	c, state, err = notify.Take(f.ctx, f.pool, "email", n, "u1")
	if err != nil || state != notify.Claimed {
		t.Fatalf("Take after Release = %v, %v", state, err)
	}
	if err := c.Done(f.ctx); err != nil {
		t.Fatal(err)
	}
	// A redelivery sends nothing.
	if _, state, err := notify.Take(f.ctx, f.pool, "email", n, "u1"); err != nil || state != notify.AlreadySent {
		t.Fatalf("Take after Done = %v, %v", state, err)
	}
	// A claim whose process died mid-send is taken over once it is stale;
	// the dead process's late Done or Release no longer touches it.
	stale, state, _ := notify.Take(f.ctx, f.pool, "email", n, "u3")
	if state != notify.Claimed {
		t.Fatal(state)
	}
	if _, err := f.pool.Exec(f.ctx, `UPDATE notifications_sent SET claimed_at = claimed_at - interval '6 minutes' WHERE recipient = 'u3'`); err != nil {
		t.Fatal(err)
	}
	again, state, err := notify.Take(f.ctx, f.pool, "email", n, "u3")
	if err != nil || state != notify.Claimed {
		t.Fatalf("Take of a stale claim = %v, %v", state, err)
	}
	stale.Release(f.ctx)
	if _, state, _ := notify.Take(f.ctx, f.pool, "email", n, "u3"); state != notify.Busy {
		t.Fatalf("the stale owner's Release removed the new claim: %v", state)
	}
	again.Done(f.ctx)
	var rows int
	f.pool.QueryRow(f.ctx, `SELECT count(*) FROM notifications_sent WHERE state = 'sent'`).Scan(&rows)
	if rows != 2 {
		t.Fatalf("%d sent rows, want 2", rows)
	}
}
