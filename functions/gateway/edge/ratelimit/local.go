package ratelimit

import (
	"sync"
	"time"
)

// local is the in-process GCRA used while Redis cannot be reached: the same
// algorithm as redis_rate's script, with a map of theoretical arrival times
// (TATs) for a Redis key's value.
type local struct {
	mu      sync.Mutex
	tats    map[string]time.Time
	maxKeys int
	swept   time.Time
}

// sweepEvery is how often idle entries are dropped; when the map is full a
// sweep may run as often as sweepFull.
const (
	sweepEvery = time.Minute
	sweepFull  = time.Second
)

func newLocal(maxKeys int) *local {
	return &local{tats: make(map[string]time.Time), maxKeys: maxKeys}
}

// allow decides one event for key at now under a valid lim.
func (m *local) allow(key string, lim Limit, now time.Time) Decision {
	interval := float64(lim.Period) / float64(lim.Rate) // nanoseconds per event
	m.mu.Lock()
	defer m.mu.Unlock()
	tat, ok := m.tats[key]
	if !ok {
		m.makeRoom(now)
	}
	if !tat.After(now) {
		tat = now
	}
	// The event is allowed if, once its interval is added, the TAT is at
	// most Burst intervals ahead of now; diff is the slack left.
	diff := interval*float64(lim.Burst) - float64(tat.Sub(now)) - interval
	if diff < 0 {
		return Decision{Limit: lim.Burst, RetryAfter: time.Duration(-diff), ResetAfter: tat.Sub(now)}
	}
	tat = tat.Add(time.Duration(interval))
	m.tats[key] = tat
	return Decision{Allowed: true, Limit: lim.Burst, Remaining: int(diff / interval), ResetAfter: tat.Sub(now)}
}

// makeRoom keeps the map under maxKeys before a new key goes in. An entry
// whose TAT has passed is a full bucket, the same as no entry, so dropping it
// changes nothing. If the map is still full every entry is in use, and one
// goes at random (map order is random): that subject's bucket is forgotten,
// which lets it burst again, but memory stays bounded whatever the number of
// subjects.
func (m *local) makeRoom(now time.Time) {
	full := len(m.tats) >= m.maxKeys
	if since := now.Sub(m.swept); since >= sweepEvery || full && since >= sweepFull {
		for k, tat := range m.tats {
			if !tat.After(now) {
				delete(m.tats, k)
			}
		}
		m.swept = now
	}
	for k := range m.tats {
		if len(m.tats) < m.maxKeys {
			break
		}
		delete(m.tats, k)
	}
}

// reset forgets every subject.
func (m *local) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.tats)
}
