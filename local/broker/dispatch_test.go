package broker

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyflow-oss/skyflow/local/manifest"
)

func TestTriggerFiltersDeliverOnlyMatchingEventsAndCommitTheRest(t *testing.T) {
	c := startKafka(t, t.TempDir())
	sub := newSubscriber(t, nil)
	tr := trigger("vault-created", sub.URL)
	tr.Filters = []manifest.Filter{
		{Prefix: map[string]string{"type": "com.skyflow.vault."}},
		{Not: &manifest.Filter{Suffix: map[string]string{"type": ".deleted"}}},
	}
	b := startBroker(t, c, newSet(tr), nil)

	publish(t, b, newEvent("1", "com.skyflow.vault.record.created"))
	publish(t, b, newEvent("2", "com.skyflow.tokens.token.created"))
	publish(t, b, newEvent("3", "com.skyflow.vault.record.deleted"))
	publish(t, b, newEvent("4", "com.skyflow.vault.record.updated"))

	sub.waitReceived(t, 2)
	// Filtered-out events are finished too: all four offsets get committed.
	waitCommitted(t, c, tr.ConsumerGroup(), 4)
	got := sub.ids()
	slices.Sort(got)
	if !slices.Equal(got, []string{"1", "4"}) {
		t.Fatalf("delivered %v, want [1 4]", got)
	}
	r := sub.received()[0]
	if r.header.Get("Prefer") != "reply" || r.header.Get("Ce-Specversion") != "1.0" {
		t.Errorf("delivery is not binary mode with Prefer: reply; headers %v", r.header)
	}
	if string(r.event.Data()) != `{"token":"tok_`+r.event.ID()+`"}` {
		t.Errorf("data = %s", r.event.Data())
	}
}

func TestSubscriberAnswering503TwiceGetsTheEventOnTheThirdAttempt(t *testing.T) {
	c := startKafka(t, t.TempDir())
	sub := newSubscriber(t, func(attempt int, _ *event.Event, w http.ResponseWriter) {
		if attempt <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	dls := newSubscriber(t, nil)
	tr := trigger("flaky", sub.URL)
	tr.Delivery = &manifest.Delivery{Retry: 3, BackoffPolicy: "exponential", BackoffDelay: 50 * time.Millisecond,
		DeadLetterSink: &manifest.Destination{URI: dls.URL}}
	reg := prometheus.NewRegistry()
	b := startBroker(t, c, newSet(tr), reg)

	publish(t, b, newEvent("e1", "com.skyflow.test"))
	got := sub.waitReceived(t, 3)
	waitCommitted(t, c, tr.ConsumerGroup(), 1)
	quiet()
	if n := len(sub.received()); n != 3 {
		t.Fatalf("subscriber got %d attempts, want 3", n)
	}
	// Exponential backoff: 50ms, then 100ms (generous lower bounds only).
	if d := got[1].at.Sub(got[0].at); d < 40*time.Millisecond {
		t.Errorf("first retry after %v, want about 50ms", d)
	}
	if d := got[2].at.Sub(got[1].at); d < 80*time.Millisecond {
		t.Errorf("second retry after %v, want about 100ms", d)
	}
	if n := len(dls.received()); n != 0 {
		t.Errorf("dead-letter sink got %d events, want none", n)
	}
	if v := counterValue(t, b.metrics.deliveries.WithLabelValues(ns, "flaky", resultRetried)); v != 2 {
		t.Errorf("retried metric = %v, want 2", v)
	}
	if v := counterValue(t, b.metrics.deliveries.WithLabelValues(ns, "flaky", resultOK)); v != 1 {
		t.Errorf("ok metric = %v, want 1", v)
	}
	if n := histogramCount(t, reg, "skyflow_broker_delivery_latency_seconds"); n != 1 {
		t.Errorf("latency histogram has %d observations, want 1", n)
	}
}

func TestAlways500SubscriberDeadLettersAfterTheLastRetry(t *testing.T) {
	c := startKafka(t, t.TempDir())
	sub := newSubscriber(t, func(_ int, _ *event.Event, w http.ResponseWriter) {
		http.Error(w, "database down", http.StatusInternalServerError)
	})
	dls := newSubscriber(t, nil)
	tr := trigger("broken", sub.URL)
	tr.Delivery = &manifest.Delivery{Retry: 2, BackoffDelay: 20 * time.Millisecond,
		DeadLetterSink: &manifest.Destination{URI: dls.URL}}
	b := startBroker(t, c, newSet(tr), nil)

	publish(t, b, newEvent("e1", "com.skyflow.test"))
	dead := dls.waitReceived(t, 1)[0].event
	waitCommitted(t, c, tr.ConsumerGroup(), 1)
	if n := len(sub.received()); n != 3 {
		t.Errorf("subscriber got %d attempts, want 1 + 2 retries", n)
	}
	ext := dead.Extensions()
	if ext[extErrorCode] != "500" {
		t.Errorf("%s = %v, want 500", extErrorCode, ext[extErrorCode])
	}
	if ext[extErrorDest] != sub.URL {
		t.Errorf("%s = %v, want %s", extErrorDest, ext[extErrorDest], sub.URL)
	}
	if data, _ := base64.StdEncoding.DecodeString(fmt.Sprint(ext[extErrorData])); string(data) != "database down\n" {
		t.Errorf("%s decodes to %q, want the response body", extErrorData, data)
	}
	if dead.ID() != "e1" || dead.Type() != "com.skyflow.test" {
		t.Errorf("dead-lettered event %s/%s, want the original", dead.ID(), dead.Type())
	}
	if v := counterValue(t, b.metrics.deliveries.WithLabelValues(ns, "broken", resultDeadLettered)); v != 1 {
		t.Errorf("dead_lettered metric = %v, want 1", v)
	}
}

func TestBadRequestGoesStraightToTheDeadLetterSinkWithoutRetry(t *testing.T) {
	c := startKafka(t, t.TempDir())
	sub := newSubscriber(t, func(_ int, _ *event.Event, w http.ResponseWriter) {
		w.WriteHeader(http.StatusBadRequest)
	})
	dls := newSubscriber(t, nil)
	tr := trigger("picky", sub.URL)
	tr.Delivery = &manifest.Delivery{Retry: 5, BackoffDelay: 20 * time.Millisecond,
		DeadLetterSink: &manifest.Destination{URI: dls.URL}}
	b := startBroker(t, c, newSet(tr), nil)

	publish(t, b, newEvent("e1", "com.skyflow.test"))
	dead := dls.waitReceived(t, 1)[0].event
	quiet()
	if n := len(sub.received()); n != 1 {
		t.Errorf("subscriber got %d attempts, want exactly 1", n)
	}
	if dead.Extensions()[extErrorCode] != "400" {
		t.Errorf("%s = %v, want 400", extErrorCode, dead.Extensions()[extErrorCode])
	}
	if _, ok := dead.Extensions()[extErrorData]; ok {
		t.Errorf("%s set for an empty response body", extErrorData)
	}
}

func TestDeadLetterSinkThatFailsTooIsRetriedThenTheEventIsDropped(t *testing.T) {
	c := startKafka(t, t.TempDir())
	fail := func(_ int, _ *event.Event, w http.ResponseWriter) { w.WriteHeader(http.StatusBadGateway) }
	sub := newSubscriber(t, fail)
	dls := newSubscriber(t, fail)
	tr := trigger("doomed", sub.URL)
	tr.Delivery = &manifest.Delivery{Retry: 1, BackoffDelay: 10 * time.Millisecond,
		DeadLetterSink: &manifest.Destination{URI: dls.URL}}
	b := startBroker(t, c, newSet(tr), nil)

	publish(t, b, newEvent("e1", "com.skyflow.test"))
	waitCommitted(t, c, tr.ConsumerGroup(), 1)
	if a, d := len(sub.received()), len(dls.received()); a != 2 || d != 2 {
		t.Errorf("subscriber got %d and dead-letter sink %d attempts, want 2 each", a, d)
	}
	if v := counterValue(t, b.metrics.deliveries.WithLabelValues(ns, "doomed", resultDropped)); v != 1 {
		t.Errorf("dropped metric = %v, want 1", v)
	}
}

func TestReplyFromOneSubscriberReachesTheTriggerFilteringOnTheReplyType(t *testing.T) {
	c := startKafka(t, t.TempDir())
	a := newSubscriber(t, func(_ int, e *event.Event, w http.ResponseWriter) {
		reply := event.New()
		reply.SetID("reply-to-" + e.ID())
		reply.SetSource("/a")
		reply.SetType("com.skyflow.test.done")
		_ = reply.SetData("text/plain", []byte("done"))
		if err := cehttp.WriteResponseWriter(t.Context(), (*binding.EventMessage)(&reply), http.StatusOK, w); err != nil {
			t.Error(err)
		}
	})
	bsub := newSubscriber(t, nil)
	ta := trigger("a", a.URL)
	ta.Attributes = map[string]string{"type": "com.skyflow.test.start"}
	tb := trigger("b", bsub.URL)
	tb.Attributes = map[string]string{"type": "com.skyflow.test.done"}
	b := startBroker(t, c, newSet(ta, tb), nil)

	publish(t, b, newEvent("e1", "com.skyflow.test.start"))
	got := bsub.waitReceived(t, 1)[0].event
	if got.ID() != "reply-to-e1" || string(got.Data()) != "done" || got.DataContentType() != "text/plain" {
		t.Fatalf("b got %s with data %q (%s), want the reply", got.ID(), got.Data(), got.DataContentType())
	}
	quiet()
	if ids := a.ids(); !slices.Equal(ids, []string{"e1"}) {
		t.Errorf("a got %v, want only e1 (the reply must not loop back)", ids)
	}
}

func TestUndeliveredEventsAreDeliveredAfterRestartingKafkaAndTheBroker(t *testing.T) {
	dir := t.TempDir()
	var failing atomic.Bool
	sub := newSubscriber(t, func(_ int, _ *event.Event, w http.ResponseWriter) {
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	tr := trigger("durable", sub.URL)
	tr.Delivery = &manifest.Delivery{Retry: 1000, BackoffDelay: 20 * time.Millisecond}
	set := newSet(tr)

	c1 := startKafka(t, dir)
	b1 := startBroker(t, c1, set, nil)
	for i := range 3 {
		publish(t, b1, newEvent(fmt.Sprintf("before-%d", i), "com.skyflow.test"))
	}
	sub.waitReceived(t, 3)
	waitCommitted(t, c1, tr.ConsumerGroup(), 3)

	failing.Store(true)
	publish(t, b1, newEvent("after-0", "com.skyflow.test"))
	publish(t, b1, newEvent("after-1", "com.skyflow.test"))
	// Both are being retried, so consumed but not committed.
	deadline := time.Now().Add(waitFor)
	for !(slices.Contains(sub.ids(), "after-0") && slices.Contains(sub.ids(), "after-1")) {
		if time.Now().After(deadline) {
			t.Fatalf("the failing events were never attempted: %v", sub.ids())
		}
		time.Sleep(10 * time.Millisecond)
	}
	b1.Close()
	c1.Close()

	sub.mu.Lock()
	sub.got = nil
	sub.mu.Unlock()
	failing.Store(false)

	c2 := startKafka(t, dir)
	startBroker(t, c2, set, nil)
	sub.waitReceived(t, 2)
	waitCommitted(t, c2, tr.ConsumerGroup(), 5)
	quiet()
	// Delivery is at least once: an attempt in flight when the first broker
	// closed may land twice. What matters is that exactly the uncommitted
	// events come back and none of the committed ones.
	got := sub.ids()
	slices.Sort(got)
	if got = slices.Compact(got); !slices.Equal(got, []string{"after-0", "after-1"}) {
		t.Fatalf("after the restart the subscriber got %v, want exactly the two undelivered events", got)
	}
}

func TestNewTriggerFromEarliestReplaysEventsPublishedBeforeItExisted(t *testing.T) {
	c := startKafka(t, t.TempDir())
	first := newSubscriber(t, nil)
	trFirst := trigger("first", first.URL)
	b1 := startBroker(t, c, newSet(trFirst), nil)
	for i := range 3 {
		publish(t, b1, newEvent(fmt.Sprintf("old-%d", i), "com.skyflow.test"))
	}
	first.waitReceived(t, 3)
	waitCommitted(t, c, trFirst.ConsumerGroup(), 3)
	b1.Close()

	replay, latest := newSubscriber(t, nil), newSubscriber(t, nil)
	trReplay := trigger("replay", replay.URL)
	trReplay.FromEarliest = true
	trLatest := trigger("latest", latest.URL)
	b2 := startBroker(t, c, newSet(trFirst, trReplay, trLatest), nil)

	replay.waitReceived(t, 3)
	publish(t, b2, newEvent("new", "com.skyflow.test"))
	replay.waitReceived(t, 4)
	latest.waitReceived(t, 1)
	first.waitReceived(t, 4)
	quiet()
	got := replay.ids()
	slices.Sort(got)
	if !slices.Equal(got, []string{"new", "old-0", "old-1", "old-2"}) {
		t.Errorf("replaying trigger got %v, want the 3 old events and the new one", got)
	}
	if ids := latest.ids(); !slices.Equal(ids, []string{"new"}) {
		t.Errorf("trigger starting at the latest offset got %v, want only the new event", ids)
	}
	if ids := first.ids(); len(ids) != 4 || ids[3] != "new" {
		t.Errorf("existing trigger got %v, want the old events once and then the new one", ids)
	}
}

func TestOrderedTriggerKeepsOrderWithinAPartitionKeyDespiteRetries(t *testing.T) {
	c := startKafka(t, t.TempDir())
	sub := newSubscriber(t, func(attempt int, e *event.Event, w http.ResponseWriter) {
		time.Sleep(time.Duration(len(e.ID())%3) * time.Millisecond)
		if attempt == 1 && e.ID()[len(e.ID())-1] == '3' { // first try of every "…3" fails
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	tr := trigger("ordered", sub.URL)
	tr.Ordered = true
	tr.Delivery = &manifest.Delivery{Retry: 3, BackoffDelay: 10 * time.Millisecond}
	b := startBroker(t, c, newSet(tr), nil)

	const perKey = 12
	keys := []string{"alice", "bob", "carol"}
	for i := range perKey {
		for _, k := range keys {
			e := newEvent(fmt.Sprintf("%s-%02d", k, i), "com.skyflow.test")
			e.SetExtension("partitionkey", k)
			publish(t, b, e)
		}
	}
	waitCommitted(t, c, tr.ConsumerGroup(), perKey*int64(len(keys)))
	seq := map[string][]int{}
	for _, r := range sub.received() {
		if r.header.Get("Ce-Partitionkey") == "" {
			t.Fatalf("event %s arrived without its partitionkey", r.event.ID())
		}
		k := fmt.Sprint(r.event.Extensions()["partitionkey"])
		i, err := strconv.Atoi(strings.TrimPrefix(r.event.ID(), k+"-"))
		if err != nil {
			t.Fatalf("event %s has key %s", r.event.ID(), k)
		}
		if n := seq[k]; len(n) > 0 && n[len(n)-1] == i {
			continue // the retry of a failed attempt
		}
		seq[k] = append(seq[k], i)
	}
	for _, k := range keys {
		want := make([]int, perKey)
		for i := range want {
			want[i] = i
		}
		if !slices.Equal(seq[k], want) {
			t.Errorf("key %s delivered in order %v, want %v", k, seq[k], want)
		}
	}
}

func TestUnorderedTriggerDeliversConcurrently(t *testing.T) {
	c := startKafka(t, t.TempDir())
	var inFlight, most atomic.Int32
	var mu sync.Mutex
	sub := newSubscriber(t, func(_ int, _ *event.Event, w http.ResponseWriter) {
		n := inFlight.Add(1)
		mu.Lock()
		most.Store(max(most.Load(), n))
		mu.Unlock()
		time.Sleep(100 * time.Millisecond)
		inFlight.Add(-1)
		w.WriteHeader(http.StatusOK)
	})
	tr := trigger("parallel", sub.URL)
	b := startBroker(t, c, newSet(tr), nil)
	for i := range 8 {
		publish(t, b, newEvent(fmt.Sprint(i), "com.skyflow.test"))
	}
	waitCommitted(t, c, tr.ConsumerGroup(), 8)
	if most.Load() < 2 {
		t.Fatalf("at most %d deliveries were in flight at once, want concurrency", most.Load())
	}
}
