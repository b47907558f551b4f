package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/skyflow-oss/skyflow/local/manifest"
)

// Build compiles the Package of every Service into binDir with a single
// go build invocation, so that shared packages are compiled once. The
// binary of a package is named after its last import path element; several
// Services may run one package (as several Knative Services may run one
// image), but two packages that would give one binary name are an error. On failure the error carries go's output; on success any
// output (warnings) is copied to log, which may be nil.
func Build(ctx context.Context, services []manifest.Service, binDir string, log io.Writer) error {
	if log == nil {
		log = io.Discard
	}
	if binDir == "" {
		return errors.New("build: no binary directory")
	}
	var (
		pkgs     []string
		seen     = map[string]bool{}
		binaries = map[string]string{} // binary name → package
		errs     []error
	)
	for _, svc := range services {
		if svc.Package == "" {
			errs = append(errs, fmt.Errorf("%s: Service %q: no Go package to build (the image must be ko://<import path>)", svc.File, svc.Name))
			continue
		}
		if other, ok := binaries[binaryName(svc.Package)]; ok && other != svc.Package {
			errs = append(errs, fmt.Errorf("%s: Service %q: ko://%s and ko://%s would build binaries of the same name %q; rename one package",
				svc.File, svc.Name, svc.Package, other, binaryName(svc.Package)))
			continue
		}
		binaries[binaryName(svc.Package)] = svc.Package
		if !seen[svc.Package] {
			seen[svc.Package] = true
			pkgs = append(pkgs, svc.Package)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if len(pkgs) == 0 {
		return nil
	}
	if err := os.MkdirAll(binDir, 0o750); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build: the go command is not on PATH: %w", err)
	}

	begin := time.Now()
	// The trailing separator makes go treat -o as a directory even for one package.
	args := append([]string{"build", "-o", filepath.Clean(binDir) + string(filepath.Separator)}, pkgs...)
	cmd := exec.CommandContext(ctx, gobin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("build: %w", context.Cause(ctx))
		}
		return fmt.Errorf("go build of %d functions failed (%w):\n%s", len(pkgs), err, strings.TrimRight(out.String(), "\n"))
	}
	if out.Len() > 0 {
		_, _ = log.Write(out.Bytes())
	}

	// go build -o dir/ silently skips packages that are not commands.
	for _, pkg := range pkgs {
		if _, err := os.Stat(binaryPath(binDir, pkg)); err != nil {
			errs = append(errs, fmt.Errorf("build: %s produced no binary: it is not a main package", pkg))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintf(log, "built %d functions in %v\n", len(pkgs), time.Since(begin).Round(time.Millisecond))
	return nil
}

// Prebuilt is a Build for binaries made beforehand into binDir (make test
// builds every function once for all the test processes that start
// platforms): it builds nothing, and fails naming any service whose binary
// is missing.
func Prebuilt(_ context.Context, services []manifest.Service, binDir string, _ io.Writer) error {
	var errs []error
	for _, svc := range services {
		if _, err := os.Stat(binaryPath(binDir, svc.Package)); err != nil {
			errs = append(errs, fmt.Errorf("%s: Service %q: no prebuilt binary of %s in %s", svc.File, svc.Name, svc.Package, binDir))
		}
	}
	return errors.Join(errs...)
}

// binaryPath is where Build puts the binary of an import path.
func binaryPath(binDir, pkg string) string {
	name := binaryName(pkg)
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	return filepath.Join(binDir, name)
}

// binaryName is the name go build gives the binary of an import path: its
// last element, or the one before a major version suffix such as /v2.
func binaryName(pkg string) string {
	pkg = strings.TrimSuffix(pkg, "/")
	_, elem := path.Split(pkg)
	if elem != pkg && isMajorVersion(elem) {
		_, elem = path.Split(path.Dir(pkg))
	}
	return elem
}

// isMajorVersion reports whether s is a module major version suffix (v2, v3, …).
func isMajorVersion(s string) bool {
	if len(s) < 2 || s[0] != 'v' || s[1] == '0' || (s[1] == '1' && len(s) == 2) {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
