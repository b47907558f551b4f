package outbox_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// sink is a broker ingress stand-in: it decodes binary-mode CloudEvents with
// the SDK and answers with a status the test chooses.
type sink struct {
	t      *testing.T
	srv    *httptest.Server
	addr   string // host:port the sink listens on, or will
	status atomic.Int32
	delay  time.Duration

	mu       sync.Mutex
	attempts []event.Event // every event received, whatever the answer
	accepted []event.Event // events answered with a 2xx
}

// newSink starts a sink that accepts every event.
func newSink(t *testing.T) *sink {
	s := &sink{t: t}
	s.status.Store(http.StatusAccepted)
	s.srv = httptest.NewServer(s)
	s.addr = s.srv.Listener.Addr().String()
	t.Cleanup(s.srv.Close)
	return s
}

// newDownSink returns a sink that is not listening yet, and the function
// that starts it at the same address.
func newDownSink(t *testing.T) (s *sink, start func()) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // connections are refused until start
	s = &sink{t: t, addr: addr}
	s.status.Store(http.StatusAccepted)
	s.srv = httptest.NewUnstartedServer(s)
	s.srv.Listener.Close()
	return s, func() {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("restart sink on %s: %v", addr, err)
		}
		s.srv.Listener = l
		s.srv.Start()
		t.Cleanup(s.srv.Close)
	}
}

func (s *sink) url() string { return "http://" + s.addr }

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	msg := cehttp.NewMessageFromHttpRequest(r)
	if msg.ReadEncoding() != binding.EncodingBinary {
		s.t.Errorf("sink got a %v-mode message, want binary", msg.ReadEncoding())
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	e, err := binding.ToEvent(r.Context(), msg)
	if err != nil {
		s.t.Errorf("sink cannot decode event: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	time.Sleep(s.delay)
	status := int(s.status.Load())
	s.mu.Lock()
	s.attempts = append(s.attempts, *e)
	if status/100 == 2 {
		s.accepted = append(s.accepted, *e)
	}
	s.mu.Unlock()
	w.WriteHeader(status)
	if status/100 != 2 {
		// A careless broker echoing the event back: none of it may end up
		// in logs or last_error.
		io.WriteString(w, "rejected: "+string(e.Data()))
	}
}

func (s *sink) acceptedEvents() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event.Event(nil), s.accepted...)
}

func (s *sink) attemptedEvents() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event.Event(nil), s.attempts...)
}

// waitAccepted waits, up to 10 s, until the sink accepted n events.
func (s *sink) waitAccepted(t *testing.T, n int) []event.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := s.acceptedEvents()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(2 * time.Millisecond)
	}
}
