package webhooks_test

import (
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
)

func TestParseSecretRefusesMalformed(t *testing.T) {
	for _, s := range []string{"", "whsec_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!!", "whsec_YWJj"} {
		if _, err := webhooks.ParseSecret(s); err == nil {
			t.Errorf("ParseSecret(%q) accepted", s)
		}
	}
}

// A message id is stable per endpoint and event, and differs between them.
func TestMessageID(t *testing.T) {
	a := webhooks.MessageID("e1", "/s", "1")
	if a != webhooks.MessageID("e1", "/s", "1") || !strings.HasPrefix(a, "msg_") || len(a) != 36 {
		t.Fatalf("message id %q is not stable or not msg_<32 hex>", a)
	}
	for _, b := range []string{webhooks.MessageID("e2", "/s", "1"), webhooks.MessageID("e1", "/t", "1"), webhooks.MessageID("e1", "/s", "2"), webhooks.MessageID("e1", "/s1", "")} {
		if a == b {
			t.Errorf("%s collides", b)
		}
	}
}
