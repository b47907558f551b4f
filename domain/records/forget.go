package records

import (
	"context"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/domain/shredding"
	"github.com/skyflow-oss/skyflow/domain/vaults/policy"
	"github.com/skyflow-oss/skyflow/domain/vaults/schema"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// SubjectForgottenType: a data subject's records and key are gone from the
// database; crypto_shredding says whether the backups followed yet
// (shredding.SubjectShreddedType says when they do).
const SubjectForgottenType = "com.skyflow.vault.subject.forgotten"

// Crypto-shredding states of a forget.
const (
	ShredDone      = "done"       // the epoch key that wrapped the subject's key is destroyed
	ShredPending   = "pending"    // the rest of the work is left to keys-rewrap
	ShredNotNeeded = "not_needed" // the vault never held the subject
)

// maxSubjectLength bounds a subject identifier: longer than any data_subject
// value a string column can hold.
const maxSubjectLength = schema.MaxValueBytes

// ForgetRequest is POST /v1/vaults/{vaultID}/subjects/forget.
type ForgetRequest struct {
	// Subject is the identifier the records hold in their data_subject
	// column, as text (an integer column's 42 is "42").
	Subject string `json:"subject"`
}

// ForgetResponse answers a forget. It never repeats the subject.
type ForgetResponse struct {
	ForgetID       string         `json:"forget_id,omitempty"`
	VaultID        string         `json:"vault_id"`
	RecordsDeleted int            `json:"records_deleted"`
	Tables         map[string]int `json:"tables"`
	// CryptoShredding is done, pending or not_needed.
	CryptoShredding string `json:"crypto_shredding"`
}

// forgetting is the data of a SubjectForgottenType event: ids and counts.
type forgetting struct {
	VaultID         string         `json:"vault_id"`
	ForgetID        string         `json:"forget_id"`
	Records         int            `json:"records"`
	Tables          map[string]int `json:"tables"`
	CryptoShredding string         `json:"crypto_shredding"`
}

// Forget erases one data subject from a vault ("right to be forgotten"):
// every record of every data_subject table that belongs to the subject is
// deleted with its tokens, and so is the subject's key, in one
// transaction with the events; then the subject's key is shredded from
// the backups too (shredding.Shredder.ShredSubjects) for up to shredFor, and what is
// left keys-rewrap finishes. The caller needs the delete right on every
// table with a data_subject column.
func (s *Service) Forget(ctx context.Context, p request.Principal, vaultID string, req ForgetRequest, shredFor time.Duration) (*ForgetResponse, error) {
	c, err := s.begin(ctx, p, vaultID, "forget")
	if err != nil {
		return nil, err
	}
	if req.Subject == "" || len(req.Subject) > maxSubjectLength || !utf8.ValidString(req.Subject) {
		return nil, apierr.InvalidArgument("subject must be the data subject's identifier as text: 1 to %d bytes of UTF-8", maxSubjectLength)
	}
	var tables []*schema.Table
	for i := range c.v.Schema.Tables {
		if t := &c.v.Schema.Tables[i]; t.SubjectColumn() != nil {
			tables = append(tables, t)
			if err := c.require(policy.Delete, t.Name); err != nil {
				c.deny(ctx, err)
				return nil, err
			}
		}
	}
	if len(tables) == 0 {
		return nil, apierr.InvalidArgument("this vault has no table with a data_subject column, so it holds no data subjects to forget")
	}
	res := &ForgetResponse{VaultID: c.v.ID, Tables: map[string]int{}, CryptoShredding: ShredNotNeeded}
	err = c.commit(ctx, func(tx pgx.Tx) error {
		keys, err := c.subjectKeysOf(ctx, tx, tables, req.Subject)
		if err != nil || len(keys) == 0 {
			return err
		}
		return c.forget(ctx, tx, keys, res)
	})
	if err != nil {
		return nil, err
	}
	if res.CryptoShredding == ShredPending {
		n, err := shredding.New(s.Backend, s.Source).ShredSubjects(ctx, c.v.ID, time.Now().Add(shredFor))
		switch {
		case err != nil:
			slog.WarnContext(ctx, "a forgotten subject's epoch could not be shredded yet; keys-rewrap retries", "vault", c.v.ID, "err", err)
		case n > 0:
			res.CryptoShredding = ShredDone
		}
	}
	return res, nil
}

// subjectKeysOf finds the keys of a subject, locked for the forget: the
// row filed under the subject's digest, and the keys of the records that
// hold the subject in their data_subject column (found by blind index),
// which also finds a key that two writers on either side of an index-key
// rotation made twice.
func (c *call) subjectKeysOf(ctx context.Context, tx pgx.Tx, tables []*schema.Table, subject string) ([]uuid.UUID, error) {
	digests, err := shredding.SubjectDigests(c.v, subject)
	if err != nil {
		return nil, apierr.Internal("a data subject could not be indexed")
	}
	var names, cols []string
	var idxs [][]byte
	for _, t := range tables {
		col := t.SubjectColumn()
		val, err := col.CoerceString(subject)
		if err != nil {
			continue // no record of this table can hold it
		}
		all, err := c.v.Keys.BlindIndexes(t.Name, col.Name, val.Canonical)
		if err != nil {
			return nil, apierr.Internal("a data subject could not be indexed")
		}
		for _, idx := range all {
			names, cols, idxs = append(names, t.Name), append(cols, col.Name), append(idxs, idx)
		}
	}
	rows, err := tx.Query(ctx, `
		SELECT id FROM vault_subject_keys
		WHERE vault_id = $1 AND (subject_index = ANY($2) OR id IN (
			SELECT r.subject_key FROM vault_cells v
			JOIN unnest($3::text[], $4::text[], $5::bytea[]) AS w(tbl, col, idx)
			  ON v.table_name = w.tbl AND v.column_name = w.col AND v.blind_index = w.idx
			JOIN vault_records r ON r.vault_id = v.vault_id AND r.id = v.record_id
			WHERE v.vault_id = $1))
		ORDER BY id FOR UPDATE`, c.v.ID, digests, names, cols, idxs)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}

// forget deletes the records of subject keys, their tokens and the keys,
// and records the forget for the shredding. A deterministic token no
// other record holds any more is dropped from the token map too, so that
// tokenize no longer tells that the vault once held the value.
func (c *call) forget(ctx context.Context, tx pgx.Tx, keys []uuid.UUID, res *ForgetResponse) error {
	rows, err := tx.Query(ctx, `
		SELECT DISTINCT c.token FROM vault_cells c JOIN vault_records r ON r.vault_id = c.vault_id AND r.id = c.record_id
		WHERE r.vault_id = $1 AND r.subject_key = ANY($2) AND c.token IS NOT NULL`, c.v.ID, keys)
	if err != nil {
		return err
	}
	toks, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	rows, err = tx.Query(ctx, `DELETE FROM vault_records WHERE vault_id = $1 AND subject_key = ANY($2) RETURNING id, table_name`, c.v.ID, keys)
	if err != nil {
		return err
	}
	var ids []uuid.UUID
	var id uuid.UUID
	var table string
	if _, err := pgx.ForEachRow(rows, []any{&id, &table}, func() error {
		ids = append(ids, id)
		res.Tables[table]++
		c.recordEvent(DeletedType, table, id)
		return nil
	}); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM vault_tokens WHERE vault_id = $1 AND record_id = ANY($2)`, c.v.ID, ids); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `
		DELETE FROM vault_tokens t WHERE t.vault_id = $1 AND t.column_group IS NOT NULL AND t.token = ANY($2)
		  AND NOT EXISTS (SELECT 1 FROM vault_cells v WHERE v.vault_id = $1 AND v.token = t.token)`, c.v.ID, toks); err != nil {
		return err
	}
	var epoch int
	if err := tx.QueryRow(ctx, `
		WITH gone AS (DELETE FROM vault_subject_keys WHERE vault_id = $1 AND id = ANY($2) RETURNING epoch)
		SELECT max(epoch) FROM gone`, c.v.ID, keys).Scan(&epoch); err != nil {
		return err
	}
	forgetID := uuid.New()
	if _, err := tx.Exec(ctx, `INSERT INTO vault_subject_forgets (id, vault_id, requested_by, records, epoch) VALUES ($1, $2, $3, $4, $5)`,
		forgetID, c.v.ID, c.p.ID, len(ids), epoch); err != nil {
		return err
	}
	res.ForgetID, res.RecordsDeleted, res.CryptoShredding = forgetID.String(), len(ids), ShredPending
	c.access.RecordIDs = idStrings(ids)
	e := c.event(SubjectForgottenType, forgetting{VaultID: c.v.ID, ForgetID: res.ForgetID, Records: len(ids), Tables: res.Tables, CryptoShredding: ShredPending})
	e.SetSubject(res.ForgetID)
	c.events = append(c.events, e)
	return nil
}
