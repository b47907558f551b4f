package broker

import (
	"bytes"
	"maps"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestRecordUsesKnativeBinaryContentMode(t *testing.T) {
	e := event.New()
	e.SetID("42")
	e.SetSource("/vault")
	e.SetType("com.skyflow.vault.record.created")
	e.SetSubject("rec-1")
	e.SetTime(time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC))
	e.SetExtension("partitionkey", "tenant-7")
	e.SetExtension("traceparent", "00-abc-def-01")
	if err := e.SetData("application/json", []byte(`{"token":"tok_1"}`)); err != nil {
		t.Fatal(err)
	}

	r, err := toRecord("knative-broker-skyflow-default", e)
	if err != nil {
		t.Fatal(err)
	}
	headers := map[string]string{}
	for _, h := range r.Headers {
		headers[h.Key] = string(h.Value)
	}
	want := map[string]string{
		"ce_specversion":  "1.0",
		"ce_id":           "42",
		"ce_source":       "/vault",
		"ce_type":         "com.skyflow.vault.record.created",
		"ce_subject":      "rec-1",
		"ce_time":         "2026-01-02T03:04:05.0000006Z",
		"ce_partitionkey": "tenant-7",
		"ce_traceparent":  "00-abc-def-01",
		"content-type":    "application/json",
	}
	if !maps.Equal(headers, want) {
		t.Errorf("headers = %v\nwant      %v", headers, want)
	}
	if string(r.Key) != "tenant-7" {
		t.Errorf("key = %q, want the partitionkey extension", r.Key)
	}
	if string(r.Value) != `{"token":"tok_1"}` {
		t.Errorf("value = %q, want the data", r.Value)
	}

	back, err := fromRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	assertSameEvent(t, e, back)
}

func TestRecordWithoutPartitionKeyOrDataHasNoKeyNorValue(t *testing.T) {
	e := event.New()
	e.SetID("1")
	e.SetSource("/s")
	e.SetType("t")
	r, err := toRecord("topic", e)
	if err != nil {
		t.Fatal(err)
	}
	if r.Key != nil || r.Value != nil {
		t.Fatalf("key %q value %q, want none", r.Key, r.Value)
	}
	back, err := fromRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	assertSameEvent(t, e, back)
}

func TestRecordWithoutSpecversionIsNotAnEvent(t *testing.T) {
	_, err := fromRecord(&kgo.Record{Headers: []kgo.RecordHeader{{Key: "ce_id", Value: []byte("1")}}, Value: []byte("x")})
	if err == nil {
		t.Fatal("a record without ce_specversion was read as an event")
	}
}

func FuzzRecordRoundTrip(f *testing.F) {
	f.Add("1", "/vault", "com.skyflow.vault.record.created", "", "", "", "", int64(0), []byte(nil))
	f.Add("id-2", "https://x/y", "t", "subj", "key", "v", "text/plain", int64(1767225600123456789), []byte("hello"))
	f.Add("3", "urn:a", "t", "", "", "ünïcode", "application/json", int64(-1), []byte(`{"a":1}`))
	f.Fuzz(func(t *testing.T, id, source, typ, subject, key, ext, contentType string, nanos int64, data []byte) {
		e := event.New()
		e.SetID(id)
		e.SetSource(source)
		e.SetType(typ)
		e.SetSubject(subject)
		if nanos != 0 {
			e.SetTime(time.Unix(0, nanos))
		}
		if key != "" {
			e.SetExtension("partitionkey", key)
		}
		if ext != "" {
			e.SetExtension("myext", ext)
		}
		if len(data) > 0 || contentType != "" {
			if err := e.SetData(contentType, data); err != nil {
				return
			}
		}
		if e.Validate() != nil {
			return // only valid events reach the topic
		}
		r, err := toRecord("topic", e)
		if err != nil {
			t.Fatalf("valid event not encoded: %v", err)
		}
		if string(r.Key) != key {
			t.Fatalf("key = %q, want %q", r.Key, key)
		}
		back, err := fromRecord(r)
		if err != nil {
			t.Fatalf("record not decoded: %v", err)
		}
		assertSameEvent(t, e, back)
	})
}

// assertSameEvent compares what the Kafka binding carries: attributes,
// extensions as strings, and data bytes.
func assertSameEvent(t *testing.T, want, got event.Event) {
	t.Helper()
	if got.SpecVersion() != want.SpecVersion() || got.ID() != want.ID() || got.Source() != want.Source() ||
		got.Type() != want.Type() || got.Subject() != want.Subject() || got.DataSchema() != want.DataSchema() ||
		got.DataContentType() != want.DataContentType() || !got.Time().Equal(want.Time()) {
		t.Fatalf("attributes differ:\n got %s\nwant %s", got.Context, want.Context)
	}
	wantExt := map[string]string{}
	for k, v := range want.Extensions() {
		wantExt[k], _ = types.Format(v)
	}
	gotExt := map[string]string{}
	for k, v := range got.Extensions() {
		gotExt[k], _ = types.Format(v)
	}
	if !maps.Equal(gotExt, wantExt) {
		t.Fatalf("extensions = %v, want %v", gotExt, wantExt)
	}
	if !bytes.Equal(got.Data(), want.Data()) {
		t.Fatalf("data = %q, want %q", got.Data(), want.Data())
	}
}
