package deps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// account is the user that runs initdb and postgres.
type account struct {
	name     string
	uid, gid uint32
	cred     *syscall.Credential // nil: run as ourselves
}

// fallbackUser is created when we are root and the system has no postgres
// user (PostgreSQL installed from source, or a trimmed image).
const fallbackUser = "skyflow-pg"

// postgresAccount returns ourselves, or when we are root (PostgreSQL refuses
// to run as root) the Debian package's postgres user, else skyflow-pg,
// created as a system user when missing.
func postgresAccount(ctx context.Context, w io.Writer) (account, error) {
	if os.Geteuid() != 0 {
		return account{name: "self", uid: uint32(os.Geteuid()), gid: uint32(os.Getegid())}, nil //nolint:gosec // G115: ids are 32-bit and never negative on Linux
	}
	for _, name := range []string{"postgres", fallbackUser} {
		if u, err := user.Lookup(name); err == nil {
			return accountOf(u)
		}
	}
	fmt.Fprintf(w, "deps: PostgreSQL cannot run as root and there is no postgres user; creating system user %s\n", fallbackUser)
	out, err := exec.CommandContext(ctx, "useradd", "--system", "--user-group", "--no-create-home",
		"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", fallbackUser).CombinedOutput()
	if err != nil {
		return account{}, fmt.Errorf("deps: PostgreSQL cannot run as root, there is no postgres user, and creating %s failed (%v: %s); "+
			"create a system user named postgres or %s, or run as a normal user", fallbackUser, err, out, fallbackUser)
	}
	u, err := user.Lookup(fallbackUser)
	if err != nil {
		return account{}, fmt.Errorf("deps: created user %s but cannot look it up: %w", fallbackUser, err)
	}
	return accountOf(u)
}

func accountOf(u *user.User) (account, error) {
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return account{}, fmt.Errorf("deps: user %s has a non-numeric id: %w", u.Username, err)
	}
	a := account{name: u.Username, uid: uint32(uid), gid: uint32(gid)}
	// Groups: an empty list drops root's supplementary groups.
	a.cred = &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: []uint32{}}
	return a, nil
}

// pgDataDir returns where the cluster's files live: dir/data, or when the
// server's user cannot reach dir (a checkout under /root, mode 700) a
// directory under the system temp dir named after our uid and dir.
func pgDataDir(dir string, a account, w io.Writer) (string, error) {
	if a.cred == nil {
		return filepath.Join(dir, "data"), nil
	}
	blocked := untraversable(dir, a.uid, a.gid)
	if blocked == "" {
		return filepath.Join(dir, "data"), nil
	}
	fb := fallbackDataDir(dir, os.Geteuid())
	if b := untraversable(filepath.Dir(fb), a.uid, a.gid); b != "" {
		return "", fmt.Errorf("deps: user %s cannot enter %s (so cannot use %s) nor %s; "+
			"put the repository somewhere %s can reach, or set TMPDIR to such a directory", a.name, blocked, dir, b, a.name)
	}
	fmt.Fprintf(w, "deps: postgres: user %s cannot enter %s, so the data lives in %s (lost if the temp dir is cleared)\n", a.name, blocked, fb)
	return fb, nil
}

// fallbackDataDir is os.TempDir()/skyflow-<uid>-<hash of dir>: stable for a
// given checkout, distinct between checkouts and users.
func fallbackDataDir(dir string, uid int) string {
	sum := sha256.Sum256([]byte(dir))
	return filepath.Join(os.TempDir(), fmt.Sprintf("skyflow-%d-%s", uid, hex.EncodeToString(sum[:])[:12]))
}

// untraversable returns the outermost directory on the way to (and
// including) path that uid:gid cannot search, or "" if there is none. It reads
// only the mode bits (no ACLs) and the primary group, which matches the
// credential we run the server with (no supplementary groups).
func untraversable(path string, uid, gid uint32) string {
	if uid == 0 {
		return ""
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		abs = resolved
	}
	var chain []string
	for p := abs; ; p = filepath.Dir(p) {
		chain = append(chain, p)
		if p == filepath.Dir(p) {
			break
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		p := chain[i]
		fi, err := os.Stat(p)
		if err != nil {
			return p
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return ""
		}
		var bit fs.FileMode = 0o001
		switch {
		case st.Uid == uid:
			bit = 0o100
		case st.Gid == gid:
			bit = 0o010
		}
		if fi.Mode().Perm()&bit == 0 {
			return p
		}
	}
	return ""
}

// prepareDataDir creates the data directory owned by the server's user with
// mode 700 (PostgreSQL insists), refusing one that a third user owns: in a
// shared temp dir that would let them read or plant data.
func prepareDataDir(dataDir string, a account) error {
	fi, err := os.Lstat(dataDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(dataDir, 0o700); err != nil {
			return fmt.Errorf("deps: create data directory: %w", err)
		}
		if fi, err = os.Lstat(dataDir); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("deps: data directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("deps: %s is not a directory; remove it", dataDir)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if a.cred != nil && st.Uid != a.uid {
		if st.Uid != 0 {
			return fmt.Errorf("deps: data directory %s belongs to uid %d, not to %s; remove it if it is not yours", dataDir, st.Uid, a.name)
		}
		if err := chownTree(dataDir, int(a.uid), int(a.gid)); err != nil {
			return fmt.Errorf("deps: give %s to user %s: %w", dataDir, a.name, err)
		}
	}
	if err := os.Chmod(dataDir, 0o700); err != nil { //nolint:gosec // G302: a directory; PostgreSQL requires exactly 0700
		return fmt.Errorf("deps: data directory: %w", err)
	}
	return nil
}

// chownTree hands a tree to the server's user. Lchown never follows links,
// and working inside an os.Root keeps a link swapped in meanwhile for a
// directory from leading the walk out of the tree.
func chownTree(dir string, uid, gid int) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	return fs.WalkDir(root.FS(), ".", func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return root.Lchown(p, uid, gid)
	})
}

// writeOwned writes a file the server reads and hands it to its user.
func writeOwned(path string, data []byte, a account) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	if a.cred != nil {
		return os.Chown(path, int(a.uid), int(a.gid))
	}
	return nil
}
