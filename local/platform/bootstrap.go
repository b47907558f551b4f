package platform

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/domain/vaults/policy"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// AdminKeyFile is where `make run` keeps the first administrator's API
// key, under DevDir: a fresh platform has no user who could make one.
const AdminKeyFile = "admin-api-key"

// bootstrapAdmin makes a service account with the platform administrator
// role and an API key for it, once, and keeps the key in DevDir (0600).
// A key that still works is kept; one that was revoked is replaced.
func (p *Platform) bootstrapAdmin(ctx context.Context) error {
	file := filepath.Join(p.cfg.DevDir, AdminKeyFile)
	b, err := identity.Connect(ctx, p.identityConfig())
	if err != nil {
		return fmt.Errorf("bootstrapping the administrator: %w", err)
	}
	defer b.Pool.Close()
	defer b.Redis.Close()
	if key, err := os.ReadFile(file); err == nil {
		if _, err := b.Authenticate(ctx, strings.TrimSpace(string(key))); err == nil {
			p.adminKey = strings.TrimSpace(string(key))
			return nil
		}
	}
	// The platform itself acts once, as an administrator, to make the first
	// one; the events are those of the functions that do the same.
	platform := request.Principal{ID: "platform:bootstrap", Roles: []string{policy.PlatformAdmin}}
	creds, err := identity.NewService(b, "/skyflow/functions/serviceaccounts-create").CreateServiceAccount(ctx, platform, identity.ServiceAccountRequest{Name: "platform-admin", Roles: []string{policy.PlatformAdmin}})
	if err != nil {
		return fmt.Errorf("bootstrapping the administrator: %w", err)
	}
	key, err := identity.NewService(b, "/skyflow/functions/apikeys-create").CreateAPIKey(ctx, platform, identity.APIKeyRequest{Name: "make run", ServiceAccountID: creds.ClientID})
	if err != nil {
		return fmt.Errorf("bootstrapping the administrator: %w", err)
	}
	if err := os.WriteFile(file, []byte(key.Key+"\n"), 0o600); err != nil {
		return errors.Join(errors.New("bootstrapping the administrator: keeping the key"), err)
	}
	p.adminKey = key.Key
	return nil
}

// identityConfig is what the user service's functions are configured with.
func (p *Platform) identityConfig() map[string]string {
	cfg := map[string]string{
		"DATABASE_URL":            p.databaseURL,
		"REDIS_URL":               p.redisURL,
		"K_SINK":                  p.SinkURL(),
		"SKYFLOW_TOKEN_URI":       p.tokenURI(),
		"SKYFLOW_MASTER_KEY_FILE": filepath.Join(p.cfg.DevDir, "master.key"),
	}
	for _, k := range []string{"VAULT_ADDR", "VAULT_TOKEN", "VAULT_K8S_ROLE", "VAULT_TRANSIT_KEY", "SKYFLOW_PREVIOUS_MASTER_KEY_FILES"} {
		if v := os.Getenv(k); v != "" {
			cfg[k] = v
		}
	}
	return cfg
}

// AdminAPIKey is the bootstrapped administrator's API key.
func (p *Platform) AdminAPIKey() string { return p.adminKey }
