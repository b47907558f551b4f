// Package main is the audit-query function: it lists audit log entries
// (com.skyflow.audit.events.list → com.skyflow.audit.events.listed) for
// platform administrators and auditors,
// newest first, filtered by vault, principal, action, resource and time,
// paged by an opaque token (domain/audit does the work). The gateway
// routes GET /v1/audit/events to it.
package main

import (
	"context"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/skyflow-oss/skyflow/domain/audit"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

const (
	ListType   = "com.skyflow.audit.events.list"
	ListedType = "com.skyflow.audit.events.listed"
	Source     = "/skyflow/functions/audit-query"
)

// Function answers audit log queries.
type Function struct {
	db.Lifecycle[db.Database, *db.Database]
}

var (
	_ host.Starter           = (*Function)(nil)
	_ host.Stopper           = (*Function)(nil)
	_ host.ReadinessReporter = (*Function)(nil)
)

func New() *Function { return &Function{} }

func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	p, err := request.Accept(ctx, e, ListType)
	if err != nil {
		return nil, err
	}
	if err := audit.CheckReader(p); err != nil {
		return nil, err
	}
	params, err := request.Query(e)
	if err != nil {
		return nil, err
	}
	out, err := audit.List(ctx, f.Backend.Pool, p, params)
	if err != nil {
		return nil, err
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
