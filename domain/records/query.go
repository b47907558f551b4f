package records

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/domain/records/sqlsubset"
	"github.com/skyflow-oss/skyflow/domain/vaults/schema"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// Query answers the safe SQL subset (POST /v1/vaults/{vaultID}/query):
// equality conditions on indexed columns, answered from blind indexes at
// the caller's default redaction. The SQL is parsed by PostgreSQL's own
// parser (sqlsubset) and never run: it becomes parameters of a constant
// statement.
func (s *Service) Query(ctx context.Context, p request.Principal, vaultID string, req QueryRequest) (*GetResponse, error) {
	c, err := s.begin(ctx, p, vaultID, "query")
	if err != nil {
		return nil, err
	}
	q, err := sqlsubset.Parse(req.Query)
	if err != nil {
		return nil, err
	}
	var res *GetResponse
	err = c.commit(ctx, func(tx pgx.Tx) error {
		res, err = c.query(ctx, tx, q)
		return err
	})
	return res, err
}

func (c *call) query(ctx context.Context, tx pgx.Tx, q *sqlsubset.Query) (*GetResponse, error) {
	r, err := c.prepareRead(q.Table, q.Columns, string(schema.Default), false)
	if err != nil {
		return nil, err
	}
	conds := make([]condition, len(q.Where))
	for i, w := range q.Where {
		if conds[i], err = c.condition(r.table, w.Column, w.Values); err != nil {
			return nil, err
		}
	}
	limit := q.Limit
	if limit == 0 {
		limit = MaxItems
	}
	ids, err := c.lookup(ctx, tx, r.table, conds, limit, q.Offset, false)
	if err != nil {
		return nil, err
	}
	recs, err := c.fetch(ctx, tx, r, ids)
	if err != nil {
		return nil, err
	}
	return &GetResponse{Records: recs}, nil
}
