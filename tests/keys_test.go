package tests

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// keysSchema is a vault whose administrator may do everything, with a
// random token, a unique deterministic token and a format-preserving one.
const keysSchema = `{"name": "rotation",
 "tables": [{"name": "customers", "columns": [
   {"name": "name", "data_type": "string", "token_type": "NON_DETERMINISTIC_UUID"},
   {"name": "email", "data_type": "string", "token_type": "DETERMINISTIC_UUID", "unique": true, "validation": {"kind": "EMAIL"}},
   {"name": "ssn", "data_type": "string", "token_type": "DETERMINISTIC_FPT", "validation": {"kind": "SSN"}}]}],
 "policy": {"roles": {
   "admin": {"tables": {"*": {"insert": true, "update": true, "delete": true, "read": {"*": "PLAIN_TEXT"}}}, "tokenize": true, "detokenize": true}}}}`

// keysClient drives one vault through the gateway with the administrator's key.
type keysClient struct {
	gw    *gatewayClient
	key   string
	vault string
	pool  *pgxpool.Pool
}

type keyedRecord struct {
	id, email, ssn string
	tokens         map[string]string
}

func newKeysClient(t *testing.T, p *testPlatform, pool *pgxpool.Pool) *keysClient {
	gw := &gatewayClient{base: p.GatewayURL(), client: &http.Client{Timeout: time.Minute}}
	c := &keysClient{gw: gw, key: p.AdminAPIKey(), pool: pool}
	var v struct {
		ID string `json:"id"`
	}
	gw.want(t, 200, "POST", "/v1/management/vaults", c.key, json.RawMessage(keysSchema), &v)
	c.vault = v.ID
	return c
}

// insert stores n customers, 25 a request, and returns them.
func (c *keysClient) insert(t *testing.T, prefix string, n int) []keyedRecord {
	var out []keyedRecord
	for start := 0; start < n; start += 25 {
		var recs []any
		var batch []keyedRecord
		for i := start; i < min(n, start+25); i++ {
			r := keyedRecord{email: fmt.Sprintf("%s%d@example.com", prefix, i), ssn: fmt.Sprintf("%03d-45-%04d", 100+i%500, 1+i%9999)}
			batch = append(batch, r)
			recs = append(recs, map[string]any{"fields": map[string]any{"name": "n", "email": r.email, "ssn": r.ssn}})
		}
		var res struct {
			Records []struct {
				SkyflowID string            `json:"skyflow_id"`
				Tokens    map[string]string `json:"tokens"`
			} `json:"records"`
		}
		c.gw.want(t, 200, "POST", "/v1/vaults/"+c.vault+"/customers", c.key, map[string]any{"records": recs, "tokenization": true}, &res)
		for i := range batch {
			batch[i].id, batch[i].tokens = res.Records[i].SkyflowID, res.Records[i].Tokens
		}
		out = append(out, batch...)
	}
	return out
}

// insertOne stores one customer, reporting a failure rather than
// stopping the test (it runs beside the test's goroutine).
func (c *keysClient) insertOne(t *testing.T, email string) (keyedRecord, string) {
	r := keyedRecord{email: email, ssn: "234-56-7890"}
	a := c.gw.do(t, "POST", "/v1/vaults/"+c.vault+"/customers", c.key, map[string]any{"tokenization": true,
		"records": []any{map[string]any{"fields": map[string]any{"name": "n", "email": r.email, "ssn": r.ssn}}}})
	var res struct {
		Records []struct {
			SkyflowID string            `json:"skyflow_id"`
			Tokens    map[string]string `json:"tokens"`
		} `json:"records"`
	}
	if a.status != 200 || json.Unmarshal(a.body, &res) != nil || len(res.Records) != 1 {
		return r, fmt.Sprintf("insert: %d %s", a.status, a.body)
	}
	r.id, r.tokens = res.Records[0].SkyflowID, res.Records[0].Tokens
	return r, ""
}

// check reads r three ways (by id, by column value, by detokenizing its
// tokens) and returns what went wrong, "" when nothing did.
func (c *keysClient) check(t *testing.T, r keyedRecord) string {
	a := c.gw.do(t, "GET", "/v1/vaults/"+c.vault+"/customers/"+r.id+"?redaction=PLAIN_TEXT", c.key, nil)
	var one struct {
		Fields map[string]any `json:"fields"`
	}
	if a.status != 200 || json.Unmarshal(a.body, &one) != nil || one.Fields["email"] != r.email {
		return fmt.Sprintf("get %s: %d %s", r.id, a.status, a.body)
	}
	a = c.gw.do(t, "GET", "/v1/vaults/"+c.vault+"/customers?redaction=PLAIN_TEXT&column_name=email&column_values="+url.QueryEscape(r.email), c.key, nil)
	var many struct {
		Records []struct {
			Fields map[string]any `json:"fields"`
		} `json:"records"`
	}
	if a.status != 200 || json.Unmarshal(a.body, &many) != nil || len(many.Records) != 1 || many.Records[0].Fields["skyflow_id"] != r.id {
		return fmt.Sprintf("lookup of %s by email: %d %s", r.id, a.status, a.body)
	}
	a = c.gw.do(t, "POST", "/v1/vaults/"+c.vault+"/detokenize", c.key, map[string]any{"detokenizationParameters": []any{
		map[string]any{"token": r.tokens["email"], "redaction": "PLAIN_TEXT"}, map[string]any{"token": r.tokens["ssn"], "redaction": "PLAIN_TEXT"}}})
	var detok struct {
		Records []struct {
			Value string `json:"value"`
		} `json:"records"`
	}
	if a.status != 200 || json.Unmarshal(a.body, &detok) != nil || len(detok.Records) != 2 || detok.Records[0].Value != r.email || detok.Records[1].Value != r.ssn {
		return fmt.Sprintf("detokenize of %s's tokens: %d %s", r.id, a.status, a.body)
	}
	return ""
}

// rotate rotates the vault's keys and returns the new primary key id.
func (c *keysClient) rotate(t *testing.T) uint32 {
	var k struct {
		PrimaryKeyID uint32 `json:"primary_key_id"`
	}
	c.gw.want(t, 200, "POST", "/v1/management/vaults/"+c.vault+"/keys/rotate", c.key, nil, &k)
	return k.PrimaryKeyID
}

// progress is the rewrap's progress as GET …/keys shows it.
type progress struct {
	Rewrap *struct {
		TargetKeyID uint32     `json:"target_key_id"`
		Rewrapped   int64      `json:"rewrapped"`
		FinishedAt  *time.Time `json:"finished_at"`
	} `json:"rewrap"`
}

func (c *keysClient) progress(t *testing.T) progress {
	var p progress
	c.gw.want(t, 200, "GET", "/v1/management/vaults/"+c.vault+"/keys", c.key, nil, &p)
	return p
}

// cellsPerKey counts the vault's cells by the data key that sealed them,
// read from the rows' ciphertext prefixes.
func (c *keysClient) cellsPerKey(t *testing.T) map[uint32]int {
	rows, err := c.pool.Query(context.Background(), `SELECT substring(ciphertext from 2 for 4) FROM vault_cells WHERE vault_id = $1::uuid`, c.vault)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[uint32]int{}
	for rows.Next() {
		var id []byte
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out[binary.BigEndian.Uint32(id)]++
	}
	return out
}

// waitRewrapped fires the rewrap's PingSource until the rewrap to target
// has finished.
func (c *keysClient) waitRewrapped(t *testing.T, p *testPlatform, target uint32) progress {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got := c.progress(t)
		if got.Rewrap != nil && got.Rewrap.TargetKeyID == target && got.Rewrap.FinishedAt != nil {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rewrap to key %d has not finished: %+v", target, got.Rewrap)
		}
		if err := p.FirePing(context.Background(), "keys-rewrap"); err != nil {
			t.Logf("ping: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Key rotation on the running platform: a rotation while inserts and
// reads run through the gateway, and a rewrap killed mid-way.
func TestKeyRotationEndToEnd(t *testing.T) {
	p := startPlatform(t, options{env: map[string]string{
		"SKYFLOW_REWRAP_BATCH": "2", "SKYFLOW_REWRAP_BUDGET": "3s", "SKYFLOW_REWRAP_SETTLE": "1s",
		"SKYFLOW_RATE_LIMITS": "data=100000/s:100000,management=100000/s:100000,auth=1000/s,anonymous=1000/s"}})
	pool, err := pgxpool.New(context.Background(), p.DatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	// No request fails before, during or after the rewrap; afterwards every
	// cell is under the new key and every record reads all three ways.
	t.Run("rotate under load", func(t *testing.T) {
		c := newKeysClient(t, p, pool)
		recs := c.insert(t, "load", 150)
		for _, r := range recs[:10] {
			if msg := c.check(t, r); msg != "" {
				t.Fatalf("before the rotation: %s", msg)
			}
		}
		var (
			stop     atomic.Bool
			failures sync.Map
			requests atomic.Int64
			wg       sync.WaitGroup
			mu       sync.Mutex
			written  []keyedRecord
		)
		for w := range 4 {
			wg.Go(func() {
				for i := 0; !stop.Load(); i++ {
					if w == 0 { // a writer
						r, msg := c.insertOne(t, fmt.Sprintf("live%d@example.com", i))
						if msg != "" {
							failures.Store(msg, true)
							continue
						}
						mu.Lock()
						written = append(written, r)
						mu.Unlock()
					} else if msg := c.check(t, recs[(i*7+w)%len(recs)]); msg != "" {
						failures.Store(msg, true)
					}
					requests.Add(1)
				}
			})
		}
		time.Sleep(300 * time.Millisecond) // the load runs before the rotation too
		target := c.rotate(t)
		c.waitRewrapped(t, p, target)
		time.Sleep(300 * time.Millisecond) // and after it
		stop.Store(true)
		wg.Wait()
		failures.Range(func(k, _ any) bool { t.Errorf("during the rotation: %s", k); return true })
		if requests.Load() < 20 {
			t.Fatalf("only %d requests ran during the rotation", requests.Load())
		}
		if counts := c.cellsPerKey(t); len(counts) != 1 || counts[target] == 0 {
			t.Fatalf("cells per data key after the rewrap: %v, want all under %d", counts, target)
		}
		for _, r := range append(recs, written...) {
			if msg := c.check(t, r); msg != "" {
				t.Fatalf("after the rewrap: %s", msg)
			}
		}
		t.Logf("%d requests during the rotation, none failed", requests.Load())
	})

	// SIGKILL the rewrap mid-way: the batch it was in rolls back, the next
	// ping resumes from the stored cursor, and every cell is moved exactly
	// once (the count of moved cells equals the vault's cells).
	t.Run("rewrap killed mid-way", func(t *testing.T) {
		c := newKeysClient(t, p, pool)
		recs := c.insert(t, "kill", 400)
		cells := 3 * len(recs)
		target := c.rotate(t)
		var killed bool
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !killed; time.Sleep(5 * time.Millisecond) {
			var moved int64
			if err := pool.QueryRow(context.Background(), `SELECT rewrapped FROM vault_rewraps WHERE vault_id = $1::uuid AND target_key_id = $2`,
				c.vault, int64(target)).Scan(&moved); err != nil || moved == 0 {
				continue
			}
			if moved >= int64(cells) {
				t.Fatalf("the rewrap finished (%d cells) before it could be killed", moved)
			}
			for _, st := range p.Status() {
				if st.Name == "keys-rewrap" && st.PID != 0 {
					if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
					killed = true
					t.Logf("killed keys-rewrap (pid %d) after %d of %d cells", st.PID, moved, cells)
				}
			}
		}
		if !killed {
			t.Fatal("keys-rewrap never ran")
		}
		done := c.waitRewrapped(t, p, target)
		if done.Rewrap.Rewrapped != int64(cells) {
			t.Fatalf("%d cells moved in all, want each of the %d exactly once", done.Rewrap.Rewrapped, cells)
		}
		if counts := c.cellsPerKey(t); len(counts) != 1 || counts[target] != cells {
			t.Fatalf("cells per data key: %v, want %d under %d", counts, cells, target)
		}
		for _, r := range recs {
			if msg := c.check(t, r); msg != "" {
				t.Fatalf("after the resumed rewrap: %s", msg)
			}
		}
		// Now the older version can go; the records still read.
		c.gw.want(t, 200, "POST", "/v1/management/vaults/"+c.vault+"/keys/destroy", c.key, nil, nil)
		if msg := c.check(t, recs[0]); msg != "" {
			t.Fatalf("after destroying the older keys: %s", msg)
		}
	})
}
