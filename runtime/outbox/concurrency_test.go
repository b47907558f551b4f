package outbox_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/jackc/pgx/v5"

	"github.com/skyflow-oss/skyflow/runtime/outbox"
)

// TestEventsOfDifferentSubjectsAreSentAtOnceAndOfOneSubjectInOrder: a
// transaction's events about different subjects are in flight together,
// and those about one subject arrive one after another, in order.
func TestEventsOfDifferentSubjectsAreSentAtOnceAndOfOneSubjectInOrder(t *testing.T) {
	pool := setup(t)
	var (
		mu       sync.Mutex
		inFlight = map[string]int{} // subject → requests in flight
		peak     int                // most requests in flight at once
		total    int
		order    = map[string][]string{} // subject → ids in arrival order
		overlap  bool                    // two requests of one subject at once
	)
	// Each request waits (up to 2 s) for a second one to arrive, so a
	// sequential sender would take 2 s per event and show a peak of 1.
	twoIn := make(chan struct{})
	var once sync.Once
	sinkSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		inFlight[e.Subject()]++
		if inFlight[e.Subject()] > 1 {
			overlap = true
		}
		total++
		if total > peak {
			peak = total
		}
		if total >= 2 {
			once.Do(func() { close(twoIn) })
		}
		order[e.Subject()] = append(order[e.Subject()], e.ID())
		mu.Unlock()
		select {
		case <-twoIn:
		case <-time.After(2 * time.Second):
		}
		mu.Lock()
		inFlight[e.Subject()]--
		total--
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(sinkSrv.Close)
	p, _ := newPublisher(t, pool, sinkSrv.URL, outbox.WithoutRelay())

	var events []event.Event
	for i := 0; i < 12; i++ {
		e := newEvent(fmt.Sprintf("e%02d", i))
		e.SetSubject(fmt.Sprintf("record-%d", i%3))
		events = append(events, e)
	}
	start := time.Now()
	if err := p.Transact(testContext(t), func(pgx.Tx) ([]event.Event, error) { return events, nil }); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(testContext(t)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if peak < 2 {
		t.Errorf("at most %d request in flight: events of different subjects were sent one at a time", peak)
	}
	if overlap {
		t.Error("two events of one subject were in flight at once")
	}
	for s := 0; s < 3; s++ {
		want := []string{}
		for i := s; i < 12; i += 3 {
			want = append(want, fmt.Sprintf("e%02d", i))
		}
		if got := order[fmt.Sprintf("record-%d", s)]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("record-%d's events arrived as %v, want %v", s, got, want)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`); n != 0 {
		t.Errorf("%d events left unsent", n)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("12 events took %v", d)
	}
}
