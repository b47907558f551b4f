package records

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/skyflow-oss/skyflow/domain/crypto"
	"github.com/skyflow-oss/skyflow/domain/shredding"
	"github.com/skyflow-oss/skyflow/domain/vaults/schema"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// subject is the data subject a record belongs to: the key its values are
// sealed with (besides the vault's), and the key's id, which the record
// row names. Records of tables without a data_subject column have none
// (a nil *subject).
type subject struct {
	id  uuid.UUID
	key *crypto.SubjectKey
}

func (s *subject) sealKey() *crypto.SubjectKey {
	if s == nil {
		return nil
	}
	return s.key
}

// ref is the record row's subject_key: NULL without a subject.
func (s *subject) ref() pgtype.UUID {
	if s == nil {
		return pgtype.UUID{}
	}
	return pgtype.UUID{Bytes: s.id, Valid: true}
}

// givenSubject is the subject a record's fields name in t's data_subject
// column; nil when t has none. required says whether the fields must give
// it (an insert) or may leave it out (an update; then it is nil too).
func (c *call) givenSubject(ctx context.Context, tx pgx.Tx, t *schema.Table, fields Fields, where string, required bool) (*subject, error) {
	col := t.SubjectColumn()
	if col == nil {
		return nil, nil
	}
	raw, ok := fields[col.Name]
	if !ok {
		if required {
			return nil, apierr.InvalidArgument("%s.fields.%s: column %q is the data_subject column of table %q, so every record must give it", where, col.Name, col.Name, t.Name)
		}
		return nil, nil
	}
	val, err := col.Coerce(raw)
	if err != nil {
		return nil, apierr.InvalidArgument("%s.fields.%s: %s", where, col.Name, message(err))
	}
	if sub, ok := c.subjects[val.Text]; ok {
		return sub, nil
	}
	id, key, err := shredding.SubjectKeyFor(ctx, tx, c.s.Vaults, c.v, val.Text)
	if err != nil {
		return nil, err
	}
	if c.subjects == nil {
		c.subjects = map[string]*subject{}
	}
	c.subjects[val.Text] = &subject{id: id, key: key}
	return c.subjects[val.Text], nil
}

// moveToSubject makes record id of table t belong to subject to: when it
// belonged to another subject, every stored value of the record is opened
// with the old subject's key and sealed again with the new one, so that
// forgetting the old subject no longer touches it and forgetting the new
// one does. It fails with "no record" when the record is not in t.
func (c *call) moveToSubject(ctx context.Context, tx pgx.Tx, t *schema.Table, id uuid.UUID, to *subject) error {
	var from *uuid.UUID
	err := tx.QueryRow(ctx, `SELECT subject_key FROM vault_records WHERE vault_id = $1 AND id = $2 AND table_name = $3 FOR UPDATE`,
		c.v.ID, id, t.Name).Scan(&from)
	if err == pgx.ErrNoRows {
		return errNoRecord()
	}
	if err != nil || to == nil || (from != nil && *from == to.id) {
		return err
	}
	old, err := c.subjectKeys(ctx, tx, []*uuid.UUID{from})
	if err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT column_name, ciphertext FROM vault_cells WHERE vault_id = $1 AND record_id = $2`, c.v.ID, id)
	if err != nil {
		return err
	}
	var cols []string
	var cts [][]byte
	var col string
	var ct []byte
	if _, err := pgx.ForEachRow(rows, []any{&col, &ct}, func() error {
		cols, cts = append(cols, col), append(cts, ct)
		return nil
	}); err != nil {
		return err
	}
	for i := range cols {
		where := crypto.Cell{VaultID: c.v.ID, Table: t.Name, Column: cols[i], RecordID: id.String()}
		plain, err := c.v.Keys.OpenFor(old.of(from), cts[i], where)
		if err != nil {
			return apierr.Internal("a stored value does not decrypt with the vault's keys")
		}
		if cts[i], err = c.v.Keys.SealFor(to.key, plain, where); err != nil {
			return apierr.Internal("a value could not be encrypted")
		}
	}
	if _, err := tx.Exec(ctx, `
		UPDATE vault_cells v SET ciphertext = w.ct FROM unnest($3::text[], $4::bytea[]) AS w(col, ct)
		WHERE v.vault_id = $1 AND v.record_id = $2 AND v.column_name = w.col`, c.v.ID, id, cols, cts); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE vault_records SET subject_key = $3 WHERE vault_id = $1 AND id = $2`, c.v.ID, id, to.id)
	return err
}

// storedSubject is the subject record id of table t belongs to, as
// stored; nil for a record without one. It fails with "no record" when
// the record is not in t.
func (c *call) storedSubject(ctx context.Context, tx pgx.Tx, t *schema.Table, id uuid.UUID) (*subject, error) {
	var ref *uuid.UUID
	err := tx.QueryRow(ctx, `SELECT subject_key FROM vault_records WHERE vault_id = $1 AND id = $2 AND table_name = $3`,
		c.v.ID, id, t.Name).Scan(&ref)
	if err == pgx.ErrNoRows {
		return nil, errNoRecord()
	}
	if err != nil || ref == nil {
		return nil, err
	}
	keys, err := c.subjectKeys(ctx, tx, []*uuid.UUID{ref})
	if err != nil {
		return nil, err
	}
	return &subject{id: *ref, key: keys.of(ref)}, nil
}

// subjectKeyring holds the subject keys a read opened.
type subjectKeyring map[uuid.UUID]*crypto.SubjectKey

// of is the key named by a record's subject_key; nil for none.
func (r subjectKeyring) of(ref *uuid.UUID) *crypto.SubjectKey {
	if ref == nil {
		return nil
	}
	return r[*ref]
}

// subjectKeys opens the subject keys that records name (nil entries are
// records without a subject).
func (c *call) subjectKeys(ctx context.Context, tx pgx.Tx, refs []*uuid.UUID) (subjectKeyring, error) {
	seen := map[uuid.UUID]bool{}
	var ids []uuid.UUID
	for _, r := range refs {
		if r != nil && !seen[*r] {
			seen[*r] = true
			ids = append(ids, *r)
		}
	}
	if len(ids) == 0 {
		return subjectKeyring{}, nil
	}
	keys, err := shredding.SubjectKeys(ctx, tx, c.s.Vaults, c.v, ids)
	return subjectKeyring(keys), err
}
