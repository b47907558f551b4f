// Package audit is Skyflow's tamper-evident audit log: an append-only table
// (audit_log, migration 0003) in which every entry is chained to the one
// before by a SHA-256 hash, so that a changed, inserted or removed entry is
// found by [Verify] even when someone with superuser rights got past the
// table's append-only trigger.
//
// Entries never hold sensitive values: [FromEvent] keeps an event's context
// attributes, a few extensions, and for com.skyflow.audit.* events only the
// data fields in [DataAllowList].
package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

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

// Append adds the entry to the chain in tx. A second entry with the same
// source and id is not appended (appended is false, seq 0): redeliveries
// are dropped. Appends are serialised by a row lock on audit_chain_head,
// held until tx ends.
func Append(ctx context.Context, tx pgx.Tx, e Entry) (seq int64, appended bool, err error) {
	if e.Source == "" || e.ID == "" || e.Type == "" {
		return 0, false, errors.New("audit: an entry needs a source, an id and a type")
	}
	at, err := time.Parse(time.RFC3339Nano, e.Time)
	if err != nil {
		return 0, false, fmt.Errorf("audit: entry time: %w", err)
	}
	var (
		headSeq int64
		prev    []byte
	)
	if err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_chain_head FOR UPDATE`).Scan(&headSeq, &prev); err != nil {
		return 0, false, fmt.Errorf("audit: lock the chain head: %w", err)
	}
	// A duplicate is found before a hash is spent on it; under the head's
	// lock no other append can race this check.
	var dup bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit_log WHERE event_source = $1 AND event_id = $2)`,
		e.Source, e.ID).Scan(&dup); err != nil {
		return 0, false, fmt.Errorf("audit: %w", err)
	}
	if dup {
		return 0, false, nil
	}
	entry, err := e.Canonical()
	if err != nil {
		return 0, false, fmt.Errorf("audit: %w", err)
	}
	hash := Hash(prev, e)
	err = tx.QueryRow(ctx, `INSERT INTO audit_log
		(event_source, event_id, event_type, subject, vault_id, principal, resource, action, occurred_at, entry, prev_hash, hash)
		VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), NULLIF($6, ''), NULLIF($7, ''), NULLIF($8, ''), $9, $10, $11, $12)
		RETURNING seq`,
		e.Source, e.ID, e.Type, e.Subject, e.VaultID, e.Principal, e.Resource, e.Action, at, string(entry), prev, hash).Scan(&seq)
	if err != nil {
		return 0, false, fmt.Errorf("audit: insert: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE audit_chain_head SET seq = $1, hash = $2`, seq, hash); err != nil {
		return 0, false, fmt.Errorf("audit: move the chain head: %w", err)
	}
	return seq, true, nil
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
