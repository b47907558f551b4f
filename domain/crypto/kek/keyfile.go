package kek

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// EnsureKeyFile returns the local master key stored at path, creating it with
// [KeySize] random bytes if it does not exist. A new file is written to a
// temporary name and linked into place, so a crash never leaves a partial
// key and two processes racing to create it agree on one key. Missing
// directories are created with mode 0700 and the file with mode 0600.
//
// An existing file must hold exactly [KeySize] bytes and must not be
// accessible to group or others; otherwise the error says how to fix it.
func EnsureKeyFile(path string) ([]byte, error) {
	key, err := readKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := createKeyFile(path); err != nil {
		return nil, err
	}
	return readKeyFile(path)
}

// readKeyFile reads and checks an existing key file. Its mode is taken from
// the open file, not the path, so the file checked is the file read.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("kek: master key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("kek: master key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("kek: master key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("kek: master key file %s has mode %04o, so other users may read it; "+
			"restrict it to its owner with: chmod 600 %s", path, perm, path)
	}
	key, err := io.ReadAll(io.LimitReader(f, KeySize+1))
	if err != nil {
		return nil, fmt.Errorf("kek: master key file: %w", err)
	}
	if len(key) != KeySize {
		n := fmt.Sprint(len(key))
		if len(key) > KeySize {
			n = "more than " + fmt.Sprint(KeySize)
		}
		return nil, fmt.Errorf("kek: master key file %s holds %s bytes; it must hold exactly %d raw bytes "+
			"(not base64 or hex: put base64 in SKYFLOW_MASTER_KEY instead). If nothing was ever encrypted "+
			"with it, delete it and a new one will be created; otherwise restore the original", path, n, KeySize)
	}
	return key, nil
}

func createKeyFile(path string) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("kek: create master key directory: %w", err)
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("kek: generate master key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".masterkey-*") // mode 0600
	if err != nil {
		return fmt.Errorf("kek: create master key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return fmt.Errorf("kek: write master key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("kek: write master key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("kek: write master key file: %w", err)
	}
	// Link, unlike rename, fails if path exists: a key another process
	// created meanwhile is kept, never replaced.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("kek: create master key file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
