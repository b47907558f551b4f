package testenv

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// Sink is a broker ingress for tests (a publisher's K_SINK): it accepts
// every CloudEvent with 202 and keeps it. A request that is not an event
// fails the test.
type Sink struct {
	URL string

	mu     sync.Mutex
	events []event.Event
}

// NewSink starts a Sink, closed when the test ends.
func NewSink(t testing.TB) *Sink {
	s := &Sink{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
		if err != nil {
			body, _ := io.ReadAll(r.Body)
			t.Errorf("the sink got a request that is not an event: %v %s", err, body)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.events = append(s.events, *e)
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Events returns every event received so far.
func (s *Sink) Events() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event.Event(nil), s.events...)
}

// OfType returns the events of one type received so far.
func (s *Sink) OfType(typ string) []event.Event {
	var out []event.Event
	for _, e := range s.Events() {
		if e.Type() == typ {
			out = append(out, e)
		}
	}
	return out
}
