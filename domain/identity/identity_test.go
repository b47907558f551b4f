package identity_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/domain/identity/throttle"
	"github.com/skyflow-oss/skyflow/eventing/catalog"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/outbox"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/testenv"
)

const tokenURI = "https://skyflow.test/v1/auth/sa/oauth/token"

var admin = request.Principal{ID: "user:00000000-0000-4000-8000-000000000001", Roles: []string{"admin"}}

type fixture struct {
	t       *testing.T
	ctx     context.Context
	backend *identity.Backend
	sink    *testenv.Sink
}

// service is the Service as the named function runs it.
func (f *fixture) service(fn string) *identity.Service {
	return identity.NewService(f.backend, "/skyflow/functions/"+fn)
}

func setup(t *testing.T) *fixture {
	t.Helper()
	pool := testenv.Pool(t)
	rdb, prefix := testenv.Redis(t)
	key := make([]byte, 32)
	rand.Read(key)
	k, err := kek.NewLocal(key)
	if err != nil {
		t.Fatal(err)
	}
	s := testenv.NewSink(t)
	pub, err := outbox.NewPublisher(pool, s.URL, outbox.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close(context.Background()) })
	s.WatchOutbox(pool)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	b := identity.New(pool, rdb, pub, k, identity.Settings{
		Issuer: "skyflow-test", Audience: "skyflow-api", TokenURI: tokenURI, RedisPrefix: prefix,
		// The default policies, with delays short enough for a test.
		Account: fast(identity.AccountPolicy), Address: fast(identity.AddressPolicy),
	})
	return &fixture{t: t, ctx: ctx, backend: b, sink: s}
}

func fast(p throttle.Policy) throttle.Policy {
	p.Delay, p.MaxDelay = time.Millisecond, 5*time.Millisecond
	return p
}

func status(err error) int {
	if err == nil {
		return 0
	}
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return ae.HTTPCode
	}
	return -1
}

// checkEvents validates every event sent against the catalog and checks
// that none carries a secret.
func (f *fixture) checkEvents(secrets ...string) {
	f.t.Helper()
	events := f.sink.Events()
	if len(events) == 0 {
		f.t.Fatal("no events were sent")
	}
	for _, e := range events {
		if err := catalog.Validate(e); err != nil {
			f.t.Errorf("%s: %v", e.Type(), err)
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(string(e.Data()), s) {
				f.t.Errorf("a %s event carries a secret", e.Type())
			}
		}
	}
}

func base64URL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// TestConnectRefusesABadRedisURL: a REDIS_URL that is set but is no Redis
// URL is a configuration error naming the variable and not its value (it
// may carry a password), never a nil Backend without an error.
func TestConnectRefusesABadRedisURL(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	b, err := identity.Connect(context.Background(), map[string]string{
		"DATABASE_URL":       "postgres://127.0.0.1:1/none?sslmode=disable", // the pool is lazy: never dialled
		"K_SINK":             "http://127.0.0.1:1/",
		"SKYFLOW_MASTER_KEY": base64.StdEncoding.EncodeToString(key),
		"SKYFLOW_TOKEN_URI":  tokenURI,
		"REDIS_URL":          "http://user:s3cret@cache.example:6379/0",
	})
	if err == nil || b != nil {
		t.Fatalf("Connect with a bad REDIS_URL: %v, %v; want an error and no backend", b, err)
	}
	if !strings.Contains(err.Error(), "REDIS_URL") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q: want it to name REDIS_URL and not echo the value", err)
	}
}
