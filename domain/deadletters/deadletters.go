// Package deadletters keeps the events that could not be delivered after
// their retries: the dead-letters function, every Trigger's dead-letter
// sink, hands each one to [Record], which stores it once (however often it
// is redelivered) and announces it with a
// com.skyflow.eventing.deadletter.recorded event, written through the
// outbox in the same transaction, so operators can be told.
//
// Domain logic lives in domain/: the dead-letters function folder is a
// thin adapter that checks who sent the event, calls Record, and counts
// and logs what it kept.
package deadletters

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/runtime/outbox"
)

// RecordedType announces a dead letter. A dead letter of this type is kept
// but not announced again, so a failing consumer of announcements cannot
// start an endless chain.
const RecordedType = "com.skyflow.eventing.deadletter.recorded"

// Recorded is the data of a RecordedType event: identifiers only.
type Recorded struct {
	Source      string `json:"source"`
	ID          string `json:"id"`
	Type        string `json:"type"`
	Destination string `json:"destination,omitempty"`
	Status      int    `json:"status,omitempty"`
}

// Record keeps dead letter e in dead_letters and, unless it is an
// announcement itself, announces it from source, in one transaction
// through pub. fresh says whether e was new: a redelivery keeps and
// announces nothing.
func Record(ctx context.Context, pub *outbox.Publisher, source string, e event.Event) (rec Recorded, fresh bool, err error) {
	stored, err := json.Marshal(e)
	if err != nil {
		return rec, false, err
	}
	rec = Recorded{Source: e.Source(), ID: e.ID(), Type: e.Type(), Destination: extension(e, "knativeerrordest")}
	rec.Status, _ = strconv.Atoi(extension(e, "knativeerrorcode"))
	var status *int
	if rec.Status != 0 {
		status = &rec.Status
	}
	err = pub.Transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		tag, err := tx.Exec(ctx, `INSERT INTO dead_letters (source, id, type, destination, status, event)
			VALUES ($1, $2, $3, NULLIF($4, ''), $5, $6) ON CONFLICT (source, id) DO NOTHING`,
			rec.Source, rec.ID, rec.Type, rec.Destination, status, stored)
		if err != nil {
			return nil, err
		}
		fresh = tag.RowsAffected() == 1
		if !fresh || rec.Type == RecordedType {
			return nil, nil
		}
		announcement, err := announce(source, rec)
		if err != nil {
			return nil, err
		}
		return []event.Event{announcement}, nil
	})
	if err != nil {
		return rec, false, err
	}
	return rec, fresh, nil
}

// announce makes the RecordedType event. Its id is derived from the dead
// letter's identity, so a retried transaction announces the same event.
func announce(source string, rec Recorded) (event.Event, error) {
	e := event.New()
	e.SetID(uuid.NewSHA1(uuid.NameSpaceURL, []byte(rec.Source+"\x00"+rec.ID)).String())
	e.SetSource(source)
	e.SetType(RecordedType)
	e.SetSubject(rec.Type)
	return e, e.SetData(event.ApplicationJSON, rec)
}

func extension(e event.Event, name string) string {
	v, _ := e.Extensions()[name].(string)
	return v
}
