package push_test

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/skyflow-oss/skyflow/domain/push"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/config"
	"github.com/skyflow-oss/skyflow/runtime/safehttp"
)

// browserKeys are a subscription's keys as a browser makes them.
func browserKeys(t *testing.T) (p256dh, auth string) {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a := make([]byte, 16)
	rand.Read(a)
	return base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()), base64.RawURLEncoding.EncodeToString(a)
}

func request(endpoint, p256dh, auth string) push.SubscribeRequest {
	var r push.SubscribeRequest
	r.Endpoint, r.Keys.P256dh, r.Keys.Auth = endpoint, p256dh, auth
	return r
}

func status(err error) int {
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return ae.HTTPCode
	}
	return 0
}

func TestCheckTakesBrowserSubscriptions(t *testing.T) {
	p256dh, auth := browserKeys(t)
	now := time.Now()
	r := request("https://fcm.googleapis.com/fcm/send/abc:APA91b", p256dh, auth)
	r.DeviceName = "  Ada's laptop "
	ms := float64(now.Add(time.Hour).UnixMilli())
	r.ExpirationTime = &ms
	s, err := r.Check(nil, now)
	if err != nil || len(s.P256dh) != 65 || len(s.Auth) != 16 || s.DeviceName != "Ada's laptop" || s.ExpiresAt == nil {
		t.Fatalf("Check = %+v, %v", s, err)
	}
	// Padded base64url is the same key.
	if _, err := request("https://updates.push.services.mozilla.com/wpush/v2/gAAA", p256dh+"=", auth+"==").Check(nil, now); err != nil {
		t.Fatalf("padded keys: %v", err)
	}
}

func TestCheckRefusesBadSubscriptions(t *testing.T) {
	p256dh, auth := browserKeys(t)
	raw, _ := base64.RawURLEncoding.DecodeString(p256dh)
	offCurve := append([]byte{4}, make([]byte, 64)...)
	past := float64(time.Now().Add(-time.Minute).UnixMilli())
	std := "+" + p256dh[1:] // the standard alphabet, not base64url
	for name, r := range map[string]push.SubscribeRequest{
		"no endpoint":               request("", p256dh, auth),
		"http endpoint":             request("http://fcm.googleapis.com/fcm/send/x", p256dh, auth),
		"relative endpoint":         request("/fcm/send/x", p256dh, auth),
		"user information":          request("https://u:p@fcm.googleapis.com/x", p256dh, auth),
		"loopback":                  request("https://127.0.0.1/x", p256dh, auth),
		"loopback v6":               request("https://[::1]:8443/x", p256dh, auth),
		"localhost":                 request("https://localhost/x", p256dh, auth),
		"private":                   request("https://10.1.2.3/x", p256dh, auth),
		"private 192.168":           request("https://192.168.1.1/x", p256dh, auth),
		"link-local (metadata)":     request("https://169.254.169.254/latest/meta-data", p256dh, auth),
		"unique local v6":           request("https://[fd00::1]/x", p256dh, auth),
		"v4-mapped loopback":        request("https://[::ffff:127.0.0.1]/x", p256dh, auth),
		"unspecified":               request("https://0.0.0.0/x", p256dh, auth),
		"CGNAT":                     request("https://100.64.0.1/x", p256dh, auth),
		"numeric host":              request("https://2130706433/x", p256dh, auth),
		"hexadecimal host":          request("https://0x7f000001/x", p256dh, auth),
		"a name under localhost":    request("https://push.localhost/x", p256dh, auth),
		"metadata name":             request("https://metadata.google.internal/x", p256dh, auth),
		"NAT64 of loopback":         request("https://[64:ff9b::7f00:1]/x", p256dh, auth),
		"6to4 of private":           request("https://[2002:a00:1::1]/x", p256dh, auth),
		"too long":                  request("https://fcm.googleapis.com/"+strings.Repeat("a", 2048), p256dh, auth),
		"p256dh of 64 bytes":        request("https://fcm.googleapis.com/x", base64.RawURLEncoding.EncodeToString(raw[:64]), auth),
		"p256dh off the curve":      request("https://fcm.googleapis.com/x", base64.RawURLEncoding.EncodeToString(offCurve), auth),
		"p256dh in standard base64": request("https://fcm.googleapis.com/x", std, auth),
		"no p256dh":                 request("https://fcm.googleapis.com/x", "", auth),
		"auth of 15 bytes":          request("https://fcm.googleapis.com/x", p256dh, base64.RawURLEncoding.EncodeToString(make([]byte, 15))),
		"auth not base64url":        request("https://fcm.googleapis.com/x", p256dh, "not base64!"),
		"expired": func() push.SubscribeRequest {
			r := request("https://fcm.googleapis.com/x", p256dh, auth)
			r.ExpirationTime = &past
			return r
		}(),
		"device name with a newline": func() push.SubscribeRequest {
			r := request("https://fcm.googleapis.com/x", p256dh, auth)
			r.DeviceName = "a\nb"
			return r
		}(),
	} {
		_, err := r.Check(nil, time.Now())
		if status(err) != 400 {
			t.Errorf("%s: %v, want a 400", name, err)
			continue
		}
		if r.Endpoint != "" && strings.Contains(err.Error(), r.Endpoint) || r.Keys.P256dh != "" && strings.Contains(err.Error(), r.Keys.P256dh) {
			t.Errorf("%s: the message repeats the request: %v", name, err)
		}
	}
}

// SKYFLOW_PUSH_ALLOWED_NETWORKS (safehttp's policy, commas or spaces)
// lets exactly its networks through at subscription.
func TestAllowedNetworks(t *testing.T) {
	allowed, err := safehttp.ParseNetworks("127.0.0.0/8, 10.20.0.0/16 fd00::1")
	if err != nil || len(allowed.Allowed()) != 3 {
		t.Fatalf("ParseNetworks = %v, %v", allowed, err)
	}
	p256dh, auth := browserKeys(t)
	for endpoint, ok := range map[string]bool{
		"https://127.0.0.1:8443/push/1":       true,
		"https://10.20.3.4/push/1":            true,
		"https://[::ffff:127.0.0.2]/push/1":   true,
		"https://[fd00::1]/push/1":            true,
		"https://8.8.8.8/push/1":              true,
		"https://[2606:4700::1111]/push/1":    true,
		"https://10.21.0.1/push/1":            false,
		"https://[fd00::2]/push/1":            false,
		"https://localhost/push/1":            false, // ::1 is not allowed
		"https://metadata.google.internal/x":  false, // a metadata service's name, whatever is allowed
		"https://[64:ff9b:1::a14:304]/push/1": false, // local-use NAT64
	} {
		_, err := request(endpoint, p256dh, auth).Check(allowed, time.Now())
		if ok && err != nil || !ok && status(err) != 400 {
			t.Errorf("%s: %v, want allowed %v", endpoint, err, ok)
		}
	}
	if _, err := safehttp.ParseNetworks("10.0.0.0/33"); err == nil {
		t.Error("a bad prefix was taken")
	}
}

func TestVAPIDSettings(t *testing.T) {
	v, err := push.GenerateVAPID("mailto:ops@example.com")
	if err != nil {
		t.Fatal(err)
	}
	env := config.FromMap(map[string]string{"SKYFLOW_VAPID_PUBLIC_KEY": v.PublicKey, "SKYFLOW_VAPID_PRIVATE_KEY": v.PrivateKey, "SKYFLOW_VAPID_SUBJECT": v.Subject})
	got, errs := push.VAPIDFromEnv(env)
	if len(errs) != 0 || env.Err() != nil || got.Subscriber() != "ops@example.com" {
		t.Fatalf("VAPIDFromEnv = %+v, %v, %v", got, errs, env.Err())
	}
	other, _ := push.GenerateVAPID("https://skyflow.example.com/contact")
	env = config.FromMap(map[string]string{"SKYFLOW_VAPID_PUBLIC_KEY": other.PublicKey, "SKYFLOW_VAPID_PRIVATE_KEY": v.PrivateKey, "SKYFLOW_VAPID_SUBJECT": "ops@example.com"})
	_, errs = push.VAPIDFromEnv(env)
	text := ""
	for _, e := range errs {
		text += e.Error() + "\n"
	}
	if !strings.Contains(text, "not one key pair") || !strings.Contains(text, "SKYFLOW_VAPID_SUBJECT") || strings.Contains(text, v.PrivateKey) {
		t.Fatalf("mismatched keys and a bad subject: %s", text)
	}
	env = config.FromMap(map[string]string{})
	push.VAPIDFromEnv(env)
	if err := env.Err(); err == nil || !strings.Contains(err.Error(), "SKYFLOW_VAPID_PRIVATE_KEY") {
		t.Fatalf("no settings: %v", err)
	}
	if other.Subscriber() != "https://skyflow.example.com/contact" {
		t.Fatalf("an https subject: %q", other.Subscriber())
	}
}
