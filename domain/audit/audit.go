// Package audit is Skyflow's tamper-evident audit log: an append-only table
// (audit_log, migration 0003) in which every entry is chained to the one
// before by a SHA-256 hash, so that a changed, inserted or removed entry is
// found by [Verify] even when someone with superuser rights got past the
// table's append-only trigger.
//
// Entries never hold sensitive values: [FromEvent] keeps an event's context
// attributes, a few extensions, and for com.skyflow.audit.* events only the
// data fields in [DataAllowList].
//
// audit-record appends through a [Writer]; audit-query lists through
// [List]. As everywhere, the log's logic and SQL live here in domain/, and
// those function folders are thin adapters: they decode the event, call
// this package and encode its answer.
package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// AuditTypePrefix marks the events whose data fields in [DataAllowList] are
// kept.
const AuditTypePrefix = "com.skyflow.audit."

// DataAllowList is the data fields of AuditTypePrefix events that an entry
// keeps; nothing else of any event's data is ever kept.
var DataAllowList = []string{"action", "result", "vault_id", "table", "columns", "record_ids", "redaction", "principal"}

// Entry is what is hashed: the audited facts of one event.
//
// Its canonical form, the bytes that are hashed, is encoding/json's
// encoding of the struct: fields in the order declared here, empty ones
// left out, no white space, strings escaped as encoding/json escapes them
// (including <, > and & as \u003c, \u003e, \u0026), the keys of Data sorted
// by bytes, and numbers in Data as float64 in encoding/json's shortest form.
// Time is RFC 3339 in UTC with up to microsecond precision (what PostgreSQL
// keeps). Data values are strings, numbers, booleans, or arrays of those;
// anything else is dropped when the entry is made.
type Entry struct {
	Type      string         `json:"type"`
	Source    string         `json:"source"`
	ID        string         `json:"id"`
	Subject   string         `json:"subject,omitempty"`
	Time      string         `json:"time"`
	Principal string         `json:"principal,omitempty"`
	VaultID   string         `json:"vault_id,omitempty"`
	Resource  string         `json:"resource,omitempty"`
	Action    string         `json:"action,omitempty"`
	Data      map[string]any `json:"data,omitempty"`
}

// Canonical returns the entry's canonical form (see [Entry]).
func (e Entry) Canonical() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Hash is SHA-256 over prev followed by the entry's canonical form; prev is
// empty for the first entry of the chain.
func Hash(prev []byte, e Entry) []byte {
	c, err := e.Canonical()
	if err != nil {
		// Only unsupported values fail, and an Entry has none once made by
		// FromEvent or read back from the table.
		panic(fmt.Sprintf("audit: canonical form: %v", err))
	}
	return hashCanonical(prev, c)
}

// hashCanonical is [Hash] of an entry already in its canonical form c.
func hashCanonical(prev, c []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(c)
	return h.Sum(nil)
}

// TimeFormat is how Entry.Time is written.
const TimeFormat = "2006-01-02T15:04:05.999999Z07:00"

// FromEvent makes the entry of an event. now is used when the event has no
// time. Sensitive values cannot reach the entry: data is read only for
// AuditTypePrefix events, and only its allow-listed fields.
func FromEvent(e event.Event, now time.Time) Entry {
	at := e.Time()
	if at.IsZero() {
		at = now
	}
	en := Entry{
		Type:      e.Type(),
		Source:    e.Source(),
		ID:        e.ID(),
		Subject:   e.Subject(),
		Time:      at.UTC().Truncate(time.Microsecond).Format(TimeFormat),
		Principal: extension(e, "principal"),
		VaultID:   extension(e, "vaultid"),
		Resource:  extension(e, "resource"),
		Action:    extension(e, "action"),
	}
	if len(en.Type) > len(AuditTypePrefix) && en.Type[:len(AuditTypePrefix)] == AuditTypePrefix {
		en.Data = allowed(e.Data())
		str := func(k string) string { s, _ := en.Data[k].(string); return s }
		if en.Principal == "" {
			en.Principal = str("principal")
		}
		if en.VaultID == "" {
			en.VaultID = str("vault_id")
		}
		if en.Action == "" {
			en.Action = str("action")
		}
	}
	return en
}

// allowed returns the allow-listed fields of a JSON object, with values
// that are scalars or arrays of scalars; nil when data is not an object.
func allowed(data []byte) map[string]any {
	var obj map[string]any
	if json.Unmarshal(data, &obj) != nil {
		return nil
	}
	out := map[string]any{}
	for _, k := range DataAllowList {
		v, ok := obj[k]
		if !ok {
			continue
		}
		if scalar(v) {
			out[k] = v
			continue
		}
		if list, ok := v.([]any); ok {
			keep := true
			for _, x := range list {
				keep = keep && scalar(x)
			}
			if keep {
				out[k] = list
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func scalar(v any) bool {
	switch v.(type) {
	case string, float64, bool:
		return true
	}
	return false
}

func extension(e event.Event, name string) string {
	v, ok := e.Extensions()[name]
	if !ok {
		return ""
	}
	s, err := types.ToString(v)
	if err != nil {
		return ""
	}
	return s
}

// Validate reports why the log cannot hold e: a missing source, id or type,
// a time not in [TimeFormat], or a string PostgreSQL refuses (a NUL byte,
// invalid UTF-8). Such an entry would fail every transaction it is in, so
// callers that group entries check each one before it joins a group.
func (e Entry) Validate() error {
	if e.Source == "" || e.ID == "" || e.Type == "" {
		return errors.New("audit: an entry needs a source, an id and a type")
	}
	if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
		return fmt.Errorf("audit: entry time: %w", err)
	}
	for _, f := range [...]struct{ name, v string }{
		{"type", e.Type}, {"source", e.Source}, {"id", e.ID}, {"subject", e.Subject}, {"principal", e.Principal},
		{"vault_id", e.VaultID}, {"resource", e.Resource}, {"action", e.Action},
	} {
		if !storable(f.v) {
			return fmt.Errorf("audit: entry %s: not valid UTF-8 or holds a NUL byte", f.name)
		}
	}
	for k, v := range e.Data {
		vs, ok := v.([]any)
		if !ok {
			vs = []any{v}
		}
		for _, x := range vs {
			if s, ok := x.(string); ok && !storable(s) {
				return fmt.Errorf("audit: entry data %s: not valid UTF-8 or holds a NUL byte", k)
			}
		}
	}
	return nil
}

// storable reports whether PostgreSQL's text and jsonb take s unchanged;
// encoding/json would also rewrite invalid UTF-8, so the hashed entry and
// its columns would disagree.
func storable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// Result is what [AppendBatch] did with one entry.
type Result struct {
	// Seq is the entry's place in the chain; 0 when it was not appended.
	Seq int64
	// Appended is false for a duplicate: an entry with the same source and
	// id is already in the log, or earlier in the same batch.
	Appended bool
}

// Append adds the entry to the chain in tx: [AppendBatch] of one entry.
func Append(ctx context.Context, tx pgx.Tx, e Entry) (seq int64, appended bool, err error) {
	rs, err := AppendBatch(ctx, tx, []Entry{e})
	if err != nil {
		return 0, false, err
	}
	return rs[0].Seq, rs[0].Appended, nil
}

// AppendBatch adds the entries to the chain in tx, in the order given, and
// returns one Result per entry. An entry whose source and id are already in
// the log, or earlier in entries, is not appended: redeliveries are dropped.
//
// Appends are serialised by a row lock on audit_chain_head, held until tx
// ends, so tx must be READ COMMITTED (the default): each statement after the
// lock then sees every append committed before it. The whole batch costs
// the same round trips as one entry: the lock and the once-only check of
// every entry go in one, the rows and the head's move in another, and the
// hash chain is computed here in between. If any statement fails, nothing
// of the batch may be committed: the caller rolls tx back.
func AppendBatch(ctx context.Context, tx pgx.Tx, entries []Entry) ([]Result, error) {
	return appendBatch(ctx, tx, entries, false)
}

// batchSender is a connection or a transaction.
type batchSender interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// appendBatch is [AppendBatch] on q. With own, q is a connection outside a
// transaction, and the transaction is appendBatch's: BEGIN goes in the
// same round trip as the head's lock and COMMIT in the same as the rows,
// so a batch costs two round trips rather than four ([Writer]). If it
// fails, q may be left in a failed transaction, for the caller to roll
// back.
func appendBatch(ctx context.Context, q batchSender, entries []Entry, own bool) ([]Result, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	type key struct{ source, id string }
	var (
		canon   = make([][]byte, len(entries))
		at      = make([]time.Time, len(entries))
		sources = make([]string, len(entries))
		ids     = make([]string, len(entries))
	)
	for i, e := range entries {
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("%w (entry %d of %d)", err, i+1, len(entries))
		}
		at[i], _ = time.Parse(time.RFC3339Nano, e.Time) // Validate parsed it
		c, err := e.Canonical()
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		canon[i], sources[i], ids[i] = c, e.Source, e.ID
	}

	var (
		headSeq int64
		prev    []byte
		seen    = map[key]bool{}
	)
	// The check runs after the lock is granted, as its own statement, so it
	// sees every entry committed by the appends that held the lock before.
	b := &pgx.Batch{}
	if own {
		b.Queue(`BEGIN`)
	}
	b.Queue(`SELECT seq, hash FROM audit_chain_head FOR UPDATE`).QueryRow(func(r pgx.Row) error {
		if err := r.Scan(&headSeq, &prev); err != nil {
			return fmt.Errorf("audit: lock the chain head: %w", err)
		}
		return nil
	})
	b.Queue(`SELECT k.s, k.i FROM unnest($1::text[], $2::text[]) AS k(s, i)
		WHERE EXISTS (SELECT 1 FROM audit_log l WHERE l.event_source = k.s AND l.event_id = k.i)`,
		sources, ids).Query(func(rows pgx.Rows) error {
		var k key
		_, err := pgx.ForEachRow(rows, []any{&k.source, &k.id}, func() error {
			seen[k] = true
			return nil
		})
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		return nil
	})
	if err := q.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}

	// The chain is computed in order; seq is given here rather than by the
	// column's sequence, so it follows the chain by construction and has no
	// gaps (a sequence leaves one for every rolled-back append).
	var (
		results = make([]Result, len(entries))
		rows    struct {
			seq                                                         []int64
			source, id, typ, subject, vault, principal, res, act, entry []string
			at                                                          []time.Time
			prev, hash                                                  [][]byte
		}
		seq = headSeq
	)
	for i, e := range entries {
		k := key{e.Source, e.ID}
		if seen[k] {
			continue
		}
		seen[k] = true
		seq++
		hash := hashCanonical(prev, canon[i])
		rows.seq = append(rows.seq, seq)
		rows.source = append(rows.source, e.Source)
		rows.id = append(rows.id, e.ID)
		rows.typ = append(rows.typ, e.Type)
		rows.subject = append(rows.subject, e.Subject)
		rows.vault = append(rows.vault, e.VaultID)
		rows.principal = append(rows.principal, e.Principal)
		rows.res = append(rows.res, e.Resource)
		rows.act = append(rows.act, e.Action)
		rows.at = append(rows.at, at[i])
		rows.entry = append(rows.entry, string(canon[i]))
		rows.prev = append(rows.prev, prev) // nil (NULL) for the chain's first entry
		rows.hash = append(rows.hash, hash)
		results[i] = Result{Seq: seq, Appended: true}
		prev = hash
	}
	b = &pgx.Batch{}
	if seq == headSeq { // duplicates only: the head stays as it is
		if !own {
			return results, nil
		}
		b.Queue(`COMMIT`)
		if err := q.SendBatch(ctx, b).Close(); err != nil {
			return nil, fmt.Errorf("audit: commit: %w", err)
		}
		return results, nil
	}
	b.Queue(`INSERT INTO audit_log
		(seq, event_source, event_id, event_type, subject, vault_id, principal, resource, action, occurred_at, entry, prev_hash, hash)
		SELECT seq, s, i, t, NULLIF(sub, ''), NULLIF(v, ''), NULLIF(p, ''), NULLIF(r, ''), NULLIF(a, ''), at, e::jsonb, prev, h
		FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
			$10::timestamptz[], $11::text[], $12::bytea[], $13::bytea[]) AS x(seq, s, i, t, sub, v, p, r, a, at, e, prev, h)`,
		rows.seq, rows.source, rows.id, rows.typ, rows.subject, rows.vault, rows.principal, rows.res, rows.act,
		rows.at, rows.entry, rows.prev, rows.hash)
	b.Queue(`UPDATE audit_chain_head SET seq = $1, hash = $2`, seq, prev)
	// Nothing inserts by the column's default any more, but keeping its
	// sequence past the head means one that did (an older binary during a
	// rollout) would not collide with the seqs given here.
	b.Queue(`SELECT setval(pg_get_serial_sequence('audit_log', 'seq'), $1)`, seq)
	if own {
		b.Queue(`COMMIT`)
	}
	if err := q.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("audit: insert: %w", err)
	}
	return results, nil
}

// Broken is the first entry of the chain that does not match.
type Broken struct {
	Seq    int64
	Reason string
}

func (b *Broken) Error() string { return fmt.Sprintf("entry seq %d: %s", b.Seq, b.Reason) }

// Verify walks the chain in seq order in one snapshot, recomputing every
// hash. It returns how many entries matched and, if one did not, the first
// that did not: its hash does not match its entry, its prev_hash does not
// match the entry before, its indexed columns disagree with its entry, or
// the chain head does not name the last entry (entries removed at the end).
func Verify(ctx context.Context, pool *pgxpool.Pool) (checked int64, firstBroken *Broken, err error) {
	err = pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		checked, firstBroken, err = verify(ctx, tx)
		return err
	})
	return checked, firstBroken, err
}

func verify(ctx context.Context, tx pgx.Tx) (int64, *Broken, error) {
	rows, err := tx.Query(ctx, `SELECT seq, event_source, event_id, event_type, coalesce(subject, ''), coalesce(vault_id, ''),
		coalesce(principal, ''), coalesce(resource, ''), coalesce(action, ''), occurred_at, entry::text, prev_hash, hash
		FROM audit_log ORDER BY seq`)
	if err != nil {
		return 0, nil, fmt.Errorf("audit: verify: %w", err)
	}
	defer rows.Close()
	var (
		checked  int64
		lastSeq  int64
		lastHash []byte
	)
	for rows.Next() {
		var (
			seq                                                  int64
			source, id, typ, subject, vault, principal, res, act string
			occurred                                             time.Time
			raw                                                  string
			prev, hash                                           []byte
		)
		if err := rows.Scan(&seq, &source, &id, &typ, &subject, &vault, &principal, &res, &act, &occurred, &raw, &prev, &hash); err != nil {
			return checked, nil, fmt.Errorf("audit: verify: %w", err)
		}
		broken := func(format string, args ...any) (int64, *Broken, error) {
			return checked, &Broken{Seq: seq, Reason: fmt.Sprintf(format, args...)}, nil
		}
		if !bytes.Equal(prev, lastHash) {
			if lastSeq == 0 {
				return broken("prev_hash is set, but it is the first entry of the chain")
			}
			return broken("prev_hash does not match the hash of entry seq %d before it", lastSeq)
		}
		var e Entry
		dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return broken("the entry is not in the hashed form: %v", err)
		}
		if !bytes.Equal(Hash(prev, e), hash) {
			return broken("its hash does not match its entry")
		}
		at, err := time.Parse(time.RFC3339Nano, e.Time)
		if source != e.Source || id != e.ID || typ != e.Type || subject != e.Subject || vault != e.VaultID ||
			principal != e.Principal || res != e.Resource || act != e.Action || err != nil || !at.Equal(occurred) {
			return broken("its columns disagree with its hashed entry")
		}
		checked++
		lastSeq, lastHash = seq, hash
	}
	if err := rows.Err(); err != nil {
		return checked, nil, fmt.Errorf("audit: verify: %w", err)
	}
	var (
		headSeq  int64
		headHash []byte
	)
	if err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_chain_head`).Scan(&headSeq, &headHash); err != nil {
		return checked, nil, fmt.Errorf("audit: verify: read the chain head: %w", err)
	}
	if headSeq != lastSeq || !bytes.Equal(headHash, lastHash) {
		seq := max(headSeq, lastSeq)
		return checked, &Broken{Seq: seq, Reason: fmt.Sprintf(
			"the chain head names entry seq %d, but the log ends at seq %d (entries removed or the head altered)", headSeq, lastSeq)}, nil
	}
	return checked, nil, nil
}
