package records

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// Batch runs operations on several tables in one request
// (POST /v1/vaults/{vaultID}). Without continueOnError it is one
// transaction: the first failure fails the request and nothing is
// written. With it, each operation runs in its own savepoint and answers
// with its own Body and Status, so a failed one leaves no trace and the
// others still land.
func (s *Service) Batch(ctx context.Context, p request.Principal, vaultID string, req BatchRequest) (*BatchResponse, error) {
	c, err := s.begin(ctx, p, vaultID, "batch")
	if err != nil {
		return nil, err
	}
	if n := len(req.Records); n == 0 || n > MaxItems {
		return nil, apierr.InvalidArgument("records must hold 1 to %d operations, not %d", MaxItems, n)
	}
	if err := checkBYOT(req.BYOT); err != nil {
		return nil, err
	}
	res := &BatchResponse{VaultID: c.v.ID, Responses: make([]any, len(req.Records))}
	err = c.commit(ctx, func(tx pgx.Tx) error {
		for i, op := range req.Records {
			if !req.ContinueOnError {
				body, err := c.batchOp(ctx, tx, i, op)
				if err != nil {
					return err
				}
				res.Responses[i] = body
				continue
			}
			res.Responses[i] = c.batchItem(ctx, tx, i, op)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// batchItem runs one operation of a continueOnError batch in a savepoint.
func (c *call) batchItem(ctx context.Context, tx pgx.Tx, i int, op BatchRecord) BatchItem {
	events := len(c.events)
	sp, err := tx.Begin(ctx)
	if err != nil {
		return failedItem(dbError(err))
	}
	body, err := c.batchOp(ctx, sp, i, op)
	if err == nil {
		err = sp.Commit(ctx)
	}
	if err != nil {
		_ = sp.Rollback(ctx)
		c.events = c.events[:events] // the operation's events go with it
		return failedItem(dbError(err))
	}
	return BatchItem{Body: body, Status: http.StatusOK}
}

func failedItem(err error) BatchItem {
	ae := apierr.From(err)
	return BatchItem{Body: BatchError{Error: ae.Message}, Status: ae.HTTPCode}
}

// batchOp runs one operation with the code of the single operation.
func (c *call) batchOp(ctx context.Context, tx pgx.Tx, i int, op BatchRecord) (any, error) {
	where := fmt.Sprintf("records[%d]", i)
	if op.Method == http.MethodPut || op.Method == http.MethodGet || op.Method == http.MethodDelete {
		if _, err := parseSkyflowID(op.ID, "ID"); err != nil {
			return nil, prefix(where, err)
		}
	}
	switch op.Method {
	case http.MethodPost:
		if op.ID != "" || op.Redaction != "" {
			return nil, apierr.InvalidArgument("%s: a POST takes tableName, fields, tokenization and upsert", where)
		}
		res, err := c.insert(ctx, tx, op.TableName, InsertRequest{Records: []RecordFields{{Fields: op.Fields}}, Tokenization: op.Tokenization, Upsert: op.Upsert})
		return res, prefix(where, err)
	case http.MethodPut:
		if op.Redaction != "" || op.Upsert != "" {
			return nil, apierr.InvalidArgument("%s: a PUT takes tableName, ID, fields and tokenization", where)
		}
		res, err := c.update(ctx, tx, op.TableName, op.ID, op.Fields, op.Tokenization, "")
		return res, prefix(where, err)
	case http.MethodGet:
		if len(op.Fields) > 0 || op.Upsert != "" {
			return nil, apierr.InvalidArgument("%s: a GET takes tableName, ID, redaction and tokenization", where)
		}
		q := url.Values{"skyflow_ids": {op.ID}, "redaction": {op.Redaction}}
		params, err := ParseGetParams(q)
		if err != nil {
			return nil, prefix(where, err)
		}
		params.Tokenization = op.Tokenization
		res, err := c.get(ctx, tx, op.TableName, params)
		return res, prefix(where, err)
	case http.MethodDelete:
		if len(op.Fields) > 0 || op.Redaction != "" || op.Upsert != "" || op.Tokenization {
			return nil, apierr.InvalidArgument("%s: a DELETE takes tableName and ID", where)
		}
		res, err := c.deleteOne(ctx, tx, op.TableName, op.ID)
		return res, prefix(where, err)
	}
	return nil, apierr.InvalidArgument("%s.method must be POST, PUT, GET or DELETE", where)
}

// prefix names the batch operation in an error's message. A message that
// points into the single operation's body (records[0].fields.x of an
// insert, record.fields.x of an update) points into the operation's
// instead: records[1]: fields.x: ….
func prefix(where string, err error) error {
	if err == nil {
		return nil
	}
	ae := apierr.From(err)
	if ae.HTTPCode >= 500 {
		return ae
	}
	msg := where + ": " + ae.Message
	for _, inner := range []string{"records[0].", "record."} {
		if rest, ok := strings.CutPrefix(ae.Message, inner); ok {
			msg = where + ": " + rest
			break
		}
	}
	return &apierr.Error{HTTPCode: ae.HTTPCode, Message: msg, Details: ae.Details}
}
