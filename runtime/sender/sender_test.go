package sender_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/golang-jwt/jwt/v5"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/sender"
)

func newEvent() event.Event {
	e := event.New()
	e.SetID("req-1")
	e.SetSource("/skyflow/functions/gateway")
	e.SetType("com.skyflow.vault.records.insert")
	e.SetExtension("principal", "user:alice")
	e.SetExtension("roles", "checkout")
	e.SetExtension("vaultid", "v1")
	e.SetData(event.ApplicationJSON, map[string]any{"records": []any{}})
	return e
}

func signers(t *testing.T) (*sender.Signer, *sender.Signer, *sender.Verifier) {
	gw, err := sender.GenerateSigner(sender.Gateway)
	if err != nil {
		t.Fatal(err)
	}
	br, _ := sender.GenerateSigner(sender.Broker)
	v, err := sender.ParseTrusted(gw.Name() + "=" + gw.PublicKey() + ", " + br.Name() + "=" + br.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	return gw, br, v
}

func TestAValidAssertionNamesItsSender(t *testing.T) {
	gw, br, v := signers(t)
	now := time.Now()
	for _, s := range []*sender.Signer{gw, br} {
		token, _ := s.Sign(newEvent(), "records-insert", now)
		c, err := v.Verify("Bearer "+token, newEvent(), "records-insert", now.Add(10*time.Second))
		if err != nil || c.Issuer != s.Name() || c.Principal != "user:alice" || c.ID != "req-1" {
			t.Fatalf("%s: %+v, %v", s.Name(), c, err)
		}
	}
}

// Every way of reusing or forging an assertion is refused.
func TestAssertionAttacksAreRefused(t *testing.T) {
	gw, _, v := signers(t)
	other, _ := sender.GenerateSigner(sender.Gateway) // a key nobody trusts
	now := time.Now()
	token, _ := gw.Sign(newEvent(), "records-insert", now)
	changed := func(f func(e *event.Event)) event.Event {
		e := newEvent()
		f(&e)
		return e
	}
	untrusted, _ := other.Sign(newEvent(), "records-insert", now)
	cases := map[string]struct {
		auth string
		e    event.Event
		fn   string
		at   time.Time
	}{
		"none":                 {"", newEvent(), "records-insert", now},
		"not bearer":           {"Basic " + token, newEvent(), "records-insert", now},
		"other function":       {"Bearer " + token, newEvent(), "records-delete", now},
		"expired":              {"Bearer " + token, newEvent(), "records-insert", now.Add(sender.TTL + time.Minute)},
		"other principal":      {"Bearer " + token, changed(func(e *event.Event) { e.SetExtension("principal", "user:admin") }), "records-insert", now},
		"other roles":          {"Bearer " + token, changed(func(e *event.Event) { e.SetExtension("roles", "admin") }), "records-insert", now},
		"added extension":      {"Bearer " + token, changed(func(e *event.Event) { e.SetExtension("skyflowid", "x") }), "records-insert", now},
		"other body":           {"Bearer " + token, changed(func(e *event.Event) { e.SetData(event.ApplicationJSON, map[string]any{"records": 1}) }), "records-insert", now},
		"other type":           {"Bearer " + token, changed(func(e *event.Event) { e.SetType("com.skyflow.vault.records.delete") }), "records-insert", now},
		"other id":             {"Bearer " + token, changed(func(e *event.Event) { e.SetID("req-2") }), "records-insert", now},
		"untrusted key":        {"Bearer " + untrusted, newEvent(), "records-insert", now},
		"alg none":             {"Bearer " + unsigned(t, token), newEvent(), "records-insert", now},
		"hs256 with the pub":   {"Bearer " + hmacWithPublicKey(t, token, gw), newEvent(), "records-insert", now},
		"garbage":              {"Bearer not.a.jwt", newEvent(), "records-insert", now},
		"long-lived assertion": {"Bearer " + longLived(t, gw), newEvent(), "records-insert", now},
	}
	for name, c := range cases {
		if _, err := v.Verify(c.auth, c.e, c.fn, c.at); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), token) {
			t.Errorf("%s: the error echoes the token", name)
		}
	}
	if _, err := v.Verify("", newEvent(), "records-insert", now); !errors.Is(err, sender.ErrNoAssertion) {
		t.Errorf("no assertion: %v", err)
	}
}

// unsigned re-encodes token's claims with alg none.
func unsigned(t *testing.T, token string) string {
	parts := strings.Split(token, ".")
	head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"gateway"}`))
	return head + "." + parts[1] + "."
}

// hmacWithPublicKey signs token's claims with HS256, the public key as secret.
func hmacWithPublicKey(t *testing.T, token string, s *sender.Signer) string {
	parts := strings.Split(token, ".")
	head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT","kid":"gateway"}`))
	pub, _ := base64.StdEncoding.DecodeString(s.PublicKey())
	mac := hmac.New(sha256.New, pub)
	mac.Write([]byte(head + "." + parts[1]))
	return head + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// longLived is an otherwise valid assertion that lives an hour.
func longLived(t *testing.T, s *sender.Signer) string {
	digest, _ := sender.Digest(newEvent())
	now := time.Now()
	seed, _ := base64.StdEncoding.DecodeString(s.Seed())
	c := sender.Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "gateway", Audience: jwt.ClaimStrings{"records-insert"}, ID: "req-1",
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}, Digest: digest, Principal: "user:alice"}
	token, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func TestParseTrustedRefusesBadEntries(t *testing.T) {
	for _, s := range []string{"", "gateway", "gateway=notbase64!", "gateway=" + base64.StdEncoding.EncodeToString([]byte("short"))} {
		if _, err := sender.ParseTrusted(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	gw, _, v := signers(t)
	again, err := sender.ParseTrusted(v.Trusted())
	if err != nil || !strings.Contains(again.Trusted(), gw.PublicKey()) {
		t.Fatalf("Trusted does not round-trip: %v", err)
	}
	if _, err := sender.ParseSigner("gateway", gw.Seed()); err != nil {
		t.Fatal(err)
	}
	if _, err := sender.ParseSigner("gateway", "c2hvcnQ="); err == nil {
		t.Fatal("a short seed was accepted")
	}
}

func TestRequireAcceptsOnlyTheNamedSenders(t *testing.T) {
	ctx := sender.NewContext(context.Background(), sender.Broker)
	if err := sender.Require(ctx, sender.Broker); err != nil {
		t.Fatal(err)
	}
	err := sender.Require(ctx, sender.Gateway)
	if apierr.From(err).HTTPCode != 403 {
		t.Fatalf("broker event on a gateway route: %v", err)
	}
	if sender.Require(context.Background(), sender.Gateway) == nil {
		t.Fatal("an unverified context was accepted")
	}
}

// The digest of an event read back from JSON equals the sender's.
func TestDigestSurvivesTheWire(t *testing.T) {
	e := newEvent()
	e.SetExtension("count", 3)
	b, _ := json.Marshal(e)
	var back event.Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	d1, _ := sender.Digest(e)
	d2, _ := sender.Digest(back)
	if d1 != d2 {
		t.Fatalf("digest changed on the wire: %s vs %s", d1, d2)
	}
}
