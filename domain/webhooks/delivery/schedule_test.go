package delivery_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/skyflow-oss/skyflow/domain/webhooks/delivery"
)

// The default schedule: eight attempts (immediately, then 5s, 5m, 30m,
// 2h, 5h, 10h, 10h after each failure), about 27.5 hours in all, so a
// receiver can come back from a day's outage.
func TestDefaultSchedule(t *testing.T) {
	s := delivery.DefaultSchedule
	if s.Attempts() != 8 {
		t.Fatalf("%d attempts", s.Attempts())
	}
	if total := s.Total(); total != 27*time.Hour+35*time.Minute+5*time.Second {
		t.Fatalf("span %s", total)
	}
	nominal := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
	r := rand.New(rand.NewPCG(1, 2))
	for attempt := 1; attempt <= 7; attempt++ {
		lo, hi := time.Duration(float64(nominal[attempt-1])*0.8), time.Duration(float64(nominal[attempt-1])*1.2)
		seen := map[time.Duration]bool{}
		for range 200 {
			d, ok := s.Next(attempt, r)
			if !ok || d < lo || d > hi {
				t.Fatalf("after attempt %d: %s, %v; want within ±20%% of %s", attempt, d, ok, nominal[attempt-1])
			}
			seen[d] = true
		}
		if len(seen) < 100 {
			t.Errorf("after attempt %d: only %d distinct waits: no jitter", attempt, len(seen))
		}
	}
	if _, ok := s.Next(8, r); ok {
		t.Fatal("a ninth attempt was scheduled")
	}
	if _, ok := s.Next(0, r); ok {
		t.Fatal("attempt 0")
	}
}

func TestParseSchedule(t *testing.T) {
	s, err := delivery.ParseSchedule(" 1s, 2m ,3h", 0)
	if err != nil || s.Attempts() != 4 || s.Total() != time.Second+2*time.Minute+3*time.Hour {
		t.Fatalf("%+v %v", s, err)
	}
	if d, _ := s.Next(2, nil); d != 2*time.Minute {
		t.Fatalf("no jitter: %s", d)
	}
	for _, bad := range []struct {
		s string
		j int
	}{{"1x", 0}, {"-1s", 0}, {"1s", 101}, {"1s", -1}} {
		if _, err := delivery.ParseSchedule(bad.s, bad.j); err == nil {
			t.Errorf("ParseSchedule(%q, %d) accepted", bad.s, bad.j)
		}
	}
	if s, err := delivery.ParseSchedule("none", 20); err != nil || s.Attempts() != 1 {
		t.Errorf("an empty schedule is one attempt: %+v %v", s, err)
	}
}
