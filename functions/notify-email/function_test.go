package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	gosmtp "github.com/emersion/go-smtp"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/domain/notify"
	"github.com/skyflow-oss/skyflow/local/devcert"
	"github.com/skyflow-oss/skyflow/local/mailbox"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/runtime/sender"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

const publicURL = "https://app.skyflow.test"

// fixture is notify-email on a fresh database, sending through a real
// SMTP server (local/mailbox: go-smtp with STARTTLS and AUTH PLAIN
// required) that this test starts, with its own certificate.
type fixture struct {
	t        *testing.T
	env      *functest.Env
	ctx      context.Context // as the broker delivers
	f        *Function
	mb       *mailbox.Mailbox
	cert     string
	key      string
	identity *identity.Service
}

func setup(t *testing.T, mbCfg mailbox.Config) *fixture {
	t.Helper()
	env := functest.New(t)
	cert, key, err := devcert.Ensure(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fx := &fixture{t: t, env: env, cert: cert, key: key}
	fx.mb = fx.startMailbox(mbCfg)
	env.Config["SKYFLOW_SMTP_URL"] = fx.mb.URL()
	env.Config["SKYFLOW_SMTP_FROM"] = "Skyflow <no-reply@skyflow.test>"
	env.Config["SKYFLOW_SMTP_CA_FILE"] = cert
	env.Config["SKYFLOW_PUBLIC_URL"] = publicURL
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	fx.ctx = sender.NewContext(ctx, sender.Broker)
	fx.f = New()
	env.Start(fx.f)
	b, err := identity.Connect(ctx, env.Config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Pool.Close(); b.Redis.Close() })
	fx.identity = identity.NewService(b, "/skyflow/functions/users-verify-email")
	return fx
}

func (fx *fixture) startMailbox(cfg mailbox.Config) *mailbox.Mailbox {
	fx.t.Helper()
	cfg.CertFile, cfg.KeyFile = fx.cert, fx.key
	if cfg.Dir == "" {
		cfg.Dir = fx.t.TempDir()
	}
	mb, err := mailbox.Start(cfg)
	if err != nil {
		fx.t.Fatal(err)
	}
	fx.t.Cleanup(func() { mb.Close() })
	return mb
}

// published waits for the event of typ the identity service published.
func (fx *fixture) published(typ string) event.Event {
	fx.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if es := fx.env.Sink.OfType(typ); len(es) > 0 {
			return es[len(es)-1]
		}
		if time.Now().After(deadline) {
			fx.t.Fatalf("no %s event was published", typ)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// email is a received message, parsed.
type email struct {
	to, subject string
	header      mail.Header
	text, html  string
	raw         string
}

// inbox parses every message the mailbox kept.
func (fx *fixture) inbox(mb *mailbox.Mailbox) []email {
	fx.t.Helper()
	msgs, err := mb.Messages()
	if err != nil {
		fx.t.Fatal(err)
	}
	var out []email
	for _, m := range msgs {
		parsed, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			fx.t.Fatalf("a message does not parse: %v", err)
		}
		e := email{header: parsed.Header, subject: parsed.Header.Get("Subject"), raw: string(m.Data)}
		to, err := mail.ParseAddress(parsed.Header.Get("To"))
		if err != nil {
			fx.t.Fatalf("To: %v", err)
		}
		if len(m.To) != 1 || m.To[0] != to.Address {
			fx.t.Fatalf("envelope %v, header To %s", m.To, to.Address)
		}
		e.to = to.Address
		mediaType, params, err := mime.ParseMediaType(parsed.Header.Get("Content-Type"))
		if err != nil || mediaType != "multipart/alternative" {
			fx.t.Fatalf("Content-Type %q: want multipart/alternative (%v)", parsed.Header.Get("Content-Type"), err)
		}
		mr := multipart.NewReader(parsed.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				fx.t.Fatal(err)
			}
			body, _ := io.ReadAll(p) // quoted-printable is decoded by the reader
			ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
			switch ct {
			case "text/plain":
				e.text = string(body)
			case "text/html":
				e.html = string(body)
			default:
				fx.t.Fatalf("unexpected part %s", ct)
			}
		}
		if e.text == "" || e.html == "" {
			fx.t.Fatalf("the message lacks a text or an HTML part:\n%s", m.Data)
		}
		out = append(out, e)
	}
	return out
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

var linkPattern = regexp.MustCompile(regexp.QuoteMeta(publicURL+notify.VerifyEmailPath) + `#token=[A-Za-z0-9_%-]+`)

func TestRegistrationSendsAVerificationEmailWhoseLinkVerifies(t *testing.T) {
	fx := setup(t, mailbox.Config{})
	u, err := fx.identity.Register(fx.ctx, identity.RegisterRequest{Email: "Ada@Example.com", Password: functest.Password, DisplayName: "Ada Lovelace"})
	if err != nil {
		t.Fatal(err)
	}
	registered := fx.published(identity.UserRegisteredType)
	fx.mustHandle(registered)

	inbox := fx.inbox(fx.mb)
	if len(inbox) != 1 {
		t.Fatalf("%d emails, want 1", len(inbox))
	}
	m := inbox[0]
	if m.to != "ada@example.com" || m.subject != "Verify your email address for Skyflow" {
		t.Fatalf("to %s, subject %q", m.to, m.subject)
	}
	if from, _ := mail.ParseAddress(m.header.Get("From")); from == nil || from.Address != "no-reply@skyflow.test" {
		t.Errorf("From %q", m.header.Get("From"))
	}
	if id := m.header.Get("Message-Id"); !strings.HasSuffix(id, "@skyflow.test>") || m.header.Get("Auto-Submitted") != "auto-generated" || m.header.Get("Date") == "" {
		t.Errorf("headers: Message-ID %q, Auto-Submitted %q", id, m.header.Get("Auto-Submitted"))
	}
	link := linkPattern.FindString(m.text)
	if link == "" || !strings.Contains(m.html, `href="`+link+`"`) || !strings.Contains(m.text, "Ada Lovelace") || !strings.Contains(m.html, "Ada Lovelace") {
		t.Fatalf("no verification link in both parts:\n%s\n%s", m.text, m.html)
	}
	token := notify.TokenOfLink(link)
	// The token is in the link only: once in the text, never in a header.
	if token == "" || strings.Count(m.text, token) != 1 {
		t.Errorf("the token appears %d times in the text part", strings.Count(m.text, token))
	}
	for k, v := range m.header {
		if strings.Contains(strings.Join(v, " "), token) {
			t.Errorf("the token is in header %s", k)
		}
	}

	// A redelivery of the same event sends nothing.
	fx.mustHandle(registered)
	if n := len(fx.inbox(fx.mb)); n != 1 {
		t.Fatalf("after a redelivery: %d emails, want 1", n)
	}
	// The link's token really verifies the address.
	verified, err := fx.identity.VerifyEmail(fx.ctx, identity.VerifyEmailRequest{Token: token})
	if err != nil || !verified.EmailVerified || verified.ID != u.ID {
		t.Fatalf("VerifyEmail with the emailed token: %+v, %v", verified, err)
	}
	// A verified address gets no more verification emails.
	again := registered.Clone()
	again.SetID(uuid.NewString())
	fx.mustHandle(again)
	if n := len(fx.inbox(fx.mb)); n != 1 {
		t.Fatalf("a verified address got another verification email: %d", n)
	}
}

func lockedEvent(userID string) event.Event {
	e := event.New()
	e.SetID(uuid.NewString())
	e.SetSource("/skyflow/functions/users-login")
	e.SetType(notify.UserLoginLockedType)
	e.SetTime(time.Now())
	e.SetSubject("user:" + userID)
	e.SetData(event.ApplicationJSON, map[string]string{"user_id": userID, "until": time.Now().Add(15 * time.Minute).UTC().Format(time.RFC3339)})
	return e
}

func TestLoginLockedHonoursPreferences(t *testing.T) {
	fx := setup(t, mailbox.Config{})
	principal := fx.env.User()
	userID := strings.TrimPrefix(principal, "user:")
	n := &notify.Notice{Kind: notify.KindSecurity, Name: notify.NoticeLoginLocked}
	sent := fx.f.Backend.Metrics.SentCounter(n)
	before := testutil.ToFloat64(sent)

	// Default preferences: security notices by email.
	fx.mustHandle(lockedEvent(userID))
	inbox := fx.inbox(fx.mb)
	if len(inbox) != 1 || inbox[0].to != "ada@example.com" || !strings.Contains(inbox[0].subject, "locked") ||
		!strings.Contains(inbox[0].text, "locked until") {
		t.Fatalf("login locked: %+v", inbox)
	}
	if got := testutil.ToFloat64(sent) - before; got != 1 {
		t.Errorf("sent counter grew by %v", got)
	}
	// Opted out of security notices: nothing.
	p := request.Principal{ID: principal}
	if _, err := fx.identity.SetPreferences(fx.ctx, p, identity.Preferences{Channels: map[string][]string{"security": {}}}); err != nil {
		t.Fatal(err)
	}
	fx.mustHandle(lockedEvent(userID))
	// Push only: still no email.
	if _, err := fx.identity.SetPreferences(fx.ctx, p, identity.Preferences{Channels: map[string][]string{"security": {"push"}}}); err != nil {
		t.Fatal(err)
	}
	fx.mustHandle(lockedEvent(userID))
	if n := len(fx.inbox(fx.mb)); n != 1 {
		t.Fatalf("%d emails after opting out, want 1", n)
	}
	// A user that does not exist (any more) is skipped.
	fx.mustHandle(lockedEvent(uuid.NewString()))
}

// freeAddr is a loopback address nothing listens on (yet).
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestRelayDownIsRetriedAndSendsOnce(t *testing.T) {
	fx := setup(t, mailbox.Config{})
	userID := strings.TrimPrefix(fx.env.User(), "user:")
	// The relay is down: the function fails the event (the Trigger
	// retries) and leaves no claim behind.
	addr := freeAddr(t)
	down := New()
	cfg := map[string]string{}
	for k, v := range fx.env.Config {
		cfg[k] = v
	}
	cfg["SKYFLOW_SMTP_URL"] = "smtp://skyflow:relay-password@" + addr
	if err := down.Start(fx.ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { down.Stop(context.Background()) })
	e := lockedEvent(userID)
	_, err := down.Handle(fx.ctx, e)
	var ae *apierr.Error
	if err == nil || errors.As(err, &ae) && ae.HTTPCode < 500 {
		t.Fatalf("Handle with the relay down = %v, want a retried error", err)
	}
	if strings.Contains(err.Error(), "relay-password") || strings.Contains(err.Error(), "ada@example.com") {
		t.Fatalf("the error names a secret or an address: %v", err)
	}
	pool, err := db.Open(fx.ctx, cfg["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var claims int
	pool.QueryRow(fx.ctx, `SELECT count(*) FROM notifications_sent`).Scan(&claims)
	if claims != 0 {
		t.Fatalf("%d claims left after a failed send", claims)
	}
	// The relay is back: the retry sends exactly one email, and later
	// redeliveries none.
	mb := fx.startMailbox(mailbox.Config{Addr: addr, Password: "relay-password"})
	for range 3 {
		if _, err := down.Handle(fx.ctx, e); err != nil {
			t.Fatalf("Handle with the relay back: %v", err)
		}
	}
	if n := len(fx.inbox(mb)); n != 1 {
		t.Fatalf("%d emails, want 1", n)
	}
}

func TestRefusalsForGoodAreDroppedAndForNowRetried(t *testing.T) {
	var answer atomic.Int32 // what the relay answers RCPT TO (0: accepted)
	fx := setup(t, mailbox.Config{Rcpt: func(to string) error {
		code := int(answer.Load())
		if code == 0 {
			return nil
		}
		return &gosmtp.SMTPError{Code: code, EnhancedCode: gosmtp.EnhancedCode{code / 100, 1, 1}, Message: "mailbox " + to + " unavailable"}
	}})
	userID := strings.TrimPrefix(fx.env.User(), "user:")
	n := &notify.Notice{Kind: notify.KindSecurity, Name: notify.NoticeLoginLocked}
	rejected := fx.f.Backend.Metrics.FailedCounter(n, "rejected")
	before := testutil.ToFloat64(rejected)

	// 450: for now. Retried, then sent once the relay takes it.
	answer.Store(450)
	e := lockedEvent(userID)
	if err := fx.handle(e); err == nil {
		t.Fatal("a 450 was not retried")
	} else if strings.Contains(err.Error(), "ada@example.com") {
		t.Fatalf("the error names the address: %v", err)
	}
	answer.Store(0)
	fx.mustHandle(e)
	if n := len(fx.inbox(fx.mb)); n != 1 {
		t.Fatalf("%d emails after the retry, want 1", n)
	}
	// 550: for good. Dropped (the event succeeds) and not tried again.
	answer.Store(550)
	e = lockedEvent(userID)
	fx.mustHandle(e)
	answer.Store(0)
	fx.mustHandle(e)
	if n := len(fx.inbox(fx.mb)); n != 1 {
		t.Fatalf("a refused email was sent on redelivery: %d emails", n)
	}
	if got := testutil.ToFloat64(rejected) - before; got != 1 {
		t.Errorf("rejected counter grew by %v", got)
	}
}

func TestAlertsCarryNoSecrets(t *testing.T) {
	fx := setup(t, mailbox.Config{})
	principal := fx.env.User()
	// Ada is an administrator: she makes a service account and an API key.
	ada := request.Principal{ID: principal, Roles: []string{"admin"}}
	sa, err := fx.identity.CreateServiceAccount(fx.ctx, ada, identity.ServiceAccountRequest{Name: "billing", Roles: []string{"owner"}})
	if err != nil {
		t.Fatal(err)
	}
	key, err := fx.identity.CreateAPIKey(fx.ctx, ada, identity.APIKeyRequest{Name: "ci", ServiceAccountID: sa.ClientID})
	if err != nil {
		t.Fatal(err)
	}
	// A vault record whose values must not travel anywhere near an email.
	vault := fx.env.Vault()
	rec := fx.env.Insert(vault, map[string]string{"name": "Grace Hopper", "email": "grace@example.org", "ssn": "123-45-6789"})

	fx.mustHandle(fx.published(identity.APIKeyCreatedType))
	// A webhook of Ada's, disabled, whose URL carries a secret path.
	wh := event.New()
	wh.SetID(uuid.NewString())
	wh.SetSource("/skyflow/functions/notify-webhook")
	wh.SetType(notify.WebhookDisabledType)
	wh.SetTime(time.Now())
	wh.SetData(event.ApplicationJSON, map[string]string{"webhook_id": "0b7c6a1e-5d1f-4b0e-9a53-0d8f4b0f9c11",
		"url": "https://hooks.example.com/services/T00/B00/hunter2secret?sig=zzz", "owner": principal, "reason": "10 consecutive failures"})
	fx.mustHandle(wh)

	inbox := fx.inbox(fx.mb)
	if len(inbox) != 2 {
		t.Fatalf("%d emails, want 2 (the API key and the webhook)", len(inbox))
	}
	keyMail, whMail := inbox[0], inbox[1]
	if !strings.Contains(keyMail.subject, "API key") || !strings.Contains(keyMail.text, "ci ("+key.Prefix+"…)") ||
		!strings.Contains(keyMail.text, "billing ("+sa.ClientID+")") || !strings.Contains(keyMail.html, key.ID) {
		t.Fatalf("API key email:\n%s", keyMail.text)
	}
	if !strings.Contains(whMail.text, "https://hooks.example.com") || !strings.Contains(whMail.text, "10 consecutive failures") {
		t.Fatalf("webhook email:\n%s", whMail.text)
	}
	secrets := []string{key.Key, key.Key[len(key.Prefix):], sa.PrivateKey[40:80], "hunter2secret", "sig=zzz",
		"Grace Hopper", "grace@example.org", "123-45-6789", rec.Tokens["ssn"], rec.Tokens["email"], functest.Password}
	for _, m := range inbox {
		for _, s := range secrets {
			if s != "" && strings.Contains(m.raw+m.text+m.html, s) {
				t.Errorf("the %q email carries %q", m.subject, s)
			}
		}
	}
}

func TestRefusesWhatIsNotItsEvent(t *testing.T) {
	fx := setup(t, mailbox.Config{})
	e := lockedEvent(uuid.NewString())
	// Client requests (the gateway's) are not notifications.
	if _, err := fx.f.Handle(sender.NewContext(context.Background(), sender.Gateway), e); status(err) != 403 && status(err) != 401 {
		t.Errorf("an event from the gateway: %v", err)
	}
	other := functest.Event("com.skyflow.vault.create", map[string]any{})
	if err := fx.handle(other); status(err) != 400 {
		t.Errorf("another event type: %v, want a 400", err)
	}
	bad := lockedEvent("not-a-uuid")
	if err := fx.handle(bad); status(err) != 400 {
		t.Errorf("malformed data: %v, want a 400", err)
	}
}

func status(err error) int {
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return ae.HTTPCode
	}
	return 0
}

func TestStartNamesBadSettingsWithoutTheirValues(t *testing.T) {
	err := New().Start(context.Background(), map[string]string{})
	for _, name := range []string{"DATABASE_URL", "SKYFLOW_SMTP_URL", "SKYFLOW_SMTP_FROM", "SKYFLOW_PUBLIC_URL"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Start without settings = %v, want it to name %s", err, name)
		}
	}
	err = New().Start(context.Background(), map[string]string{
		"DATABASE_URL": "postgres://x@127.0.0.1/x", "SKYFLOW_SMTP_URL": "http://user:s3cret-pass@relay.example.com/",
		"SKYFLOW_SMTP_FROM": "not an address", "SKYFLOW_PUBLIC_URL": "https://app.example.com", "SKYFLOW_SMTP_CA_FILE": "/nonexistent.pem"})
	if err == nil || strings.Contains(err.Error(), "s3cret-pass") || !strings.Contains(err.Error(), "SKYFLOW_SMTP_URL") || !strings.Contains(err.Error(), "SKYFLOW_SMTP_FROM") {
		t.Errorf("Start with bad settings = %v", err)
	}
	for _, u := range []string{"smtp://relay.example.com:99999", "smtp://relay.example.com/path", "smtp://relay.example.com?starttls=no"} {
		err := New().Start(context.Background(), map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1/x", "SKYFLOW_SMTP_URL": u,
			"SKYFLOW_SMTP_FROM": "a@example.com", "SKYFLOW_PUBLIC_URL": "https://app.example.com"})
		if err == nil || !strings.Contains(err.Error(), "SKYFLOW_SMTP_URL") {
			t.Errorf("SKYFLOW_SMTP_URL=%s: %v", u, err)
		}
	}
}
