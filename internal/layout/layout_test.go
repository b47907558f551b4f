// Package layout_test holds the rules of the import graph that the
// folder names promise (README, "Layout"): a function is an adapter over
// runtime/ and domain/, the runtime knows no domain, and the local
// platform never reaches a function binary.
package layout_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/skyflow-oss/skyflow/"

// imports maps each non-test Go file under root (a path relative to the
// repository) to the module packages it imports, as repository paths.
func imports(t *testing.T, repo string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir(repo, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repo, path)
		if d.IsDir() {
			switch {
			case rel == ".dev" || rel == "bin" || rel == "web" || strings.HasPrefix(d.Name(), "."),
				d.Name() == "testdata" || d.Name() == "node_modules":
				if rel != "." {
					return filepath.SkipDir
				}
			case rel == "knative/validate":
				return filepath.SkipDir // a module of its own
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if strings.HasPrefix(p, module) {
				out[filepath.ToSlash(rel)] = append(out[filepath.ToSlash(rel)], strings.TrimPrefix(p, module))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func under(path, dir string) bool { return path == dir || strings.HasPrefix(path, dir+"/") }

// function returns the function folder a path is in ("" outside functions/).
func function(path string) string {
	parts := strings.Split(path, "/")
	if len(parts) < 2 || parts[0] != "functions" {
		return ""
	}
	return parts[0] + "/" + parts[1]
}

// testKit says whether a file is in a package made for tests, named as
// net/http/httptest is.
func testKit(path string) bool {
	return strings.HasSuffix(filepath.Base(filepath.Dir(path)), "test")
}

func TestImportGraph(t *testing.T) {
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(repo, "go.mod")); err != nil {
		t.Fatalf("no repository root at %s: %v", repo, err)
	}
	graph := imports(t, repo)
	if len(graph) < 100 {
		t.Fatalf("found imports in only %d files: the walk is wrong", len(graph))
	}
	for file, deps := range graph {
		for _, dep := range deps {
			var why string
			switch {
			case function(file) != "" && function(dep) != "" && function(dep) != function(file):
				why = "a function imports another function"
			case under(file, "runtime") && (under(dep, "domain") || under(dep, "functions")):
				why = "the runtime imports a domain service or a function"
			case under(file, "domain") && under(dep, "functions"):
				why = "a domain service imports a function"
			case under(dep, "local") && !under(file, "local") && !under(file, "cmd"):
				why = "only local/ and cmd/ may import the local platform"
			case under(dep, "testkit") && !under(file, "testkit") && !under(file, "tests") && !testKit(file):
				why = "a test kit is imported outside tests"
			case under(dep, "cmd") || under(dep, "tests"):
				why = "a command or the end-to-end tests are imported"
			}
			if why != "" {
				t.Errorf("%s imports %s: %s", file, dep, why)
			}
		}
	}
}
