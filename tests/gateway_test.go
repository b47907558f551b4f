package tests

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"

	"github.com/skyflow-oss/skyflow/domain/identity/credentials"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/sender"
)

// gatewayClient calls the platform's gateway as an application would.
type gatewayClient struct {
	base   string
	client *http.Client
}

type gwAnswer struct {
	status int
	header http.Header
	body   []byte
}

func (c *gatewayClient) do(t *testing.T, method, path, credential string, body any, headers ...string) gwAnswer {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, c.base+path, r)
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("%s %s: no X-Request-Id", method, path)
	}
	if resp.StatusCode >= 400 {
		if e, ok := apierr.Parse(b); !ok || e.HTTPCode != resp.StatusCode {
			t.Errorf("%s %s: %d is not in the error envelope: %s", method, path, resp.StatusCode, b)
		}
	}
	return gwAnswer{resp.StatusCode, resp.Header, b}
}

func (c *gatewayClient) want(t *testing.T, status int, method, path, credential string, body any, out any) gwAnswer {
	t.Helper()
	a := c.do(t, method, path, credential, body)
	if a.status != status {
		t.Fatalf("%s %s: %d %s, want %d", method, path, a.status, a.body, status)
	}
	if out != nil {
		if err := json.Unmarshal(a.body, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return a
}

// gatewayHTTPS trusts the platform's development certificate.
func gatewayHTTPS(t *testing.T, p *testPlatform) *gatewayClient {
	pem, err := os.ReadFile(filepath.Join(p.cfg.DevDir, "tls", "gateway.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &gatewayClient{
		base:   strings.Replace(p.GatewayTLSURL(), "127.0.0.1", "localhost", 1),
		client: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: time.Minute},
	}
}

// TC-SKY-ARCH-001: all client traffic goes through the gateway. Every
// function in knative/ refuses a request that did not come through it,
// even from inside the network and even with a forged or misdirected
// assertion; the same request through the gateway succeeds; only the
// gateway's manifest is reachable from outside the cluster.
func TestTC_SKY_ARCH_001_AllClientTrafficThroughTheGateway(t *testing.T) {
	p := startPlatform(t, options{})
	gw := &gatewayClient{base: p.GatewayURL(), client: &http.Client{Timeout: time.Minute}}
	admin := p.AdminAPIKey()

	// Through the gateway: an administrator creates a vault.
	var created struct {
		ID string `json:"id"`
	}
	gw.want(t, 200, "POST", "/v1/management/vaults", admin, json.RawMessage(gatewaySchema), &created)
	if created.ID == "" {
		t.Fatal("no vault id")
	}

	knative := filepath.Join(root(t), "knative") + string(filepath.Separator)
	forged, _ := sender.GenerateSigner(sender.Gateway)
	var checked int
	for _, svc := range p.Manifests().Services {
		if !strings.HasPrefix(svc.File, knative) {
			continue // the tests' own functions
		}
		if svc.Name == "gateway" {
			if svc.ClusterLocal {
				t.Error("the gateway is cluster-local: nothing could reach the API")
			}
			continue
		}
		if !svc.ClusterLocal {
			t.Errorf("%s (%s) is reachable from outside the cluster; only the gateway may be", svc.Name, svc.File)
		}
		u, _ := p.ServiceURL(svc.Name)
		// The request an attacker inside the network would make: the
		// vault creation, claiming to be an administrator.
		e := event.New()
		e.SetID(uuid.NewString())
		e.SetSource("/skyflow/functions/gateway")
		e.SetType("com.skyflow.vault.create")
		e.SetExtension("principal", "user:00000000-0000-4000-8000-000000000666")
		e.SetExtension("roles", "admin")
		e.SetData(event.ApplicationJSON, json.RawMessage(gatewaySchema))
		for name, sign := range map[string]func(*http.Request){
			"no assertion":                        func(*http.Request) {},
			"a key that is not the gateway's":     func(r *http.Request) { forged.Authorize(r, e, svc.Name) },
			"the gateway's, for another function": func(r *http.Request) { p.Signer(sender.Gateway).Authorize(r, e, "gateway") },
			"the broker's (not a client request)": func(r *http.Request) {
				if svc.Name != "audit-record" && svc.Name != "dead-letters" {
					p.Signer(sender.Broker).Authorize(r, e, svc.Name)
				}
			},
		} {
			req, _ := http.NewRequest("POST", u.String(), nil)
			cehttp.WriteRequest(context.Background(), binding.ToMessage(&e), req)
			sign(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", svc.Name, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 401 && resp.StatusCode != 403 && resp.StatusCode != 400 || strings.Contains(string(b), `"id"`) {
				t.Errorf("%s, %s: %d %s", svc.Name, name, resp.StatusCode, b)
			}
			if name == "no assertion" && resp.StatusCode != 401 {
				t.Errorf("%s without an assertion: %d, want 401", svc.Name, resp.StatusCode)
			}
		}
		checked++
	}
	if checked < 30 {
		t.Fatalf("checked only %d functions", checked)
	}
	// Nothing the direct calls sent made a vault: still exactly one.
	var count int
	pool, err := db.Open(context.Background(), p.DatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM vaults`).Scan(&count); err != nil || count != 1 {
		t.Fatalf("%d vaults (%v): a direct call got through", count, err)
	}
}

const gatewaySchema = `{"name": "payments",
 "tables": [{"name": "customers", "columns": [
   {"name": "email", "data_type": "string", "token_type": "DETERMINISTIC_UUID", "unique": true, "mask": "EMAIL", "validation": {"kind": "EMAIL"}},
   {"name": "card_number", "data_type": "string", "token_type": "DETERMINISTIC_PRESERVE_LEFT_6_RIGHT_4",
    "redaction": "MASKED", "mask": "SHOW_LAST_4", "validation": {"kind": "CARD_NUMBER"}}]}],
 "policy": {"roles": {
   "checkout": {"tables": {"customers": {"insert": true, "read": {"*": "PLAIN_TEXT"}}}, "tokenize": true, "detokenize": true}}}}`

// The journey of an application through the gateway over HTTPS: the
// administrator's API key makes a vault and a service account; the
// service account exchanges a signed assertion at the https token URI for
// an access token; with it the application stores and reads a card. A
// policy change reaches the gateway's cache as an event; a revoked API key
// stops working at once.
func TestGatewayEndToEnd(t *testing.T) {
	p := startPlatform(t, options{})
	gw := gatewayHTTPS(t, p)
	admin := p.AdminAPIKey()

	var vault struct {
		ID            string `json:"id"`
		PolicyVersion int    `json:"policy_version"`
	}
	gw.want(t, 200, "POST", "/v1/management/vaults", admin, json.RawMessage(gatewaySchema), &vault)
	var creds credentials.Credentials
	gw.want(t, 200, "POST", "/v1/serviceaccounts", admin, map[string]any{"name": "checkout", "roles": []string{"checkout"}}, &creds)
	if creds.TokenURI != gw.base+"/v1/auth/sa/oauth/token" {
		t.Fatalf("credentials.json names %q, not the gateway's https token URI %s", creds.TokenURI, gw.base)
	}
	assertion, err := credentials.SignAssertion(creds, 5*time.Minute, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var token struct {
		AccessToken string `json:"accessToken"`
	}
	gw.want(t, 200, "POST", strings.TrimPrefix(creds.TokenURI, gw.base), "", map[string]any{
		"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}, &token)

	var inserted struct {
		Records []struct {
			SkyflowID string            `json:"skyflow_id"`
			Tokens    map[string]string `json:"tokens"`
		} `json:"records"`
	}
	a := gw.want(t, 200, "POST", "/v1/vaults/"+vault.ID+"/customers", token.AccessToken, map[string]any{
		"records": []any{map[string]any{"fields": map[string]any{"email": "ada@example.com", "card_number": "4111111111111111"}}}, "tokenization": true}, &inserted)
	if a.header.Get("Cache-Control") != "no-store" || len(inserted.Records) != 1 {
		t.Fatalf("insert: %s, Cache-Control %q", a.body, a.header.Get("Cache-Control"))
	}
	var detok struct {
		Records []struct {
			Value string `json:"value"`
		} `json:"records"`
	}
	gw.want(t, 200, "POST", "/v1/vaults/"+vault.ID+"/detokenize", token.AccessToken, map[string]any{
		"detokenizationParameters": []any{map[string]any{"token": inserted.Records[0].Tokens["card_number"], "redaction": "PLAIN_TEXT"}}}, &detok)
	if len(detok.Records) != 1 || detok.Records[0].Value != "4111111111111111" {
		t.Fatalf("detokenize: %+v", detok)
	}
	// The access token is not an administrator's.
	gw.want(t, 403, "POST", "/v1/management/vaults", token.AccessToken, json.RawMessage(gatewaySchema), nil)

	// The vault read is cached per caller until the policy changes.
	path := "/v1/management/vaults/" + vault.ID
	gw.want(t, 200, "GET", path, admin, nil, nil)
	if a := gw.want(t, 200, "GET", path, admin, nil, nil); a.header.Get("X-Cache") != "hit" {
		t.Fatalf("second read: X-Cache %q", a.header.Get("X-Cache"))
	}
	policy := `{"roles": {"checkout": {"tables": {"customers": {"insert": true, "read": {"*": "MASKED"}}}}}, "version": 1}`
	gw.want(t, 200, "PUT", path+"/policy", admin, json.RawMessage(policy), nil)
	deadline := time.Now().Add(30 * time.Second)
	for {
		a := gw.want(t, 200, "GET", path, admin, nil, nil)
		var v struct {
			PolicyVersion int `json:"policy_version"`
		}
		json.Unmarshal(a.body, &v)
		if v.PolicyVersion == 2 {
			break // the policy.updated event cleared the entry
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cached vault still shows policy version %d", v.PolicyVersion)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// An API key works until it is revoked, then not at all.
	var key struct {
		ID     string `json:"id"`
		APIKey string `json:"apiKey"`
	}
	gw.want(t, 200, "POST", "/v1/apikeys", admin, map[string]any{"name": "ci", "serviceAccountID": creds.ClientID}, &key)
	gw.want(t, 200, "GET", "/v1/vaults/"+vault.ID+"/customers/"+inserted.Records[0].SkyflowID, key.APIKey, nil, nil)
	gw.want(t, 200, "DELETE", "/v1/apikeys/"+key.ID, admin, nil, nil)
	gw.want(t, 401, "GET", "/v1/vaults/"+vault.ID+"/customers/"+inserted.Records[0].SkyflowID, key.APIKey, nil, nil)
}
