// Package telemetry sets up OpenTelemetry tracing and carries the W3C trace
// context in CloudEvents' distributed-tracing extension (the traceparent and
// tracestate attributes), so a trace follows an event through the broker.
package telemetry

import (
	"context"
	"os"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
)

// Setup installs the global tracer provider and propagator for a service.
// Spans are exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set; otherwise they are still made,
// so trace ids propagate and reach the logs, but go nowhere. Creating the
// exporter does not connect, so cold start does not wait for a collector.
func Setup(ctx context.Context, service string) (shutdown func(context.Context) error, err error) {
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	}
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return tp.Shutdown, nil
}

// eventCarrier adapts a CloudEvent's extensions to the propagation API.
type eventCarrier struct{ e *event.Event }

func (c eventCarrier) Get(key string) string {
	v, ok := c.e.Extensions()[key]
	if !ok {
		return ""
	}
	s, _ := v.(string)
	return s
}

func (c eventCarrier) Set(key, value string) {
	if key == "traceparent" || key == "tracestate" {
		c.e.SetExtension(key, value)
	}
}

func (c eventCarrier) Keys() []string { return []string{"traceparent", "tracestate"} }

// ExtractEvent returns ctx with the remote span context of the event's
// traceparent extension, when it has one.
func ExtractEvent(ctx context.Context, e *event.Event) context.Context {
	return propagation.TraceContext{}.Extract(ctx, eventCarrier{e})
}

// InjectEvent writes ctx's span context into the event's traceparent and
// tracestate extensions.
func InjectEvent(ctx context.Context, e *event.Event) {
	propagation.TraceContext{}.Inject(ctx, eventCarrier{e})
}
