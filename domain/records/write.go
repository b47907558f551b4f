package records

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/skyflow-oss/skyflow/domain/vaults/policy"
	"github.com/skyflow-oss/skyflow/domain/vaults/schema"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// Insert stores records in a table (POST /v1/vaults/{vaultID}/{table}).
// With Upsert naming a unique column, a record whose value in that column
// is already stored updates that record instead.
func (s *Service) Insert(ctx context.Context, p request.Principal, vaultID, table string, req InsertRequest) (*InsertResponse, error) {
	c, err := s.begin(ctx, p, vaultID, "insert")
	if err != nil {
		return nil, err
	}
	var res *InsertResponse
	err = c.commit(ctx, func(tx pgx.Tx) error {
		res, err = c.insert(ctx, tx, table, req)
		return err
	})
	return res, err
}

func (c *call) insert(ctx context.Context, tx pgx.Tx, tableName string, req InsertRequest) (*InsertResponse, error) {
	t, err := c.table(tableName)
	if err != nil {
		return nil, err
	}
	c.access.Table = t.Name
	if err := checkBYOT(req.BYOT); err != nil {
		return nil, err
	}
	if n := len(req.Records); n == 0 || n > MaxItems {
		return nil, apierr.InvalidArgument("records must hold 1 to %d records, not %d", MaxItems, n)
	}
	if err := c.require(policy.Insert, t.Name); err != nil {
		return nil, err
	}
	var upsert *schema.Column
	if req.Upsert != "" {
		col, ok := t.Column(req.Upsert)
		if !ok || !col.Unique {
			return nil, apierr.InvalidArgument("upsert must name a unique column of table %q; %q is not one", t.Name, req.Upsert)
		}
		if err := c.require(policy.Update, t.Name); err != nil {
			return nil, err
		}
		upsert = col
	}

	ids := make([]uuid.UUID, len(req.Records))
	subjects := make([]*subject, len(req.Records)) // by position: upserts rename ids
	var cells []cell
	for i, r := range req.Records {
		ids[i] = uuid.New()
		where := fmt.Sprintf("records[%d]", i)
		sub, err := c.givenSubject(ctx, tx, t, r.Fields, where, true)
		if err != nil {
			return nil, err
		}
		cs, err := c.sealCells(t, ids[i], r.Fields, where, sub)
		if err != nil {
			return nil, err
		}
		subjects[i] = sub
		cells = append(cells, cs...)
	}
	existing := map[uuid.UUID]bool{}
	if upsert != nil {
		if existing, err = c.matchUpserts(ctx, tx, t, upsert, ids, cells); err != nil {
			return nil, err
		}
	}
	var fresh []uuid.UUID
	var freshSubjects []pgtype.UUID
	for i, id := range ids {
		switch {
		case !existing[id]:
			fresh, freshSubjects = append(fresh, id), append(freshSubjects, subjects[i].ref())
		case subjects[i] != nil: // an upsert may name another subject than the record's
			if err := c.moveToSubject(ctx, tx, t, id, subjects[i]); err != nil {
				return nil, err
			}
		}
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO vault_records (vault_id, id, table_name, subject_key) SELECT $1, unnest($2::uuid[]), $3, unnest($4::uuid[])`,
		c.v.ID, fresh, t.Name, freshSubjects); err != nil {
		return nil, err
	}
	if len(existing) > 0 {
		if err := c.touch(ctx, tx, keys(existing)); err != nil {
			return nil, err
		}
	}
	if err := c.storeCells(ctx, tx, cells, len(existing) > 0); err != nil {
		return nil, err
	}
	res := &InsertResponse{Records: make([]Inserted, len(ids))}
	for i, id := range ids {
		res.Records[i].SkyflowID = id.String()
		typ := CreatedType
		if existing[id] {
			typ = UpdatedType
		}
		c.recordEvent(typ, t.Name, id)
	}
	c.noteCells(cells)
	if req.Tokenization {
		tokensOf(cells, func(i int) *map[string]string { return &res.Records[index(ids, cells[i].record)].Tokens })
	}
	return res, nil
}

// matchUpserts finds the records that already hold a record's value in
// the upsert column and rewrites ids and cells to update those instead.
func (c *call) matchUpserts(ctx context.Context, tx pgx.Tx, t *schema.Table, col *schema.Column, ids []uuid.UUID, cells []cell) (map[uuid.UUID]bool, error) {
	byIndex := map[string]uuid.UUID{}
	var idxs [][]byte
	given := 0
	for _, cl := range cells {
		if cl.column != col {
			continue
		}
		given++
		if _, dup := byIndex[string(cl.blindIndex)]; dup {
			return nil, apierr.InvalidArgument("two records have the same value in upsert column %q: send each value once", col.Name)
		}
		// Any index key's digest: a rotation's rewrap may not have
		// re-indexed the record holding the value yet.
		all, err := c.v.Keys.BlindIndexes(t.Name, col.Name, cl.value.Canonical)
		if err != nil {
			return nil, apierr.Internal("a value could not be indexed")
		}
		for _, idx := range all {
			byIndex[string(idx)] = cl.record
		}
		idxs = append(idxs, all...)
	}
	if given != len(ids) {
		return nil, apierr.InvalidArgument("every record must give upsert column %q", col.Name)
	}
	rows, err := tx.Query(ctx, `
		SELECT unique_index, record_id FROM vault_cells
		WHERE vault_id = $1 AND table_name = $2 AND column_name = $3 AND unique_index = ANY($4)
		FOR UPDATE`, c.v.ID, t.Name, col.Name, idxs)
	if err != nil {
		return nil, err
	}
	renamed := map[uuid.UUID]uuid.UUID{}
	var idx []byte
	var rec uuid.UUID
	if _, err := pgx.ForEachRow(rows, []any{&idx, &rec}, func() error {
		renamed[byIndex[string(idx)]] = rec
		return nil
	}); err != nil {
		return nil, err
	}
	existing := map[uuid.UUID]bool{}
	for i, id := range ids {
		if to, ok := renamed[id]; ok {
			ids[i], existing[to] = to, true
		}
	}
	for i := range cells {
		if to, ok := renamed[cells[i].record]; ok {
			if err := c.reseal(&cells[i], to); err != nil {
				return nil, err
			}
		}
	}
	return existing, nil
}

// reseal moves a cell to another record: its ciphertext is bound to the
// record id, so it is sealed again.
func (c *call) reseal(cl *cell, record uuid.UUID) error {
	cs, err := c.sealCells(cl.table, record, Fields{cl.column.Name: cl.value.Canonical}, "record", cl.subject)
	if err != nil {
		return err
	}
	*cl = cs[0]
	return nil
}

// touch marks records as updated now.
func (c *call) touch(ctx context.Context, tx pgx.Tx, ids []uuid.UUID) error {
	_, err := tx.Exec(ctx, `UPDATE vault_records SET updated_at = clock_timestamp() WHERE vault_id = $1 AND id = ANY($2)`, c.v.ID, ids)
	return err
}

// Update replaces some fields of one record (PUT /v1/vaults/{vaultID}/{table}/{skyflow_id}).
func (s *Service) Update(ctx context.Context, p request.Principal, vaultID, table, skyflowID string, req UpdateRequest) (*UpdateResponse, error) {
	c, err := s.begin(ctx, p, vaultID, "update")
	if err != nil {
		return nil, err
	}
	var res *UpdateResponse
	err = c.commit(ctx, func(tx pgx.Tx) error {
		res, err = c.update(ctx, tx, table, skyflowID, req.Record.Fields, req.Tokenization, req.BYOT)
		return err
	})
	return res, err
}

func (c *call) update(ctx context.Context, tx pgx.Tx, tableName, skyflowID string, fields Fields, tokenization bool, byot string) (*UpdateResponse, error) {
	t, err := c.table(tableName)
	if err != nil {
		return nil, err
	}
	c.access.Table = t.Name
	if err := checkBYOT(byot); err != nil {
		return nil, err
	}
	id, err := parseSkyflowID(skyflowID, "skyflow_id")
	if err != nil {
		return nil, err
	}
	c.access.RecordIDs = []string{id.String()}
	if err := c.require(policy.Update, t.Name); err != nil {
		return nil, err
	}
	sub, err := c.givenSubject(ctx, tx, t, fields, "record", false)
	if err != nil {
		return nil, err
	}
	if sub != nil {
		err = c.moveToSubject(ctx, tx, t, id, sub)
	} else if t.SubjectColumn() != nil {
		sub, err = c.storedSubject(ctx, tx, t, id)
	}
	if err != nil {
		return nil, err
	}
	cells, err := c.sealCells(t, id, fields, "record", sub)
	if err != nil {
		return nil, err
	}
	tag, err := tx.Exec(ctx, `UPDATE vault_records SET updated_at = clock_timestamp() WHERE vault_id = $1 AND id = $2 AND table_name = $3`, c.v.ID, id, t.Name)
	if err != nil {
		return nil, err
	}
	if tag.RowsAffected() == 0 {
		return nil, errNoRecord()
	}
	if err := c.storeCells(ctx, tx, cells, true); err != nil {
		return nil, err
	}
	c.recordEvent(UpdatedType, t.Name, id)
	c.noteCells(cells)
	res := &UpdateResponse{SkyflowID: id.String()}
	if tokenization {
		tokensOf(cells, func(int) *map[string]string { return &res.Tokens })
	}
	return res, nil
}

// Delete deletes one record (DELETE /v1/vaults/{vaultID}/{table}/{skyflow_id}).
func (s *Service) Delete(ctx context.Context, p request.Principal, vaultID, table, skyflowID string) (*DeleteResponse, error) {
	c, err := s.begin(ctx, p, vaultID, "delete")
	if err != nil {
		return nil, err
	}
	var res *DeleteResponse
	err = c.commit(ctx, func(tx pgx.Tx) error {
		res, err = c.deleteOne(ctx, tx, table, skyflowID)
		return err
	})
	return res, err
}

func (c *call) deleteOne(ctx context.Context, tx pgx.Tx, table, skyflowID string) (*DeleteResponse, error) {
	id, err := parseSkyflowID(skyflowID, "skyflow_id")
	if err != nil {
		return nil, err
	}
	if err := c.delete(ctx, tx, table, []uuid.UUID{id}); err != nil {
		return nil, err
	}
	return &DeleteResponse{SkyflowID: id.String(), Deleted: true}, nil
}

// DeleteMany deletes several records of a table (DELETE /v1/vaults/{vaultID}/{table}):
// all of them, or none when one is not found.
func (s *Service) DeleteMany(ctx context.Context, p request.Principal, vaultID, table string, req DeleteManyRequest) (*DeleteManyResponse, error) {
	c, err := s.begin(ctx, p, vaultID, "delete")
	if err != nil {
		return nil, err
	}
	if n := len(req.SkyflowIDs); n == 0 || n > MaxItems {
		return nil, apierr.InvalidArgument("skyflow_ids must hold 1 to %d ids, not %d", MaxItems, n)
	}
	ids := make([]uuid.UUID, len(req.SkyflowIDs))
	for i, s := range req.SkyflowIDs {
		if ids[i], err = parseSkyflowID(s, fmt.Sprintf("skyflow_ids[%d]", i)); err != nil {
			return nil, err
		}
	}
	err = c.commit(ctx, func(tx pgx.Tx) error { return c.delete(ctx, tx, table, ids) })
	if err != nil {
		return nil, err
	}
	res := &DeleteManyResponse{RecordIDResponse: make([]string, len(ids))}
	for i, id := range ids {
		res.RecordIDResponse[i] = id.String()
	}
	return res, nil
}

func (c *call) delete(ctx context.Context, tx pgx.Tx, tableName string, ids []uuid.UUID) error {
	t, err := c.table(tableName)
	if err != nil {
		return err
	}
	c.access.Table = t.Name
	c.access.RecordIDs = idStrings(ids)
	if err := c.require(policy.Delete, t.Name); err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `DELETE FROM vault_records WHERE vault_id = $1 AND table_name = $2 AND id = ANY($3)`, c.v.ID, t.Name, ids)
	if err != nil {
		return err
	}
	if int(tag.RowsAffected()) != len(unique(ids)) {
		return errNoRecord()
	}
	if _, err := tx.Exec(ctx, `DELETE FROM vault_tokens WHERE vault_id = $1 AND record_id = ANY($2)`, c.v.ID, ids); err != nil {
		return err
	}
	for _, id := range unique(ids) {
		c.recordEvent(DeletedType, t.Name, id)
	}
	return nil
}

// errNoRecord is the one answer for a record that does not exist, is in
// another table, or is in a vault the caller cannot see.
func errNoRecord() error {
	return apierr.NotFound("No Records Found. Check the skyflow_id and the table name.")
}

func parseSkyflowID(s, field string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return uuid.UUID{}, apierr.InvalidArgument("%s is not a valid skyflow_id: skyflow ids are UUIDs such as 6ba7b810-9dad-11d1-80b4-00c04fd430c8", field)
	}
	return id, nil
}

func checkBYOT(byot string) error {
	if byot != "" && byot != "DISABLE" {
		return apierr.InvalidArgument("byot %q is not supported: this vault issues every token itself; leave byot out or set it to DISABLE", byot)
	}
	return nil
}

// noteCells records the columns and records written, for the audit event.
func (c *call) noteCells(cells []cell) {
	seenCol, seenRec := map[string]bool{}, map[string]bool{}
	for _, cl := range cells {
		if !seenCol[cl.column.Name] {
			seenCol[cl.column.Name] = true
			c.access.Columns = append(c.access.Columns, cl.column.Name)
		}
		if r := cl.record.String(); !seenRec[r] {
			seenRec[r] = true
			c.access.RecordIDs = append(c.access.RecordIDs, r)
		}
	}
}

// tokensOf puts each tokenized cell's token in the map into(i) returns.
func tokensOf(cells []cell, into func(i int) *map[string]string) {
	for i, cl := range cells {
		if cl.token == "" {
			continue
		}
		m := into(i)
		if *m == nil {
			*m = map[string]string{}
		}
		(*m)[cl.column.Name] = cl.token
	}
}

func index(ids []uuid.UUID, id uuid.UUID) int {
	for i, x := range ids {
		if x == id {
			return i
		}
	}
	return -1
}

func keys(m map[uuid.UUID]bool) []uuid.UUID {
	out := make([]uuid.UUID, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func unique(ids []uuid.UUID) []uuid.UUID {
	seen := map[uuid.UUID]bool{}
	var out []uuid.UUID
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func idStrings(ids []uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}
