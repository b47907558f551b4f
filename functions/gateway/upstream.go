package main

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

// upstream sends events to the functions.
type upstream struct {
	settings Settings
	signer   *sender.Signer
	client   *http.Client
}

func newUpstream(s Settings, signer *sender.Signer) *upstream {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// Every request goes to one of a few dozen functions: keep connections.
	transport.MaxIdleConnsPerHost = 64
	return &upstream{settings: s, signer: signer, client: &http.Client{Transport: transport, Timeout: s.UpstreamTimeout}}
}

// reply is a function's answer as the client will get it.
type reply struct {
	status      int
	contentType string
	body        []byte
	upstreamErr string // why the function could not answer, for the metrics
}

// call signs e for function, POSTs it in binary mode and turns the reply
// event (or the function's error envelope) into a reply.
func (u *upstream) call(ctx context.Context, function string, e event.Event) *reply {
	ctx, span := otel.Tracer("skyflow/gateway").Start(ctx, e.Type(), trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	telemetry.InjectEvent(ctx, &e)
	req, err := cehttp.NewHTTPRequestFromEvent(ctx, u.settings.functionURL(function), e)
	if err != nil {
		return unavailable("request")
	}
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	if err := u.signer.Authorize(req, e, function); err != nil {
		return unavailable("sign")
	}
	resp, err := u.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return errorReply(apierr.New(http.StatusGatewayTimeout, "the request took longer than %s and was abandoned", u.settings.UpstreamTimeout), "timeout")
		}
		return unavailable("connect")
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusNoContent {
		return &reply{status: http.StatusNoContent}
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
		if _, ok := apierr.Parse(body); !ok {
			return unavailable("status")
		}
		r := &reply{status: resp.StatusCode, contentType: "application/json", body: body}
		if resp.StatusCode >= 500 {
			r.upstreamErr = "5xx"
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
	return &reply{status: http.StatusOK, contentType: ct, body: out.Data()}
}

func unavailable(reason string) *reply {
	return errorReply(apierr.New(http.StatusBadGateway, "the service behind this route did not answer properly; try again"), reason)
}

func errorReply(e *apierr.Error, reason string) *reply {
	body, _ := e.MarshalJSON()
	return &reply{status: e.HTTPCode, contentType: "application/json", body: body, upstreamErr: reason}
}

// write answers the client with the reply.
func (r *reply) write(w http.ResponseWriter) {
	if r.status == http.StatusNoContent || r.status == http.StatusNotModified {
		w.WriteHeader(r.status)
		return
	}
	w.Header().Set("Content-Type", r.contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(r.status)
	w.Write(r.body)
}

// readBody reads the request body up to limit: larger is a 413.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err == nil && int64(len(body)) > limit {
		return nil, apierr.New(http.StatusRequestEntityTooLarge, "the request body is larger than %d bytes", limit)
	}
	if err != nil {
		return nil, apierr.InvalidArgument("the request body could not be read")
	}
	return body, nil
}

// fetchJWKS asks the auth-jwks function for the access tokens' key set,
// as a client's GET /.well-known/jwks.json would.
func (f *Function) fetchJWKS(ctx context.Context) ([]byte, error) {
	e := event.New()
	e.SetID("jwks-" + time.Now().UTC().Format(time.RFC3339Nano))
	e.SetSource(Source)
	e.SetType("com.skyflow.auth.jwks.get")
	r := f.upstream.call(ctx, "auth-jwks", e)
	if r.status != http.StatusOK {
		return nil, errors.New("auth-jwks answered " + http.StatusText(r.status))
	}
	return r.body, nil
}
