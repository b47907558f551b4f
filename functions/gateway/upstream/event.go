package upstream

import (
	"net/http"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/functions/gateway/routes"
	"github.com/skyflow-oss/skyflow/runtime/request"
)

// Source is the source of the events the gateway sends.
const Source = "/skyflow/functions/gateway"

// NewEvent turns a client's request, whose id is id, into the CloudEvent
// the route's function takes (runtime/request is the contract): p is the
// caller (none on an anonymous route), client its address.
func NewEvent(id string, r *http.Request, route *routes.Route, params map[string]string, p request.Principal, client string, body []byte) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource(Source)
	e.SetType(route.Type)
	e.SetTime(time.Now().UTC())
	if len(body) > 0 {
		_ = e.SetData(event.ApplicationJSON, body) // bytes are kept as they are: it cannot fail
	}
	if p.ID != "" {
		e.SetExtension(request.ExtPrincipal, p.ID)
		e.SetExtension(request.ExtRoles, strings.Join(p.Roles, " "))
	}
	e.SetExtension(request.ExtClientAddr, client)
	if r.URL.RawQuery != "" {
		e.SetExtension(request.ExtQuery, r.URL.RawQuery)
	}
	for name, value := range params {
		e.SetExtension(routes.PathParams[name], value)
	}
	return e
}
