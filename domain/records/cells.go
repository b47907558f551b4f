package records

import (
	"context"
	"errors"
	"sort"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/skyflow-oss/skyflow/domain/crypto"
	"github.com/skyflow-oss/skyflow/domain/records/tokens"
	"github.com/skyflow-oss/skyflow/domain/vaults/schema"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// cell is one value on its way into vault_cells.
type cell struct {
	record     uuid.UUID
	table      *schema.Table
	column     *schema.Column
	value      schema.Value
	ciphertext []byte
	blindIndex []byte // nil for json and array columns
	token      string // "" for columns without a token type
	subject    *subject
}

const groupTable = schema.GroupIndexTable

// sealCells checks and encrypts one record's fields, for its data subject
// when it has one. where names the record in messages ("records[2]").
func (c *call) sealCells(table *schema.Table, record uuid.UUID, fields Fields, where string, sub *subject) ([]cell, error) {
	if len(fields) == 0 {
		return nil, apierr.InvalidArgument("%s.fields is empty: give at least one column of table %q", where, table.Name)
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names) // the same error for the same request
	cells := make([]cell, 0, len(fields))
	for _, name := range names {
		if name == "skyflow_id" {
			return nil, apierr.InvalidArgument("%s.fields.skyflow_id: skyflow_id is assigned by the vault and cannot be set", where)
		}
		col, ok := table.Column(name)
		if !ok {
			return nil, apierr.InvalidArgument("%s.fields.%s: table %q has no column %q", where, name, table.Name, name)
		}
		val, err := col.Coerce(fields[name])
		if err != nil {
			return nil, apierr.InvalidArgument("%s.fields.%s: %s", where, name, message(err))
		}
		ct, err := c.v.Keys.SealFor(sub.sealKey(), val.Canonical, crypto.Cell{VaultID: c.v.ID, Table: table.Name, Column: col.Name, RecordID: record.String()})
		if err != nil {
			return nil, apierr.Internal("a value could not be encrypted")
		}
		cl := cell{record: record, table: table, column: col, value: val, ciphertext: ct, subject: sub}
		if indexed(col) {
			if cl.blindIndex, err = c.v.Keys.BlindIndex(table.Name, col.Name, val.Canonical); err != nil {
				return nil, apierr.Internal("a value could not be indexed")
			}
		}
		cells = append(cells, cl)
	}
	return cells, nil
}

// indexed reports whether a column has a blind index: every column that
// equality lookups can name.
func indexed(col *schema.Column) bool {
	return col.DataType != schema.JSON && col.DataType != schema.Array
}

// message is an error's message without the status prefix.
func message(err error) string {
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return ae.Message
	}
	return err.Error()
}

// storeCells assigns tokens to the cells and writes them, replacing the
// cells of the same record and column. Random tokens of replaced cells
// are dropped first, so a replaced value's old token no longer resolves.
func (c *call) storeCells(ctx context.Context, tx pgx.Tx, cells []cell, replacing bool) error {
	if replacing {
		recs, cols := make([]uuid.UUID, len(cells)), make([]string, len(cells))
		for i, cl := range cells {
			recs[i], cols[i] = cl.record, cl.column.Name
		}
		if _, err := tx.Exec(ctx, `
			DELETE FROM vault_tokens t USING unnest($2::uuid[], $3::text[]) AS w(rec, col)
			WHERE t.vault_id = $1 AND t.record_id = w.rec AND t.column_name = w.col`, c.v.ID, recs, cols); err != nil {
			return err
		}
	}
	if err := c.assignTokens(ctx, tx, cells); err != nil {
		return err
	}
	if err := c.checkUniqueUnderOlderKeys(ctx, tx, cells); err != nil {
		return err
	}
	n := len(cells)
	var (
		recs    = make([]uuid.UUID, n)
		cols    = make([]string, n)
		tables  = make([]string, n)
		cts     = make([][]byte, n)
		indexes = make([][]byte, n)
		uniques = make([][]byte, n)
		toks    = make([]*string, n)
	)
	for i, cl := range cells {
		recs[i], cols[i], tables[i], cts[i], indexes[i] = cl.record, cl.column.Name, cl.table.Name, cl.ciphertext, cl.blindIndex
		if cl.column.Unique {
			uniques[i] = cl.blindIndex
		}
		if cl.token != "" {
			toks[i] = &cells[i].token
		}
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO vault_cells (vault_id, record_id, column_name, table_name, ciphertext, blind_index, unique_index, token)
		SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::bytea[], $6::bytea[], $7::bytea[], $8::text[])
		ON CONFLICT (vault_id, record_id, column_name) DO UPDATE
		SET ciphertext = excluded.ciphertext, blind_index = excluded.blind_index,
		    unique_index = excluded.unique_index, token = excluded.token`,
		c.v.ID, recs, cols, tables, cts, indexes, uniques, toks)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "vault_cells_unique" {
		return uniqueConflict(cells)
	}
	return err
}

// checkUniqueUnderOlderKeys finds unique values held by rows a key
// rotation has not re-indexed yet: the database's unique index compares
// digests of one index key only, so a value under an older key's digest
// would not collide with the same value under the primary's.
func (c *call) checkUniqueUnderOlderKeys(ctx context.Context, tx pgx.Tx, cells []cell) error {
	if len(c.v.Keys.IndexKeyIDs()) < 2 {
		return nil // no rotation under way: the unique index is enough
	}
	var recs []uuid.UUID
	var tables, cols []string
	var idxs [][]byte
	for _, cl := range cells {
		if !cl.column.Unique {
			continue
		}
		all, err := c.v.Keys.BlindIndexes(cl.table.Name, cl.column.Name, cl.value.Canonical)
		if err != nil {
			return apierr.Internal("a value could not be indexed")
		}
		for _, idx := range all[1:] {
			recs, tables, cols, idxs = append(recs, cl.record), append(tables, cl.table.Name), append(cols, cl.column.Name), append(idxs, idx)
		}
	}
	if len(idxs) == 0 {
		return nil
	}
	var taken bool
	err := tx.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM vault_cells v JOIN unnest($2::uuid[], $3::text[], $4::text[], $5::bytea[]) AS w(rec, tbl, col, idx)
		  ON v.table_name = w.tbl AND v.column_name = w.col AND v.unique_index = w.idx AND v.record_id <> w.rec
		WHERE v.vault_id = $1)`, c.v.ID, recs, tables, cols, idxs).Scan(&taken)
	if err != nil {
		return err
	}
	if taken {
		return uniqueConflict(cells)
	}
	return nil
}

// uniqueConflict names the unique column whose value already exists. The
// transaction is aborted by then, so it is found from the cells alone:
// the first unique column of the request (never the value).
func uniqueConflict(cells []cell) error {
	for _, cl := range cells {
		if cl.column.Unique {
			return apierr.AlreadyExists("a record of table %q already has this value in unique column %q: use upsert to update it", cl.table.Name, cl.column.Name)
		}
	}
	return apierr.AlreadyExists("a value is already stored in a unique column")
}

// maxTokenAttempts bounds the draws for a free token; with any token
// space that is not tiny, a second draw is already rare.
const maxTokenAttempts = 16

// assignTokens gives every cell of a tokenized column its token, recorded
// in vault_tokens so that tokens are unique in the vault: the deterministic
// token of the value in its column group (the one already issued, or a
// new one), or a fresh random token.
func (c *call) assignTokens(ctx context.Context, tx pgx.Tx, cells []cell) error {
	var det, rnd []*cell
	for i := range cells {
		switch t := cells[i].column.TokenType; {
		case t == schema.NoToken:
		case t.Deterministic():
			det = append(det, &cells[i])
		default:
			rnd = append(rnd, &cells[i])
		}
	}
	if err := c.deterministicTokens(ctx, tx, det); err != nil {
		return err
	}
	return c.randomTokens(ctx, tx, rnd)
}

// groupKey names one value in one column group.
type groupKey struct{ group, index string }

func (c *call) deterministicTokens(ctx context.Context, tx pgx.Tx, cells []*cell) error {
	if len(cells) == 0 {
		return nil
	}
	byKey := map[groupKey][]*cell{}
	for _, cl := range cells {
		group := cl.column.Group(cl.table.Name)
		idx, err := c.v.Keys.BlindIndex(groupTable, group, cl.value.Canonical)
		if err != nil {
			return apierr.Internal("a value could not be indexed")
		}
		k := groupKey{group, string(idx)}
		byKey[k] = append(byKey[k], cl)
	}
	for attempt := 0; len(byKey) > 0; attempt++ {
		if attempt == maxTokenAttempts {
			return apierr.Unavailable("no free token was found for a value; try again")
		}
		found, err := c.issuedTokens(ctx, tx, byKey)
		if err != nil {
			return err
		}
		settle(byKey, found)
		if len(byKey) == 0 {
			return nil
		}
		// Propose a token for every value still without one.
		var groups, toks []string
		var idxs [][]byte
		for k, cls := range byKey {
			first := cls[0]
			seed, err := c.v.Keys.TokenSeed(k.group, first.value.Canonical, attempt)
			if err != nil {
				return apierr.Internal("a token could not be derived")
			}
			tok, err := tokens.Deterministic(tokens.Type(first.column.TokenType), first.value.Text, seed)
			if err != nil {
				return notTokenizable(first, err)
			}
			groups, toks, idxs = append(groups, k.group), append(toks, tok), append(idxs, []byte(k.index))
		}
		rows, err := tx.Query(ctx, `
			INSERT INTO vault_tokens (vault_id, column_group, token, value_index)
			SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bytea[])
			ON CONFLICT DO NOTHING
			RETURNING column_group, value_index, token`, c.v.ID, groups, toks, idxs)
		if err != nil {
			return err
		}
		if found, err = scanIssued(rows); err != nil {
			return err
		}
		settle(byKey, found)
		// What is left lost a race: a concurrent request issued a token for
		// the same value (the next round reads it), or the proposal
		// collided with another value's token (redrawn with the next
		// attempt's seed).
	}
	return nil
}

// issuedTokens reads the tokens already issued for the given values. A
// value's token may be filed under any index key's digest: after a key
// rotation, until the rewrap has re-indexed it, the token handed out
// before stays the value's token.
func (c *call) issuedTokens(ctx context.Context, tx pgx.Tx, byKey map[groupKey][]*cell) (map[groupKey]string, error) {
	var groups []string
	var idxs, keys [][]byte
	for k, cls := range byKey {
		all, err := c.v.Keys.BlindIndexes(groupTable, k.group, cls[0].value.Canonical)
		if err != nil {
			return nil, apierr.Internal("a value could not be indexed")
		}
		for _, idx := range all {
			groups, idxs, keys = append(groups, k.group), append(idxs, idx), append(keys, []byte(k.index))
		}
	}
	rows, err := tx.Query(ctx, `
		SELECT w.grp, w.key, t.token
		FROM vault_tokens t JOIN unnest($2::text[], $3::bytea[], $4::bytea[]) AS w(grp, idx, key)
		  ON t.column_group = w.grp AND t.value_index = w.idx
		WHERE t.vault_id = $1`, c.v.ID, groups, idxs, keys)
	if err != nil {
		return nil, err
	}
	return scanIssued(rows)
}

// scanIssued reads (column_group, value_index, token) rows.
func scanIssued(rows pgx.Rows) (map[groupKey]string, error) {
	found := map[groupKey]string{}
	var group, tok string
	var idx []byte
	_, err := pgx.ForEachRow(rows, []any{&group, &idx, &tok}, func() error {
		found[groupKey{group, string(idx)}] = tok
		return nil
	})
	return found, err
}

// settle gives the cells of every found value their token and forgets them.
func settle(byKey map[groupKey][]*cell, found map[groupKey]string) {
	for k, tok := range found {
		for _, cl := range byKey[k] {
			cl.token = tok
		}
		delete(byKey, k)
	}
}

func (c *call) randomTokens(ctx context.Context, tx pgx.Tx, cells []*cell) error {
	for attempt := 0; len(cells) > 0; attempt++ {
		if attempt == maxTokenAttempts {
			return apierr.Unavailable("no free token was found for a value; try again")
		}
		toks, recs, cols := make([]string, len(cells)), make([]uuid.UUID, len(cells)), make([]string, len(cells))
		for i, cl := range cells {
			tok, err := tokens.Random(tokens.Type(cl.column.TokenType), cl.value.Text)
			if err != nil {
				return notTokenizable(cl, err)
			}
			cl.token, toks[i], recs[i], cols[i] = tok, tok, cl.record, cl.column.Name
		}
		rows, err := tx.Query(ctx, `
			INSERT INTO vault_tokens (vault_id, token, record_id, column_name)
			SELECT $1, * FROM unnest($2::text[], $3::uuid[], $4::text[])
			ON CONFLICT DO NOTHING RETURNING token`, c.v.ID, toks, recs, cols)
		if err != nil {
			return err
		}
		taken, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		ok := map[string]bool{}
		for _, t := range taken {
			ok[t] = true
		}
		var again []*cell
		for _, cl := range cells {
			if !ok[cl.token] {
				again = append(again, cl)
			} else {
				delete(ok, cl.token) // two cells that drew the same token: only one has it
			}
		}
		cells = again
	}
	return nil
}

func notTokenizable(cl *cell, err error) error {
	return apierr.InvalidArgument("column %q of table %q: the value cannot carry a %s token: %s", cl.column.Name, cl.table.Name, cl.column.TokenType, message(err))
}
