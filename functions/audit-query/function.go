// Package main is the audit-query function: it lists audit log entries
// (com.skyflow.audit.events.list → com.skyflow.audit.events.listed),
// newest first, filtered by vault, principal, action, resource and time,
// paged by an opaque token. The gateway routes GET /v1/audit/events to it.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/skyflow-oss/skyflow/shared/apierr"
	"github.com/skyflow-oss/skyflow/shared/config"
	"github.com/skyflow-oss/skyflow/shared/db"
)

// Event types and the source of replies.
const (
	ListType   = "com.skyflow.audit.events.list"
	ListedType = "com.skyflow.audit.events.listed"
	Source     = "/skyflow/functions/audit-query"
)

// Page sizes.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// ListRequest is the data of a ListType event; every field is optional.
type ListRequest struct {
	VaultID   string `json:"vault_id"`
	Principal string `json:"principal"`
	Action    string `json:"action"`
	Resource  string `json:"resource"`
	From      string `json:"from"` // RFC 3339, inclusive
	To        string `json:"to"`   // RFC 3339, exclusive
	PageSize  *int   `json:"page_size"`
	PageToken string `json:"page_token"`
}

// Listed is the data of a ListedType event.
type Listed struct {
	Events        []Entry `json:"events"`
	NextPageToken string  `json:"next_page_token"`
}

// Entry is one audit log entry as listed.
type Entry struct {
	Seq        int64     `json:"seq"`
	Type       string    `json:"type"`
	Source     string    `json:"source"`
	ID         string    `json:"id"`
	Subject    string    `json:"subject,omitempty"`
	VaultID    string    `json:"vault_id,omitempty"`
	Principal  string    `json:"principal,omitempty"`
	Resource   string    `json:"resource,omitempty"`
	Action     string    `json:"action,omitempty"`
	OccurredAt time.Time `json:"occurred_at"`
	RecordedAt time.Time `json:"recorded_at"`
	Hash       string    `json:"hash"`
}

// Function answers audit log queries.
type Function struct {
	db.Lifecycle // Pool; Ready and Stop
}

// New is called once per process.
func New() *Function { return &Function{} }

// Start connects (lazily) to the database.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	var err error
	f.Pool, err = db.OpenFromEnv(ctx, config.FromMap(cfg))
	return err
}

// query is a checked ListRequest.
type query struct {
	vaultID, principal, action, resource string
	from, to                             *time.Time
	pageSize                             int
	before                               int64 // seq < before; 0 for the first page
}

// parse checks the request and says precisely what is wrong with it.
func parse(e event.Event) (query, error) {
	q := query{pageSize: DefaultPageSize}
	if e.Type() != ListType {
		return q, apierr.InvalidArgument("event type %q is not handled here: send %s", e.Type(), ListType)
	}
	var req ListRequest
	if data := bytes.TrimSpace(e.Data()); len(data) > 0 {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return q, requestError(err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return q, apierr.InvalidArgument("the request data must be one JSON object, with nothing after it")
		}
	}
	q.vaultID, q.principal, q.action, q.resource = req.VaultID, req.Principal, req.Action, req.Resource
	for _, t := range []struct {
		name, value string
		into        **time.Time
	}{{"from", req.From, &q.from}, {"to", req.To, &q.to}} {
		if t.value == "" {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, t.value)
		if err != nil {
			return q, apierr.InvalidArgument("%s must be a time in RFC 3339 form, such as 2026-11-23T21:00:00Z", t.name)
		}
		*t.into = &at
	}
	if q.from != nil && q.to != nil && !q.from.Before(*q.to) {
		return q, apierr.InvalidArgument("from must be before to")
	}
	if req.PageSize != nil {
		if *req.PageSize < 1 || *req.PageSize > MaxPageSize {
			return q, apierr.InvalidArgument("page_size must be between 1 and %d (default %d), not %d", MaxPageSize, DefaultPageSize, *req.PageSize)
		}
		q.pageSize = *req.PageSize
	}
	if req.PageToken != "" {
		seq, ok := decodeToken(req.PageToken)
		if !ok {
			return q, apierr.InvalidArgument("page_token is not a token this service issued: pass next_page_token from the previous reply unchanged")
		}
		q.before = seq
	}
	return q, nil
}

var allowedFields = "vault_id, principal, action, resource, from, to, page_size, page_token"

// requestError turns a decoding error into a message that names the field
// and never echoes a value.
func requestError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field == "page_size":
		return apierr.InvalidArgument("page_size must be an integer between 1 and %d", MaxPageSize)
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return apierr.InvalidArgument("%s must be a string", typeErr.Field)
	case errors.As(err, &typeErr):
		return apierr.InvalidArgument("the request data must be a JSON object with the fields %s", allowedFields)
	case errors.As(err, &syntaxErr):
		return apierr.InvalidArgument("the request data is not valid JSON (at byte %d)", syntaxErr.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apierr.InvalidArgument("the request data is not valid JSON (it ends too soon)")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return apierr.InvalidArgument("unknown field %s in the request data: the fields are %s",
			strings.TrimPrefix(err.Error(), "json: unknown field "), allowedFields)
	}
	return apierr.InvalidArgument("the request data must be a JSON object with the fields %s", allowedFields)
}

// Page tokens are opaque to callers: base64url of "s<seq>", the smallest
// seq of the page before.
func encodeToken(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("s" + strconv.FormatInt(seq, 10)))
}

func decodeToken(tok string) (int64, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) < 2 || raw[0] != 's' {
		return 0, false
	}
	seq, err := strconv.ParseInt(string(raw[1:]), 10, 64)
	if err != nil || seq < 1 || encodeToken(seq) != tok {
		return 0, false
	}
	return seq, true
}

// sql builds the query: the filters are parameters, never text.
func (q query) sql() (string, []any) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if q.vaultID != "" {
		add("vault_id = $%d", q.vaultID)
	}
	if q.principal != "" {
		add("principal = $%d", q.principal)
	}
	if q.action != "" {
		add("action = $%d", q.action)
	}
	if q.resource != "" {
		add("resource = $%d", q.resource)
	}
	if q.from != nil {
		add("occurred_at >= $%d", *q.from)
	}
	if q.to != nil {
		add("occurred_at < $%d", *q.to)
	}
	if q.before != 0 {
		add("seq < $%d", q.before)
	}
	sql := `SELECT seq, event_type, event_source, event_id, coalesce(subject, ''), coalesce(vault_id, ''),
		coalesce(principal, ''), coalesce(resource, ''), coalesce(action, ''), occurred_at, recorded_at, hash
		FROM audit_log`
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, q.pageSize+1)
	sql += fmt.Sprintf(" ORDER BY seq DESC LIMIT $%d", len(args))
	return sql, args
}

// Handle answers one list request.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	q, err := parse(e)
	if err != nil {
		return nil, err
	}
	sql, args := q.sql()
	rows, err := f.Pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := Listed{Events: []Entry{}}
	for rows.Next() {
		var (
			en   Entry
			hash []byte
		)
		if err := rows.Scan(&en.Seq, &en.Type, &en.Source, &en.ID, &en.Subject, &en.VaultID, &en.Principal,
			&en.Resource, &en.Action, &en.OccurredAt, &en.RecordedAt, &hash); err != nil {
			return nil, err
		}
		en.OccurredAt, en.RecordedAt = en.OccurredAt.UTC(), en.RecordedAt.UTC()
		en.Hash = hex.EncodeToString(hash)
		out.Events = append(out.Events, en)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out.Events) > q.pageSize {
		out.Events = out.Events[:q.pageSize]
		out.NextPageToken = encodeToken(out.Events[q.pageSize-1].Seq)
	}
	reply := event.New()
	reply.SetID(uuid.NewSHA1(uuid.NameSpaceURL, []byte(e.Source()+"\x00"+e.ID())).String())
	reply.SetSource(Source)
	reply.SetType(ListedType)
	reply.SetTime(time.Now())
	if err := reply.SetData(event.ApplicationJSON, out); err != nil {
		return nil, err
	}
	return &reply, nil
}
