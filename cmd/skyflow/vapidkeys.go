package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/skyflow-oss/skyflow/domain/push"
)

// runVAPIDKeys prints a new VAPID key pair (Web Push, RFC 8292) as the
// command that makes Secret skyflow-vapid, which push-vapid-key and
// notify-push read. subject is a contact for push services' operators.
func runVAPIDKeys(args []string) error {
	if len(args) != 1 || (!strings.HasPrefix(args[0], "mailto:") && !strings.HasPrefix(args[0], "https://")) {
		return errors.New("usage: skyflow vapid-keys mailto:<operator address> (or an https URL)")
	}
	return printVAPIDKeys(os.Stdout, args[0])
}

func printVAPIDKeys(w io.Writer, subject string) error {
	v, err := push.GenerateVAPID(subject)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "# Web Push's VAPID key pair: the private key stays in the Secret. Browsers\n")
	fmt.Fprintf(w, "# subscribe with the public key, so keep the pair: a new one means every\n# browser must subscribe again.\n")
	fmt.Fprintf(w, "kubectl -n skyflow create secret generic skyflow-vapid \\\n  --from-literal=public-key=%s \\\n  --from-literal=private-key=%s \\\n  --from-literal=subject=%s\n",
		v.PublicKey, v.PrivateKey, v.Subject)
	return nil
}
