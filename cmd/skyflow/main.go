// Command skyflow is Skyflow's command line: the local platform (dev), the
// database migrations (migrate), the first administrator (admin
// bootstrap), and the private PostgreSQL and Redis that the tests run
// against (deps).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/skyflow-oss/skyflow/local/kafka"
)

const usage = `usage: skyflow <command> [flags]

commands:
  dev                     run the whole platform locally (what 'make run' does)
  migrate [status]        apply (or list) the database migrations on DATABASE_URL
  admin bootstrap -key-file FILE|-
                          make the first administrator on DATABASE_URL (a service
                          account with the role admin, and its API key to FILE,
                          mode 0600, or stdout), unless an administrator exists
  manifests [-check]      render knative/ Services and eventing/ Triggers from every
                          func.yaml (what 'make manifests' does); -check only compares
  deps run -- CMD [ARG…]  start private PostgreSQL and Redis under .dev/, run CMD
                          with SKYFLOW_TEST_DATABASE_URL and SKYFLOW_TEST_REDIS_URL,
                          then stop them (what 'make test' does)
  audit verify            recompute the audit log's hash chain on DATABASE_URL
  kek rewrap [-all]       move every vault keyset and signing key to the current
                          key-encryption key (a KEK rotation; records untouched)
  sender-key [NAME]       print a new signing key for a sender (default gateway) and
                          the public half that functions trust (SKYFLOW_TRUSTED_SENDERS)
  vapid-keys SUBJECT      print a new Web Push VAPID key pair as the command that makes
                          Secret skyflow-vapid (SUBJECT: mailto:ops@example.com)

Run 'skyflow <command> -h' for a command's flags.
`

func main() { os.Exit(runCommand()) }

// runCommand runs the command os.Args names and returns the exit status.
func runCommand() int {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "dev":
		err = runDev(ctx, args)
	case "migrate":
		err = runMigrate(ctx, args)
	case "admin":
		err = runAdmin(ctx, args)
	case "deps":
		err = runDeps(ctx, args)
	case "manifests":
		err = runManifests(ctx, args)
	case "audit":
		err = runAudit(ctx, args)
	case "kek":
		err = runKEK(ctx, args)
	case "sender-key":
		err = runSenderKey(args)
	case "vapid-keys":
		err = runVAPIDKeys(args)
	case kafka.Command: // hidden: the embedded Kafka broker's own process
		err = runKafkaBroker(ctx, args)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "skyflow: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	var exit exitError
	if errors.As(err, &exit) {
		return int(exit)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "skyflow:", err)
		return 1
	}
	return 0
}

// exitError carries a child command's exit status through to ours.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// projectRoot is the directory of Skyflow's go.mod, found from the working
// directory upwards: .dev/ and the manifests are relative to it.
func projectRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/skyflow-oss/skyflow\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run skyflow inside the Skyflow repository (no go.mod of github.com/skyflow-oss/skyflow above the working directory)")
		}
		dir = parent
	}
}
