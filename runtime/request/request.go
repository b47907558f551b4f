// Package request is the contract between the gateway and the functions it
// forwards client requests to. The gateway turns an HTTP request into a
// binary-mode CloudEvent: the body is the event's data, and these
// extensions carry the rest:
//
//	principal   the authenticated principal's id (absent on anonymous routes)
//	roles       the principal's role ids, separated by spaces
//	clientaddr  the client's IP address, for per-address limits
//	query       the raw URL query string, exactly as the client sent it
//	vaultid, table, skyflowid, userid, clientid, keyid, webhookid,
//	subscriptionid
//	            the path parameters, named after the routes' {vaultID},
//	            {table}, {skyflow_id}, {userID}, {clientID}, {keyID},
//	            {webhookID} and {subscriptionID} in lower case without
//	            punctuation
//
// A function reads them only through this package, so the contract is
// written down once.
package request

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/sender"
)

// Extension names.
const (
	ExtPrincipal  = "principal"
	ExtRoles      = "roles"
	ExtQuery      = "query"
	ExtVaultID    = "vaultid"
	ExtTable      = "table"
	ExtSkyflowID  = "skyflowid"
	ExtUserID     = "userid"
	ExtClientID   = "clientid"
	ExtKeyID      = "keyid"
	ExtClientAddr = "clientaddr"
	// ExtWebhookID and ExtSubscriptionID are the webhook and push routes'.
	ExtWebhookID      = "webhookid"
	ExtSubscriptionID = "subscriptionid"
)

// Principal is who a request acts for.
type Principal struct {
	ID    string
	Roles []string
}

// PrincipalOf returns the request's principal. A request without one is
// refused: deny by default.
func PrincipalOf(e event.Event) (Principal, error) {
	id := Extension(e, ExtPrincipal)
	if id == "" {
		return Principal{}, apierr.Unauthenticated("the request carries no authenticated principal: send it through the gateway with a bearer token")
	}
	return Principal{ID: id, Roles: strings.Fields(Extension(e, ExtRoles))}, nil
}

// Has reports whether the principal holds role.
func (p Principal) Has(role string) bool {
	for _, r := range p.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// Extension returns a string extension, or "" when it is absent.
func Extension(e event.Event, name string) string {
	v, ok := e.Extensions()[name]
	if !ok {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// Query returns the request's query parameters.
func Query(e event.Event) (url.Values, error) {
	q, err := url.ParseQuery(Extension(e, ExtQuery))
	if err != nil {
		return nil, apierr.InvalidArgument("the query string is not valid URL encoding: escape reserved characters with %%XX")
	}
	return q, nil
}

// Decode reads the event's data, one JSON object, into v. Unknown fields
// are refused with their name, so a misspelt option is never silently
// ignored, and no error echoes a value.
func Decode(e event.Event, v any) error {
	data := bytes.TrimSpace(e.Data())
	if len(data) == 0 {
		return apierr.InvalidArgument("the request body is empty: send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return apierr.InvalidArgument("the request body must be one JSON object, with nothing after it")
	}
	return nil
}

func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return apierr.InvalidArgument("%s must be %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()))
	case errors.As(err, &typeErr):
		return apierr.InvalidArgument("the request body must be a JSON object")
	case errors.As(err, &syntaxErr):
		return apierr.InvalidArgument("the request body is not valid JSON (at byte %d)", syntaxErr.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apierr.InvalidArgument("the request body is not valid JSON (it ends too soon)")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return apierr.InvalidArgument("unknown field %s in the request body", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return apierr.InvalidArgument("the request body is not a valid JSON object")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "bool":
		return "a boolean"
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	case "int", "int32", "int64", "uint", "uint32", "uint64", "float64":
		return "a number"
	}
	return "of another JSON type"
}

// Reply makes the reply to e: type replyType, source, and data (encoded as
// JSON) that the gateway returns as the HTTP response body.
func Reply(e event.Event, replyType, source string, data any) (*event.Event, error) {
	r := event.New()
	r.SetID(e.ID())
	r.SetType(replyType)
	r.SetSource(source)
	if err := r.SetData(event.ApplicationJSON, data); err != nil {
		return nil, apierr.Internal("the reply could not be encoded")
	}
	return &r, nil
}

// Accept checks that e is a client request of the type the function
// handles, sent by the gateway, and returns its principal.
func Accept(ctx context.Context, e event.Event, typ string) (Principal, error) {
	if err := AcceptAnonymous(ctx, e, typ); err != nil {
		return Principal{}, err
	}
	return PrincipalOf(e)
}

// AcceptAnonymous checks that e is a client request of the type the
// function handles, sent by the gateway, for the routes that need no
// principal (register, log in, token exchange, JWKS). The host has
// verified the sender's assertion; client requests come only from the
// gateway, never from the broker or another function.
func AcceptAnonymous(ctx context.Context, e event.Event, typ string) error {
	if err := sender.Require(ctx, sender.Gateway); err != nil {
		return err
	}
	if e.Type() != typ {
		return apierr.InvalidArgument("event type %q is not handled here: send %s", e.Type(), typ)
	}
	return nil
}
