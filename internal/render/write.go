package render

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Write renders the manifests and writes those that changed under
// repoRoot, and removes the stale ones (generated files that no func.yaml
// renders any more). It returns what it wrote and removed, relative to
// repoRoot.
func Write(repoRoot string) (changed []string, err error) {
	want, err := Render(repoRoot)
	if err != nil {
		return nil, err
	}
	for _, rel := range sortedKeys(want) {
		file := filepath.Join(repoRoot, filepath.FromSlash(rel))
		if have, err := os.ReadFile(file); err == nil && bytes.Equal(have, want[rel]) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil { //nolint:gosec // G301: a directory of the repository
			return changed, err
		}
		if err := os.WriteFile(file, want[rel], 0o644); err != nil { //nolint:gosec // G306: a manifest in the repository, committed and read by kubectl and CI
			return changed, err
		}
		changed = append(changed, "wrote "+rel)
	}
	stale, err := staleFiles(repoRoot, want)
	if err != nil {
		return changed, err
	}
	for _, rel := range stale {
		if err := os.Remove(filepath.Join(repoRoot, filepath.FromSlash(rel))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return changed, err
		}
		changed = append(changed, "removed "+rel)
	}
	return changed, nil
}

// DriftError lists how the files under repoRoot differ from the render.
type DriftError struct {
	// Differ are rendered files whose content is not the render's.
	Differ []string
	// Missing are rendered files that do not exist.
	Missing []string
	// Stale are generated files that no func.yaml renders any more.
	Stale []string
}

func (e *DriftError) Error() string {
	var b strings.Builder
	b.WriteString("the Knative manifests are not what func.yaml renders; run make manifests (skyflow manifests) and commit the result:")
	for _, f := range e.Differ {
		fmt.Fprintf(&b, "\n  %s differs from the render", f)
	}
	for _, f := range e.Missing {
		fmt.Fprintf(&b, "\n  %s is missing", f)
	}
	for _, f := range e.Stale {
		fmt.Fprintf(&b, "\n  %s is stale (generated, but no func.yaml renders it any more)", f)
	}
	return b.String()
}

// Check renders the manifests and compares them with the files under
// repoRoot. It returns a *DriftError listing every file that differs, is
// missing or is stale, or the render's error.
func Check(repoRoot string) error {
	want, err := Render(repoRoot)
	if err != nil {
		return err
	}
	drift := &DriftError{}
	for _, rel := range sortedKeys(want) {
		have, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(rel)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			drift.Missing = append(drift.Missing, rel)
		case err != nil:
			return err
		case !bytes.Equal(have, want[rel]):
			drift.Differ = append(drift.Differ, rel)
		}
	}
	if drift.Stale, err = staleFiles(repoRoot, want); err != nil {
		return err
	}
	if len(drift.Differ)+len(drift.Missing)+len(drift.Stale) > 0 {
		return drift
	}
	return nil
}

// staleFiles are the generated files of the output directories that are
// not in the render.
func staleFiles(repoRoot string, want map[string][]byte) ([]string, error) {
	var stale []string
	for _, dir := range OutputDirs {
		generated, _, err := yamlFiles(repoRoot, dir)
		if err != nil {
			return nil, err
		}
		for _, name := range generated {
			if rel := path.Join(dir, name); want[rel] == nil {
				stale = append(stale, rel)
			}
		}
	}
	slices.Sort(stale)
	return stale, nil
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
