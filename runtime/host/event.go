package host

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/logging"
	"github.com/skyflow-oss/skyflow/runtime/sender"
	"github.com/skyflow-oss/skyflow/runtime/telemetry"
)

// serveEvent reads one CloudEvent, hands it to the function and writes the
// reply event (binary mode) or the error envelope.
func (h *httpHandler) serveEvent(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if !h.started.Load() || h.draining.Load() {
		// 503 is retried by the broker and by the gateway's caller.
		h.fail(w, "", "", apierr.Unavailable("The function is not ready yet. Try again."))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.settings.MaxBodyBytes)
	e, err := cehttp.NewEventFromHTTPRequest(r)
	if err != nil {
		h.fail(w, "", "", decodeError(r, err, h.settings.MaxBodyBytes))
		return
	}
	if err := e.Validate(); err != nil {
		h.fail(w, "", "", apierr.InvalidArgument("The CloudEvent is not valid: %v.", err))
		return
	}
	typ := h.metrics.eventType.Value(e.Type())
	// SKY-ARCH-001: only a trusted sender's event, signed for this function.
	from, err := h.settings.Senders.Verify(r.Header.Get("Authorization"), *e, h.settings.Function, time.Now())
	if err != nil {
		refusal := apierr.Unauthenticated("%v", err)
		if errors.Is(err, sender.ErrKeysUnavailable) {
			refusal = apierr.Unavailable("the sender's keys cannot be fetched right now; try again") // retried
		}
		h.metrics.observe(typ, refusal.HTTPCode, start)
		h.fail(w, e.ID(), typ, refusal)
		return
	}
	h.metrics.inFlight.Inc()
	defer h.metrics.inFlight.Dec()

	// The trace continues from the event's traceparent extension, or from
	// the HTTP headers of a caller that did not set one.
	ctx := telemetry.ExtractEvent(r.Context(), e)
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	ctx, span := otel.Tracer("skyflow/host").Start(ctx, e.Type(), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("cloudevents.event_id", e.ID()),
			attribute.String("cloudevents.event_type", e.Type()),
			attribute.String("cloudevents.event_source", e.Source()),
			attribute.String("faas.name", h.settings.Function)))
	defer span.End()
	ctx = logging.WithRequestID(ctx, e.ID())
	ctx = sender.NewContext(ctx, from.Issuer)
	ctx, cancel := context.WithTimeout(ctx, h.settings.EventTimeout)
	defer cancel()

	reply, err := h.call(ctx, *e)
	h.metrics.received.WithLabelValues(h.settings.Function, typ).Inc()
	if err == nil && reply != nil {
		err = completeReply(ctx, reply, h.settings.Function)
	}
	if err != nil {
		aerr := apierr.From(err)
		if errors.Is(err, context.DeadlineExceeded) {
			aerr = apierr.New(http.StatusGatewayTimeout, "The request took longer than %s and was abandoned.", h.settings.EventTimeout)
		}
		if aerr.HTTPCode >= 500 {
			h.log.ErrorContext(ctx, "event failed", "type", e.Type(), "error", err)
			span.SetStatus(codes.Error, aerr.Message)
		}
		span.SetAttributes(attribute.Int("http.response.status_code", aerr.HTTPCode))
		h.metrics.observe(typ, aerr.HTTPCode, start)
		h.fail(w, e.ID(), typ, aerr)
		return
	}
	status := http.StatusAccepted
	if reply != nil {
		status = http.StatusOK
	}
	h.metrics.observe(typ, status, start)
	if reply == nil {
		w.WriteHeader(status)
		return
	}
	if err := cehttp.WriteResponseWriter(ctx, binding.ToMessage(reply), status, w); err != nil {
		h.log.WarnContext(ctx, "writing the reply", "error", err)
	}
}

// call runs Handle, turning a panic into an internal error so that one bad
// event cannot take the process down.
func (h *httpHandler) call(ctx context.Context, e event.Event) (reply *event.Event, err error) {
	defer func() {
		if p := recover(); p != nil {
			h.log.ErrorContext(ctx, "handler panicked", "type", e.Type(), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			h.metrics.panics.WithLabelValues(h.settings.Function).Inc()
			reply, err = nil, errors.New("handler panicked")
		}
	}()
	return h.fn.Handle(ctx, e)
}

// completeReply fills in what a reply may leave out and carries the trace on.
func completeReply(ctx context.Context, reply *event.Event, function string) error {
	if reply.ID() == "" {
		reply.SetID(uuid.NewString())
	}
	if reply.Source() == "" {
		reply.SetSource("/skyflow/functions/" + function)
	}
	if reply.Time().IsZero() {
		reply.SetTime(time.Now().UTC())
	}
	telemetry.InjectEvent(ctx, reply)
	if err := reply.Validate(); err != nil {
		return fmt.Errorf("the function's reply is not a valid CloudEvent: %w", err)
	}
	return nil
}

// decodeError turns a CloudEvents decoding failure into a client error.
func decodeError(r *http.Request, err error, limit int64) *apierr.Error {
	var tooBig *http.MaxBytesError
	switch v := r.Header.Get("Ce-Specversion"); {
	case errors.As(err, &tooBig):
		return apierr.New(http.StatusRequestEntityTooLarge, "The event is larger than %d bytes.", limit)
	case v != "" && v != "1.0" && v != "0.3":
		return apierr.InvalidArgument("CloudEvents spec version %q is not supported; use 1.0.", v)
	case errors.Is(err, binding.ErrUnknownEncoding):
		return apierr.New(http.StatusUnsupportedMediaType,
			"The request is not a CloudEvent: send it in binary mode (ce-* headers) or structured mode (Content-Type: application/cloudevents+json).")
	}
	return apierr.InvalidArgument("The CloudEvent could not be read: %v.", err)
}

func (h *httpHandler) fail(w http.ResponseWriter, id, typ string, e *apierr.Error) {
	if typ == "" {
		typ = "invalid"
	}
	h.metrics.errors.WithLabelValues(h.settings.Function, typ, fmt.Sprint(e.HTTPCode)).Inc()
	if id != "" {
		w.Header().Set("X-Request-Id", id)
	}
	apierr.Write(w, e)
}
