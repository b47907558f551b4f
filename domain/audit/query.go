package audit

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/domain/vaults/policy"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	skyrequest "github.com/skyflow-oss/skyflow/runtime/request"
)

// Page sizes of a listing.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// The query parameters of GET /v1/audit/events; every one is optional.
var allowedParams = []string{"vault_id", "principal", "action", "resource", "from", "to", "page_size", "page_token"}

// Auditor is the role that may read the audit log, besides platform administrators.
const Auditor = "auditor"

// Listed is a page of the log as audit-query answers it
// (com.skyflow.audit.events.listed).
type Listed struct {
	Events        []ListedEntry `json:"events"`
	NextPageToken string        `json:"next_page_token"`
}

// ListedEntry is one audit log entry as listed.
type ListedEntry struct {
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

// List answers GET /v1/audit/events for p, a platform administrator or an
// auditor: the entries that match params (vault_id, principal, action,
// resource, from, to), newest first, a page of page_size after
// page_token. Every bad parameter is a 400 that says what is wrong with it,
// without echoing its value.
func List(ctx context.Context, pool *pgxpool.Pool, p skyrequest.Principal, params url.Values) (*Listed, error) {
	if err := CheckReader(p); err != nil {
		return nil, err
	}
	q, err := parseQuery(params)
	if err != nil {
		return nil, err
	}
	sql, args := q.sql()
	rows, err := pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := &Listed{Events: []ListedEntry{}}
	for rows.Next() {
		var (
			en   ListedEntry
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
	return out, nil
}

// CheckReader says whether p may read the audit log: platform
// administrators and auditors may. List checks it too; a caller checks it
// first to refuse a stranger before reading their request.
func CheckReader(p skyrequest.Principal) error {
	if !p.Has(policy.PlatformAdmin) && !p.Has(Auditor) {
		return apierr.PermissionDenied("only platform administrators and auditors (roles %q, %q) may read the audit log", policy.PlatformAdmin, Auditor)
	}
	return nil
}

// query is a checked listing request.
type query struct {
	vaultID, principal, action, resource string
	from, to                             *time.Time
	pageSize                             int
	before                               int64 // seq < before; 0 for the first page
}

// parseQuery checks the request's query and says precisely what is wrong
// with it.
func parseQuery(params url.Values) (query, error) {
	q := query{pageSize: DefaultPageSize}
	for name, values := range params {
		if !slices.Contains(allowedParams, name) {
			return q, apierr.InvalidArgument("unknown query parameter %q: use %s", name, strings.Join(allowedParams, ", "))
		}
		if len(values) > 1 {
			return q, apierr.InvalidArgument("%s may be given once", name)
		}
	}
	q.vaultID, q.principal, q.action, q.resource = params.Get("vault_id"), params.Get("principal"), params.Get("action"), params.Get("resource")
	for _, t := range []struct {
		name string
		into **time.Time
	}{{"from", &q.from}, {"to", &q.to}} {
		v := params.Get(t.name)
		if v == "" {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return q, apierr.InvalidArgument("%s must be a time in RFC 3339 form, such as 2026-11-23T21:00:00Z", t.name)
		}
		*t.into = &at
	}
	if q.from != nil && q.to != nil && !q.from.Before(*q.to) {
		return q, apierr.InvalidArgument("from must be before to")
	}
	if v := params.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPageSize {
			return q, apierr.InvalidArgument("page_size must be an integer between 1 and %d (default %d)", MaxPageSize, DefaultPageSize)
		}
		q.pageSize = n
	}
	if v := params.Get("page_token"); v != "" {
		seq, ok := decodeToken(v)
		if !ok {
			return q, apierr.InvalidArgument("page_token is not a token this service issued: pass next_page_token from the previous reply unchanged")
		}
		q.before = seq
	}
	return q, nil
}

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
