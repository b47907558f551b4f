package deps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// minPGMajor is the oldest PostgreSQL the vault's schema is written for.
const minPGMajor = 15

// pgBinGlob is where Debian and Ubuntu install each PostgreSQL version; their
// packages put no initdb or pg_ctl in PATH.
const pgBinGlob = "/usr/lib/postgresql/*/bin"

// pgBin is one PostgreSQL installation: the directory holding initdb and
// postgres, and its major version.
type pgBin struct {
	dir   string
	major int
}

func (b pgBin) path(name string) string { return filepath.Join(b.dir, name) }

// EnsureInstalled checks that PostgreSQL (15 or newer), redis-server and
// pgbouncer are installed, and installs the missing ones with apt-get when
// running as root, streaming apt's output to w. Not as root, it returns an
// error naming the command to run.
func EnsureInstalled(ctx context.Context, w io.Writer) error {
	w = orDiscard(w)
	pkgs, what := missing()
	if len(pkgs) == 0 {
		return nil
	}
	cmdline := "apt-get install -y " + strings.Join(pkgs, " ")
	if os.Geteuid() != 0 {
		return fmt.Errorf("deps: %s not installed; install with:\n\n    sudo %s", what, cmdline)
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("deps: %s not installed, and apt-get is not available to install it: "+
			"install PostgreSQL %d+, Redis 7 and PgBouncer with your OS package manager "+
			"(initdb and postgres are looked up in PATH and %s, redis-server in PATH, pgbouncer in PATH and /usr/sbin)", what, minPGMajor, pgBinGlob)
	}
	fmt.Fprintf(w, "deps: %s not installed; running apt-get update && %s\n", what, cmdline)
	if err := aptGet(ctx, w, "update"); err != nil {
		return err
	}
	if err := aptGet(ctx, w, append([]string{"install", "-y"}, pkgs...)...); err != nil {
		return err
	}
	if pkgs, what := missing(); len(pkgs) > 0 {
		return fmt.Errorf("deps: %s still not found after `%s`; check apt's output above", what, cmdline)
	}
	return nil
}

func aptGet(ctx context.Context, w io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("deps: `apt-get %s` failed (%v); see its output above, fix the cause "+
			"(network, another apt holding the lock, a broken package), then try again",
			strings.Join(args, " "), err)
	}
	return nil
}

// missing names the Debian packages to install and describes what is missing.
func missing() (pkgs []string, what string) {
	var parts []string
	if _, err := findPostgres(0); err != nil {
		pkgs = append(pkgs, "postgresql")
		parts = append(parts, fmt.Sprintf("PostgreSQL %d+ (initdb, postgres)", minPGMajor))
	}
	if _, err := findRedis(); err != nil {
		pkgs = append(pkgs, "redis-server")
		parts = append(parts, "Redis (redis-server)")
	}
	if _, err := findPgBouncer(); err != nil {
		pkgs = append(pkgs, "pgbouncer")
		parts = append(parts, "PgBouncer (pgbouncer)")
	}
	if len(parts) > 1 {
		return pkgs, strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
	}
	return pkgs, strings.Join(parts, "")
}

// findRedis returns the path of redis-server; Debian puts it in /usr/bin,
// which a minimal PATH (cron, some CI runners) may lack.
func findRedis() (string, error) {
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server"} {
		if isExecutable(p) {
			return p, nil
		}
	}
	return "", errors.New("deps: redis-server not found in PATH; run EnsureInstalled (skyflow deps) or `sudo apt-get install -y redis-server`")
}

// findPostgres returns the installation of exactly major wantMajor (to run a
// data directory made by that version), or with wantMajor 0 the newest one
// that is at least minPGMajor.
func findPostgres(wantMajor int) (pgBin, error) {
	var cands []pgBin
	seen := map[string]bool{}
	add := func(dir string) {
		if resolved, err := filepath.EvalSymlinks(dir); err == nil {
			dir = resolved
		}
		if seen[dir] {
			return
		}
		seen[dir] = true
		if !isExecutable(filepath.Join(dir, "initdb")) || !isExecutable(filepath.Join(dir, "postgres")) {
			return
		}
		out, err := exec.Command(filepath.Join(dir, "postgres"), "--version").Output() //nolint:gosec // G204: the PostgreSQL installation found on PATH or under the packages' directory
		if err != nil {
			return
		}
		if major, ok := parsePGVersion(string(out)); ok {
			cands = append(cands, pgBin{dir: dir, major: major})
		}
	}
	// Follow PATH's initdb to its real directory: /usr/local/bin/initdb is
	// often a symlink into /usr/lib/postgresql/N/bin.
	if p, err := exec.LookPath("initdb"); err == nil {
		if resolved, err := filepath.EvalSymlinks(p); err == nil {
			p = resolved
		}
		add(filepath.Dir(p))
	}
	dirs, _ := filepath.Glob(pgBinGlob)
	for _, d := range dirs {
		add(d)
	}
	if b, ok := pickPostgres(cands, wantMajor); ok {
		return b, nil
	}
	if wantMajor > 0 {
		return pgBin{}, fmt.Errorf("deps: the data directory was made by PostgreSQL %d, which is not installed "+
			"(found %s); install postgresql-%d, or delete the data directory to start with empty data",
			wantMajor, describePG(cands), wantMajor)
	}
	return pgBin{}, fmt.Errorf("deps: PostgreSQL %d or newer not found in PATH or %s (found %s); "+
		"run EnsureInstalled (skyflow deps) or `sudo apt-get install -y postgresql`", minPGMajor, pgBinGlob, describePG(cands))
}

// pickPostgres chooses exactly wantMajor, or else the newest at least minPGMajor.
func pickPostgres(cands []pgBin, wantMajor int) (pgBin, bool) {
	var best pgBin
	for _, c := range cands {
		switch {
		case wantMajor > 0 && c.major == wantMajor:
			return c, true
		case wantMajor == 0 && c.major >= minPGMajor && c.major > best.major:
			best = c
		}
	}
	return best, best.dir != ""
}

var pgVersionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)`)

// parsePGVersion reads the major version from `postgres --version`, e.g.
// "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)".
func parsePGVersion(s string) (int, bool) {
	m := pgVersionRE.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil
}

func describePG(cands []pgBin) string {
	if len(cands) == 0 {
		return "none"
	}
	var s []string
	for _, c := range cands {
		s = append(s, fmt.Sprintf("%d in %s", c.major, c.dir))
	}
	slices.Sort(s)
	return strings.Join(s, ", ")
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
