package records

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/domain/crypto"
	"github.com/skyflow-oss/skyflow/domain/records/tokens"
	"github.com/skyflow-oss/skyflow/domain/vaults/policy"
	"github.com/skyflow-oss/skyflow/domain/vaults/schema"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// Detokenize turns tokens back into values (POST /v1/vaults/{vaultID}/detokenize),
// each at its own redaction, capped by the policy's read level of the
// token's column. A token of another vault is "not found", exactly like
// one that never existed.
func (s *Service) Detokenize(ctx context.Context, p request.Principal, vaultID string, req DetokenizeRequest) (*DetokenizeResponse, error) {
	c, err := s.begin(ctx, p, vaultID, "detokenize")
	if err != nil {
		return nil, err
	}
	var res *DetokenizeResponse
	err = c.commit(ctx, func(tx pgx.Tx) error {
		res, err = c.detokenize(ctx, tx, req)
		return err
	})
	return res, err
}

// tokenCell is the cell a token names.
type tokenCell struct {
	record     uuid.UUID
	table      string
	column     string
	ciphertext []byte
	subject    *uuid.UUID // the record's subject key, if any
	key        *crypto.SubjectKey
}

func (c *call) detokenize(ctx context.Context, tx pgx.Tx, req DetokenizeRequest) (*DetokenizeResponse, error) {
	n := len(req.Parameters)
	if n == 0 || n > MaxItems {
		return nil, apierr.InvalidArgument("detokenizationParameters must hold 1 to %d tokens, not %d", MaxItems, n)
	}
	redactions := make([]schema.Redaction, n)
	toks := make([]string, n)
	for i, param := range req.Parameters {
		if !tokens.WellFormed(param.Token) {
			return nil, apierr.InvalidArgument("detokenizationParameters[%d].token is not a well-formed token", i)
		}
		r, err := schema.ParseRedaction(param.Redaction)
		if err != nil {
			return nil, apierr.InvalidArgument("detokenizationParameters[%d].redaction must be one of DEFAULT, REDACTED, MASKED, PLAIN_TEXT", i)
		}
		toks[i], redactions[i] = param.Token, r
	}
	if err := c.require(policy.Detokenize, ""); err != nil {
		return nil, err
	}
	cells, err := c.tokenCells(ctx, tx, toks)
	if err != nil {
		return nil, err
	}
	res := &DetokenizeResponse{Records: make([]Detokenized, n)}
	var failed []int
	for i, tok := range toks {
		out := &res.Records[i]
		out.Token = tok
		value, valueType, err := c.detokenizeOne(cells[tok], redactions[i])
		if err != nil {
			if !req.ContinueOnError {
				return nil, detokenizeFailure(err, i, cells, toks)
			}
			msg := message(err)
			out.ValueType, out.Error = "NONE", &msg
			failed = append(failed, i)
			continue
		}
		out.Value, out.ValueType = value, valueType
	}
	if len(failed) == n && req.ContinueOnError {
		// Nothing was revealed; the per-token errors say why.
		c.access.Result = "failed"
	}
	return res, nil
}

var errTokenNotFound = apierr.NotFound("Token Not Found")

// detokenizeFailure is the error of a detokenize without continueOnError
// whose token i failed: the Skyflow message when no token is valid, else
// one that names the index (never the token's value).
func detokenizeFailure(err error, i int, cells map[string]*tokenCell, toks []string) error {
	if err != errTokenNotFound {
		return err
	}
	for _, tok := range toks {
		if cells[tok] != nil {
			return apierr.NotFound("Detokenize failed. The token at index %d is invalid. Specify valid tokens, or set continueOnError to get the others.", i)
		}
	}
	return apierr.NotFound("Detokenize failed. All tokens are invalid. Specify valid tokens.")
}

func (c *call) detokenizeOne(cell *tokenCell, requested schema.Redaction) (value, valueType string, err error) {
	if cell == nil {
		return "", "", errTokenNotFound
	}
	t, ok := c.v.Schema.Table(cell.table)
	if !ok {
		return "", "", errTokenNotFound
	}
	col, ok := t.Column(cell.column)
	if !ok {
		return "", "", errTokenNotFound
	}
	level, err := c.v.Policy.Resolve(c.p.Roles, t, col, requested)
	if err != nil {
		return "", "", err
	}
	c.noteAccess(t.Name, col.Name, cell.record, level)
	if level == schema.Redacted {
		return schema.TextOf(schema.RedactedValue), col.DataType.ValueType(), nil
	}
	plain, err := c.open(t, col, cell.record, cell.key, cell.ciphertext)
	if err != nil {
		return "", "", err
	}
	return schema.TextOf(redact(col, plain, level)), col.DataType.ValueType(), nil
}

// noteAccess adds a revealed cell to the audit event.
func (c *call) noteAccess(table, column string, record uuid.UUID, level schema.Redaction) {
	if c.access.Table == "" {
		c.access.Table = table
	}
	c.access.Columns = appendNew(c.access.Columns, table+"."+column)
	c.access.RecordIDs = appendNew(c.access.RecordIDs, record.String())
	if c.access.Redaction == "" || schema.Redaction(c.access.Redaction).Rank() < level.Rank() {
		c.access.Redaction = string(level) // the clearest level revealed
	}
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// tokenCells finds the cell each token names in this vault only. A
// deterministic token names every cell holding its value in its column
// group, possibly in several tables and columns: any cell of one column
// will do, and of the columns, the one the caller may read most clearly
// (the first by table and column name on a tie). So the answer never
// depends on which records hold the value, and a caller is never refused
// for a column it cannot read when it can read the value in another.
func (c *call) tokenCells(ctx context.Context, tx pgx.Tx, toks []string) (map[string]*tokenCell, error) {
	rows, err := tx.Query(ctx, `
		SELECT DISTINCT ON (c.token, c.table_name, c.column_name) c.token, c.record_id, c.table_name, c.column_name, c.ciphertext, r.subject_key
		FROM vault_cells c JOIN vault_records r ON r.vault_id = c.vault_id AND r.id = c.record_id
		WHERE c.vault_id = $1 AND c.token = ANY($2)
		ORDER BY c.token, c.table_name, c.column_name, c.record_id`, c.v.ID, toks)
	if err != nil {
		return nil, err
	}
	out := map[string]*tokenCell{}
	rank := map[string]int{}
	var tok string
	var cell tokenCell
	_, err = pgx.ForEachRow(rows, []any{&tok, &cell.record, &cell.table, &cell.column, &cell.ciphertext, &cell.subject}, func() error {
		r := c.readRank(cell.table, cell.column)
		if _, seen := out[tok]; seen && r <= rank[tok] {
			return nil
		}
		cp := cell
		out[tok], rank[tok] = &cp, r
		return nil
	})
	if err != nil {
		return nil, err
	}
	var refs []*uuid.UUID
	for _, cl := range out {
		refs = append(refs, cl.subject)
	}
	keys, err := c.subjectKeys(ctx, tx, refs)
	for _, cl := range out {
		cl.key = keys.of(cl.subject)
	}
	return out, err
}

// readRank is the rank of the clearest redaction the caller may read a
// column at: 0 when it may not read it or the schema no longer has it.
func (c *call) readRank(table, column string) int {
	t, ok := c.v.Schema.Table(table)
	if !ok {
		return 0
	}
	col, ok := t.Column(column)
	if !ok {
		return 0
	}
	level, ok := c.v.Policy.ReadLevel(c.p.Roles, t, col)
	if !ok {
		return 0
	}
	return level.Rank()
}

// Tokenize returns the deterministic tokens already issued for values
// (POST /v1/vaults/{vaultID}/tokenize). A value the vault does not hold
// in the column group has no token, and the request fails.
func (s *Service) Tokenize(ctx context.Context, p request.Principal, vaultID string, req TokenizeRequest) (*TokenizeResponse, error) {
	c, err := s.begin(ctx, p, vaultID, "tokenize")
	if err != nil {
		return nil, err
	}
	var res *TokenizeResponse
	err = c.commit(ctx, func(tx pgx.Tx) error {
		res, err = c.tokenize(ctx, tx, req)
		return err
	})
	return res, err
}

func (c *call) tokenize(ctx context.Context, tx pgx.Tx, req TokenizeRequest) (*TokenizeResponse, error) {
	n := len(req.Parameters)
	if n == 0 || n > MaxItems {
		return nil, apierr.InvalidArgument("tokenizationParameters must hold 1 to %d values, not %d", MaxItems, n)
	}
	if err := c.require(policy.Tokenize, ""); err != nil {
		return nil, err
	}
	byKey := map[groupKey][]*cell{}
	cells := make([]cell, n)
	for i, param := range req.Parameters {
		where := fmt.Sprintf("tokenizationParameters[%d]", i)
		t, col := c.groupColumn(param.ColumnGroup)
		if col == nil {
			return nil, apierr.InvalidArgument("%s.columnGroup %q is not a column group with deterministic tokens in this vault", where, param.ColumnGroup)
		}
		val, err := col.Coerce(param.Value)
		if err != nil {
			return nil, apierr.InvalidArgument("%s.value: %s", where, message(err))
		}
		idx, err := c.v.Keys.BlindIndex(groupTable, param.ColumnGroup, val.Canonical)
		if err != nil {
			return nil, apierr.Internal("a value could not be indexed")
		}
		cells[i] = cell{table: t, column: col, value: val}
		k := groupKey{param.ColumnGroup, string(idx)}
		byKey[k] = append(byKey[k], &cells[i])
		c.access.Columns = appendNew(c.access.Columns, param.ColumnGroup)
	}
	found, err := c.issuedTokens(ctx, tx, byKey)
	if err != nil {
		return nil, err
	}
	settle(byKey, found)
	res := &TokenizeResponse{Records: make([]Token, n)}
	for i, cl := range cells {
		if cl.token == "" {
			return nil, apierr.NotFound("Tokenize failed: tokenizationParameters[%d] is a value the vault does not hold in column group %q. Insert it first.", i, req.Parameters[i].ColumnGroup)
		}
		res.Records[i].Token = cl.token
	}
	return res, nil
}

// groupColumn finds a column with deterministic tokens in a column group.
func (c *call) groupColumn(group string) (*schema.Table, *schema.Column) {
	for ti := range c.v.Schema.Tables {
		t := &c.v.Schema.Tables[ti]
		for ci := range t.Columns {
			col := &t.Columns[ci]
			if col.TokenType.Deterministic() && col.Group(t.Name) == group {
				return t, col
			}
		}
	}
	return nil, nil
}
