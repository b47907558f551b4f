package delivery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
)

// The Standard Webhooks headers (https://www.standardwebhooks.com).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Sign returns the webhook-signature header of a message: one
// "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>" per key, separated by
// spaces, so that during a secret rotation a receiver holding either the
// new or the previous secret can verify it.
func Sign(msgID string, timestamp time.Time, body []byte, keys ...webhooks.Secret) string {
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
func Verify(key webhooks.Secret, msgID, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
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
