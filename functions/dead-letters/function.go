// Package main is the dead-letters function: the dead-letter sink of every
// Trigger. It keeps each event that could not be delivered (once, however
// often it is redelivered), counts it by type, and announces it with a
// com.skyflow.eventing.deadletter.recorded event, written through the
// outbox in the same transaction, so operators can be told.
package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyflow-oss/skyflow/runtime/metrics"
	"github.com/skyflow-oss/skyflow/runtime/outbox"
	"github.com/skyflow-oss/skyflow/runtime/sender"
)

// RecordedType announces a dead letter. A dead letter of this type is kept
// but not announced again, so a failing consumer of announcements cannot
// start an endless chain.
const RecordedType = "com.skyflow.eventing.deadletter.recorded"

// Source is the source of the events this function emits.
const Source = "/skyflow/functions/dead-letters"

// Recorded is the data of a RecordedType event: identifiers only.
type Recorded struct {
	Source      string `json:"source"`
	ID          string `json:"id"`
	Type        string `json:"type"`
	Destination string `json:"destination,omitempty"`
	Status      int    `json:"status,omitempty"`
}

// Function records dead letters.
type Function struct {
	outbox.Lifecycle // Backend: the pool and the Publisher; Stop flushes the outbox
	received         *prometheus.CounterVec
	types            *metrics.BoundedLabel
}

// New is called once per process.
func New() *Function {
	f := &Function{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skyflow_dead_letters_total",
			Help: "Events that could not be delivered after their retries, by type.",
		}, []string{"type"}),
		types: metrics.NewBoundedLabel(64),
	}
	metrics.Registry.MustRegister(f.received)
	return f
}

// Handle keeps one dead letter.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	if err := sender.Require(ctx, sender.Broker); err != nil {
		return nil, err
	}
	stored, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	rec := Recorded{Source: e.Source(), ID: e.ID(), Type: e.Type(), Destination: extension(e, "knativeerrordest")}
	rec.Status, _ = strconv.Atoi(extension(e, "knativeerrorcode"))
	var status *int
	if rec.Status != 0 {
		status = &rec.Status
	}
	var fresh bool
	err = f.Backend.Publisher.Transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
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
		announcement, err := announce(rec)
		if err != nil {
			return nil, err
		}
		return []event.Event{announcement}, nil
	})
	if err != nil {
		return nil, err
	}
	if fresh {
		f.received.WithLabelValues(f.types.Value(rec.Type)).Inc()
		slog.WarnContext(ctx, "dead letter", "id", rec.ID, "type", rec.Type, "status", rec.Status, "destination", rec.Destination)
	}
	return nil, nil
}

// announce makes the RecordedType event. Its id is derived from the dead
// letter's identity, so a retried transaction announces the same event.
func announce(rec Recorded) (event.Event, error) {
	e := event.New()
	e.SetID(uuid.NewSHA1(uuid.NameSpaceURL, []byte(rec.Source+"\x00"+rec.ID)).String())
	e.SetSource(Source)
	e.SetType(RecordedType)
	e.SetSubject(rec.Type)
	return e, e.SetData(event.ApplicationJSON, rec)
}

func extension(e event.Event, name string) string {
	v, _ := e.Extensions()[name].(string)
	return v
}
