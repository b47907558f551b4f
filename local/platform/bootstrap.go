package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/domain/vaults/policy"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/config"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/outbox"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// The first administrator: a service account with the platform
// administrator role and an API key for it. A fresh database has no
// principal who could make one, so the platform makes it, once: `skyflow
// admin bootstrap` in a cluster, and `make run` (and every test platform)
// through the same BootstrapAdmin.

// AdminKeyFile is where `make run` keeps the first administrator's API
// key, under DevDir.
const AdminKeyFile = "admin-api-key"

// BootstrapPrincipal is the actor of the events and rows the bootstrap
// writes (created_by, granted_by, the events' principal): the platform
// itself, acting once as an administrator.
const BootstrapPrincipal = "platform:bootstrap"

// AdminAccountName is the name of the service account the bootstrap makes.
const AdminAccountName = "platform-admin"

// BootstrapOptions say how BootstrapAdmin names what it makes, and what it
// does when an administrator exists already.
type BootstrapOptions struct {
	// KeyName names the API key (default "first administrator").
	KeyName string
	// Reissue: when a live administrator exists already, give the
	// service account that an earlier bootstrap made a new API key
	// instead of refusing (the earlier key was lost). Without Reissue,
	// or when that account is gone, an existing administrator is an
	// *AdminExistsError.
	Reissue bool
	// Prepare, when set, runs once it is settled that a key will be made,
	// before anything is: its error ends the bootstrap with nothing made.
	// The command creates its key file there, so that a refusal to
	// overwrite one costs nothing, and a run that finds an administrator
	// leaves the file alone.
	Prepare func() error
}

// FirstAdmin is what BootstrapAdmin made.
type FirstAdmin struct {
	Principal string // sa:<client id>, holding the role admin
	KeyID     string // the API key's id (DELETE /v1/apikeys/{id} revokes it)
	Key       string // the API key itself: stored nowhere else
	Created   bool   // a new administrator; false: a new key for the bootstrap's existing one (Reissue)
}

// AdminExistsError says that no administrator was made because live ones
// exist: the bootstrap has nothing to do.
type AdminExistsError struct {
	Admins []string // principals holding the role admin (user:<id>, sa:<client id>)
}

func (e *AdminExistsError) Error() string {
	return fmt.Sprintf("an administrator exists already (%s): none made", strings.Join(e.Admins, ", "))
}

// bootstrapLock is the transaction-scoped advisory lock that serialises
// bootstraps on one database, so that two at once make one administrator.
const bootstrapLock = `SELECT pg_advisory_xact_lock(hashtextextended('skyflow/bootstrap-admin', 0))`

// liveAdmins are the principals holding the role admin that can act: a
// user, or a service account not revoked.
const liveAdmins = `
	SELECT r.principal FROM role_assignments r
	WHERE r.role = $1 AND (
		EXISTS (SELECT 1 FROM users u WHERE 'user:' || u.id::text = r.principal) OR
		EXISTS (SELECT 1 FROM service_accounts a WHERE 'sa:' || a.client_id = r.principal AND a.revoked_at IS NULL))
	ORDER BY r.granted_at, r.principal`

// BootstrapAdmin makes the first administrator on b's database when no
// live principal holds the role admin: a service account named
// platform-admin with that role, and an API key for it, which only the
// answer carries (the database keeps its SHA-256). When an administrator
// exists it makes nothing and returns an *AdminExistsError, unless
// opts.Reissue finds the account an earlier bootstrap made (see
// BootstrapOptions). Runs at once on one database are serialised: one
// makes the administrator, the others find it.
func BootstrapAdmin(ctx context.Context, b *identity.Backend, opts BootstrapOptions) (*FirstAdmin, error) {
	if opts.KeyName == "" {
		opts.KeyName = "first administrator"
	}
	// The lock is held by a transaction of its own, open until the end;
	// the identity service's operations commit in theirs meanwhile.
	lock, err := b.Pool.Begin(ctx)
	if err != nil {
		return nil, bootstrapDBError(err)
	}
	defer lock.Rollback(context.WithoutCancel(ctx))
	if _, err := lock.Exec(ctx, bootstrapLock); err != nil {
		return nil, bootstrapDBError(err)
	}
	rows, err := lock.Query(ctx, liveAdmins, policy.PlatformAdmin)
	if err != nil {
		return nil, bootstrapDBError(err)
	}
	admins, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, bootstrapDBError(err)
	}

	// The platform itself acts once, as an administrator; the events are
	// those of the functions that do the same.
	actor := request.Principal{ID: BootstrapPrincipal, Roles: []string{policy.PlatformAdmin}}
	keys := identity.NewService(b, "/skyflow/functions/apikeys-create")
	prepare := func() error {
		if opts.Prepare == nil {
			return nil
		}
		return opts.Prepare()
	}
	if len(admins) > 0 {
		if !opts.Reissue {
			return nil, &AdminExistsError{Admins: admins}
		}
		var clientID string
		err := lock.QueryRow(ctx, `
			SELECT a.client_id FROM service_accounts a JOIN role_assignments r ON r.principal = 'sa:' || a.client_id AND r.role = $1
			WHERE a.created_by = $2 AND a.revoked_at IS NULL ORDER BY a.created_at LIMIT 1`,
			policy.PlatformAdmin, BootstrapPrincipal).Scan(&clientID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, &AdminExistsError{Admins: admins}
		}
		if err != nil {
			return nil, bootstrapDBError(err)
		}
		if err := prepare(); err != nil {
			return nil, err
		}
		key, err := keys.CreateAPIKey(ctx, actor, identity.APIKeyRequest{Name: opts.KeyName, ServiceAccountID: clientID})
		if err != nil {
			return nil, fmt.Errorf("a new API key for %s: %w", "sa:"+clientID, err)
		}
		return &FirstAdmin{Principal: key.Principal, KeyID: key.ID, Key: key.Key}, nil
	}

	if err := prepare(); err != nil {
		return nil, err
	}
	creds, err := identity.NewService(b, "/skyflow/functions/serviceaccounts-create").CreateServiceAccount(ctx, actor,
		identity.ServiceAccountRequest{Name: AdminAccountName, Roles: []string{policy.PlatformAdmin}})
	if err != nil {
		return nil, fmt.Errorf("the administrator's service account: %w", err)
	}
	key, err := keys.CreateAPIKey(ctx, actor, identity.APIKeyRequest{Name: opts.KeyName, ServiceAccountID: creds.ClientID})
	if err != nil {
		// An administrator nobody can act as would make every later run
		// find one: take it back.
		_, rerr := identity.NewService(b, "/skyflow/functions/serviceaccounts-revoke").RevokeServiceAccount(context.WithoutCancel(ctx), actor, creds.ClientID)
		if rerr != nil {
			return nil, errors.Join(fmt.Errorf("the administrator's API key: %w", err),
				fmt.Errorf("service account sa:%s was made but could not be revoked (run again with -reissue to give it a key): %w", creds.ClientID, rerr))
		}
		return nil, fmt.Errorf("the administrator's API key: %w", err)
	}
	return &FirstAdmin{Principal: key.Principal, KeyID: key.ID, Key: key.Key, Created: true}, nil
}

// bootstrapDBError says to migrate when the tables are missing.
func bootstrapDBError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" { // undefined_table
		return fmt.Errorf("the database has no identity tables: apply the migrations first (skyflow migrate): %w", err)
	}
	return fmt.Errorf("the database: %w", err)
}

// ConnectBootstrap connects what BootstrapAdmin works on, from the
// settings the identity functions read, of which it needs fewer:
//
//	DATABASE_URL       required: the PostgreSQL database (migrated)
//	K_SINK             the broker ingress the events (service account and
//	                   API key created) are sent to; unset, they stay in the
//	                   outbox, committed, for the cluster's outbox sweep
//	REDIS_URL          unset, no Redis: a first bootstrap never needs it
//	                   (only a revocation, after a failure, tells the
//	                   gateways through it)
//	REDIS_PREFIX       the functions' Redis key prefix (default skyflow:)
//	SKYFLOW_TOKEN_URI  only in the service account's credentials, which
//	                   the bootstrap never hands out
//
// No key-encryption key: nothing it writes is wrapped. Close releases
// what it opened, after a last attempt to send the events.
func ConnectBootstrap(ctx context.Context, cfg map[string]string) (_ *identity.Backend, closeFn func(context.Context), err error) {
	env := config.FromMap(cfg)
	sink := env.URL("K_SINK", "http", "https")
	redisURL := env.String("REDIS_URL", "")
	settings := identity.Settings{
		TokenURI:    env.String("SKYFLOW_TOKEN_URI", "https://skyflow.invalid/v1/auth/sa/oauth/token"),
		RedisPrefix: env.String("REDIS_PREFIX", "skyflow:"),
	}
	pool, err := db.OpenFromEnv(ctx, env) // reports the other settings' errors too
	if err != nil {
		return nil, nil, err
	}
	opts := []outbox.Option{outbox.WithLogger(quietLogger())}
	target := "http://k-sink.invalid/"
	if sink != nil {
		target = sink.String()
	} else {
		opts = append(opts, outbox.WithHTTPClient(&http.Client{Transport: noSink{}}))
	}
	publisher, err := outbox.NewPublisher(pool, target, opts...)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	var rdb redis.UniversalClient
	if redisURL != "" {
		o, err := redis.ParseURL(redisURL)
		if err != nil {
			// Not echoed: a Redis URL may carry a password.
			pool.Close()
			return nil, nil, errors.New("configuration: REDIS_URL: is not a Redis URL (redis://host:port/db, rediss://… or unix://…)")
		}
		rdb = redis.NewClient(o)
	} else {
		rdb = redis.NewClient(&redis.Options{Dialer: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("no Redis: REDIS_URL is not set")
		}, MaxRetries: -1})
	}
	// No KEK: the keyring (access tokens) is never used here.
	b := identity.New(pool, rdb, publisher, nil, settings)
	return b, func(ctx context.Context) {
		publisher.Close(ctx)
		pool.Close()
		rdb.Close()
	}, nil
}

// noSink is the transport of a bootstrap without K_SINK: every send fails
// at once, so the events stay in the outbox for the sweep.
type noSink struct{}

func (noSink) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("no K_SINK: the events stay in the outbox for the outbox sweep")
}

// quietLogger keeps the outbox's retries (which a bootstrap without a
// reachable sink makes) out of the command's output; errors still show.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// CreateKeyFile creates path, which must not exist, for an API key: mode
// 0600, never replacing a file (O_EXCL). Callers create it before making
// the key, so that a refusal costs nothing.
func CreateKeyFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%s exists already: it is not replaced (move it away, or name another file)", path)
	}
	if err != nil {
		return nil, err
	}
	// Exactly 0600, whatever the umask left of it.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return f, nil
}

// bootstrapAdmin gives the platform its administrator's API key, kept in
// DevDir/admin-api-key (0600): the key there when it still works, or else
// a new one from BootstrapAdmin, with Reissue (a developer who removed the
// file, or revoked the key, gets a new key for the same administrator).
func (p *Platform) bootstrapAdmin(ctx context.Context) error {
	file := filepath.Join(p.cfg.DevDir, AdminKeyFile)
	b, closeBackend, err := ConnectBootstrap(ctx, p.bootstrapConfig())
	if err != nil {
		return fmt.Errorf("bootstrapping the administrator: %w", err)
	}
	defer closeBackend(context.WithoutCancel(ctx))
	if key, err := os.ReadFile(file); err == nil {
		_, err := b.Authenticate(ctx, strings.TrimSpace(string(key)))
		if err == nil {
			p.adminKey = strings.TrimSpace(string(key))
			return nil
		}
		if apierr.From(err).HTTPCode != http.StatusUnauthorized {
			return fmt.Errorf("bootstrapping the administrator: checking the key in %s: %w", file, err)
		}
		// Revoked, or of another database: replaced below.
		if err := os.Remove(file); err != nil {
			return fmt.Errorf("bootstrapping the administrator: %w", err)
		}
	}
	var f *os.File
	admin, err := BootstrapAdmin(ctx, b, BootstrapOptions{KeyName: "make run", Reissue: true, Prepare: func() (err error) {
		f, err = CreateKeyFile(file)
		return err
	}})
	if err == nil {
		_, err = fmt.Fprintln(f, admin.Key)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	} else if f != nil {
		f.Close()
	}
	if err != nil {
		if f != nil {
			os.Remove(file)
		}
		var exists *AdminExistsError
		if errors.As(err, &exists) {
			return fmt.Errorf("bootstrapping the administrator: %w; none of them was made by this platform, so put an API key of one in %s", err, file)
		}
		return fmt.Errorf("bootstrapping the administrator: %w", err)
	}
	p.adminKey = admin.Key
	return nil
}

// bootstrapConfig is ConnectBootstrap's configuration: the platform's own
// direct connection, Redis and broker.
func (p *Platform) bootstrapConfig() map[string]string {
	cfg := map[string]string{
		"DATABASE_URL":      p.databaseURL,
		"REDIS_URL":         p.redisURL,
		"SKYFLOW_TOKEN_URI": p.tokenURI(),
	}
	if p.broker != nil {
		cfg["K_SINK"] = p.SinkURL()
	}
	if p.cfg.RedisPrefix != "" {
		cfg["REDIS_PREFIX"] = p.cfg.RedisPrefix
	}
	return cfg
}

// AdminAPIKey is the bootstrapped administrator's API key.
func (p *Platform) AdminAPIKey() string { return p.adminKey }
