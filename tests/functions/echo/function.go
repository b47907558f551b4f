// Package main is a test function for the host, the broker and the local
// platform: what it does depends on the event type, so one binary can play
// subscriber, replier, slow worker or failing function in a test.
package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/config"
)

// Event types the test function understands.
const (
	TypeEcho   = "com.skyflow.test.echo"   // reply with the same data as TypeEchoed
	TypeEchoed = "com.skyflow.test.echoed" // the reply to TypeEcho
	TypeSleep  = "com.skyflow.test.sleep"  // {"ms":N}: wait, then reply
	TypePanic  = "com.skyflow.test.panic"  // panic in the handler
	TypeFail   = "com.skyflow.test.fail"   // {"status":N}: answer with that HTTP error
)

// Function records every event it handles in RECORD_DIR/<K_SERVICE>/ (when
// RECORD_DIR is set) and behaves by event type. With FAIL_WITH_STATUS set,
// it answers every event with that HTTP error and records nothing: a
// subscriber that is down.
type Function struct {
	recordDir  string
	failStatus int
}

// New is called once per process.
func New() *Function { return &Function{} }

// Start reads the settings.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	env := config.FromMap(cfg)
	f.failStatus = env.Int("FAIL_WITH_STATUS", 0)
	if dir := env.String("RECORD_DIR", ""); dir != "" {
		f.recordDir = filepath.Join(dir, env.String("K_SERVICE", "echo"))
	}
	if err := env.Err(); err != nil {
		return err
	}
	if f.recordDir != "" {
		return os.MkdirAll(f.recordDir, 0o750)
	}
	return nil
}

// Handle answers one event.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	if f.failStatus != 0 {
		return nil, apierr.New(f.failStatus, "FAIL_WITH_STATUS is set.")
	}
	if err := f.record(e); err != nil {
		return nil, err
	}
	var params struct {
		MS     int `json:"ms"`
		Status int `json:"status"`
	}
	_ = json.Unmarshal(e.Data(), &params)
	switch e.Type() {
	case TypeEcho:
		reply := event.New()
		reply.SetType(TypeEchoed)
		reply.SetSource("/tests/echo")
		reply.SetExtension("echoedid", e.ID())
		if err := reply.SetData(e.DataContentType(), e.Data()); err != nil {
			return nil, err
		}
		return &reply, nil
	case TypeSleep:
		select {
		case <-time.After(time.Duration(params.MS) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		reply := event.New()
		reply.SetType(TypeEchoed)
		reply.SetSource("/tests/echo")
		return &reply, nil
	case TypePanic:
		panic("the test asked for a panic")
	case TypeFail:
		return nil, apierr.New(params.Status, "The test asked for status %d.", params.Status)
	}
	return nil, nil
}

// record writes the event as JSON to <record dir>/<id>.json; tests read them.
func (f *Function) record(e event.Event) error {
	if f.recordDir == "" {
		return nil
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	name := filepath.Join(f.recordDir, filepath.Base(e.ID())+".json")
	if err := os.WriteFile(name+".tmp", b, 0o600); err != nil {
		return err
	}
	return os.Rename(name+".tmp", name)
}
