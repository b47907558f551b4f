package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrDuplicate is wrapped by the error [Add] returns for an event whose
// source and id are already in the outbox.
var ErrDuplicate = errors.New("outbox: duplicate event")

// A record is one outbox row's identity and content.
type record struct {
	seq             int64
	source, id, typ string
	subject         string    // "" when the event has none: no order to keep
	payload         []byte    // the event in structured-mode JSON
	created         time.Time // when the row was written
}

// Add writes events to the outbox within tx, to be published after tx
// commits. Each event must be valid; an event without a time gets the
// current time, so that every send of it carries the same one. Adding an
// event whose source and id are already present is an error wrapping
// [ErrDuplicate], and leaves tx aborted.
func Add(ctx context.Context, tx pgx.Tx, events ...event.Event) error {
	recs := make([]record, 0, len(events))
	seen := make(map[[2]string]bool, len(events))
	for _, e := range events {
		r, err := encode(e)
		if err != nil {
			return err
		}
		key := [2]string{r.source, r.id}
		if seen[key] {
			return fmt.Errorf("%w: id %q from %q given twice", ErrDuplicate, r.id, r.source)
		}
		seen[key] = true
		recs = append(recs, r)
	}
	if len(recs) == 0 {
		return nil
	}

	b := &pgx.Batch{}
	for _, r := range recs {
		b.Queue(`INSERT INTO outbox (source, id, type, subject, event) VALUES ($1, $2, $3, NULLIF($4, ''), $5)`,
			r.source, r.id, r.typ, r.subject, r.payload)
	}
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	for _, r := range recs {
		if _, err := br.Exec(); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "23505" {
				return fmt.Errorf("%w: id %q from %q is already in the outbox", ErrDuplicate, r.id, r.source)
			}
			return fmt.Errorf("outbox: add event %q: %w", r.id, err)
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("outbox: add: %w", err)
	}
	return nil
}

// encode validates e and renders the bytes stored and sent for it.
func encode(e event.Event) (record, error) {
	if err := e.Validate(); err != nil {
		return record{}, fmt.Errorf("outbox: invalid event %q: %w", e.ID(), err)
	}
	if e.Time().IsZero() {
		e = e.Clone() // the caller's event shares its context with e
		e.SetTime(time.Now().UTC())
	}
	payload, err := json.Marshal(e)
	if err != nil {
		return record{}, fmt.Errorf("outbox: encode event %q: %w", e.ID(), err)
	}
	return record{source: e.Source(), id: e.ID(), typ: e.Type(), subject: e.Subject(), payload: payload}, nil
}

// decode turns a stored payload back into the event to send.
func decode(payload []byte) (event.Event, error) {
	var e event.Event
	if err := json.Unmarshal(payload, &e); err != nil {
		return event.Event{}, err
	}
	return e, nil
}
