package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/skyflow-oss/skyflow/internal/render"
)

// runManifests renders the Knative Services and Triggers from every
// func.yaml (make manifests), or with -check reports the committed files
// that differ from the render.
func runManifests(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("manifests", flag.ContinueOnError)
	check := fs.Bool("check", false, "write nothing; fail listing every manifest that differs from the render, is missing or is stale")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `usage: skyflow manifests [-check]

Renders a Knative Service per function (%s/<name>.yaml) and a
Trigger per subscription (%s/<name>[-<n>].yaml), with their
kustomization.yaml, from functions/<name>/func.yaml laid over ./func.yaml;
removes the generated files that no func.yaml renders any more.

`, render.ServicesDir, render.TriggersDir)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("manifests takes no arguments, got %q", fs.Args())
	}
	root, err := projectRoot()
	if err != nil {
		return err
	}
	if *check {
		if err := render.Check(root); err != nil {
			return err
		}
		fmt.Println("manifests: up to date with func.yaml")
		return nil
	}
	changed, err := render.Write(root)
	for _, c := range changed {
		fmt.Fprintln(os.Stdout, "manifests:", c)
	}
	if err != nil {
		return err
	}
	if len(changed) == 0 {
		fmt.Println("manifests: up to date with func.yaml")
	}
	return nil
}
