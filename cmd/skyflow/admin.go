package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/skyflow-oss/skyflow/local/platform"
	"github.com/skyflow-oss/skyflow/runtime/config"
)

const adminUsage = `usage: skyflow admin bootstrap -key-file FILE [-reissue]
       skyflow admin bootstrap -key-file - [-reissue]

Makes the first platform administrator on the database DATABASE_URL names:
a service account "platform-admin" holding the role admin, and an API key
that acts as it. A new installation has no principal who could make one
through the API; this is that step. Run it once the migrations are applied
(skyflow migrate). 'make run' makes its own administrator the same way and
keeps its key in .dev/admin-api-key.

It makes an administrator only when none exists. When a live administrator
(a user, or a service account not revoked, holding the role admin) exists
already, it makes nothing, writes no file, names them on stderr, and exits
0: it is safe to run on every deploy. Two runs at once make one.

The API key is shown this once; the database keeps only its SHA-256.

  -key-file FILE  write the key to FILE (one line), created with mode 0600.
                  An existing FILE is never replaced: the command stops
                  (exit 1) before it makes anything.
  -key-file -     print the key on stdout instead (one line, nothing else).
  -reissue        when an administrator exists, give the service account
                  that an earlier bootstrap made a new API key (the earlier
                  key was lost). Earlier keys stay valid until revoked
                  (DELETE /v1/apikeys/{id}). Without such an account it
                  makes nothing, as without -reissue.

Environment:
  DATABASE_URL       required: the PostgreSQL database, migrated (the direct
                     URL or through PgBouncer)
  K_SINK             the broker ingress the events go to
                     (com.skyflow.serviceaccount.created,
                     com.skyflow.apikey.created). Unset, they stay committed
                     in the outbox until the cluster's outbox-sweep sends them.
  REDIS_URL          optional; used only to tell the gateways of a
                     revocation, which happens only if making the key fails
                     after the account was made (REDIS_PREFIX as the
                     functions', default skyflow:)
No key-encryption key is needed: nothing the command writes is wrapped.

Status goes to stderr, never the key. Exit status: 0 when an administrator
was made (or a key reissued) or one exists already; 1 on any error.

Example, against a cluster's database through a port-forward:
  DATABASE_URL='postgres://skyflow@127.0.0.1:5432/skyflow?sslmode=require' \
    skyflow admin bootstrap -key-file admin-api-key
  curl -H "Authorization: Bearer $(cat admin-api-key)" https://GATEWAY/v1/serviceaccounts`

// runAdmin is `skyflow admin bootstrap`: the first administrator, on
// DATABASE_URL, through the same platform.BootstrapAdmin that `make run`
// and the test platforms use.
func runAdmin(ctx context.Context, args []string) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
		fmt.Println(adminUsage)
		return nil
	}
	if len(args) == 0 || args[0] != "bootstrap" {
		return errors.New(adminUsage)
	}
	fs := flag.NewFlagSet("admin bootstrap", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the usage below says it all
	keyFile := fs.String("key-file", "", "where the API key goes: a new file (mode 0600), or - for stdout")
	reissue := fs.Bool("reissue", false, "when an administrator exists, a new API key for the one an earlier bootstrap made")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Println(adminUsage)
			return nil
		}
		return fmt.Errorf("%w\n\n%s", err, adminUsage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q\n\n%s", fs.Arg(0), adminUsage)
	}
	if *keyFile == "" {
		return errors.New("say where the API key goes: -key-file FILE (a new file, mode 0600), or -key-file - for stdout\n\n" + adminUsage)
	}
	if os.Getenv("DATABASE_URL") == "" {
		return errors.New("DATABASE_URL is not set: it must name the PostgreSQL database (postgres://user@host:port/db), migrated by skyflow migrate")
	}
	return bootstrapAdmin(ctx, config.Environ(), *keyFile, *reissue, os.Stdout, os.Stderr)
}

// bootstrapAdmin connects with cfg's settings and makes the administrator,
// its key to keyFile ("-": stdout) and its status to status.
func bootstrapAdmin(ctx context.Context, cfg map[string]string, keyFile string, reissue bool, stdout, status io.Writer) error {
	b, closeBackend, err := platform.ConnectBootstrap(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeBackend(context.WithoutCancel(ctx))

	var f *os.File
	out := io.Writer(stdout)
	opts := platform.BootstrapOptions{KeyName: "skyflow admin bootstrap", Reissue: reissue}
	if keyFile != "-" {
		opts.Prepare = func() (err error) {
			f, err = platform.CreateKeyFile(keyFile)
			out = f
			return err
		}
	}
	admin, err := platform.BootstrapAdmin(ctx, b, opts)
	if err == nil {
		_, err = fmt.Fprintln(out, admin.Key)
	}
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(keyFile) // only ever our own new file
		}
	}
	var exists *platform.AdminExistsError
	if errors.As(err, &exists) {
		fmt.Fprintf(status, "skyflow: %v; no key written\n", err)
		return nil
	}
	if err != nil {
		if admin != nil {
			return fmt.Errorf("%s's API key %s could not be written, revoke it (DELETE /v1/apikeys/%[2]s): %w", admin.Principal, admin.KeyID, err)
		}
		return err
	}
	where := "on stdout"
	if f != nil {
		where = "in " + keyFile + " (mode 0600)"
	}
	if admin.Created {
		fmt.Fprintf(status, "skyflow: administrator %s (service account %q, role admin) made; its API key %s is %s\n", admin.Principal, platform.AdminAccountName, admin.KeyID, where)
	} else {
		fmt.Fprintf(status, "skyflow: an administrator exists already; a new API key %s for %s, made by an earlier bootstrap, is %s\n", admin.KeyID, admin.Principal, where)
	}
	return nil
}
