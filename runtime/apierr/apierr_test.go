package apierr_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

func TestGoldenNotFound(t *testing.T) {
	b, err := json.Marshal(apierr.NotFound("No record with id %q.", "abc"))
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"error":{"grpc_code":5,"http_code":404,"http_status":"Not Found","message":"No record with id \"abc\".","details":[]}}`
	if string(b) != want {
		t.Errorf("envelope:\n got %s\nwant %s", b, want)
	}
}

func TestEnvelopeShape(t *testing.T) {
	e := apierr.New(http.StatusConflict, "taken")
	b, err := e.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	if len(top) != 1 || top["error"] == nil {
		t.Fatalf("top level keys = %v, want only \"error\"", keys(top))
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(top["error"], &body); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(body), []string{"details", "grpc_code", "http_code", "http_status", "message"}; !reflect.DeepEqual(got, want) {
		t.Errorf("error keys = %v, want %v", got, want)
	}
	if got := string(body["details"]); got != "[]" {
		t.Errorf("details = %s, want []", got)
	}
	if got := string(body["grpc_code"]); got != "6" {
		t.Errorf("grpc_code = %s, want 6", got)
	}
	if got := string(body["http_code"]); got != "409" {
		t.Errorf("http_code = %s, want 409", got)
	}
	if got := string(body["http_status"]); got != `"Conflict"` {
		t.Errorf("http_status = %s, want \"Conflict\"", got)
	}
	if got := string(body["message"]); got != `"taken"` {
		t.Errorf("message = %s, want \"taken\"", got)
	}
}

func TestDetailsNeverNull(t *testing.T) {
	for _, e := range []*apierr.Error{
		{HTTPCode: 400, Message: "x"},
		{HTTPCode: 400, Message: "x", Details: []any{}},
		apierr.InvalidArgument("x"),
	} {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "null") || !strings.Contains(string(b), `"details":[]`) {
			t.Errorf("%s: details must be []", b)
		}
	}
	// Details given are kept.
	b, _ := json.Marshal(&apierr.Error{HTTPCode: 400, Message: "x", Details: []any{"a", 1}})
	if !strings.Contains(string(b), `"details":["a",1]`) {
		t.Errorf("%s: details lost", b)
	}
}

func TestGRPCCode(t *testing.T) {
	for http, grpc := range map[int]int{
		400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 429: 8, 500: 13, 503: 14, 413: 3, 504: 4,
	} {
		if got := apierr.GRPCCode(http); got != grpc {
			t.Errorf("GRPCCode(%d) = %d, want %d", http, got, grpc)
		}
	}
}

func TestConstructors(t *testing.T) {
	for _, c := range []struct {
		e        *apierr.Error
		httpCode int
		grpc     int
	}{
		{apierr.InvalidArgument("m %d", 1), 400, 3},
		{apierr.Unauthenticated("m %d", 1), 401, 16},
		{apierr.PermissionDenied("m %d", 1), 403, 7},
		{apierr.NotFound("m %d", 1), 404, 5},
		{apierr.AlreadyExists("m %d", 1), 409, 6},
		{apierr.ResourceExhausted("m %d", 1), 429, 8},
		{apierr.Internal("m %d", 1), 500, 13},
		{apierr.Unavailable("m %d", 1), 503, 14},
	} {
		if c.e.HTTPCode != c.httpCode || c.e.StatusCode() != c.httpCode || c.e.Message != "m 1" {
			t.Errorf("got %+v, want HTTP %d message %q", c.e, c.httpCode, "m 1")
		}
		var body struct {
			Error struct {
				GRPCCode int `json:"grpc_code"`
			} `json:"error"`
		}
		b, _ := json.Marshal(c.e)
		if err := json.Unmarshal(b, &body); err != nil || body.Error.GRPCCode != c.grpc {
			t.Errorf("%s: grpc_code want %d", b, c.grpc)
		}
		if want := fmt.Sprintf("%d %s: m 1", c.httpCode, http.StatusText(c.httpCode)); c.e.Error() != want {
			t.Errorf("Error() = %q, want %q", c.e.Error(), want)
		}
	}
}

func TestParseRoundTrip(t *testing.T) {
	orig := &apierr.Error{HTTPCode: 429, Message: "Slow down.", Details: []any{"retry", 2.0}}
	b, err := json.Marshal(orig)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := apierr.Parse(b)
	if !ok {
		t.Fatalf("Parse(%s) not ok", b)
	}
	if !reflect.DeepEqual(got, orig) {
		t.Errorf("Parse = %+v, want %+v", got, orig)
	}
	b2, _ := json.Marshal(got)
	if string(b2) != string(b) {
		t.Errorf("re-marshal = %s, want %s", b2, b)
	}
}

func TestParseRejects(t *testing.T) {
	for _, s := range []string{
		``,
		`not json`,
		`null`,
		`{}`,
		`[]`,
		`{"message":"x","http_code":404}`,
		`{"error":"boom"}`,
		`{"error":{}}`,
		`{"error":{"message":"x"}}`,
		`{"error":{"http_code":"404"}}`,
	} {
		if e, ok := apierr.Parse([]byte(s)); ok || e != nil {
			t.Errorf("Parse(%q) = %v, %v; want nil, false", s, e, ok)
		}
	}
}

func TestFromWrapped(t *testing.T) {
	orig := apierr.NotFound("gone")
	err := fmt.Errorf("layer 2: %w", fmt.Errorf("layer 1: %w", orig))
	if got := apierr.From(err); got != orig {
		t.Errorf("From = %v, want the wrapped %v", got, orig)
	}
	if got := apierr.From(orig); got != orig {
		t.Errorf("From(e) = %v, want e", got)
	}
}

func TestFromOtherIsGenericInternal(t *testing.T) {
	const secret = "password=hunter2 at db.internal:5432"
	got := apierr.From(errors.New("dial tcp: " + secret))
	if got == nil {
		t.Fatal("From returned nil")
	}
	if got.HTTPCode != http.StatusInternalServerError {
		t.Errorf("HTTPCode = %d, want 500", got.HTTPCode)
	}
	if got.Message == "" {
		t.Error("empty message")
	}
	b, _ := json.Marshal(got)
	for _, s := range []string{got.Message, got.Error(), string(b)} {
		if strings.Contains(s, "hunter2") || strings.Contains(s, "db.internal") || strings.Contains(s, "dial tcp") {
			t.Errorf("generic error leaks the original: %q", s)
		}
	}
}

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	e := apierr.NotFound("No record with id %q.", "abc")
	apierr.Write(rec, e)
	res := rec.Result()
	if res.StatusCode != 404 {
		t.Errorf("status = %d, want 404", res.StatusCode)
	}
	if got := res.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q", got)
	}
	const want = `{"error":{"grpc_code":5,"http_code":404,"http_status":"Not Found","message":"No record with id \"abc\".","details":[]}}`
	if got := rec.Body.String(); got != want {
		t.Errorf("body:\n got %s\nwant %s", got, want)
	}
	parsed, ok := apierr.Parse(rec.Body.Bytes())
	if !ok || parsed.HTTPCode != 404 || parsed.Message != e.Message {
		t.Errorf("Parse(body) = %+v, %v", parsed, ok)
	}
}

func keys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
