package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"

	"github.com/skyflow-oss/skyflow/domain/identity/credentials"
	"github.com/skyflow-oss/skyflow/runtime/sender"
)

// BenchmarkGateway measures what the gateway adds to a request: the same
// call of the echo test function (a trivial function) through the gateway
// (access token verified against the cached key set, the deny list and
// the GCRA rate limit in Redis, the event built and signed) and directly
// (signed as the gateway would sign it). Both go through the local
// platform's front of the function; the gateway path has one more front,
// its own, as a cluster has the ingress. Latency: p50 and p99 of each and
// their difference, the overhead. Throughput: requests per second with 8
// concurrent clients on each path, and their ratio.
func BenchmarkGateway(b *testing.B) {
	p := startPlatform(b, options{env: map[string]string{
		"RECORD_DIR":          "", // echo answers without writing a file
		"SKYFLOW_RATE_LIMITS": "data=1000000/s:1000000,management=1000/s,auth=1000/s,anonymous=1000/s",
	}})
	token := benchAccessToken(b, p)
	gatewayURL := p.GatewayURL() + "/v1/test/echo"
	gatewayProcessURL := status(b, p.Platform, "gateway").ProcessURL.String() + "/v1/test/echo"
	echo, _ := p.ServiceURL("echo")
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64, Proxy: nil}}
	body := []byte(`{"bench":true}`)
	to := func(u string) func() *http.Request {
		return func() *http.Request {
			req, _ := http.NewRequest("POST", u, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			return req
		}
	}
	// The gateway as a client reaches it (through the local platform's
	// front of the gateway, which stands in for the ingress), and its
	// process alone: the gateway's own cost.
	viaGateway, viaGatewayProcess := to(gatewayURL), to(gatewayProcessURL)
	// The direct request is built and signed before the clock starts.
	direct := func() *http.Request {
		e := event.New()
		e.SetID(uuid.NewString())
		e.SetSource("/skyflow/functions/gateway")
		e.SetType(echoType)
		e.SetData(event.ApplicationJSON, body)
		req, err := cehttp.NewHTTPRequestFromEvent(context.Background(), echo.String(), e)
		if err != nil {
			b.Fatal(err)
		}
		p.Signer(sender.Gateway).Authorize(req, e, "echo")
		return req
	}
	for range 200 { // warm: processes, connections, the key set
		for _, build := range []func() *http.Request{viaGateway, viaGatewayProcess, direct} {
			if err := benchDo(client, build()); err != nil {
				b.Fatal(err)
			}
		}
	}

	b.Run("Latency", func(b *testing.B) {
		var gw, proc, base []time.Duration
		for i := 0; i < b.N; i++ {
			for range 250 { // interleaved, so all see the same noise
				gw = append(gw, timed(b, client, viaGateway()))
				proc = append(proc, timed(b, client, viaGatewayProcess()))
				base = append(base, timed(b, client, direct()))
			}
		}
		reportLatencies(b, proc, base, "x-direct-p50")
		b.ReportMetric(percentile(proc, 0.50)-percentile(base, 0.50), "overhead-p50-ms")
		b.ReportMetric(percentile(proc, 0.99)-percentile(base, 0.99), "overhead-p99-ms")
		b.ReportMetric(percentile(gw, 0.50)-percentile(base, 0.50), "with-front-overhead-p50-ms")
		b.ReportMetric(percentile(gw, 0.99)-percentile(base, 0.99), "with-front-overhead-p99-ms")
	})
	b.Run("Throughput", func(b *testing.B) {
		var gwRPS, baseRPS []float64
		for i := 0; i < b.N; i++ {
			gwRPS = append(gwRPS, requestsPerSecond(b, client, 8, 2*time.Second, viaGatewayProcess))
			baseRPS = append(baseRPS, requestsPerSecond(b, client, 8, 2*time.Second, direct))
		}
		b.ReportMetric(median(gwRPS), "gateway-req/s")
		b.ReportMetric(median(baseRPS), "direct-req/s")
		b.ReportMetric(median(gwRPS)/median(baseRPS), "x-direct-req/s")
		b.ReportMetric(0, "ns/op")
	})
}

func benchDo(client *http.Client, req *http.Request) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func timed(b *testing.B, client *http.Client, req *http.Request) time.Duration {
	start := time.Now()
	if err := benchDo(client, req); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// requestsPerSecond sends the requests build makes from workers goroutines for d.
func requestsPerSecond(b *testing.B, client *http.Client, workers int, d time.Duration, build func() *http.Request) float64 {
	var n atomic.Int64
	var failed atomic.Value
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for time.Now().Before(stop) {
				if err := benchDo(client, build()); err != nil {
					failed.Store(err)
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	return float64(n.Load()) / d.Seconds()
}

// benchAccessToken is a service account's access token, got as an SDK
// gets one: the administrator makes the account, the account signs an
// assertion and exchanges it at the token endpoint.
func benchAccessToken(b *testing.B, p *testPlatform) string {
	post := func(path, credential string, in, out any) {
		body, _ := json.Marshal(in)
		req, _ := http.NewRequest("POST", p.GatewayURL()+path, bytes.NewReader(body))
		if credential != "" {
			req.Header.Set("Authorization", "Bearer "+credential)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || json.Unmarshal(raw, out) != nil {
			b.Fatalf("POST %s: %d %s", path, resp.StatusCode, raw)
		}
	}
	var creds credentials.Credentials
	post("/v1/serviceaccounts", p.AdminAPIKey(), map[string]any{"name": "bench", "roles": []string{"bench"}}, &creds)
	assertion, err := credentials.SignAssertion(creds, 30*time.Minute, nil, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	var token struct {
		AccessToken string `json:"accessToken"`
	}
	post("/v1/auth/sa/oauth/token", "", map[string]any{"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}, &token)
	return token.AccessToken
}
