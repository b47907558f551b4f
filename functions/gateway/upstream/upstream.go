// Package upstream is the gateway's way to the functions: it turns a
// client's request into the binary-mode CloudEvent the route's function
// takes, signs it for that function (runtime/sender), POSTs it there and
// turns the reply event, or the function's error envelope, into the answer
// the client gets.
package upstream

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/sender"
	"github.com/skyflow-oss/skyflow/runtime/telemetry"
)

// maxReplyBytes bounds a function's reply read into memory.
const maxReplyBytes = 16 << 20

// Forwarder sends events to the functions.
type Forwarder struct {
	signer  *sender.Signer
	url     func(function string) string
	timeout time.Duration
	client  *http.Client
}

// NewForwarder signs with signer and finds a function at url(name); a
// function that has not answered within timeout is abandoned (504).
func NewForwarder(signer *sender.Signer, url func(function string) string, timeout time.Duration) *Forwarder {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// Every request goes to one of a few dozen functions: keep connections.
	transport.MaxIdleConnsPerHost = 64
	return &Forwarder{signer: signer, url: url, timeout: timeout, client: &http.Client{Transport: transport, Timeout: timeout}}
}

// Reply is a function's answer as the client will get it.
type Reply struct {
	Status      int
	ContentType string
	Body        []byte
	Failure     string // why the function could not answer, for the metrics
}

// Forward signs e for function, POSTs it in binary mode and turns the
// reply event (or the function's error envelope) into a Reply.
func (f *Forwarder) Forward(ctx context.Context, function string, e event.Event) *Reply {
	ctx, span := otel.Tracer("skyflow/gateway").Start(ctx, e.Type(), trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	telemetry.InjectEvent(ctx, &e)
	req, err := cehttp.NewHTTPRequestFromEvent(ctx, f.url(function), e)
	if err != nil {
		return unavailable("request")
	}
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	if err := f.signer.Authorize(req, e, function); err != nil {
		return unavailable("sign")
	}
	resp, err := f.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return ErrorReply(apierr.New(http.StatusGatewayTimeout, "the request took longer than %s and was abandoned", f.timeout), "timeout")
		}
		return unavailable("connect")
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusNoContent {
		return &Reply{Status: http.StatusNoContent}
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
		if _, ok := apierr.Parse(body); !ok {
			return unavailable("status")
		}
		r := &Reply{Status: resp.StatusCode, ContentType: "application/json", Body: body}
		if resp.StatusCode >= 500 {
			r.Failure = "5xx"
		}
		return r
	}
	out, err := binding.ToEvent(ctx, cehttp.NewMessageFromHttpResponse(&http.Response{
		StatusCode: resp.StatusCode, Header: resp.Header, Body: io.NopCloser(io.LimitReader(resp.Body, maxReplyBytes))}))
	if err != nil {
		return unavailable("reply")
	}
	ct := out.DataContentType()
	if ct == "" {
		ct = "application/json"
	}
	return &Reply{Status: http.StatusOK, ContentType: ct, Body: out.Data()}
}

func unavailable(reason string) *Reply {
	return ErrorReply(apierr.New(http.StatusBadGateway, "the service behind this route did not answer properly; try again"), reason)
}

// ErrorReply answers with the error envelope; reason, when not "", is why
// the function could not answer, for the metrics.
func ErrorReply(e *apierr.Error, reason string) *Reply {
	body, _ := e.MarshalJSON()
	return &Reply{Status: e.HTTPCode, ContentType: "application/json", Body: body, Failure: reason}
}

// Write answers the client with the reply.
func (r *Reply) Write(w http.ResponseWriter) {
	if r.Status == http.StatusNoContent || r.Status == http.StatusNotModified {
		w.WriteHeader(r.Status)
		return
	}
	w.Header().Set("Content-Type", r.ContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(r.Status)
	w.Write(r.Body)
}

// ReadBody reads the request body up to limit: larger is a 413.
func ReadBody(r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err == nil && int64(len(body)) > limit {
		return nil, apierr.New(http.StatusRequestEntityTooLarge, "the request body is larger than %d bytes", limit)
	}
	if err != nil {
		return nil, apierr.InvalidArgument("the request body could not be read")
	}
	return body, nil
}

// FetchJWKS asks the auth-jwks function for the access tokens' key set,
// as a client's GET /.well-known/jwks.json would.
func (f *Forwarder) FetchJWKS(ctx context.Context) ([]byte, error) {
	e := event.New()
	e.SetID("jwks-" + time.Now().UTC().Format(time.RFC3339Nano))
	e.SetSource(Source)
	e.SetType("com.skyflow.auth.jwks.get")
	r := f.Forward(ctx, "auth-jwks", e)
	if r.Status != http.StatusOK {
		return nil, errors.New("auth-jwks answered " + http.StatusText(r.Status))
	}
	return r.Body, nil
}
