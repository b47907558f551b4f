package delivery

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// DefaultSchedule is the wait after each failed attempt before the next
// (the first attempt is immediate): Svix's schedule, eight attempts over
// about 27.5 hours, enough for a receiver to come back from a day's
// outage.
var DefaultSchedule = Schedule{Delays: []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}, Jitter: 0.2}

// Schedule is a delivery's retry schedule.
type Schedule struct {
	// Delays[i] is the wait after attempt i+1 fails; a delivery has
	// len(Delays)+1 attempts.
	Delays []time.Duration
	// Jitter spreads each wait by up to ± this fraction, so that the
	// retries of a burst of failures do not arrive together.
	Jitter float64
}

// ParseSchedule reads "5s,5m,30m,2h" (SKYFLOW_WEBHOOK_SCHEDULE); "none"
// is a single attempt, no retry.
func ParseSchedule(s string, jitterPercent int) (Schedule, error) {
	var out Schedule
	if strings.TrimSpace(s) == "none" {
		s = ""
	}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		d, err := time.ParseDuration(item)
		if err != nil || d < 0 {
			return Schedule{}, fmt.Errorf("retry delay %q is not a duration such as 5s, 30m or 2h", item)
		}
		out.Delays = append(out.Delays, d)
	}
	if len(out.Delays) > 50 {
		return Schedule{}, fmt.Errorf("the retry schedule has %d delays; at most 50", len(out.Delays))
	}
	if jitterPercent < 0 || jitterPercent > 100 {
		return Schedule{}, fmt.Errorf("jitter %d%% is not between 0 and 100", jitterPercent)
	}
	out.Jitter = float64(jitterPercent) / 100
	return out, nil
}

// Attempts is the most attempts a delivery gets.
func (s Schedule) Attempts() int { return len(s.Delays) + 1 }

// Total is the schedule's span without jitter: from the first attempt to
// the last.
func (s Schedule) Total() time.Duration {
	var t time.Duration
	for _, d := range s.Delays {
		t += d
	}
	return t
}

// Next is the wait after attempt number attempt (1 for the first) failed,
// with jitter drawn from r (nil: math/rand's); ok is false after the last
// attempt.
func (s Schedule) Next(attempt int, r *rand.Rand) (d time.Duration, ok bool) {
	if attempt < 1 || attempt > len(s.Delays) {
		return 0, false
	}
	d = s.Delays[attempt-1]
	if s.Jitter > 0 && d > 0 {
		f := rand.Float64
		if r != nil {
			f = r.Float64
		}
		d += time.Duration((f()*2 - 1) * s.Jitter * float64(d))
	}
	return d, true
}
