// Package main is the push-vapid-key function: it answers the platform's
// VAPID public key, which a browser passes as applicationServerKey to
// PushManager.subscribe(), so that only Skyflow can push to the
// subscription it makes. The gateway routes GET /v1/push/vapid-key
// (anonymous, cached for an hour) to it as a com.skyflow.push.vapidkey.get
// event; it replies com.skyflow.push.vapidkey.get.response:
//
//	{"publicKey": "<base64url, an uncompressed P-256 point>"}
package main

import (
	"context"
	"errors"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/domain/push"
	"github.com/skyflow-oss/skyflow/runtime/config"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

const (
	RequestType = "com.skyflow.push.vapidkey.get"
	ReplyType   = RequestType + ".response"
	Source      = "/skyflow/functions/push-vapid-key"
)

type Function struct {
	publicKey string
}

var (
	_ host.Starter = (*Function)(nil)
	_ host.Stopper = (*Function)(nil)
)

func New() *Function { return &Function{} }

// Start reads SKYFLOW_VAPID_PUBLIC_KEY (the private key stays with
// notify-push).
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	env := config.FromMap(cfg)
	pub, err := push.PublicKeyFromEnv(env)
	if err := errors.Join(env.Err(), err); err != nil {
		return err
	}
	f.publicKey = pub
	return nil
}

// Stop has nothing to close.
func (f *Function) Stop(context.Context) error { return nil }

// VAPIDKey is the answer.
type VAPIDKey struct {
	PublicKey string `json:"publicKey"`
}

func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	if err := request.AcceptAnonymous(ctx, e, RequestType); err != nil {
		return nil, err
	}
	return request.Reply(e, ReplyType, Source, VAPIDKey{PublicKey: f.publicKey})
}
