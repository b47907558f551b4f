package webhooks

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/runtime/outbox"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/runtime/safehttp"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

func newKEK(t *testing.T) kek.KEK {
	t.Helper()
	key := make([]byte, kek.KeySize)
	rand.Read(key)
	k, err := kek.NewLocal(key)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Secrets are stored only wrapped by the KEK, bound to their endpoint and
// version; a KEK rotation rewraps the current and the previous secret,
// after which the new KEK alone opens both.
func TestSecretsAreWrappedAndFollowAKEKRotation(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	sink := testenv.NewSink(t)
	pub, err := outbox.NewPublisher(pool, sink.URL, outbox.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close(context.Background()) })
	sink.WatchOutbox(pool)
	old, fresh := newKEK(t), newKEK(t)
	policy, _ := safehttp.ParseNetworks("")
	s := NewService(&Backend{Pool: pool, Publisher: pub, KEK: old, Policy: policy}, "/skyflow/functions/webhooks-subscribe")
	admin := request.Principal{ID: "user:00000000-0000-4000-8000-000000000001", Roles: []string{"admin"}}
	ep, err := s.Subscribe(ctx, admin, SubscribeRequest{URL: "https://93.184.216.34/hooks", EventTypes: []string{"com.skyflow.vault.*"}})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := ParseSecret(ep.Secret)
	rotated, err := s.RotateSecret(ctx, admin, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := ParseSecret(rotated.Secret)

	var dump []byte
	if err := pool.QueryRow(ctx, `SELECT convert_to(string_agg(w::text, ''), 'UTF8') FROM webhook_endpoints w`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	var cur, prev []byte
	if err := pool.QueryRow(ctx, `SELECT secret, previous_secret FROM webhook_endpoints`).Scan(&cur, &prev); err != nil {
		t.Fatal(err)
	}
	for _, s := range []Secret{first, second} {
		if bytes.Contains(cur, s) || bytes.Contains(prev, s) || bytes.Contains(dump, []byte(s.String())) {
			t.Fatal("a secret is stored in the clear")
		}
	}
	// Bound to endpoint and version: the current one does not open as the previous.
	b := &Backend{KEK: old}
	if _, err := b.OpenSecret(cur, ep.ID, 1); err == nil {
		t.Fatal("the secret of version 2 opened as version 1")
	}

	n, err := RewrapSecrets(ctx, pool, kek.NewRing(fresh, old), false)
	if err != nil || n != 1 {
		t.Fatalf("rewrapped %d, %v", n, err)
	}
	if err := pool.QueryRow(ctx, `SELECT secret, previous_secret FROM webhook_endpoints`).Scan(&cur, &prev); err != nil {
		t.Fatal(err)
	}
	b = &Backend{KEK: fresh}
	got2, err := b.OpenSecret(cur, ep.ID, 2)
	if err != nil || !bytes.Equal(got2, second) {
		t.Fatalf("the new KEK alone does not open the current secret: %v", err)
	}
	got1, err := b.OpenSecret(prev, ep.ID, 1)
	if err != nil || !bytes.Equal(got1, first) {
		t.Fatalf("the new KEK alone does not open the previous secret: %v", err)
	}
	if n, _ := RewrapSecrets(ctx, pool, fresh, false); n != 0 {
		t.Fatalf("a second rewrap moved %d endpoints already under the KEK", n)
	}
	// No event carries a secret.
	for _, e := range sink.Events() {
		for _, s := range []Secret{first, second} {
			if bytes.Contains(e.Data(), []byte(s.String())) {
				t.Fatalf("event %s carries a secret", e.Type())
			}
		}
	}
}
