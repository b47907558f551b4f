package tests

// BenchmarkRewrap measures a key rotation's rewrap on the running local
// platform, everything through the gateway as a client would call it:
//
//   - Throughput: a vault of rewrapThroughputRecords records (keysSchema:
//     three cells each), inserted 25 a request; the clock runs from just
//     before POST …/keys/rotate until GET …/keys shows the rewrap finished
//     (polled every rewrapPollEvery). cells/s and records/s are over that
//     wall time, so they include the rotated event's way through the outbox
//     and the broker to keys-rewrap; rewrap-only-cells/s is over the
//     rewrap's own started_at → finished_at.
//   - Latency impact: a mixed load (rewrapWorkers clients, one request in
//     four an insert of one record, the others a GET of a record by id)
//     on a vault of rewrapLoadRecords records, first for rewrapBaselineFor
//     without any rewrap (the baseline), then from the rotation until its
//     rewrap has finished. p50/p99 of reads and writes in both windows and
//     their ratios, during/baseline, are the figures: this machine is
//     shared and noisy, so only the ratios against the in-run baseline
//     mean anything, and nothing is asserted against a threshold.
//
// keys-rewrap runs with SKYFLOW_REWRAP_BATCH 500 and SKYFLOW_REWRAP_BUDGET
// 90s (its defaults); SKYFLOW_REWRAP_SETTLE is 0 so that a rewrap is
// finished when a pass finds no cell left under an older key. A run cut by
// its budget is resumed by firing the keys-rewrap PingSource, as the
// cluster's would every minute; pings and under-load-pings count those,
// normally 0. Under the load the rewrap moves somewhat more cells than the
// vault held: inserts in flight while the rotation commits seal theirs
// under the old key (under-load-cells/s counts them too).
//
// The whole measurement takes one to two minutes once the platform is up,
// so it runs once per test process whatever b.N: a later call (-benchtime
// Nx with N > 1, -count) reports the same figures again. ns/op is
// suppressed.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skyflow-oss/skyflow/domain/keys/rotation"
)

const (
	rewrapThroughputRecords = 3000
	rewrapLoadRecords       = 6000
	rewrapBaselineFor       = 8 * time.Second
	rewrapWorkers           = 4
	rewrapPollEvery         = 20 * time.Millisecond
	rewrapBudget            = 90 * time.Second // SKYFLOW_REWRAP_BUDGET: a run's work per event
)

// rewrapMetric is one figure BenchmarkRewrap reports.
type rewrapMetric struct {
	value float64
	unit  string
}

// rewrapFigures are the figures of the one measurement a process makes.
var rewrapFigures []rewrapMetric

// BenchmarkRewrap measures the rewrap after a key rotation; see the top of
// this file.
func BenchmarkRewrap(b *testing.B) {
	if rewrapFigures == nil {
		rewrapFigures = measureRewrap(b)
	}
	for _, m := range rewrapFigures {
		b.ReportMetric(m.value, m.unit)
	}
	b.ReportMetric(0, "ns/op")
}

func measureRewrap(b *testing.B) []rewrapMetric {
	p := startPlatform(b, options{env: map[string]string{
		"SKYFLOW_REWRAP_SETTLE": "0s", "SKYFLOW_REWRAP_BATCH": "500", "SKYFLOW_REWRAP_BUDGET": rewrapBudget.String(),
		"SKYFLOW_RATE_LIMITS": "data=1000000/s:1000000,management=1000000/s:1000000,auth=1000/s,anonymous=1000/s"}})
	ctx := b.Context()
	// Keep-alive connections, enough for every client: a new connection a
	// request would be measured too.
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4 * rewrapWorkers}}
	newVault := func() *keysClient {
		c := &keysClient{gw: &gatewayClient{base: p.GatewayURL(), client: client}, key: p.AdminAPIKey()}
		var v struct {
			ID string `json:"id"`
		}
		if err := rewrapCall(c, "POST", "/v1/management/vaults", json.RawMessage(keysSchema), &v); err != nil {
			b.Fatal(err)
		}
		c.vault = v.ID
		return c
	}
	var out []rewrapMetric
	report := func(value float64, unit string) { out = append(out, rewrapMetric{value, unit}) }
	// Throughput: nothing else runs.
	small := newVault()
	if _, err := rewrapFill(small, rewrapThroughputRecords); err != nil {
		b.Fatal(err)
	}
	rewrapWarm(b, p) // keys-rewrap's process is up: its cold start is not the rewrap's
	start := time.Now()
	target, err := rewrapRotate(small)
	if err != nil {
		b.Fatal(err)
	}
	st, seen, pings, err := rewrapWait(ctx, small, p, target, start)
	if err != nil {
		b.Fatal(err)
	}
	wall := seen.Sub(start)
	cells := st.Rewrap.Rewrapped
	if want := int64(3 * rewrapThroughputRecords); cells != want {
		b.Errorf("the rewrap moved %d cells, want %d (three a record)", cells, want)
	}
	own := st.Rewrap.FinishedAt.Sub(st.Rewrap.StartedAt)
	report(float64(cells)/wall.Seconds(), "cells/s")
	report(float64(rewrapThroughputRecords)/wall.Seconds(), "records/s")
	report(wall.Seconds(), "rewrap-s")
	report(float64(cells)/own.Seconds(), "rewrap-only-cells/s")
	report(float64(pings), "pings")

	// Latency: the same load before and during a rewrap.
	large := newVault()
	ids, err := rewrapFill(large, rewrapLoadRecords)
	if err != nil {
		b.Fatal(err)
	}
	load := &rewrapLoad{c: large, ids: ids}
	load.start()
	b.Cleanup(load.stop)    // on a failure too, before the platform stops
	time.Sleep(time.Second) // warm-up: processes, connections, the vault's keys
	load.phase.Store(phaseBaseline)
	time.Sleep(rewrapBaselineFor)
	load.phase.Store(phaseNone)
	rewrapWarm(b, p)
	load.phase.Store(phaseDuring)
	start = time.Now()
	target, err = rewrapRotate(large)
	if err == nil {
		st, seen, pings, err = rewrapWait(ctx, large, p, target, start)
	}
	load.phase.Store(phaseNone)
	load.stop()
	if err != nil {
		b.Fatal(err)
	}
	if load.failures.Load() > 0 {
		b.Errorf("%d of the load's requests failed; the first: %s", load.failures.Load(), load.firstFailure.Load())
	}
	during := seen.Sub(start)
	report(float64(st.Rewrap.Rewrapped)/during.Seconds(), "under-load-cells/s")
	report(during.Seconds(), "under-load-rewrap-s")
	report(float64(pings), "under-load-pings")
	for _, k := range []struct {
		name           string
		base, measured []time.Duration
	}{{"read", load.base[kindRead], load.during[kindRead]}, {"write", load.base[kindWrite], load.during[kindWrite]}} {
		if len(k.base) == 0 || len(k.measured) == 0 {
			b.Fatalf("no %s samples: %d in the baseline, %d during the rewrap", k.name, len(k.base), len(k.measured))
		}
		b50, b99 := percentile(k.base, 0.50), percentile(k.base, 0.99)
		m50, m99 := percentile(k.measured, 0.50), percentile(k.measured, 0.99)
		report(b50, "baseline-"+k.name+"-p50-ms")
		report(b99, "baseline-"+k.name+"-p99-ms")
		report(m50, k.name+"-p50-ms")
		report(m99, k.name+"-p99-ms")
		report(m50/b50, k.name+"-p50-ratio")
		report(m99/b99, k.name+"-p99-ratio")
		report(float64(len(k.base)), "baseline-"+k.name+"-samples")
		report(float64(len(k.measured)), k.name+"-samples")
	}
	return out
}

// rewrapCall sends one request through the gateway with the vault
// administrator's key and decodes a 200 answer into out. Unlike
// gatewayClient.do it returns its failure, so that the load's goroutines
// may use it.
func rewrapCall(c *keysClient, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.gw.base+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := c.gw.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: %w: %s", method, path, err, raw)
		}
	}
	return nil
}

// rewrapInsert stores the customers in one request and returns their ids.
func rewrapInsert(c *keysClient, customers []benchCustomer) ([]string, error) {
	recs := make([]any, len(customers))
	for i, cu := range customers {
		recs[i] = map[string]any{"fields": map[string]any{"name": cu.name, "email": cu.email, "ssn": cu.ssn}}
	}
	var res struct {
		Records []struct {
			SkyflowID string `json:"skyflow_id"`
		} `json:"records"`
	}
	if err := rewrapCall(c, "POST", "/v1/vaults/"+c.vault+"/customers", map[string]any{"records": recs, "tokenization": true}, &res); err != nil {
		return nil, err
	}
	if len(res.Records) != len(customers) {
		return nil, fmt.Errorf("insert answered %d records, want %d", len(res.Records), len(customers))
	}
	ids := make([]string, len(res.Records))
	for i, r := range res.Records {
		ids[i] = r.SkyflowID
	}
	return ids, nil
}

// rewrapFill inserts n customers, 25 a request, from rewrapWorkers clients.
func rewrapFill(c *keysClient, n int) ([]string, error) {
	var (
		mu    sync.Mutex
		ids   []string
		first error
		next  atomic.Int64
		wg    sync.WaitGroup
	)
	for range rewrapWorkers {
		wg.Go(func() {
			for {
				from := int(next.Add(25)) - 25
				if from >= n {
					return
				}
				got, err := rewrapInsert(c, benchCustomers(min(25, n-from)))
				mu.Lock()
				ids = append(ids, got...)
				if err != nil && first == nil {
					first = err
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return ids, first
}

// rewrapRotate rotates the vault's keys and returns the new primary key id.
func rewrapRotate(c *keysClient) (uint32, error) {
	var k rotation.KeysView
	err := rewrapCall(c, "POST", "/v1/management/vaults/"+c.vault+"/keys/rotate", nil, &k)
	return k.PrimaryKeyID, err
}

// rewrapWarm starts keys-rewrap's process: a ping finds no unfinished rewrap.
func rewrapWarm(b *testing.B, p *testPlatform) {
	if err := p.FirePing(b.Context(), "keys-rewrap"); err != nil {
		b.Fatalf("warming keys-rewrap: %v", err)
	}
}

// rewrapWait polls GET …/keys until the rewrap to target, whose rotation
// was requested at rotated, has finished, and returns what it showed and
// when. The run the rotated event started works for up to rewrapBudget;
// once that has passed, it fires the PingSource to resume the rewrap, as
// the cluster's would every minute: in the background, one ping at a time
// (a ping is answered when its run ends, finished or cut by the budget),
// at most one a second, and counts them. A ping fired earlier would only
// start a second keys-rewrap beside the first.
func rewrapWait(ctx context.Context, c *keysClient, p *testPlatform, target uint32, rotated time.Time) (*rotation.KeysStatus, time.Time, int, error) {
	var (
		pings    int
		inFlight atomic.Bool
		wg       sync.WaitGroup
		lastPing time.Time
	)
	ctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); wg.Wait() }()
	deadline := rotated.Add(5 * time.Minute)
	for {
		var st rotation.KeysStatus
		if err := rewrapCall(c, "GET", "/v1/management/vaults/"+c.vault+"/keys", nil, &st); err != nil {
			return nil, time.Time{}, pings, err
		}
		seen := time.Now()
		if r := st.Rewrap; r != nil && r.TargetKeyID == target && r.FinishedAt != nil {
			return &st, seen, pings, nil
		}
		if seen.After(deadline) {
			return nil, time.Time{}, pings, fmt.Errorf("the rewrap to key %d has not finished after 5 minutes: %+v", target, st.Rewrap)
		}
		if seen.Sub(rotated) > rewrapBudget+time.Second && seen.Sub(lastPing) >= time.Second && inFlight.CompareAndSwap(false, true) {
			pings++
			lastPing = seen
			wg.Go(func() {
				defer inFlight.Store(false)
				if err := p.FirePing(ctx, "keys-rewrap"); err != nil && !errors.Is(err, context.Canceled) {
					p.cfg.Logger.Warn("firing the keys-rewrap PingSource", "error", err)
				}
			})
		}
		time.Sleep(rewrapPollEvery)
	}
}

// The load's phases: samples are kept only for a request that started and
// ended in the same measured phase.
const (
	phaseNone int32 = iota
	phaseBaseline
	phaseDuring
)

const (
	kindRead = iota
	kindWrite
)

// rewrapLoad is the mixed load: rewrapWorkers clients, each sending one
// insert of a record for every three GETs of a record by id.
type rewrapLoad struct {
	c   *keysClient
	ids []string // the records the reads pick from

	phase        atomic.Int32
	halt         atomic.Bool
	wg           sync.WaitGroup
	mu           sync.Mutex
	base, during [2][]time.Duration // by kind
	failures     atomic.Int64
	firstFailure atomic.Value // string
}

func (l *rewrapLoad) start() {
	for w := range rewrapWorkers {
		l.wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for i := w; !l.halt.Load(); i++ {
				kind := kindRead
				if i%4 == 3 {
					kind = kindWrite
				}
				phase := l.phase.Load()
				begin := time.Now()
				var err error
				if kind == kindWrite {
					_, err = rewrapInsert(l.c, benchCustomers(1))
				} else {
					id := l.ids[rng.IntN(len(l.ids))]
					var rec struct {
						Fields map[string]any `json:"fields"`
					}
					err = rewrapCall(l.c, "GET", "/v1/vaults/"+l.c.vault+"/customers/"+id+"?redaction=PLAIN_TEXT", nil, &rec)
					if err == nil && rec.Fields["skyflow_id"] != id {
						err = fmt.Errorf("get %s answered the fields %v", id, rec.Fields)
					}
				}
				d := time.Since(begin)
				if err != nil {
					if l.failures.Add(1) == 1 {
						l.firstFailure.Store(err.Error())
					}
					continue
				}
				if phase == phaseNone || l.phase.Load() != phase {
					continue
				}
				l.mu.Lock()
				if phase == phaseBaseline {
					l.base[kind] = append(l.base[kind], d)
				} else {
					l.during[kind] = append(l.during[kind], d)
				}
				l.mu.Unlock()
			}
		})
	}
}

func (l *rewrapLoad) stop() {
	l.halt.Store(true)
	l.wg.Wait()
}
