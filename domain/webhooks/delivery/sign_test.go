package delivery_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
	"github.com/skyflow-oss/skyflow/domain/webhooks/delivery"
)

func headers(id string, at time.Time, sig string) http.Header {
	h := http.Header{}
	h.Set(delivery.HeaderID, id)
	h.Set(delivery.HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(delivery.HeaderSignature, sig)
	return h
}

// The signature is the Standard Webhooks one: the reference library
// verifies it with the secret as the API shows it.
func TestSignaturesVerifyWithTheStandardWebhooksLibrary(t *testing.T) {
	secret, err := webhooks.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if s := secret.String(); !strings.HasPrefix(s, "whsec_") || len(s) != len("whsec_")+44 {
		t.Fatalf("secret %q is not whsec_ and the base64 of 32 bytes", s)
	}
	body := []byte(`{"type":"com.skyflow.vault.record.created","id":"1","data":{"skyflow_id":"x"}}`)
	now := time.Now()
	id := webhooks.MessageID("7f1c5e36-5b3e-4a0b-9c3e-2a2f1d0b9e11", "/skyflow/functions/records-insert", "ev-1")
	sig := delivery.Sign(id, now, body, secret)
	wh, err := standardwebhooks.NewWebhook(secret.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(body, headers(id, now, sig)); err != nil {
		t.Fatalf("the reference library refuses our signature: %v", err)
	}
	// And ours matches the library's own signing byte for byte.
	ref, _ := wh.Sign(id, now, body)
	if ref != sig {
		t.Fatalf("signature %q, the library signs %q", sig, ref)
	}
	// A changed body, id or timestamp does not verify.
	for name, h := range map[string]http.Header{
		"other id":        headers(id+"x", now, sig),
		"other timestamp": headers(id, now.Add(time.Second), sig),
	} {
		if wh.Verify(body, h) == nil {
			t.Errorf("%s verified", name)
		}
	}
	if wh.Verify(append([]byte(nil), body[1:]...), headers(id, now, sig)) == nil {
		t.Error("a changed body verified")
	}
	// Our own verifier agrees.
	if err := delivery.Verify(secret, id, strconv.FormatInt(now.Unix(), 10), sig, body, now, 5*time.Minute); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if err := delivery.Verify(secret, id, strconv.FormatInt(now.Add(-10*time.Minute).Unix(), 10), delivery.Sign(id, now.Add(-10*time.Minute), body, secret), body, now, 5*time.Minute); err == nil {
		t.Error("Verify took a signature older than the tolerance")
	}
}

// The example of the Standard Webhooks specification (and Svix's docs).
func TestSignatureKnownAnswer(t *testing.T) {
	key, err := webhooks.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := delivery.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`), key)
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
}

// During a rotation both secrets sign: a receiver with either verifies.
func TestRotationSignsWithBothSecrets(t *testing.T) {
	oldKey, _ := webhooks.NewSecret()
	newKey, _ := webhooks.NewSecret()
	body := []byte(`{}`)
	now := time.Now()
	sig := delivery.Sign("msg_1", now, body, newKey, oldKey)
	if parts := strings.Fields(sig); len(parts) != 2 || !strings.HasPrefix(parts[0], "v1,") || !strings.HasPrefix(parts[1], "v1,") {
		t.Fatalf("signature header %q: want two space-separated v1 signatures", sig)
	}
	for _, k := range []webhooks.Secret{oldKey, newKey} {
		wh, _ := standardwebhooks.NewWebhook(k.String())
		if err := wh.Verify(body, headers("msg_1", now, sig)); err != nil {
			t.Errorf("a receiver holding one of the secrets: %v", err)
		}
	}
	other, _ := webhooks.NewSecret()
	wh, _ := standardwebhooks.NewWebhook(other.String())
	if wh.Verify(body, headers("msg_1", now, sig)) == nil {
		t.Error("a third secret verified")
	}
}
