package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/skyflow-oss/skyflow/domain/keys/rotation"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

// The keys view follows a rotation and its rewrap: key versions, the
// primary, and the rewrap's progress until it has finished.
func TestKeysShowVersionsAndRewrapProgress(t *testing.T) {
	env := functest.New(t)
	f := env.Start(New())
	vault := env.Vault()
	env.Insert(vault, map[string]string{"name": "Ada", "email": "ada@example.com", "ssn": "123-45-6789"})
	get := func() rotation.KeysStatus {
		var s rotation.KeysStatus
		env.Call(f, functest.Event(RequestType, nil, functest.Admin, map[string]string{request.ExtVaultID: vault}), ReplyType, &s)
		return s
	}
	before := get()
	if before.KeysVersion != 1 || len(before.KeyIDs) != 1 || before.KeyIDs[0] != before.PrimaryKeyID || before.Rewrap != nil {
		t.Fatalf("before any rotation: %+v", before)
	}
	admin := request.Principal{ID: functest.Admin[request.ExtPrincipal], Roles: []string{"admin"}}
	backend := env.Backend()
	rotated, err := rotation.NewManager(backend, "/skyflow/functions/keys-rotate").RotateKeys(context.Background(), admin, vault)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rotation.NewManager(backend, "/skyflow/functions/keys-rewrap").Rewrap(context.Background(), vault, 100, time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	during := get()
	if during.PrimaryKeyID != rotated.PrimaryKeyID || len(during.KeyIDs) != 2 || !slices.Contains(during.KeyIDs, before.PrimaryKeyID) ||
		during.Rewrap == nil || during.Rewrap.TargetKeyID != rotated.PrimaryKeyID || during.Rewrap.FinishedAt != nil {
		t.Fatalf("during the rewrap (settling): %+v %+v", during, during.Rewrap)
	}
	if _, err := rotation.NewManager(backend, "/skyflow/functions/keys-rewrap").Rewrap(context.Background(), vault, 100, time.Now(), 0); err != nil {
		t.Fatal(err)
	}
	if after := get(); after.Rewrap.FinishedAt == nil || after.Rewrap.Rewrapped != 3 || *after.Rewrap.Remaining != 0 {
		t.Fatalf("after the rewrap: %+v", after.Rewrap)
	}
	env.Refuses(f, functest.Event(RequestType, nil, functest.Owner, map[string]string{request.ExtVaultID: vault}), 403)
}
