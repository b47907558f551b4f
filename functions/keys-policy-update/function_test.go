package main

import (
	"testing"

	"github.com/skyflow-oss/skyflow/domain/keys/rotation"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

// The rotation period is set by a vault's managers, within bounds, and
// announced.
func TestSetsTheRotationPeriod(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	vault := env.Vault()
	at := map[string]string{request.ExtVaultID: vault}
	var st rotation.KeysStatus
	env.Call(f, functest.Event(RequestType, map[string]any{"rotation_period_days": 30}, functest.Admin, at), ReplyType, &st)
	if st.RotationPeriodDays != 30 || len(st.Versions) != 1 || st.Versions[0].KeyID != st.PrimaryKeyID {
		t.Fatalf("reply: %+v", st)
	}
	if n := len(env.Sink.OfType(rotation.KeyPolicyUpdatedType)); n != 1 {
		t.Fatalf("%d policy events, want 1", n)
	}
	for _, body := range []any{map[string]any{}, map[string]any{"rotation_period_days": -1}, map[string]any{"rotation_period_days": 3651},
		map[string]any{"rotation_period_days": "30"}, map[string]any{"rotation_period_days": 1.5}} {
		env.Refuses(f, functest.Event(RequestType, body, functest.Admin, at), 400)
	}
	env.Refuses(f, functest.Event(RequestType, map[string]any{"rotation_period_days": 1}, functest.Owner, at), 403)
	env.Refuses(f, functest.Event(RequestType, map[string]any{"rotation_period_days": 1}, functest.Admin, map[string]string{request.ExtVaultID: "00000000000000000000000000000000"}), 404)
}
