package tests

// Helpers of the vault API golden tests (vault_api_test.go): a client that
// calls a function exactly as the gateway will (runtime/request), a
// normalizer that turns volatile values into named placeholders, and the
// golden files under testdata/golden/vault_api.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"

	"github.com/skyflow-oss/skyflow/eventing/catalog"
	"github.com/skyflow-oss/skyflow/runtime/sender"
)

// updateGolden rewrites the golden files from what the functions answer.
// Review every changed file against API.md before committing it.
var updateGolden = flag.Bool("update-golden", false, "rewrite tests/testdata/golden/vault_api from the functions' answers")

// gatewaySource is the source of the events the gateway sends.
const gatewaySource = "/skyflow/functions/gateway"

// apiOp is one operation: the function that carries it out and the event
// type it accepts (RequestType in the function's function.go).
type apiOp struct {
	fn, typ string
}

// The operations, as the gateway will route them.
var (
	opInsert       = apiOp{"records-insert", "com.skyflow.vault.records.insert"}
	opBatch        = apiOp{"records-batch", "com.skyflow.vault.records.batch"}
	opGet          = apiOp{"records-get", "com.skyflow.vault.records.get"}
	opGetOne       = apiOp{"records-get-one", "com.skyflow.vault.record.get"}
	opUpdate       = apiOp{"records-update", "com.skyflow.vault.record.update"}
	opDelete       = apiOp{"records-delete", "com.skyflow.vault.record.delete"}
	opDeleteMany   = apiOp{"records-delete-many", "com.skyflow.vault.records.delete"}
	opQuery        = apiOp{"records-query", "com.skyflow.vault.records.query"}
	opDetokenize   = apiOp{"tokens-detokenize", "com.skyflow.vault.tokens.detokenize"}
	opTokenize     = apiOp{"tokens-tokenize", "com.skyflow.vault.tokens.tokenize"}
	opVaultCreate  = apiOp{"vaults-create", "com.skyflow.vault.create"}
	opVaultGet     = apiOp{"vaults-get", "com.skyflow.vault.get"}
	opSchemaUpdate = apiOp{"vaults-schema-update", "com.skyflow.vault.schema.update"}
	opPolicyUpdate = apiOp{"vaults-policy-update", "com.skyflow.vault.policy.update"}

	allOps = []apiOp{opInsert, opBatch, opGet, opGetOne, opUpdate, opDelete, opDeleteMany, opQuery,
		opDetokenize, opTokenize, opVaultCreate, opVaultGet, opSchemaUpdate, opPolicyUpdate}
)

// ext are the CloudEvent extensions of a request: principal, roles,
// query, vaultid, table, skyflowid (runtime/request).
type ext map[string]string

// with returns a copy of x with more extensions, given as name, value pairs.
func (x ext) with(kv ...string) ext {
	out := ext{}
	for k, v := range x {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// rawBody is a request body sent as is, even when it is not JSON.
type rawBody string

// vaultClient calls the vault functions of a platform as the gateway will,
// checks every answer's form, and remembers every error body so that a
// test can check that none echoes a sensitive value.
type vaultClient struct {
	urls   map[string]string // function name → URL
	signer *sender.Signer    // the gateway's: each request is signed as the gateway signs it

	mu     sync.Mutex
	errors []string // every error body answered
	names  []naming // volatile value → placeholder, in registration order
	byVal  map[string]string
	used   map[string]bool // golden files compared or written
}

type naming struct{ value, placeholder string }

func newVaultClient(t *testing.T, p *testPlatform) *vaultClient {
	t.Helper()
	c := &vaultClient{urls: map[string]string{}, signer: p.Signer(sender.Gateway), byVal: map[string]string{}, used: map[string]bool{}}
	for _, s := range p.Status() {
		c.urls[s.Name] = s.URL.String()
	}
	for _, op := range allOps {
		if c.urls[op.fn] == "" {
			t.Fatalf("no %s function on the platform", op.fn)
		}
	}
	return c
}

// call sends one request as the gateway will: a binary-mode CloudEvent of
// the operation's type, a fresh uuid as id, the gateway as source, the
// extensions x and body as data (JSON-encoded unless it is a rawBody; no
// data when nil). It returns the HTTP status and the response body (the
// reply event's data, or the error envelope), and the reply event.
//
// Every reply is checked: 200 with a binary-mode reply of type
// <type>.response, the request's id, and valid against its catalog schema.
// Every error is checked: the full Skyflow envelope, its grpc_code the one
// API.md pairs with the HTTP status.
func (c *vaultClient) call(t *testing.T, op apiOp, x ext, body any) (int, json.RawMessage, *event.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := event.New()
	e.SetID(uuid.NewString())
	e.SetSource(gatewaySource)
	e.SetType(op.typ)
	for k, v := range x {
		e.SetExtension(k, v)
	}
	switch b := body.(type) {
	case nil:
	case rawBody:
		e.SetDataContentType(event.ApplicationJSON)
		e.DataEncoded = []byte(b)
	default:
		if err := e.SetData(event.ApplicationJSON, b); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.urls[op.fn], nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(&e), req); err != nil {
		t.Fatal(err)
	}
	if err := c.signer.Authorize(req, e, op.fn); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", op.fn, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		c.mu.Lock()
		c.errors = append(c.errors, string(b))
		c.mu.Unlock()
		checkEnvelope(t, op, resp, b)
		if id := resp.Header.Get("X-Request-Id"); id != e.ID() {
			t.Errorf("%s: error X-Request-Id %q, want the request's id %q", op.fn, id, e.ID())
		}
		return resp.StatusCode, b, nil
	}
	reply, err := binding.ToEvent(ctx, cehttp.NewMessageFromHttpResponse(resp))
	if err != nil {
		t.Fatalf("%s answered 200 without a reply event: %v", op.fn, err)
	}
	if reply.Type() != op.typ+".response" || reply.ID() != e.ID() {
		t.Errorf("%s replied type %q id %q, want %q and the request's id %q", op.fn, reply.Type(), reply.ID(), op.typ+".response", e.ID())
	}
	if ct := reply.DataContentType(); ct != event.ApplicationJSON {
		t.Errorf("%s replied with data content type %q", op.fn, ct)
	}
	if err := catalog.Validate(*reply); err != nil {
		t.Errorf("%s: the reply does not match the catalog: %v\n%s", op.fn, err, reply.Data())
	}
	if !json.Valid(reply.Data()) {
		t.Fatalf("%s replied data that is not JSON: %q", op.fn, reply.Data())
	}
	return resp.StatusCode, json.RawMessage(reply.Data()), reply
}

// grpcFor is API.md's pairing of HTTP statuses with gRPC codes.
var grpcFor = map[int]int{400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 429: 8, 500: 13, 503: 14}

// checkEnvelope checks an error answer: JSON, exactly the envelope's
// fields, the status in http_code, the matching grpc_code and status text,
// a non-empty message and details [].
func checkEnvelope(t *testing.T, op apiOp, resp *http.Response, b []byte) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: error content type %q", op.fn, ct)
	}
	var env map[string]map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&env); err != nil || len(env) != 1 || env["error"] == nil {
		t.Errorf("%s answered %d with a body that is not the error envelope: %s", op.fn, resp.StatusCode, b)
		return
	}
	inner := env["error"]
	var keys []string
	for k := range inner {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if strings.Join(keys, ",") != "details,grpc_code,http_code,http_status,message" {
		t.Errorf("%s: envelope fields %v", op.fn, keys)
	}
	var e struct {
		Error struct {
			GRPCCode   int    `json:"grpc_code"`
			HTTPCode   int    `json:"http_code"`
			HTTPStatus string `json:"http_status"`
			Message    string `json:"message"`
		} `json:"error"`
	}
	if string(inner["details"]) != "[]" {
		t.Errorf("%s: details %s, want []", op.fn, inner["details"])
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Errorf("%s: envelope %s: %v", op.fn, b, err)
	}
	if want, ok := grpcFor[resp.StatusCode]; !ok || e.Error.GRPCCode != want || e.Error.HTTPCode != resp.StatusCode ||
		e.Error.HTTPStatus != http.StatusText(resp.StatusCode) || e.Error.Message == "" {
		t.Errorf("%s: status %d with envelope %s", op.fn, resp.StatusCode, b)
	}
}

// errorBodies is every error body answered so far.
func (c *vaultClient) errorBodies() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errors...)
}

// name makes the normalizer show value as placeholder. A value named
// already keeps its first name: two names for one token would hide that
// they are the same.
func (c *vaultClient) name(value, placeholder string) {
	if value == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byVal[value]; ok {
		return
	}
	c.byVal[value] = placeholder
	c.names = append(c.names, naming{value, placeholder})
}

// nameRecord names the skyflow id and tokens of an inserted or updated
// record: <id:label> and <token:label.column>.
func (c *vaultClient) nameRecord(label, skyflowID string, tokens map[string]string) {
	c.name(skyflowID, "<id:"+label+">")
	cols := make([]string, 0, len(tokens))
	for col := range tokens {
		cols = append(cols, col)
	}
	sort.Strings(cols)
	for _, col := range cols {
		c.name(tokens[col], "<token:"+label+"."+col+">")
	}
}

var (
	uuidRE  = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	hex32RE = regexp.MustCompile(`\b[0-9a-f]{32}\b`)
)

// volatileKeys are members whose values change from run to run.
var volatileKeys = map[string]string{"created_at": "<time>", "updated_at": "<time>"}

// normalize decodes a JSON body and replaces volatile values: named
// values by their placeholders (also inside longer strings), any other
// UUID by <uuid> and 32-hex-digit id by <hex32>, and timestamps of
// volatileKeys by <time>. Numbers stay exactly as sent.
func (c *vaultClient) normalize(t *testing.T, body []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, body)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.walk(v, "")
}

func (c *vaultClient) walk(v any, key string) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, val := range x {
			out[k] = c.walk(val, k)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = c.walk(val, key)
		}
		return out
	case string:
		if p, ok := volatileKeys[key]; ok {
			return p
		}
		if p, ok := c.byVal[x]; ok {
			return p
		}
		for _, n := range c.names {
			if len(n.value) >= 12 {
				x = strings.ReplaceAll(x, n.value, n.placeholder)
			}
		}
		x = uuidRE.ReplaceAllString(x, "<uuid>")
		return hex32RE.ReplaceAllString(x, "<hex32>")
	}
	return v
}

// golden compares an answer, normalized, with testdata/golden/vault_api/<name>.json,
// or writes the file with -update-golden.
func (c *vaultClient) golden(t *testing.T, name string, status int, body []byte) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // placeholders are <…>
	enc.SetIndent("", "  ")
	if err := enc.Encode(map[string]any{"status": status, "body": c.normalize(t, body)}); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	file := filepath.Join(goldenDir, name+".json")
	c.mu.Lock()
	if c.used[name] {
		t.Errorf("golden %s is used twice", name)
	}
	c.used[name] = true
	c.mu.Unlock()
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("golden %s: %v (run with -update-golden to write it, then review it against API.md)", file, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: the answer differs from the golden file\n--- got\n%s--- want\n%s", name, got, want)
	}
}

// goldenDir holds the golden files.
var goldenDir = filepath.Join("testdata", "golden", "vault_api")

// checkGoldenFiles reports golden files that no call compared (a renamed
// or dropped case leaves one behind), or removes them with -update-golden.
// It checks nothing after a failure: a failed step skips the goldens after it.
func (c *vaultClient) checkGoldenFiles(t *testing.T) {
	entries, err := os.ReadDir(goldenDir)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".json")
		if c.used[name] {
			continue
		}
		if *updateGolden {
			os.Remove(filepath.Join(goldenDir, e.Name()))
			continue
		}
		t.Errorf("golden file %s is not used by any call", e.Name())
	}
}

// expect calls and checks the status, then compares the body with its
// golden file; it returns the body.
func (c *vaultClient) expect(t *testing.T, golden string, status int, op apiOp, x ext, body any) json.RawMessage {
	t.Helper()
	got, b, _ := c.call(t, op, x, body)
	if got != status {
		t.Errorf("%s: status %d, want %d: %s", golden, got, status, b)
	}
	c.golden(t, golden, got, b)
	return b
}

// decode unmarshals a body or fails the test.
func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return v
}

// envelopeMessage is an error body's message.
func envelopeMessage(t *testing.T, b []byte) string {
	t.Helper()
	return decode[struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}](t, b).Error.Message
}

// queryOf builds a raw query string from name, value pairs (names may
// repeat), as a client would send it.
func queryOf(kv ...string) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, urlEscape(kv[i])+"="+urlEscape(kv[i+1]))
	}
	return strings.Join(parts, "&")
}

func urlEscape(s string) string {
	var b strings.Builder
	for _, r := range []byte(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.', r == '~':
			b.WriteByte(r)
		default:
			fmt.Fprintf(&b, "%%%02X", r)
		}
	}
	return b.String()
}

// luhn reports whether a digit string passes the Luhn check.
func luhn(s string) bool {
	sum, double := 0, false
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}
