package push

import (
	"context"
	"errors"

	"github.com/skyflow-oss/skyflow/shared/config"
	"github.com/skyflow-oss/skyflow/shared/db"
)

// Lifecycle is the start and end of a push-* function. Embed it: Start
// reads DATABASE_URL and SKYFLOW_PUSH_ALLOWED_NETWORKS (optional) and
// opens the database lazily; Ready and Stop come with db.Lifecycle.
type Lifecycle struct {
	db.Lifecycle
	Store   *Store
	Allowed Networks
}

// Start connects.
func (l *Lifecycle) Start(ctx context.Context, cfg map[string]string) error {
	env := config.FromMap(cfg)
	allowed, netErr := ParseNetworks(env.String("SKYFLOW_PUSH_ALLOWED_NETWORKS", ""))
	if netErr != nil {
		netErr = errors.New("configuration: SKYFLOW_PUSH_ALLOWED_NETWORKS: " + netErr.Error())
	}
	pool, err := db.OpenFromEnv(ctx, env)
	if err = errors.Join(err, netErr); err != nil {
		if pool != nil {
			pool.Close()
		}
		return err
	}
	l.Pool, l.Store, l.Allowed = pool, &Store{Pool: pool}, allowed
	return nil
}
