package migrate

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// A State says where a migration stands in a database.
type State string

// The states a migration can be in.
const (
	Applied State = "applied" // recorded and its file unchanged
	Pending State = "pending" // in the files, not yet applied
	Changed State = "changed" // applied, but its file has changed since
	Missing State = "missing" // applied, but its file is gone
)

// A MigrationStatus is one migration's state, as [Status] reports it.
type MigrationStatus struct {
	ID        string    // NNNN_name
	Version   int64     // NNNN
	State     State     // applied, pending, changed or missing
	AppliedAt time.Time // zero when pending
}

// Status lists every migration, in version order, with its state in the
// database named by url. It changes nothing and takes no lock.
func Status(ctx context.Context, url string) ([]MigrationStatus, error) {
	ms, err := load(embedded)
	if err != nil {
		return nil, err
	}
	conn, err := connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	history, err := readHistory(ctx, conn)
	if err != nil {
		return nil, err
	}
	return status(ms, history), nil
}

func status(ms []migration, history map[int64]record) []MigrationStatus {
	var out []MigrationStatus
	files := map[int64]bool{}
	for _, m := range ms {
		files[m.version] = true
		s := MigrationStatus{ID: m.id(), Version: m.version, State: Pending}
		if r, ok := history[m.version]; ok {
			s.AppliedAt = r.appliedAt
			s.State = Applied
			if r.checksum != m.checksum || r.name != m.name {
				s.State = Changed
			}
		}
		out = append(out, s)
	}
	for _, r := range history {
		if !files[r.version] {
			out = append(out, MigrationStatus{ID: r.id(), Version: r.version, State: Missing, AppliedAt: r.appliedAt})
		}
	}
	slices.SortFunc(out, func(a, b MigrationStatus) int { return cmp.Compare(a.Version, b.Version) })
	return out
}
