// Package webhookstest is the fixture the webhooks-* functions' tests
// share, on a functest environment: the webhook service, for setting up
// endpoints the way webhooks-subscribe makes them; the administrator who
// owns them; the request extension that names one; and the events a
// function published, each checked against the catalog. What a function
// does with them stays in its own test.
//
// Only tests import it.
package webhookstest

import (
	"context"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
	"github.com/skyflow-oss/skyflow/eventing/catalog"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/testkit/functest"
)

// Admin is functest.Admin as a principal: whom the requests come from in
// functest.Event(…, functest.Admin), and so the owner of the endpoints
// set up here.
var Admin = request.Principal{ID: functest.Admin[request.ExtPrincipal], Roles: []string{"admin"}}

// PublicURL is where Subscribe's endpoints deliver: a public address
// literal, so that subscribing needs no name lookup (tests have no DNS)
// and no allowed network. Nothing is ever delivered there in these tests.
const PublicURL = "https://93.184.216.34/hooks"

// Service is the webhook service on env, for setting up endpoints. Make it
// after setting env.Config, so that it sees what the function sees.
func Service(env *functest.Env) *webhooks.Service {
	env.T.Helper()
	b, err := webhooks.Connect(context.Background(), env.Config)
	if err != nil {
		env.T.Fatal(err)
	}
	env.T.Cleanup(b.Pool.Close)
	return webhooks.NewService(b, "/skyflow/functions/webhooks-subscribe")
}

// Subscribe makes an endpoint of Admin's at PublicURL for types
// (com.skyflow.vault.* when none).
func Subscribe(t testing.TB, s *webhooks.Service, types ...string) *webhooks.NewEndpoint {
	t.Helper()
	if len(types) == 0 {
		types = []string{"com.skyflow.vault.*"}
	}
	ep, err := s.Subscribe(context.Background(), Admin, webhooks.SubscribeRequest{URL: PublicURL, EventTypes: types})
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// WithID is the webhookid extension, which names the endpoint a request is
// about (the gateway sets it from the path).
func WithID(id string) map[string]string { return map[string]string{request.ExtWebhookID: id} }

// Emitted are the events of one type the function published on env's
// sink, each checked against the catalog.
func Emitted(env *functest.Env, typ string) []event.Event {
	env.T.Helper()
	out := env.Sink.OfType(typ)
	for _, e := range out {
		if err := catalog.Validate(e); err != nil {
			env.T.Error(err)
		}
	}
	return out
}
