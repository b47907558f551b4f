package main

import (
	"fmt"
	"io"
	"os"

	"github.com/skyflow-oss/skyflow/runtime/sender"
)

// runSenderKey prints a new sender key pair for a cluster: the seed goes
// into the sender's Secret (the gateway's: skyflow-gateway, key
// sender-key), the public half into skyflow-config's trusted-senders.
func runSenderKey(args []string) error {
	name := sender.Gateway
	if len(args) > 0 {
		name = args[0]
	}
	return printSenderKey(os.Stdout, name)
}

func printSenderKey(w io.Writer, name string) error {
	s, err := sender.GenerateSigner(name)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "# the %s's private seed: keep it in its Secret only\nsender-key: %s\n", name, s.Seed())
	fmt.Fprintf(w, "# add to skyflow-config trusted-senders (comma-separated)\ntrusted-sender: %s=%s\n", name, s.PublicKey())
	return nil
}
