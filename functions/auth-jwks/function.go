// Package main is the auth-jwks function: it serves the public keys that verify access tokens.
// The gateway routes GET /.well-known/jwks.json to it as a com.skyflow.auth.jwks.get event
// (the contract is in runtime/request); it replies com.skyflow.auth.jwks.get.response, whose
// data is the HTTP response body.
package main

import (
	"context"
	"encoding/json"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

const (
	RequestType = "com.skyflow.auth.jwks.get"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/auth-jwks"
)

type Function struct {
	identity.Lifecycle
}

var (
	_ host.Starter           = (*Function)(nil)
	_ host.Stopper           = (*Function)(nil)
	_ host.ReadinessReporter = (*Function)(nil)
)

func New() *Function { return &Function{} }

func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	if err := request.AcceptAnonymous(ctx, e, RequestType); err != nil {
		return nil, err
	}
	jwks, err := f.Backend.Keys.JWKS(ctx)
	if err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, json.RawMessage(jwks))
}
