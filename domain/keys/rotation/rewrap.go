package rotation

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyflow-oss/skyflow/domain/crypto"
	"github.com/skyflow-oss/skyflow/domain/shredding"
	"github.com/skyflow-oss/skyflow/domain/vaults"
	"github.com/skyflow-oss/skyflow/domain/vaults/schema"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	skymetrics "github.com/skyflow-oss/skyflow/runtime/metrics"
)

// DefaultRewrapSettle is how long after a rotation a rewrap may be
// declared finished: a request that loaded the keys just before the
// rotation may still write a cell under the old key until its timeout.
const DefaultRewrapSettle = time.Minute

// RewrapProgress is how far the re-encryption of a vault has got.
type RewrapProgress struct {
	VaultID     string     `json:"vault_id"`
	TargetKeyID uint32     `json:"target_key_id"`
	Rewrapped   int64      `json:"rewrapped"`
	Remaining   *int64     `json:"remaining"` // counted at the end of each pass
	StartedAt   time.Time  `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at"`
}

// Rewrap re-encrypts the vault's cells that older data keys sealed under
// its primary key, and re-indexes them under its primary index key
// (moveCell), batch cells a transaction, until it is done or the
// deadline passes. Each cell is opened and sealed with its own associated
// data and updated under a row lock; a cell a writer holds is skipped (the
// writer seals with the primary anyway) and found by the final count. The
// progress row lets any instance resume after a crash or redeploy, and the
// work is idempotent: a cell already under the primary is left alone.
//
// It is finished when a pass finds no cell left under an older key and
// the rotation is older than settle.
func (m *Manager) Rewrap(ctx context.Context, id string, batch int, deadline time.Time, settle time.Duration) (*RewrapProgress, error) {
	v, err := m.Vaults.LoadUnchecked(ctx, id)
	if err != nil {
		return nil, err
	}
	u, _ := vaults.ParseID(v.ID)
	target := v.Keys.PrimaryKeyID()
	var rotatedAt time.Time
	if err := m.Pool.QueryRow(ctx, `SELECT updated_at FROM vault_keysets WHERE vault_id = $1`, u).Scan(&rotatedAt); err != nil {
		return nil, vaults.Unavailable(err)
	}
	// A new target (another rotation) starts a new pass; the same one resumes.
	if _, err := m.Pool.Exec(ctx, `
		INSERT INTO vault_rewraps (vault_id, target_key_id) VALUES ($1, $2)
		ON CONFLICT (vault_id) DO UPDATE SET target_key_id = excluded.target_key_id, rewrapped = 0, remaining = NULL,
			cursor_record = NULL, cursor_column = NULL, started_at = now(), updated_at = now(), finished_at = NULL
		WHERE vault_rewraps.target_key_id <> excluded.target_key_id`, u, int64(target)); err != nil {
		return nil, vaults.Unavailable(err)
	}
	// At least one batch a call, so that every call makes progress.
	for first := true; first || time.Now().Before(deadline); first = false {
		n, err := m.rewrapBatch(ctx, v, u, target, batch)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			continue
		}
		// The pass reached the end: count what is left under older keys.
		var left int64
		if err := m.Pool.QueryRow(ctx, `SELECT count(*) FROM vault_cells WHERE vault_id = $1 AND substring(ciphertext from 2 for 4) <> $2`,
			u, keyIDBytes(target)).Scan(&left); err != nil {
			return nil, vaults.Unavailable(err)
		}
		finished := left == 0 && time.Since(rotatedAt) >= settle
		if _, err := m.Pool.Exec(ctx, `
			UPDATE vault_rewraps SET remaining = $2, cursor_record = NULL, cursor_column = NULL, updated_at = now(),
				finished_at = CASE WHEN $3 THEN now() END
			WHERE vault_id = $1 AND target_key_id = $4`, u, left, finished, int64(target)); err != nil {
			return nil, vaults.Unavailable(err)
		}
		if finished || left == 0 {
			break // done, or only waiting out the settle period
		}
	}
	return m.RewrapProgress(ctx, v.ID)
}

// rewrapBatch moves the next batch cells of the pass, returning how many
// cells it looked at (0 at the end of the pass).
func (m *Manager) rewrapBatch(ctx context.Context, v *vaults.Vault, u uuid.UUID, target uint32, batch int) (int, error) {
	var seen, moved int
	err := pgx.BeginFunc(ctx, m.Pool, func(tx pgx.Tx) error {
		var curRecord *uuid.UUID
		var curColumn *string
		err := tx.QueryRow(ctx, `SELECT cursor_record, cursor_column FROM vault_rewraps WHERE vault_id = $1 AND target_key_id = $2 FOR UPDATE`,
			u, int64(target)).Scan(&curRecord, &curColumn)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // another rotation took over; its rewrap starts anew
		}
		if err != nil {
			return err
		}
		from, col := uuid.Nil, ""
		if curRecord != nil {
			from, col = *curRecord, *curColumn
		}
		rows, err := tx.Query(ctx, `
			SELECT c.record_id, c.column_name, c.table_name, c.ciphertext, c.blind_index IS NOT NULL, c.unique_index IS NOT NULL, r.subject_key
			FROM vault_cells c JOIN vault_records r ON r.vault_id = c.vault_id AND r.id = c.record_id
			WHERE c.vault_id = $1 AND (c.record_id, c.column_name) > ($2, $3)
			ORDER BY c.record_id, c.column_name LIMIT $4 FOR UPDATE OF c SKIP LOCKED`, u, from, col, batch)
		if err != nil {
			return err
		}
		var cells []storedCell
		var subjects []uuid.UUID
		for rows.Next() {
			var c storedCell
			if err := rows.Scan(&c.record, &c.column, &c.table, &c.ciphertext, &c.indexed, &c.unique, &c.subject); err != nil {
				return err
			}
			if kid, ok := crypto.KeyID(c.ciphertext); !ok || kid != target {
				cells = append(cells, c)
			}
			if c.subject != nil {
				subjects = append(subjects, *c.subject)
			}
			seen++
			from, col = c.record, c.column
		}
		if err := rows.Err(); err != nil {
			return err
		}
		keys, err := shredding.SubjectKeys(ctx, tx, m.Vaults, v, subjects)
		if err != nil {
			return err
		}
		for _, c := range cells {
			if c.subject != nil {
				c.key = keys[*c.subject]
			}
			if err := moveCell(ctx, tx, v, u, c); err != nil {
				return err
			}
			moved++
		}
		if seen == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE vault_rewraps SET cursor_record = $2, cursor_column = $3, rewrapped = rewrapped + $4, updated_at = now()
			WHERE vault_id = $1`, u, from, col, moved)
		return err
	})
	if err != nil {
		return 0, vaults.Unavailable(err)
	}
	rewrappedCells.Add(float64(moved))
	return seen, nil
}

// storedCell is a cell as the rewrap reads it.
type storedCell struct {
	record          uuid.UUID
	column, table   string
	ciphertext      []byte
	indexed, unique bool
	subject         *uuid.UUID // the record's data-subject key, if any
	key             *crypto.SubjectKey
}

// moveCell re-seals one cell under the primary data key (within its data
// subject's layer, if it has one) and re-indexes it under the primary
// index key (Rotate turns both keysets at once). A deterministic token
// stays the value's token: its entry in the token map is filed under the
// new digest, so tokens handed out before the rotation keep resolving and
// the value keeps its token. A data_subject cell refiles its subject's key
// under the new digest too.
func moveCell(ctx context.Context, tx pgx.Tx, v *vaults.Vault, u uuid.UUID, c storedCell) error {
	where := crypto.Cell{VaultID: v.ID, Table: c.table, Column: c.column, RecordID: c.record.String()}
	plain, err := v.Keys.OpenFor(c.key, c.ciphertext, where)
	if err != nil {
		return apierr.Internal("a cell of the vault does not open with its keys")
	}
	sealed, err := v.Keys.SealFor(c.key, plain, where)
	if err != nil {
		return err
	}
	var index, unique []byte
	if c.indexed {
		if index, err = v.Keys.BlindIndex(c.table, c.column, plain); err != nil {
			return err
		}
		if c.unique {
			unique = index
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE vault_cells SET ciphertext = $4, blind_index = $5, unique_index = $6
		WHERE vault_id = $1 AND record_id = $2 AND column_name = $3`, u, c.record, c.column, sealed, index, unique); err != nil {
		return err
	}
	if t, ok := v.Schema.Table(c.table); ok && c.subject != nil && t.SubjectColumn() != nil && t.SubjectColumn().Name == c.column {
		if err := shredding.RefileSubjectKey(ctx, tx, v, *c.subject, schema.TextOf(plain)); err != nil {
			return err
		}
	}
	group, ok := deterministicGroup(v.Schema, c.table, c.column)
	if !ok {
		return nil
	}
	valueIndex, err := v.Keys.BlindIndex(schema.GroupIndexTable, group, plain)
	if err != nil {
		return err
	}
	// A value that a process still holding the old keys tokenized anew
	// has its entry under the new digest already; the old token then
	// stays filed under the old one, and still detokenizes through its cell.
	_, err = tx.Exec(ctx, `
		UPDATE vault_tokens t SET value_index = $4
		FROM vault_cells c
		WHERE c.vault_id = $1 AND c.record_id = $2 AND c.column_name = $3
		  AND t.vault_id = $1 AND t.token = c.token AND t.column_group = $5 AND t.value_index <> $4
		  AND NOT EXISTS (SELECT 1 FROM vault_tokens o WHERE o.vault_id = $1 AND o.column_group = $5 AND o.value_index = $4)`,
		u, c.record, c.column, valueIndex, group)
	return err
}

// deterministicGroup is the column group of table.column when it has
// deterministic tokens.
func deterministicGroup(s *schema.Vault, table, column string) (string, bool) {
	t, ok := s.Table(table)
	if !ok {
		return "", false
	}
	col, ok := t.Column(column)
	if !ok || !col.TokenType.Deterministic() {
		return "", false
	}
	return col.Group(t.Name), true
}

// RewrapProgress reads the progress of a vault's rewrap; nil when none began.
func (m *Manager) RewrapProgress(ctx context.Context, id string) (*RewrapProgress, error) {
	u, err := vaults.ParseID(id)
	if err != nil {
		return nil, err
	}
	p := RewrapProgress{VaultID: vaults.FormatID(u)}
	var target int64
	err = m.Pool.QueryRow(ctx, `SELECT target_key_id, rewrapped, remaining, started_at, finished_at FROM vault_rewraps WHERE vault_id = $1`, u).
		Scan(&target, &p.Rewrapped, &p.Remaining, &p.StartedAt, &p.FinishedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, vaults.Unavailable(err)
	}
	p.TargetKeyID = uint32(target)
	return &p, nil
}

// UnfinishedRewraps lists the vaults whose rewrap has not finished.
func (m *Manager) UnfinishedRewraps(ctx context.Context) ([]string, error) {
	rows, err := m.Pool.Query(ctx, `SELECT vault_id FROM vault_rewraps WHERE finished_at IS NULL ORDER BY updated_at`)
	if err != nil {
		return nil, vaults.Unavailable(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, vaults.Unavailable(err)
	}
	out := make([]string, len(ids))
	for i, u := range ids {
		out[i] = vaults.FormatID(u)
	}
	return out, nil
}

// keyIDBytes is a Tink key id as it appears after the version byte of a
// ciphertext's prefix.
func keyIDBytes(id uint32) []byte { return binary.BigEndian.AppendUint32(nil, id) }

// rewrappedCells counts the cells moved to a newer data key.
var rewrappedCells = func() prometheus.Counter {
	var err error
	c := skymetrics.Register(skymetrics.Registry, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "skyflow_vault_rewrapped_cells_total",
		Help: "Vault cells re-encrypted under a newer data key after a rotation.",
	}), &err)
	return c
}()
