package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/mail"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/domain/notify"
	"github.com/skyflow-oss/skyflow/domain/push"
	"github.com/skyflow-oss/skyflow/domain/push/pushtest"
	"github.com/skyflow-oss/skyflow/local/mailbox"
)

// receivedMail is an email the platform's mailbox kept, parsed.
type receivedMail struct {
	to, subject, text, html string
}

// waitForMail waits for the first email to `to` whose subject contains
// subject, and fails the test after within.
func waitForMail(t *testing.T, mb *mailbox.Mailbox, to, subject string, within time.Duration) receivedMail {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		for _, m := range mailsTo(t, mb, to) {
			if strings.Contains(m.subject, subject) {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no email %q to %s within %s", subject, to, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mailsTo parses every kept email to one address.
func mailsTo(t *testing.T, mb *mailbox.Mailbox, to string) []receivedMail {
	t.Helper()
	msgs, err := mb.Messages()
	if err != nil {
		t.Fatal(err)
	}
	var out []receivedMail
	for _, m := range msgs {
		if len(m.To) != 1 || m.To[0] != to {
			continue
		}
		parsed, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatalf("an email does not parse: %v", err)
		}
		r := receivedMail{to: to, subject: parsed.Header.Get("Subject")}
		_, params, err := mime.ParseMediaType(parsed.Header.Get("Content-Type"))
		if err != nil {
			t.Fatal(err)
		}
		parts := multipart.NewReader(parsed.Body, params["boundary"])
		for {
			p, err := parts.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(p)
			if strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
				r.html = string(b)
			} else {
				r.text = string(b)
			}
		}
		out = append(out, r)
	}
	return out
}

// The notification journey on the local platform, through the gateway: a
// user registers and the verification email's link verifies the account;
// the user chooses push for security notices and subscribes a browser (a
// fake push service on loopback stands for the browser vendor's, which a
// test cannot reach); too many failed logins lock the account, and the
// lock arrives as an email and as a push that decrypts, with the
// subscription's keys, to the expected notice.
func TestNotificationsEndToEnd(t *testing.T) {
	svc := pushtest.Start(t, "")
	p := startPlatform(t, options{env: map[string]string{
		// The fake push service listens on loopback with its own certificate.
		"SKYFLOW_PUSH_ALLOWED_NETWORKS": "127.0.0.0/8",
		"SKYFLOW_PUSH_CA_FILE":          svc.CAFile,
	}})
	gw := &gatewayClient{base: p.GatewayURL(), client: &http.Client{Timeout: time.Minute}}
	mb := p.Mailbox()

	// Register: the verification email arrives, and its link verifies.
	email := "ada." + uuid.NewString()[:8] + "@example.com"
	const password = "Analytical-Engine-1843"
	var user identity.User
	gw.want(t, 200, "POST", "/v1/users", "", identity.RegisterRequest{Email: email, Password: password, DisplayName: "Ada Lovelace"}, &user)
	verification := waitForMail(t, mb, email, "Verify your email address", 90*time.Second)
	publicURL := strings.Replace(p.GatewayURL(), "127.0.0.1", "localhost", 1)
	link := regexp.MustCompile(regexp.QuoteMeta(publicURL+notify.VerifyEmailPath) + `#token=[A-Za-z0-9_%-]+`).FindString(verification.text)
	if link == "" || !strings.Contains(verification.html, link) || !strings.Contains(verification.text, "Ada Lovelace") {
		t.Fatalf("the verification email has no link to %s:\n%s", publicURL, verification.text)
	}
	// Logging in before verifying is refused; the link's token verifies.
	gw.want(t, 403, "POST", "/v1/auth/login", "", identity.LoginRequest{Email: email, Password: password}, nil)
	var verified identity.User
	gw.want(t, 200, "POST", "/v1/users/verify-email", "", identity.VerifyEmailRequest{Token: notify.TokenOfLink(link)}, &verified)
	if !verified.EmailVerified || verified.ID != user.ID {
		t.Fatalf("verify-email answered %+v", verified)
	}
	var session identity.Session
	gw.want(t, 200, "POST", "/v1/auth/login", "", identity.LoginRequest{Email: email, Password: password}, &session)

	// Security notices by email and push; a browser subscribes with the
	// platform's VAPID key as its applicationServerKey.
	gw.want(t, 200, "PUT", "/v1/users/me/preferences", session.AccessToken, map[string]any{"channels": map[string][]string{"security": {"email", "push"}}}, nil)
	var vapid struct {
		PublicKey string `json:"publicKey"`
	}
	gw.want(t, 200, "GET", "/v1/push/vapid-key", "", nil, &vapid)
	if _, err := push.DecodePublicKey(vapid.PublicKey); err != nil {
		t.Fatalf("the VAPID key %q: %v", vapid.PublicKey, err)
	}
	svc.SetVAPIDKey(vapid.PublicKey)
	browser := svc.Subscribe(t)
	sub := browser.JSON()
	sub["deviceName"] = "Ada's browser"
	var subscribed push.Subscription
	gw.want(t, 200, "POST", "/v1/users/me/push-subscriptions", session.AccessToken, sub, &subscribed)
	var list push.Subscriptions
	a := gw.want(t, 200, "GET", "/v1/users/me/push-subscriptions", session.AccessToken, nil, &list)
	if len(list.Subscriptions) != 1 || list.Subscriptions[0].ID != subscribed.ID || strings.Contains(string(a.body), browser.ID) {
		t.Fatalf("the list: %s", a.body)
	}

	// Too many failed logins lock the account.
	for i := range identity.AccountPolicy.LockAfter {
		if a := gw.do(t, "POST", "/v1/auth/login", "", identity.LoginRequest{Email: email, Password: "Not-the-password-1843"}); a.status != 401 {
			t.Fatalf("failed login %d: %d %s", i+1, a.status, a.body)
		}
	}
	locked := waitForMail(t, mb, email, "locked", 90*time.Second)
	if !strings.Contains(locked.text, "locked until") || strings.Contains(locked.text+locked.html, password) {
		t.Fatalf("the lock email:\n%s", locked.text)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	pushes, err := svc.Wait(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	got := pushes[0]
	if got.Err != nil || got.Status != 201 || got.Subscription != browser.ID {
		t.Fatalf("the push: %+v", got)
	}
	var payload map[string]any
	if err := json.Unmarshal(got.Payload, &payload); err != nil {
		t.Fatalf("the push does not decrypt to JSON: %q", got.Payload)
	}
	if payload["kind"] != "security" || payload["notice"] != "login-locked" || payload["event_id"] == "" ||
		!strings.Contains(payload["title"].(string), "locked") || strings.Contains(string(got.Payload), email) {
		t.Fatalf("the push's payload: %s", got.Payload)
	}
	if got.Urgency != "high" || got.TTL <= 0 || got.Claims["aud"] != svc.URL {
		t.Fatalf("the push's headers: urgency %q, TTL %d, claims %v", got.Urgency, got.TTL, got.Claims)
	}
	// Exactly one of each, even if the broker redelivers.
	time.Sleep(2 * time.Second)
	n := 0
	for _, m := range mailsTo(t, mb, email) {
		if strings.Contains(m.subject, "locked") {
			n++
		}
	}
	if n != 1 || len(svc.Pushes()) != 1 {
		t.Fatalf("%d lock emails and %d pushes, want one each", n, len(svc.Pushes()))
	}
}
