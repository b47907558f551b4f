// Package push is Skyflow's Web Push: users' browser and device
// subscriptions (the push-subscribe, push-list and push-unsubscribe
// functions), the VAPID keys the platform signs with (push-vapid-key
// publishes the public one). notify-push sends with it. Push endpoints are
// kept on the public Internet by runtime/safehttp's policy, the one webhooks
// use (SKYFLOW_PUSH_ALLOWED_NETWORKS is its list of allowed networks).
//
// A subscription is what a browser's PushManager.subscribe() returns,
// as PushSubscription.toJSON() gives it:
//
//	{"endpoint": "https://…", "expirationTime": null,
//	 "keys": {"p256dh": "<base64url, 65 bytes>", "auth": "<base64url, 16 bytes>"}}
//
// The endpoint is a capability (whoever knows it can push to the device
// through its push service): it is stored, used to send, and never logged
// or shown; the API shows its origin only.
package push

import (
	"crypto/ecdh"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/runtime/safehttp"
)

// AllowedNetworksEnv names the non-public networks push services may be
// in (safehttp.ParseNetworks; default none).
const AllowedNetworksEnv = "SKYFLOW_PUSH_ALLOWED_NETWORKS"

// Limits.
const (
	MaxEndpointLength = 2048
	MaxDeviceName     = 100
	// MaxPerUser is how many subscriptions one user may keep.
	MaxPerUser = 20
)

// SubscribeRequest is POST /v1/users/me/push-subscriptions: the browser's
// PushSubscription JSON, plus an optional name for the device.
type SubscribeRequest struct {
	Endpoint string `json:"endpoint"`
	// ExpirationTime is the browser's (milliseconds since the epoch, or null).
	ExpirationTime *float64 `json:"expirationTime"`
	Keys           struct {
		P256dh string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
	DeviceName string `json:"deviceName"`
}

// NewSubscription is a checked SubscribeRequest.
type NewSubscription struct {
	Endpoint   string
	P256dh     []byte // an uncompressed P-256 point
	Auth       []byte // 16 bytes
	DeviceName string
	ExpiresAt  *time.Time
}

// Subscription is a subscription as the API shows it: never the endpoint
// (only its push service's origin) nor the keys.
type Subscription struct {
	ID            string     `json:"id"`
	DeviceName    string     `json:"deviceName"`
	PushService   string     `json:"pushService"`
	CreatedAt     time.Time  `json:"createdAt"`
	UpdatedAt     time.Time  `json:"updatedAt"`
	ExpiresAt     *time.Time `json:"expiresAt,omitempty"`
	LastSuccessAt *time.Time `json:"lastSuccessAt,omitempty"`
}

// Subscriptions answers GET /v1/users/me/push-subscriptions.
type Subscriptions struct {
	Subscriptions []Subscription `json:"subscriptions"`
}

// Unsubscribed answers DELETE /v1/users/me/push-subscriptions/{id}.
type Unsubscribed struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

// decodeKey reads a base64url value (RFC 4648 §5, padding optional, as
// the Push API gives it).
func decodeKey(s string) ([]byte, bool) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimRight(s, "="))
	return b, err == nil
}

// Check validates a request strictly, the endpoint's host against policy
// (nil: public addresses only). Messages say what is wrong and never
// repeat the endpoint or a key.
func (r SubscribeRequest) Check(policy *safehttp.Policy, now time.Time) (*NewSubscription, error) {
	s := &NewSubscription{}
	if err := checkEndpoint(r.Endpoint, policy); err != nil {
		return nil, err
	}
	s.Endpoint = r.Endpoint
	p256dh, ok := decodeKey(r.Keys.P256dh)
	if !ok || len(p256dh) != 65 || p256dh[0] != 4 {
		return nil, apierr.InvalidArgument("keys.p256dh must be the subscription's P-256 public key: 65 bytes (an uncompressed point), base64url-encoded, as PushSubscription.toJSON() gives it")
	}
	if _, err := ecdh.P256().NewPublicKey(p256dh); err != nil {
		return nil, apierr.InvalidArgument("keys.p256dh is not a point on the P-256 curve")
	}
	auth, ok := decodeKey(r.Keys.Auth)
	if !ok || len(auth) != 16 {
		return nil, apierr.InvalidArgument("keys.auth must be the subscription's authentication secret: 16 bytes, base64url-encoded")
	}
	s.P256dh, s.Auth = p256dh, auth
	name := strings.TrimSpace(r.DeviceName)
	if utf8.RuneCountInString(name) > MaxDeviceName || !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return nil, apierr.InvalidArgument("deviceName must be at most %d characters, without control characters", MaxDeviceName)
	}
	s.DeviceName = name
	if r.ExpirationTime != nil {
		t := time.UnixMilli(int64(*r.ExpirationTime)).UTC()
		if !t.After(now) {
			return nil, apierr.InvalidArgument("expirationTime is in the past: the browser's subscription has expired; subscribe again")
		}
		s.ExpiresAt = &t
	}
	return s, nil
}

// checkEndpoint: an absolute https URL of a push service, no user
// information or fragment, whose host the policy takes without a DNS
// lookup: the endpoint comes from the browser's push service, and a name
// is checked where it matters, on the address dialled at every push.
func checkEndpoint(raw string, policy *safehttp.Policy) error {
	if raw == "" {
		return apierr.InvalidArgument("endpoint is required: the PushSubscription's endpoint URL")
	}
	if len(raw) > MaxEndpointLength {
		return apierr.InvalidArgument("endpoint is longer than %d characters", MaxEndpointLength)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Hostname() == "":
		return apierr.InvalidArgument("endpoint must be an absolute https URL, the PushSubscription's endpoint")
	case u.Scheme != "https":
		return apierr.InvalidArgument("endpoint must use https: push services are only reached over TLS")
	case u.User != nil || u.Fragment != "":
		return apierr.InvalidArgument("endpoint must not carry user information or a fragment")
	}
	if err := policy.CheckHostNoLookup(u.Hostname()); err != nil {
		// The host is the push service's, which the API shows anyway; the
		// rest of the endpoint is not repeated.
		var re *safehttp.RefusedError
		if errors.As(err, &re) {
			return apierr.InvalidArgument("endpoint must be a push service on the public Internet: its host %s is %s (an operator can allow a network with %s)", re.Host, re.Reason, AllowedNetworksEnv)
		}
		return apierr.InvalidArgument("endpoint's host is refused")
	}
	return nil
}

// Origin is the push service of an endpoint: scheme://host[:port].
func Origin(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// UserOf is the user a request acts for; push subscriptions are for
// users (the gateway's routes say kind: user), never service accounts.
func UserOf(p request.Principal) (uuid.UUID, error) {
	id, ok := strings.CutPrefix(p.ID, "user:")
	u, err := uuid.Parse(id)
	if !ok || err != nil {
		return uuid.UUID{}, apierr.PermissionDenied("push subscriptions are for users; log in as a user")
	}
	return u, nil
}
