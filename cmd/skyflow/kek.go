package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/skyflow-oss/skyflow/domain/crypto/kek"
	"github.com/skyflow-oss/skyflow/domain/identity/signing"
	"github.com/skyflow-oss/skyflow/domain/keys/rotation"
	"github.com/skyflow-oss/skyflow/runtime/config"
	"github.com/skyflow-oss/skyflow/runtime/db"
)

// runKEK rotates the key-encryption key: `skyflow kek rewrap` moves every
// vault keyset and signing key to the current KEK, leaving the records as
// they are.
func runKEK(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "rewrap" {
		//nolint:revive,staticcheck // error-strings, ST1005: a usage text with its help, printed as it is
		return errors.New(`usage: skyflow kek rewrap [-all]

Rotating the local master key: make a new key file, restart the functions with
SKYFLOW_MASTER_KEY_FILE=<new> and SKYFLOW_PREVIOUS_MASTER_KEY_FILES=<old>, run
this with the same settings and DATABASE_URL, then drop the previous key file.
Rotating a Transit key: rotate it in Vault, then run this with -all.`)
	}
	fs := flag.NewFlagSet("kek rewrap", flag.ContinueOnError)
	all := fs.Bool("all", false, "rewrap keysets already under the current KEK's id too (a Transit key rotated in place)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	env := config.FromEnviron()
	k, err := kek.FromEnv(env)
	if err != nil {
		return err
	}
	vk, err := kek.VaultKeysFromEnv(env) // keysets wrapped by their vault's key too keep that layer
	if err != nil {
		return err
	}
	pool, err := db.OpenFromEnv(ctx, env)
	if err != nil {
		return err
	}
	defer pool.Close()
	nv, err := rotation.RewrapKeysets(ctx, pool, k, vk, *all)
	if err != nil {
		return fmt.Errorf("after %d vault keysets: %w", nv, err)
	}
	ns, err := signing.RewrapKeys(ctx, pool, k, *all)
	if err != nil {
		return fmt.Errorf("after %d signing keys: %w", ns, err)
	}
	fmt.Printf("kek: %d vault keysets and %d signing keys now wrapped by %s; records untouched\n", nv, ns, k.ID())
	return nil
}
