package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/domain/notify"
	"github.com/skyflow-oss/skyflow/domain/push"
	"github.com/skyflow-oss/skyflow/domain/push/pushtest"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/runtime/safehttp"
	"github.com/skyflow-oss/skyflow/runtime/sender"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

// fixture is notify-push on a fresh database, pushing to a fake push
// service on loopback (pushtest: it stands for FCM, Mozilla's or Apple's
// push service and the browser behind it, which a test cannot reach). It
// checks every push's VAPID signature and decrypts its payload.
type fixture struct {
	t        *testing.T
	env      *functest.Env
	ctx      context.Context
	f        *Function
	svc      *pushtest.Service
	vapid    *push.VAPID
	identity *identity.Service
	user     string // the principal of ada@example.com
	userID   uuid.UUID
}

func setup(t *testing.T, allowLoopback bool) *fixture {
	t.Helper()
	env := functest.New(t)
	v, err := push.GenerateVAPID("mailto:ops@skyflow.test")
	if err != nil {
		t.Fatal(err)
	}
	svc := pushtest.Start(t, v.PublicKey)
	env.Config["SKYFLOW_VAPID_PUBLIC_KEY"] = v.PublicKey
	env.Config["SKYFLOW_VAPID_PRIVATE_KEY"] = v.PrivateKey
	env.Config["SKYFLOW_VAPID_SUBJECT"] = v.Subject
	env.Config["SKYFLOW_PUSH_CA_FILE"] = svc.CAFile
	if allowLoopback {
		env.Config["SKYFLOW_PUSH_ALLOWED_NETWORKS"] = "127.0.0.0/8"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	fx := &fixture{t: t, env: env, ctx: sender.NewContext(ctx, sender.Broker), f: New(), svc: svc, vapid: v}
	env.Start(fx.f)
	b, err := identity.Connect(ctx, env.Config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Pool.Close(); b.Redis.Close() })
	fx.identity = identity.NewService(b, "/skyflow/functions/users-preferences-update")
	fx.user = env.User()
	fx.userID, _ = push.UserOf(request.Principal{ID: fx.user})
	return fx
}

// subscribe makes a browser subscription and stores it for the user, as
// push-subscribe does (its checks with loopback allowed).
func (fx *fixture) subscribe() *pushtest.Subscription {
	fx.t.Helper()
	sub := fx.svc.Subscribe(fx.t)
	raw, _ := json.Marshal(sub.JSON())
	var req push.SubscribeRequest
	json.Unmarshal(raw, &req)
	allowed, _ := safehttp.ParseNetworks("127.0.0.0/8")
	ns, err := req.Check(allowed, time.Now())
	if err != nil {
		fx.t.Fatal(err)
	}
	if _, err := fx.f.Backend.Store.Subscribe(fx.ctx, fx.userID, ns); err != nil {
		fx.t.Fatal(err)
	}
	return sub
}

func (fx *fixture) prefer(channels map[string][]string) {
	fx.t.Helper()
	if _, err := fx.identity.SetPreferences(fx.ctx, request.Principal{ID: fx.user}, identity.Preferences{Channels: channels}); err != nil {
		fx.t.Fatal(err)
	}
}

func lockedEvent(userID string) event.Event {
	e := event.New()
	e.SetID(uuid.NewString())
	e.SetSource("/skyflow/functions/users-login")
	e.SetType(notify.UserLoginLockedType)
	e.SetTime(time.Now())
	e.SetData(event.ApplicationJSON, map[string]string{"user_id": userID, "until": time.Now().Add(15 * time.Minute).UTC().Format(time.RFC3339)})
	return e
}

func (fx *fixture) handle(e event.Event) error {
	fx.t.Helper()
	_, err := fx.f.Handle(fx.ctx, e)
	return err
}

func (fx *fixture) mustHandle(e event.Event) {
	fx.t.Helper()
	if err := fx.handle(e); err != nil {
		fx.t.Fatalf("Handle(%s): %v", e.Type(), err)
	}
}

// delivered are the pushes the service accepted, checked.
func (fx *fixture) delivered() []pushtest.Push {
	fx.t.Helper()
	var out []pushtest.Push
	for _, p := range fx.svc.Pushes() {
		if p.Err != nil {
			fx.t.Fatalf("the push service refused a push: %v", p.Err)
		}
		if p.Status == 201 {
			out = append(out, p)
		}
	}
	return out
}

func TestLoginLockedIsPushedEncryptedAndSigned(t *testing.T) {
	fx := setup(t, true)
	sub := fx.subscribe()
	// Security notices go by email only by default: no push.
	fx.mustHandle(lockedEvent(fx.userID.String()))
	if n := len(fx.svc.Pushes()); n != 0 {
		t.Fatalf("%d pushes with the default preferences, want 0", n)
	}
	fx.prefer(map[string][]string{"security": {"email", "push"}})
	e := lockedEvent(fx.userID.String())
	fx.mustHandle(e)
	pushes := fx.delivered()
	if len(pushes) != 1 || pushes[0].Subscription != sub.ID {
		t.Fatalf("pushes: %+v", pushes)
	}
	p := pushes[0]
	var payload map[string]any
	if err := json.Unmarshal(p.Payload, &payload); err != nil {
		t.Fatalf("the decrypted payload is not JSON: %q", p.Payload)
	}
	if payload["kind"] != "security" || payload["notice"] != "login-locked" || payload["event_id"] != e.ID() ||
		!strings.Contains(payload["title"].(string), "locked") || !strings.Contains(payload["body"].(string), "locked until") {
		t.Fatalf("payload %s", p.Payload)
	}
	if p.TTL != 86400 || p.Urgency != "high" || p.Claims["sub"] != "mailto:ops@skyflow.test" || p.Claims["aud"] != fx.svc.URL {
		t.Fatalf("TTL %d, Urgency %q, claims %v", p.TTL, p.Urgency, p.Claims)
	}
	if strings.Contains(string(p.Payload), "ada@example.com") {
		t.Fatal("the payload carries the email address")
	}
	// A redelivery pushes nothing.
	fx.mustHandle(e)
	if n := len(fx.svc.Pushes()); n != 1 {
		t.Fatalf("%d pushes after a redelivery, want 1", n)
	}
	var last *time.Time
	fx.f.Backend.Pool.QueryRow(fx.ctx, `SELECT last_success_at FROM push_subscriptions`).Scan(&last)
	if last == nil {
		t.Fatal("last_success_at was not recorded")
	}
	// Opted out of security notices: nothing.
	fx.prefer(map[string][]string{"security": {}})
	fx.mustHandle(lockedEvent(fx.userID.String()))
	if n := len(fx.svc.Pushes()); n != 1 {
		t.Fatalf("%d pushes after opting out, want 1", n)
	}
}

func TestAGoneSubscriptionIsDeleted(t *testing.T) {
	fx := setup(t, true)
	fx.prefer(map[string][]string{"security": {"push"}})
	gone := fx.subscribe()
	gone.Answer(410)
	fx.mustHandle(lockedEvent(fx.userID.String()))
	list, err := fx.f.Backend.Store.List(fx.ctx, fx.userID)
	if err != nil || len(list.Subscriptions) != 0 {
		t.Fatalf("after a 410: %+v, %v", list, err)
	}
	if n := len(fx.svc.Pushes()); n != 1 {
		t.Fatalf("%d pushes, want 1", n)
	}
}

func TestTryLaterIsRetriedWithoutPushingTwice(t *testing.T) {
	fx := setup(t, true)
	fx.prefer(map[string][]string{"security": {"push"}})
	ok, busy := fx.subscribe(), fx.subscribe()
	busy.Answer(503)
	e := lockedEvent(fx.userID.String())
	err := fx.handle(e)
	var ae *apierr.Error
	if err == nil || errors.As(err, &ae) && ae.HTTPCode < 500 {
		t.Fatalf("Handle with a push service answering 503 = %v, want a retried error", err)
	}
	if strings.Contains(err.Error(), fx.svc.URL) || strings.Contains(err.Error(), busy.ID) {
		t.Fatalf("the error names the endpoint: %v", err)
	}
	busy.Answer(429)
	if err := fx.handle(e); err == nil {
		t.Fatal("a 429 was not retried")
	}
	busy.Answer(0)
	fx.mustHandle(e)
	fx.mustHandle(e)
	count := map[string]int{}
	for _, p := range fx.delivered() {
		count[p.Subscription]++
	}
	if count[ok.ID] != 1 || count[busy.ID] != 1 {
		t.Fatalf("delivered per subscription: %v, want one each", count)
	}
	if n := len(fx.svc.Pushes()); n != 4 {
		t.Fatalf("%d pushes received, want 4 (1 + 503 + 429 + 1)", n)
	}
}

func TestWebhooksAndAPIKeyNoticesArePushedWithoutSecrets(t *testing.T) {
	fx := setup(t, true)
	fx.subscribe()
	fx.prefer(map[string][]string{"security": {"push"}, "webhooks": {"push"}})
	wh := event.New()
	wh.SetID(uuid.NewString())
	wh.SetSource("/skyflow/functions/notify-webhook")
	wh.SetType(notify.WebhookDisabledType)
	wh.SetTime(time.Now())
	wh.SetData(event.ApplicationJSON, map[string]string{"webhook_id": "wh-1", "url": "https://hooks.example.com/T0/B0/hunter2secret", "owner": fx.user, "reason": "410 Gone from the endpoint"})
	fx.mustHandle(wh)

	ada := request.Principal{ID: fx.user, Roles: []string{"admin"}}
	sa, err := fx.identity.CreateServiceAccount(fx.ctx, ada, identity.ServiceAccountRequest{Name: "billing", Roles: []string{"owner"}})
	if err != nil {
		t.Fatal(err)
	}
	key, err := fx.identity.CreateAPIKey(fx.ctx, ada, identity.APIKeyRequest{Name: "ci", ServiceAccountID: sa.ClientID})
	if err != nil {
		t.Fatal(err)
	}
	var created event.Event
	deadline := time.Now().Add(10 * time.Second)
	for created.ID() == "" {
		if es := fx.env.Sink.OfType(identity.APIKeyCreatedType); len(es) > 0 {
			created = es[0]
		} else if time.Now().After(deadline) {
			t.Fatal("no apikey.created event")
		}
		time.Sleep(20 * time.Millisecond)
	}
	fx.mustHandle(created)

	pushes := fx.delivered()
	if len(pushes) != 2 {
		t.Fatalf("%d pushes, want 2", len(pushes))
	}
	var whp, keyp notify.PushPayload
	json.Unmarshal(pushes[0].Payload, &whp)
	json.Unmarshal(pushes[1].Payload, &keyp)
	if whp.Kind != "webhooks" || !strings.Contains(whp.Body, "https://hooks.example.com") || pushes[0].Urgency != "normal" {
		t.Fatalf("webhook push: %+v", whp)
	}
	if keyp.Kind != "security" || keyp.Notice != "apikey-created" || !strings.Contains(keyp.Body, key.Prefix) {
		t.Fatalf("API key push: %+v", keyp)
	}
	for _, p := range pushes {
		for _, s := range []string{"hunter2secret", key.Key, key.Key[len(key.Prefix):], sa.PrivateKey[40:80]} {
			if strings.Contains(string(p.Payload), s) {
				t.Errorf("a push carries %q: %s", s, p.Payload)
			}
		}
	}
}

func TestEndpointsAtNonPublicAddressesAreNotCalled(t *testing.T) {
	fx := setup(t, false) // loopback not allowed: the fake service is unreachable
	fx.prefer(map[string][]string{"security": {"push"}})
	fx.subscribe() // stored as if it had been allowed when it was made
	fx.mustHandle(lockedEvent(fx.userID.String()))
	if n := len(fx.svc.Pushes()); n != 0 {
		t.Fatalf("%d pushes reached a loopback service that is not allowed", n)
	}
}

func TestRefusesWhatIsNotItsEvent(t *testing.T) {
	fx := setup(t, true)
	e := lockedEvent(fx.userID.String())
	if _, err := fx.f.Handle(sender.NewContext(context.Background(), sender.Gateway), e); err == nil {
		t.Error("an event from the gateway was handled")
	}
	var ae *apierr.Error
	if err := fx.handle(functest.Event("com.skyflow.vault.create", map[string]any{})); !errors.As(err, &ae) || ae.HTTPCode != 400 {
		t.Errorf("another event type: %v, want a 400", err)
	}
	// The verification email is never pushed.
	reg := event.New()
	reg.SetID(uuid.NewString())
	reg.SetSource("/skyflow/functions/users-register")
	reg.SetType(notify.UserRegisteredType)
	reg.SetData(event.ApplicationJSON, map[string]string{"user_id": fx.userID.String()})
	fx.mustHandle(reg)
}

func TestStartNamesBadSettings(t *testing.T) {
	err := New().Start(context.Background(), map[string]string{"SKYFLOW_PUSH_ALLOWED_NETWORKS": "x"})
	for _, name := range []string{"DATABASE_URL", "SKYFLOW_VAPID_PUBLIC_KEY", "SKYFLOW_VAPID_PRIVATE_KEY", "SKYFLOW_VAPID_SUBJECT", "SKYFLOW_PUSH_ALLOWED_NETWORKS"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Start = %v, want it to name %s", err, name)
		}
	}
}
