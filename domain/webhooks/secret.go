package webhooks

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"

	"github.com/google/uuid"
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

// messageNamespace scopes MessageID's name-based UUIDs.
var messageNamespace = uuid.MustParse("6f1b3c0e-7c35-4c8e-9a0f-2f8d3b5e9a41")

// MessageID is the webhook-id of one event's delivery to one endpoint:
// stable across retries and redeliveries of the event, different per
// endpoint, so a receiver can drop what it has already processed.
func MessageID(endpointID, eventSource, eventID string) string {
	u := uuid.NewSHA1(messageNamespace, []byte(endpointID+"\x00"+eventSource+"\x00"+eventID))
	return "msg_" + strings.ReplaceAll(u.String(), "-", "")
}
