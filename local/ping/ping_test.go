package ping

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/skyflow-oss/skyflow/local/manifest"
)

// sink records the events and the headers it receives.
type sink struct {
	*httptest.Server
	mu     sync.Mutex
	events []cloudevents.Event
	header []http.Header
}

func newSink(t *testing.T, status int) *sink {
	s := &sink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.events = append(s.events, *e)
		s.header = append(s.header, r.Header.Clone())
		s.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

func resolveURI(d manifest.Destination, _ string) (*url.URL, error) { return url.Parse(d.URI) }

func source(sinkURL string) manifest.PingSource {
	return manifest.PingSource{
		Meta:        manifest.Meta{Name: "outbox-sweep", Namespace: "skyflow"},
		ContentType: "application/json",
		Data:        `{"sweep":true}`,
		Sink:        manifest.Destination{URI: sinkURL},
	}
}

func TestFireSendsAKnativePingEventInBinaryMode(t *testing.T) {
	s := newSink(t, http.StatusAccepted)
	if err := Fire(t.Context(), source(s.URL), resolveURI, nil, nil); err != nil {
		t.Fatal(err)
	}
	if s.count() != 1 {
		t.Fatalf("sink got %d events, want 1", s.count())
	}
	e, h := s.events[0], s.header[0]
	if e.Type() != "dev.knative.sources.ping" || e.Source() != "/apis/v1/namespaces/skyflow/pingsources/outbox-sweep" {
		t.Errorf("event type %q source %q", e.Type(), e.Source())
	}
	if string(e.Data()) != `{"sweep":true}` || e.DataContentType() != "application/json" {
		t.Errorf("data %q (%s), want the spec's data and content type", e.Data(), e.DataContentType())
	}
	if e.ID() == "" || e.Time().IsZero() {
		t.Errorf("event without id or time: %s", e)
	}
	if h.Get("Ce-Specversion") != "1.0" || h.Get("Content-Type") != "application/json" {
		t.Errorf("not binary content mode: %v", h)
	}
}

func TestFireReportsASinkThatRefuses(t *testing.T) {
	s := newSink(t, http.StatusInternalServerError)
	if err := Fire(t.Context(), source(s.URL), resolveURI, nil, nil); err == nil {
		t.Fatal("a 500 from the sink was not reported")
	}
}

// every is a schedule faster than cron allows, for tests.
type every time.Duration

func (d every) Next(t time.Time) time.Time { return t.Add(time.Duration(d)) }

func TestRunSendsOnEveryTickUntilCanceled(t *testing.T) {
	s := newSink(t, http.StatusOK)
	src := source(s.URL)
	src.Every = every(30 * time.Millisecond)
	src.Data, src.ContentType = "", ""

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		Run(ctx, []manifest.PingSource{src}, resolveURI, http.DefaultClient, nil, nil)
		close(done)
	}()
	deadline := time.Now().Add(3 * time.Second)
	for s.count() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("sink got %d pings in 3s, want 3", s.count())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if n := len(s.events[0].Data()); n != 0 {
		t.Errorf("a source without data sent %d bytes", n)
	}
}
