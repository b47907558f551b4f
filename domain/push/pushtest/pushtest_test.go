package pushtest_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"testing"

	webpush "github.com/SherClockHolmes/webpush-go"

	"github.com/skyflow-oss/skyflow/domain/push"
	"github.com/skyflow-oss/skyflow/domain/push/pushtest"
)

// The fake service accepts what a correct sender sends and refuses a push
// signed with another key than the subscription's applicationServerKey.
func TestTheFakeServiceChecksWhatItReceives(t *testing.T) {
	v, _ := push.GenerateVAPID("mailto:ops@skyflow.test")
	other, _ := push.GenerateVAPID("mailto:ops@skyflow.test")
	svc := pushtest.Start(t, v.PublicKey)
	pem, _ := os.ReadFile(svc.CAFile)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	sub := svc.Subscribe(t)
	keys := sub.JSON()["keys"].(map[string]string)
	send := func(key *push.VAPID, msg string) int {
		resp, err := webpush.SendNotificationWithContext(context.Background(), []byte(msg),
			&webpush.Subscription{Endpoint: sub.Endpoint, Keys: webpush.Keys{P256dh: keys["p256dh"], Auth: keys["auth"]}},
			&webpush.Options{HTTPClient: client, Subscriber: "ops@skyflow.test", VAPIDPublicKey: key.PublicKey, VAPIDPrivateKey: key.PrivateKey, TTL: 60})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := send(v, `{"hello":"world"}`); code != 201 {
		t.Fatalf("a correct push: %d", code)
	}
	if code := send(other, "x"); code != 401 {
		t.Fatalf("a push signed with another key: %d", code)
	}
	pushes := svc.Pushes()
	if len(pushes) != 2 || string(pushes[0].Payload) != `{"hello":"world"}` || pushes[0].TTL != 60 || pushes[1].Err == nil {
		t.Fatalf("%+v", pushes)
	}
	sub.Answer(410)
	if code := send(v, "y"); code != 410 {
		t.Fatalf("an answer of 410 set: %d", code)
	}
}
