package push

import (
	"context"
	"errors"

	"github.com/skyflow-oss/skyflow/runtime/config"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/safehttp"
)

// Lifecycle is the start and end of a push-* function. Embed it: Start
// reads DATABASE_URL and SKYFLOW_PUSH_ALLOWED_NETWORKS (optional) and
// opens the database lazily; Ready and Stop come with db.Lifecycle.
type Lifecycle struct {
	db.Lifecycle
	Store  *Store
	Policy *safehttp.Policy // the push endpoints' address policy
}

// Start connects.
func (l *Lifecycle) Start(ctx context.Context, cfg map[string]string) error {
	env := config.FromMap(cfg)
	policy, netErr := safehttp.ParseNetworks(env.String(AllowedNetworksEnv, ""))
	if netErr != nil {
		netErr = errors.New("configuration: " + AllowedNetworksEnv + ": " + netErr.Error())
	}
	pool, err := db.OpenFromEnv(ctx, env)
	if err = errors.Join(err, netErr); err != nil {
		if pool != nil {
			pool.Close()
		}
		return err
	}
	l.Pool, l.Store, l.Policy = pool, &Store{Pool: pool}, policy
	return nil
}
