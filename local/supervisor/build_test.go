package supervisor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skyflow-oss/skyflow/local/manifest"
)

func TestBuild(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	var log syncBuffer
	// The same package twice is built once.
	if err := Build(ctx, []manifest.Service{fnService("fn"), fnService("fn")}, dir, &log); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "fn")); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("no executable fn in %s: %v", dir, err)
	}
	if !strings.Contains(log.String(), "built 1 functions") {
		t.Errorf("log = %q, want a summary", log.String())
	}
}

func TestBuildErrors(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tc := range []struct {
		name string
		svc  manifest.Service
		want []string
	}{
		{"two packages, one binary name", fnService("other-fn", func(s *manifest.Service) { s.Package = "github.com/skyflow-oss/skyflow/other/fn" }),
			[]string{"knative/other-fn.yaml", `"other-fn"`, `same name "fn"`}},
		{"no such package", fnService("nope", func(s *manifest.Service) { s.Package = "github.com/skyflow-oss/skyflow/local/nope" }),
			[]string{"go build", "local/nope"}},
		{"not a command", fnService("manifest", func(s *manifest.Service) { s.Package = "github.com/skyflow-oss/skyflow/local/manifest" }),
			[]string{"local/manifest produced no binary: it is not a main package"}},
	} {
		// fn is built alongside: go fails outright only when no package is a command.
		err := Build(ctx, []manifest.Service{fnService("fn"), tc.svc}, t.TempDir(), nil)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, w)
			}
		}
	}
}

// Prebuilt builds nothing: it accepts a directory holding every binary and
// names each service whose binary is missing.
func TestPrebuilt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "fn"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Prebuilt(context.Background(), []manifest.Service{fnService("fn")}, dir, nil); err != nil {
		t.Fatalf("every binary present: %v", err)
	}
	missing := fnService("other", func(s *manifest.Service) { s.Package = "github.com/skyflow-oss/skyflow/functions/other" })
	err := Prebuilt(context.Background(), []manifest.Service{fnService("fn"), missing}, dir, nil)
	if err == nil || !strings.Contains(err.Error(), `Service "other": no prebuilt binary of github.com/skyflow-oss/skyflow/functions/other`) {
		t.Fatalf("a missing binary: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("Prebuilt wrote into %s: %v", dir, entries)
	}
}

func TestBinaryName(t *testing.T) {
	for pkg, want := range map[string]string{
		"github.com/skyflow-oss/skyflow/functions/records-insert": "records-insert",
		"example.com/tool/v2":  "tool",
		"example.com/tool/v1":  "v1",
		"example.com/tool/v2x": "v2x",
		"fn":                   "fn",
	} {
		if got := binaryName(pkg); got != want {
			t.Errorf("binaryName(%q) = %q, want %q", pkg, got, want)
		}
	}
}
