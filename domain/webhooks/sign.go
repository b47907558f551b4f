package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// The Standard Webhooks headers (https://www.standardwebhooks.com).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every signing secret; the rest is the base64 of the
// key's bytes, as the Standard Webhooks libraries read it.
const SecretPrefix = "whsec_"

// SecretSize is the number of random bytes of a signing key.
const SecretSize = 32

// Secret is a signing key's bytes.
type Secret []byte

// NewSecret makes a random signing key.
func NewSecret() (Secret, error) {
	s := make(Secret, SecretSize)
	if _, err := rand.Read(s); err != nil {
		return nil, err
	}
	return s, nil
}

// String is the secret as the API shows it once: whsec_<base64>.
func (s Secret) String() string { return SecretPrefix + base64.StdEncoding.EncodeToString(s) }

// ParseSecret reads a whsec_<base64> secret.
func ParseSecret(s string) (Secret, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, SecretPrefix))
	if err != nil || len(raw) < 24 || len(raw) > 64 || !strings.HasPrefix(s, SecretPrefix) {
		return nil, errors.New("webhooks: a signing secret is whsec_ followed by the base64 of 24 to 64 bytes")
	}
	return raw, nil
}

// Sign returns the webhook-signature header of a message: one
// "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>" per key, separated by
// spaces, so that during a secret rotation a receiver holding either the
// new or the previous secret can verify it.
func Sign(msgID string, timestamp time.Time, body []byte, keys ...Secret) string {
	ts := strconv.FormatInt(timestamp.Unix(), 10)
	sigs := make([]string, 0, len(keys))
	for _, k := range keys {
		mac := hmac.New(sha256.New, k)
		mac.Write([]byte(msgID))
		mac.Write([]byte{'.'})
		mac.Write([]byte(ts))
		mac.Write([]byte{'.'})
		mac.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return strings.Join(sigs, " ")
}

// ErrSignature is returned by Verify for a message that does not verify.
var ErrSignature = errors.New("webhooks: no valid signature")

// Verify checks a delivery's headers and body against key, as a receiver
// does, with tolerance for the timestamp's distance from now. Tests and
// the README's receiver example use it; the Standard Webhooks libraries do
// the same.
func Verify(key Secret, msgID, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || msgID == "" {
		return ErrSignature
	}
	at := time.Unix(ts, 0)
	if at.Before(now.Add(-tolerance)) || at.After(now.Add(tolerance)) {
		return ErrSignature
	}
	want := Sign(msgID, at, body, key)
	for _, s := range strings.Fields(signature) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return ErrSignature
}

// messageNamespace scopes MessageID's name-based UUIDs.
var messageNamespace = uuid.MustParse("6f1b3c0e-7c35-4c8e-9a0f-2f8d3b5e9a41")

// MessageID is the webhook-id of one event's delivery to one endpoint:
// stable across retries and redeliveries of the event, different per
// endpoint, so a receiver can drop what it has already processed.
func MessageID(endpointID, eventSource, eventID string) string {
	u := uuid.NewSHA1(messageNamespace, []byte(endpointID+"\x00"+eventSource+"\x00"+eventID))
	return "msg_" + strings.ReplaceAll(u.String(), "-", "")
}
