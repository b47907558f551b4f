package records

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/domain/crypto"
	"github.com/skyflow-oss/skyflow/domain/vaults/policy"
	"github.com/skyflow-oss/skyflow/domain/vaults/schema"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// read is what a read returns and how: the columns, at which redaction,
// or their tokens.
type read struct {
	table        *schema.Table
	columns      []*schema.Column
	redaction    schema.Redaction // as asked; resolved per column
	tokenization bool
}

// GetParams are the query parameters of a get (GET /v1/vaults/{vaultID}/{table}[/{skyflow_id}]).
type GetParams struct {
	SkyflowIDs   []string
	ColumnName   string
	ColumnValues []string
	Redaction    string
	Tokenization bool
	Fields       []string
	Offset       int
	Limit        int
	Descending   bool
}

// GetParamsOf reads the query parameters of a get request event.
func GetParamsOf(e event.Event) (GetParams, error) {
	q, err := request.Query(e)
	if err != nil {
		return GetParams{}, err
	}
	return ParseGetParams(q)
}

// ParseGetParams reads a get's query string, refusing unknown parameters.
func ParseGetParams(q url.Values) (GetParams, error) {
	p := GetParams{
		SkyflowIDs: q["skyflow_ids"], ColumnName: q.Get("column_name"), ColumnValues: q["column_values"],
		Redaction: q.Get("redaction"), Fields: q["fields"], Limit: MaxItems,
	}
	for name := range q {
		switch name {
		case "skyflow_ids", "column_name", "column_values", "redaction", "tokenization", "fields", "offset", "limit", "order_by", "downloadURL":
		default:
			return p, apierr.InvalidArgument("unknown query parameter %q: the parameters are skyflow_ids, column_name, column_values, redaction, tokenization, fields, offset, limit and order_by", name)
		}
	}
	for _, single := range []string{"column_name", "redaction", "tokenization", "offset", "limit", "order_by"} {
		if len(q[single]) > 1 {
			return p, apierr.InvalidArgument("query parameter %s may be given once", single)
		}
	}
	var err error
	if v := q.Get("tokenization"); v != "" {
		if p.Tokenization, err = strconv.ParseBool(v); err != nil {
			return p, apierr.InvalidArgument("tokenization must be true or false")
		}
	}
	if v := q.Get("offset"); v != "" {
		if p.Offset, err = strconv.Atoi(v); err != nil || p.Offset < 0 {
			return p, apierr.InvalidArgument("offset must be a whole number of 0 or more")
		}
	}
	if v := q.Get("limit"); v != "" {
		if p.Limit, err = strconv.Atoi(v); err != nil || p.Limit < 1 || p.Limit > MaxItems {
			return p, apierr.InvalidArgument("limit must be a whole number from 1 to %d", MaxItems)
		}
	}
	switch q.Get("order_by") {
	case "", "ASCENDING", "NONE":
	case "DESCENDING":
		p.Descending = true
	default:
		return p, apierr.InvalidArgument("order_by must be ASCENDING, DESCENDING or NONE")
	}
	return p, nil
}

// Get reads records of a table by skyflow ids, by the values of one
// column, or page by page.
func (s *Service) Get(ctx context.Context, p request.Principal, vaultID, table string, params GetParams) (*GetResponse, error) {
	c, err := s.begin(ctx, p, vaultID, "read")
	if err != nil {
		return nil, err
	}
	var res *GetResponse
	err = c.commit(ctx, func(tx pgx.Tx) error {
		res, err = c.get(ctx, tx, table, params)
		return err
	})
	return res, err
}

func (c *call) get(ctx context.Context, tx pgx.Tx, table string, params GetParams) (*GetResponse, error) {
	r, err := c.prepareRead(table, params.Fields, params.Redaction, params.Tokenization)
	if err != nil {
		return nil, err
	}
	var ids []uuid.UUID
	switch {
	case len(params.SkyflowIDs) > 0 && (params.ColumnName != "" || len(params.ColumnValues) > 0):
		return nil, apierr.InvalidArgument("give either skyflow_ids or column_name with column_values, not both")
	case len(params.SkyflowIDs) > 0:
		if len(params.SkyflowIDs) > MaxItems {
			return nil, apierr.InvalidArgument("skyflow_ids may hold at most %d ids", MaxItems)
		}
		for i, s := range params.SkyflowIDs {
			id, err := parseSkyflowID(s, fmt.Sprintf("skyflow_ids[%d]", i))
			if err != nil {
				return nil, err
			}
			ids = append(ids, id)
		}
		ids = unique(ids)
	case params.ColumnName != "" || len(params.ColumnValues) > 0:
		if params.ColumnName == "" || len(params.ColumnValues) == 0 {
			return nil, apierr.InvalidArgument("column_name and column_values go together: give both")
		}
		if len(params.ColumnValues) > MaxItems {
			return nil, apierr.InvalidArgument("column_values may hold at most %d values", MaxItems)
		}
		cond, err := c.condition(r.table, params.ColumnName, params.ColumnValues)
		if err != nil {
			return nil, err
		}
		if ids, err = c.lookup(ctx, tx, r.table, []condition{cond}, params.Limit, params.Offset, params.Descending); err != nil {
			return nil, err
		}
	default:
		if ids, err = c.page(ctx, tx, r.table, params.Limit, params.Offset, params.Descending); err != nil {
			return nil, err
		}
	}
	recs, err := c.fetch(ctx, tx, r, ids)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 && len(params.SkyflowIDs) > 0 {
		return nil, errNoRecord()
	}
	return &GetResponse{Records: recs}, nil
}

// GetOne reads one record (GET /v1/vaults/{vaultID}/{table}/{skyflow_id}).
func (s *Service) GetOne(ctx context.Context, p request.Principal, vaultID, table, skyflowID string, params GetParams) (*Record, error) {
	if len(params.SkyflowIDs) > 0 || params.ColumnName != "" || len(params.ColumnValues) > 0 {
		return nil, apierr.InvalidArgument("a get of one record takes only redaction, tokenization and fields")
	}
	if _, err := parseSkyflowID(skyflowID, "skyflow_id"); err != nil {
		return nil, err // named as the path names it, not as skyflow_ids
	}
	params.SkyflowIDs = []string{skyflowID}
	res, err := s.Get(ctx, p, vaultID, table, params)
	if err != nil {
		return nil, err
	}
	return &res.Records[0], nil
}

// prepareRead checks what a read asks for against the policy: the table
// must be readable, every named field must exist and be readable, and
// without fields the read returns the columns the caller may read.
func (c *call) prepareRead(tableName string, fields []string, redaction string, tokenization bool) (*read, error) {
	t, err := c.table(tableName)
	if err != nil {
		return nil, err
	}
	c.access.Table = t.Name
	red, err := schema.ParseRedaction(redaction)
	if err != nil {
		return nil, apierr.InvalidArgument("redaction must be one of DEFAULT, REDACTED, MASKED, PLAIN_TEXT")
	}
	if tokenization && red != schema.Default {
		return nil, apierr.InvalidArgument("tokenization=true returns tokens, so redaction cannot be set with it")
	}
	if err := c.require(policy.Read, t.Name); err != nil {
		return nil, err
	}
	r := &read{table: t, redaction: red, tokenization: tokenization}
	c.access.Redaction = string(red)
	if tokenization {
		c.access.Redaction = "TOKENS"
	}
	if len(fields) == 0 {
		for i := range t.Columns {
			col := &t.Columns[i]
			if _, ok := c.v.Policy.ReadLevel(c.p.Roles, t, col); ok {
				r.columns = append(r.columns, col)
			}
		}
	}
	for _, name := range fields {
		col, ok := t.Column(name)
		if !ok {
			return nil, apierr.InvalidArgument("fields: table %q has no column %q", t.Name, name)
		}
		if _, ok := c.v.Policy.ReadLevel(c.p.Roles, t, col); !ok {
			return nil, apierr.PermissionDenied("your roles may not read column %q of table %q", name, t.Name)
		}
		if !slices.Contains(r.columns, col) {
			r.columns = append(r.columns, col)
		}
	}
	for _, col := range r.columns {
		if !tokenization || col.TokenType == schema.NoToken {
			if _, err := c.v.Policy.Resolve(c.p.Roles, t, col, red); err != nil {
				return nil, err
			}
		}
		c.access.Columns = append(c.access.Columns, col.Name)
	}
	return r, nil
}

// condition is one equality condition: a column and the blind indexes of
// the values it may hold.
type condition struct {
	column  string
	indexes [][]byte
}

// condition checks a lookup by column value: the column must be readable
// (a lookup is a read of it) and indexed.
func (c *call) condition(t *schema.Table, name string, values []string) (condition, error) {
	col, ok := t.Column(name)
	if !ok {
		return condition{}, apierr.InvalidArgument("table %q has no column %q to look up by", t.Name, name)
	}
	if !indexed(col) {
		return condition{}, apierr.InvalidArgument("column %q holds %s values, which cannot be looked up by value", name, col.DataType)
	}
	if _, ok := c.v.Policy.ReadLevel(c.p.Roles, t, col); !ok {
		return condition{}, apierr.PermissionDenied("your roles may not read column %q of table %q, so they may not look records up by it", name, t.Name)
	}
	cond := condition{column: col.Name}
	for i, v := range values {
		val, err := col.CoerceString(v)
		if err != nil {
			return condition{}, apierr.InvalidArgument("value %d for column %q: %s", i+1, name, message(err))
		}
		// Every index key's digest: rows a rotation has not re-indexed yet
		// carry an older one.
		idxs, err := c.v.Keys.BlindIndexes(t.Name, col.Name, val.Canonical)
		if err != nil {
			return condition{}, apierr.Internal("a value could not be indexed")
		}
		cond.indexes = append(cond.indexes, idxs...)
	}
	return cond, nil
}

// lookupSQL finds records by blind indexes: the first condition drives
// the index scan, and each record must match all the others (given as
// parallel arrays of column names and indexes). The statements are
// constants; caller values are only ever parameters.
const lookupSQL = `
	SELECT r.id FROM vault_records r
	WHERE r.vault_id = $1 AND r.table_name = $2
	  AND r.id IN (SELECT c.record_id FROM vault_cells c
	               WHERE c.vault_id = $1 AND c.table_name = $2 AND c.column_name = $3 AND c.blind_index = ANY($4))
	  AND (SELECT count(DISTINCT m.column_name) FROM vault_cells m
	       JOIN unnest($5::text[], $6::bytea[]) AS w(col, idx) ON m.column_name = w.col AND m.blind_index = w.idx
	       WHERE m.vault_id = $1 AND m.record_id = r.id) = $7
	ORDER BY r.created_at %s, r.id %s LIMIT $8 OFFSET $9`

var (
	lookupAsc  = fmt.Sprintf(lookupSQL, "ASC", "ASC")
	lookupDesc = fmt.Sprintf(lookupSQL, "DESC", "DESC")
	pageAsc    = `SELECT id FROM vault_records WHERE vault_id = $1 AND table_name = $2 ORDER BY created_at ASC, id ASC LIMIT $3 OFFSET $4`
	pageDesc   = `SELECT id FROM vault_records WHERE vault_id = $1 AND table_name = $2 ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4`
)

func (c *call) lookup(ctx context.Context, tx pgx.Tx, t *schema.Table, conds []condition, limit, offset int, desc bool) ([]uuid.UUID, error) {
	var cols []string
	var idxs [][]byte
	for _, cond := range conds[1:] {
		for _, idx := range cond.indexes {
			cols, idxs = append(cols, cond.column), append(idxs, idx)
		}
	}
	sql := lookupAsc
	if desc {
		sql = lookupDesc
	}
	rows, err := tx.Query(ctx, sql, c.v.ID, t.Name, conds[0].column, conds[0].indexes, cols, idxs, len(conds)-1, limit, offset)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}

func (c *call) page(ctx context.Context, tx pgx.Tx, t *schema.Table, limit, offset int, desc bool) ([]uuid.UUID, error) {
	sql := pageAsc
	if desc {
		sql = pageDesc
	}
	rows, err := tx.Query(ctx, sql, c.v.ID, t.Name, limit, offset)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}

// fetch reads and presents the records ids of r.table, in the order of
// ids; ids not found (or in another table or vault) are left out.
func (c *call) fetch(ctx context.Context, tx pgx.Tx, r *read, ids []uuid.UUID) ([]Record, error) {
	if len(ids) == 0 {
		return []Record{}, nil
	}
	names := make([]string, len(r.columns))
	for i, col := range r.columns {
		names[i] = col.Name
	}
	rows, err := tx.Query(ctx, `
		SELECT r.id, r.subject_key, c.column_name, c.ciphertext, c.token
		FROM vault_records r LEFT JOIN vault_cells c
		  ON c.vault_id = r.vault_id AND c.record_id = r.id AND c.column_name = ANY($4)
		WHERE r.vault_id = $1 AND r.table_name = $2 AND r.id = ANY($3)`, c.v.ID, r.table.Name, ids, names)
	if err != nil {
		return nil, err
	}
	// Read every row first: the subject keys they name are loaded next, on
	// the same transaction.
	type storedCell struct {
		id      uuid.UUID
		subject *uuid.UUID
		column  *string
		ct      []byte
		token   *string
	}
	var stored []storedCell
	var sc storedCell
	if _, err := pgx.ForEachRow(rows, []any{&sc.id, &sc.subject, &sc.column, &sc.ct, &sc.token}, func() error {
		stored = append(stored, sc)
		return nil
	}); err != nil {
		return nil, err
	}
	refs := make([]*uuid.UUID, len(stored))
	for i := range stored {
		refs[i] = stored[i].subject
	}
	keys, err := c.subjectKeys(ctx, tx, refs)
	if err != nil {
		return nil, err
	}
	found := map[uuid.UUID]map[string]json.RawMessage{}
	for _, sc := range stored {
		fields := found[sc.id]
		if fields == nil {
			fields = map[string]json.RawMessage{"skyflow_id": json.RawMessage(strconv.Quote(sc.id.String()))}
			found[sc.id] = fields
		}
		if sc.column == nil {
			continue
		}
		col, _ := r.table.Column(*sc.column)
		v, err := c.present(r, col, sc.id, keys.of(sc.subject), sc.ct, sc.token)
		if err != nil {
			return nil, err
		}
		fields[col.Name] = v
	}
	out := make([]Record, 0, len(found))
	for _, id := range ids {
		if f, ok := found[id]; ok {
			out = append(out, Record{Fields: f})
			c.access.RecordIDs = append(c.access.RecordIDs, id.String())
		}
	}
	return out, nil
}

// present is one cell as the read returns it: its token, or its value at
// the redaction the policy resolves.
func (c *call) present(r *read, col *schema.Column, record uuid.UUID, sk *crypto.SubjectKey, ciphertext []byte, token *string) (json.RawMessage, error) {
	if r.tokenization && col.TokenType != schema.NoToken && token != nil {
		return json.RawMessage(strconv.Quote(*token)), nil
	}
	level, err := c.v.Policy.Resolve(c.p.Roles, r.table, col, r.redaction)
	if err != nil {
		return nil, err
	}
	if level == schema.Redacted {
		return schema.RedactedValue, nil // no need to decrypt
	}
	plain, err := c.open(r.table, col, record, sk, ciphertext)
	if err != nil {
		return nil, err
	}
	return redact(col, plain, level), nil
}

// open decrypts one cell, with its record's subject key sk when it has one.
func (c *call) open(t *schema.Table, col *schema.Column, record uuid.UUID, sk *crypto.SubjectKey, ciphertext []byte) ([]byte, error) {
	plain, err := c.v.Keys.OpenFor(sk, ciphertext, crypto.Cell{VaultID: c.v.ID, Table: t.Name, Column: col.Name, RecordID: record.String()})
	if err != nil {
		return nil, apierr.Internal("a stored value does not decrypt with the vault's keys")
	}
	return plain, nil
}

// redact gives a canonical value at a resolved redaction.
func redact(col *schema.Column, canonical []byte, level schema.Redaction) json.RawMessage {
	switch level {
	case schema.PlainText:
		return canonical
	case schema.Masked:
		if col.DataType == schema.Bool {
			break // a mask keeps the length, and true and false differ in length
		}
		return col.Masked(schema.Value{Canonical: canonical, Text: schema.TextOf(canonical)})
	}
	return schema.RedactedValue
}
