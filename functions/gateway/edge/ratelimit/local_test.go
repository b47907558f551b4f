package ratelimit

import (
	"strconv"
	"testing"
	"time"
)

func TestLocalStaysBounded(t *testing.T) {
	m := newLocal(10)
	lim := Limit{Rate: 1, Burst: 2, Period: time.Hour}
	now := time.Now()
	for i := range 100 {
		if d := m.allow(strconv.Itoa(i), lim, now); !d.Allowed || d.Remaining != 1 {
			t.Fatalf("subject %d: %+v", i, d)
		}
		if len(m.tats) > 10 {
			t.Fatalf("%d keys after %d subjects, want at most 10", len(m.tats), i+1)
		}
	}
}

func TestLocalDropsIdleEntriesFirst(t *testing.T) {
	m := newLocal(3)
	fast := Limit{Rate: 10, Burst: 10, Period: time.Second} // idle 100ms after one event
	slow := Limit{Rate: 1, Burst: 1, Period: time.Hour}     // busy for an hour
	now := time.Now()
	m.allow("busy", slow, now)
	m.allow("idle1", fast, now)
	m.allow("idle2", fast, now)
	later := now.Add(2 * sweepFull)
	m.allow("new", fast, later)
	if _, ok := m.tats["busy"]; !ok {
		t.Fatalf("the busy entry was dropped while idle ones could go: %v", m.tats)
	}
	if d := m.allow("busy", slow, later); d.Allowed {
		t.Errorf("busy subject allowed again after the sweep: %+v", d)
	}
	if len(m.tats) != 2 {
		t.Errorf("keys %v, want busy and new", m.tats)
	}
}

func TestLocalMatchesGCRA(t *testing.T) {
	m := newLocal(10)
	lim := Limit{Rate: 2, Burst: 4, Period: time.Second} // one per 500ms
	now := time.Now()
	for i, want := range []int{3, 2, 1, 0} {
		if d := m.allow("k", lim, now); !d.Allowed || d.Remaining != want || d.ResetAfter != time.Duration(i+1)*500*time.Millisecond {
			t.Fatalf("event %d: %+v, want %d remaining", i+1, d, want)
		}
	}
	d := m.allow("k", lim, now.Add(100*time.Millisecond))
	if d.Allowed || d.RetryAfter != 400*time.Millisecond || d.ResetAfter != 1900*time.Millisecond {
		t.Fatalf("event 5: %+v, want refused, retry after 400ms", d)
	}
	if d := m.allow("k", lim, now.Add(500*time.Millisecond)); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after 500ms: %+v, want one allowed", d)
	}
	if d := m.allow("k", lim, now.Add(10*time.Second)); !d.Allowed || d.Remaining != 3 {
		t.Fatalf("after 10s: %+v, want the full burst back", d)
	}
}
