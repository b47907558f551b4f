package testenv

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Sink is a broker ingress for tests (a publisher's K_SINK): it accepts
// every CloudEvent with 202 and keeps it. A request that is not an event
// fails the test.
type Sink struct {
	URL string

	mu     sync.Mutex
	events []event.Event
	outbox *pgxpool.Pool // see WatchOutbox
}

// WatchOutbox makes Events wait until the outbox in pool's database has
// no unsent event: publishers answer at commit and relay events moments
// later, so a test that looks right after a call would otherwise race the
// relay.
func (s *Sink) WatchOutbox(pool *pgxpool.Pool) {
	s.mu.Lock()
	s.outbox = pool
	s.mu.Unlock()
}

// settle waits, up to 10 s, until the watched outbox has nothing unsent.
func (s *Sink) settle() {
	s.mu.Lock()
	pool := s.outbox
	s.mu.Unlock()
	if pool == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		var unsent bool
		err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM outbox WHERE sent_at IS NULL)`).Scan(&unsent)
		if err != nil || !unsent {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
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

// Events returns every event received so far (once the watched outbox,
// if any, has sent everything).
func (s *Sink) Events() []event.Event {
	s.settle()
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
