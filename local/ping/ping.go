// Package ping emulates Knative's PingSource: at each time of a cron
// schedule it sends a CloudEvent of type dev.knative.sources.ping, carrying
// the source's fixed data, to the source's sink.
package ping

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"

	"github.com/skyflow-oss/skyflow/local/manifest"
	"github.com/skyflow-oss/skyflow/runtime/sender"
)

// EventType is the type of every event a PingSource sends.
const EventType = "dev.knative.sources.ping"

// sendTimeout bounds one delivery, so a stuck sink cannot hold a schedule.
const sendTimeout = 30 * time.Second

// Resolver turns a sink into a URL.
type Resolver func(d manifest.Destination, namespace string) (*url.URL, error)

// Run sends each source's event at its scheduled times until ctx is done.
// A failed send is logged and not retried: the next tick sends again, as
// Knative's ping adapter does.
// signer, when set, signs each event for the sink Service (runtime/sender).
func Run(ctx context.Context, sources []manifest.PingSource, resolve Resolver, client *http.Client, signer *sender.Signer, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var wg sync.WaitGroup
	for _, src := range sources {
		if src.Every == nil {
			log.Error("PingSource has no parsed schedule; skipped", "pingsource", src.Namespace+"/"+src.Name)
			continue
		}
		wg.Go(func() { schedule(ctx, src, resolve, client, signer, log) })
	}
	wg.Wait()
}

func schedule(ctx context.Context, src manifest.PingSource, resolve Resolver, client *http.Client, signer *sender.Signer, log *slog.Logger) {
	log = log.With("pingsource", src.Namespace+"/"+src.Name)
	for {
		next := src.Every.Next(time.Now())
		if next.IsZero() {
			return // a schedule that never fires again
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := send(ctx, src, next, resolve, client, signer); err != nil && ctx.Err() == nil {
			log.Warn("ping not delivered", "err", err)
		}
	}
}

// Fire sends one event of the source now.
func Fire(ctx context.Context, src manifest.PingSource, resolve Resolver, client *http.Client, signer *sender.Signer) error {
	return send(ctx, src, time.Now(), resolve, client, signer)
}

// Event is the event a source sends at time at.
func Event(src manifest.PingSource, at time.Time) (cloudevents.Event, error) {
	e := cloudevents.NewEvent()
	e.SetID(uuid.NewString())
	e.SetType(EventType)
	e.SetSource(fmt.Sprintf("/apis/v1/namespaces/%s/pingsources/%s", src.Namespace, src.Name))
	e.SetTime(at)
	if src.Data != "" || src.ContentType != "" {
		if err := e.SetData(src.ContentType, []byte(src.Data)); err != nil {
			return e, err
		}
	}
	return e, e.Validate()
}

// send POSTs the event in binary mode and expects a 2xx answer.
func send(ctx context.Context, src manifest.PingSource, at time.Time, resolve Resolver, client *http.Client, signer *sender.Signer) error {
	if client == nil {
		client = http.DefaultClient
	}
	e, err := Event(src, at)
	if err != nil {
		return fmt.Errorf("building the event: %w", err)
	}
	sink, err := resolve(src.Sink, src.Namespace)
	if err != nil {
		return fmt.Errorf("resolving the sink: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	req, err := cehttp.NewHTTPRequestFromEvent(ctx, sink.String(), e)
	if err != nil {
		return err
	}
	if signer != nil && src.Sink.Ref != nil && src.Sink.Ref.Kind == "Service" {
		if err := signer.Authorize(req, e, src.Sink.Ref.Name); err != nil {
			return err
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return errors.New("sink " + sink.Redacted() + " answered " + resp.Status)
	}
	return nil
}
