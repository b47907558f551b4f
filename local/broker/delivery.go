package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/skyflow-oss/skyflow/local/manifest"
	assertion "github.com/skyflow-oss/skyflow/runtime/sender"
)

// Delivery defaults where neither the Trigger nor the Broker says.
const (
	defaultTimeout      = 30 * time.Second
	defaultBackoffDelay = time.Second
	errorDataLimit      = 1024 // bytes of a failed response kept in knativeerrordata
	drainLimit          = 64 << 10
)

// effectiveDelivery merges a Trigger's delivery spec over its Broker's,
// field by field as Knative's Kafka broker does: a field the Trigger leaves
// unset (zero) comes from the Broker.
func effectiveDelivery(trigger, broker *manifest.Delivery) manifest.Delivery {
	var t, b manifest.Delivery
	if trigger != nil {
		t = *trigger
	}
	if broker != nil {
		b = *broker
	}
	d := manifest.Delivery{
		Retry:          cmp.Or(t.Retry, b.Retry),
		BackoffPolicy:  cmp.Or(t.BackoffPolicy, b.BackoffPolicy, "exponential"),
		BackoffDelay:   cmp.Or(t.BackoffDelay, b.BackoffDelay, defaultBackoffDelay),
		Timeout:        cmp.Or(t.Timeout, b.Timeout, defaultTimeout),
		DeadLetterSink: t.DeadLetterSink,
	}
	if d.DeadLetterSink == nil {
		d.DeadLetterSink = b.DeadLetterSink
	}
	return d
}

// attempt is the outcome of one POST.
type attempt struct {
	url    string       // where it was sent, "" if the destination did not resolve
	status int          // HTTP status, 0 when there was no response
	body   []byte       // start of an error response, for knativeerrordata
	reply  *event.Event // event in a 2xx response
	// badReply is set when a 2xx response looked like a CloudEvent but was
	// not a valid one: the delivery still counts as done.
	badReply error
	err      error
}

func (a *attempt) ok() bool { return a.err == nil && a.status >= 200 && a.status < 300 }

// retryable applies Knative's data-plane contract: network errors,
// timeouts, 404, 408, 409, 429 and 5xx are worth another try; other
// answers (400 and friends, 3xx) will not change. A reply that could not
// be stored is retried too.
func (a *attempt) retryable() bool {
	switch {
	case a.err != nil || a.status == 0:
		return true
	case a.status >= 500:
		return true
	}
	switch a.status {
	case http.StatusNotFound, http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests:
		return true
	}
	return false
}

// sender delivers events over HTTP with a delivery policy.
type sender struct {
	client    *http.Client
	resolve   func(manifest.Destination, string) (*url.URL, error)
	namespace string
	policy    manifest.Delivery
	// onReply stores a reply event; when set, requests say "Prefer: reply".
	onReply func(context.Context, *event.Event) error
	// retried counts each failed attempt that will be retried.
	retried func()
	// signer signs each delivery to a Service for that Service, as
	// Knative Eventing's OIDC delivery authentication does in a cluster.
	signer *assertion.Signer
}

// send POSTs an event to a destination until it succeeds, fails for good,
// or ctx ends; it returns the last attempt and false if ctx ended first.
func (s *sender) send(ctx context.Context, dest manifest.Destination, e *event.Event) (attempt, bool) {
	for n := 0; ; n++ {
		a := s.once(ctx, dest, e)
		if ctx.Err() != nil {
			return a, false
		}
		if a.ok() || !a.retryable() || n >= s.policy.Retry {
			return a, true
		}
		s.retried()
		if !sleep(ctx, s.policy.Backoff(n+1)) {
			return a, false
		}
	}
}

// once makes one attempt, bounded by the policy's timeout.
func (s *sender) once(ctx context.Context, dest manifest.Destination, e *event.Event) attempt {
	u, err := s.resolve(dest, s.namespace)
	if err != nil {
		return attempt{err: fmt.Errorf("resolving the destination: %w", err)}
	}
	a := attempt{url: u.String()}
	ctx, cancel := context.WithTimeout(ctx, s.policy.Timeout)
	defer cancel()
	req, err := cehttp.NewHTTPRequestFromEvent(ctx, a.url, *e)
	if err != nil {
		a.err = err
		return a
	}
	if s.onReply != nil {
		req.Header.Set("Prefer", "reply")
	}
	if s.signer != nil && dest.Ref != nil && dest.Ref.Kind == "Service" {
		if err := s.signer.Authorize(req, *e, dest.Ref.Name); err != nil {
			a.err = err
			return a
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		a.err = err
		return a
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit)) // keep the connection reusable; a failed drain only costs it
		resp.Body.Close()
	}()
	a.status = resp.StatusCode
	if !a.ok() {
		a.body, _ = io.ReadAll(io.LimitReader(resp.Body, errorDataLimit))
		return a
	}
	// 202 means accepted without a reply (data-plane contract); 204 has no body.
	if s.onReply == nil || resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusNoContent {
		return a
	}
	a.reply, a.badReply = readReply(ctx, resp)
	if a.reply != nil {
		if err := s.onReply(ctx, a.reply); err != nil {
			a.err = fmt.Errorf("storing the reply: %w", err)
		}
	}
	return a
}

// readReply decodes the event in a 2xx response. A body that is not a
// CloudEvent is no reply; one that claims to be but is malformed is an
// error. Either way the subscriber has done its work: retrying would only
// repeat it.
func readReply(ctx context.Context, resp *http.Response) (*event.Event, error) {
	msg := cehttp.NewMessage(resp.Header, io.NopCloser(io.LimitReader(resp.Body, DefaultMaxEventBytes)))
	switch msg.ReadEncoding() {
	case binding.EncodingBinary, binding.EncodingStructured:
		return toEvent(ctx, msg)
	case binding.EncodingBatch:
		return nil, errors.New("a batch of events is not a reply")
	}
	return nil, nil
}

// sleep waits d or until ctx ends; it reports whether the wait completed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
