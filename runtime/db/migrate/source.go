package migrate

import (
	"cmp"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
)

//go:embed sql/*.sql
var embedded embed.FS

// A migration is one SQL file.
type migration struct {
	version  int64
	name     string // the part after NNNN_, without .sql
	checksum string // hex SHA-256 of the file
	sql      string
}

// id is the file's stem, NNNN_name, as Up reports it.
func (m migration) id() string { return fmt.Sprintf("%04d_%s", m.version, m.name) }

var fileName = regexp.MustCompile(`^(\d{4,})_([a-z0-9_]+)\.sql$`)

// load reads the migrations in the directory "sql" of fsys, sorted by
// version. A file that does not follow NNNN_name.sql is an error rather than
// silently skipped.
func load(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, "sql")
	if err != nil {
		return nil, fmt.Errorf("migrate: read migrations: %w", err)
	}
	var ms []migration
	seen := map[int64]string{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		match := fileName.FindStringSubmatch(e.Name())
		if match == nil {
			return nil, fmt.Errorf("migrate: file %s: name must be NNNN_name.sql (lower case, digits, underscores)", e.Name())
		}
		version, err := strconv.ParseInt(match[1], 10, 64)
		if err != nil || version < 1 {
			return nil, fmt.Errorf("migrate: file %s: bad version", e.Name())
		}
		if other, dup := seen[version]; dup {
			return nil, fmt.Errorf("migrate: files %s and %s have the same version", other, e.Name())
		}
		seen[version] = e.Name()
		body, err := fs.ReadFile(fsys, path.Join("sql", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("migrate: read %s: %w", e.Name(), err)
		}
		if len(body) == 0 {
			return nil, fmt.Errorf("migrate: file %s is empty", e.Name())
		}
		sum := sha256.Sum256(body)
		ms = append(ms, migration{
			version:  version,
			name:     match[2],
			checksum: hex.EncodeToString(sum[:]),
			sql:      string(body),
		})
	}
	slices.SortFunc(ms, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	return ms, nil
}
