package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/skyflow-oss/skyflow/local/manifest"
)

func (b *Broker) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n") // the prober may be gone
	})
	mux.HandleFunc("/{namespace}/{name}", b.ingress)
	return mux
}

// ingress stores one CloudEvent in the Broker's topic and answers 202 once
// Kafka has acknowledged it and it is durable (see the package doc).
func (b *Broker) ingress(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	br := b.brokers[ns+"/"+name]
	reject := func(code int, format string, args ...any) {
		if br != nil {
			b.metrics.rejected.WithLabelValues(ns, name, strconv.Itoa(code)).Inc()
		}
		http.Error(w, fmt.Sprintf(format, args...), code)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reject(http.StatusMethodNotAllowed, "method %s not allowed: send events with POST", r.Method)
		return
	}
	if br == nil {
		reject(http.StatusNotFound, "no Broker %q in namespace %q", name, ns)
		return
	}
	e, code, err := b.readEvent(w, r)
	if err != nil {
		reject(code, "%v", err)
		return
	}
	// The sender waits for our answer; if it gives up, Kafka may still
	// store the event, which at-least-once delivery allows.
	if err := b.produce(context.WithoutCancel(r.Context()), br, e); err != nil {
		b.log.Warn("event not stored", "broker", ns+"/"+name, "id", e.ID(), "type", e.Type(), "err", err)
		reject(http.StatusServiceUnavailable, "the event was not stored durably in Kafka, send it again: %v", err)
		return
	}
	b.metrics.ingested.WithLabelValues(ns, name).Inc()
	b.log.Debug("event stored", "broker", ns+"/"+name, "id", e.ID(), "type", e.Type())
	w.WriteHeader(http.StatusAccepted)
}

// readEvent decodes and validates the request's event, or says which
// status code to answer and why.
func (b *Broker) readEvent(w http.ResponseWriter, r *http.Request) (*event.Event, int, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, b.cfg.MaxEventBytes))
	if err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("event larger than %d bytes", mbe.Limit)
		}
		return nil, http.StatusBadRequest, fmt.Errorf("reading the request: %w", err)
	}
	msg := cehttp.NewMessage(r.Header, io.NopCloser(bytes.NewReader(body)))
	switch msg.ReadEncoding() {
	case binding.EncodingBinary, binding.EncodingStructured:
	case binding.EncodingBatch:
		return nil, http.StatusUnsupportedMediaType, errors.New("batched events are not supported: send one event per request")
	default:
		if sv := r.Header.Get("Ce-Specversion"); sv != "" {
			return nil, http.StatusBadRequest, fmt.Errorf("unsupported CloudEvents specversion %q", sv)
		}
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf(
			"content type %q is not a CloudEvent: use binary mode (ce-specversion, ce-id, ce-source, ce-type headers) or structured mode (Content-Type: application/cloudevents+json)",
			r.Header.Get("Content-Type"))
	}
	e, err := toEvent(r.Context(), msg)
	if err != nil {
		return nil, http.StatusBadRequest, err
	}
	return e, 0, nil
}

// toEvent decodes and validates a binary or structured HTTP message.
func toEvent(ctx context.Context, msg *cehttp.Message) (*event.Event, error) {
	structured := msg.ReadEncoding() == binding.EncodingStructured
	e, err := binding.ToEvent(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("malformed CloudEvent: %w", err)
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("invalid CloudEvent: %w", err)
	}
	// In structured JSON mode a missing datacontenttype means JSON; binary
	// mode has no such default, so say it.
	if structured && e.DataContentType() == "" && len(e.Data()) > 0 && !e.DataBase64 {
		e.SetDataContentType(event.ApplicationJSON)
	}
	return e, nil
}

// produce appends an event to a Broker's topic and returns once Kafka has
// acknowledged it and a group commit round has made it durable.
func (b *Broker) produce(ctx context.Context, br *manifest.Broker, e *event.Event) error {
	rec, err := toRecord(br.Topic(), *e)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.ProduceTimeout)
	defer cancel()
	if err := b.producer.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return err
	}
	return b.commits.wait(ctx, rec.Topic, rec.Partition)
}
