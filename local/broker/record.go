package broker

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cloudevents/sdk-go/v2/binding/spec"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The Kafka protocol binding of CloudEvents, binary content mode, as
// Knative's Kafka broker writes it: every attribute and extension is a
// "ce_" header, datacontenttype is the "content-type" header, the data is
// the record value and the partitionkey extension is the record key.

const (
	contentTypeHeader = "content-type"
	partitionKeyExt   = "partitionkey"
)

var kafkaSpecs = spec.WithPrefix("ce_")

// toRecord encodes an event as a record of the given topic.
func toRecord(topic string, e event.Event) (*kgo.Record, error) {
	v := kafkaSpecs.Version(e.SpecVersion())
	if v == nil {
		return nil, fmt.Errorf("unsupported specversion %q", e.SpecVersion())
	}
	r := &kgo.Record{Topic: topic, Value: e.Data()}
	for _, a := range v.Attributes() {
		val := a.Get(e.Context)
		if val == nil {
			continue
		}
		s, err := types.Format(val)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", a.Name(), err)
		}
		name := a.PrefixedName()
		if a.Kind() == spec.DataContentType {
			name = contentTypeHeader
		}
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: name, Value: []byte(s)})
	}
	exts := e.Extensions()
	for _, name := range slices.Sorted(maps.Keys(exts)) {
		s, err := types.Format(exts[name])
		if err != nil {
			return nil, fmt.Errorf("extension %s: %w", name, err)
		}
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: kafkaSpecs.Prefix() + name, Value: []byte(s)})
		if name == partitionKeyExt {
			r.Key = []byte(s)
		}
	}
	return r, nil
}

// fromRecord decodes a record written by toRecord (or by Knative).
func fromRecord(r *kgo.Record) (event.Event, error) {
	var sv string
	for _, h := range r.Headers {
		if strings.EqualFold(h.Key, kafkaSpecs.PrefixedSpecVersionName()) {
			sv = string(h.Value)
		}
	}
	if sv == "" {
		return event.Event{}, errors.New("record has no ce_specversion header: not a binary-mode CloudEvent")
	}
	v := kafkaSpecs.Version(sv)
	if v == nil {
		return event.Event{}, fmt.Errorf("unsupported specversion %q", sv)
	}
	e := event.Event{Context: v.NewContext()}
	for _, h := range r.Headers {
		name := strings.ToLower(h.Key)
		switch {
		case name == contentTypeHeader:
			e.SetDataContentType(string(h.Value))
		case !strings.HasPrefix(name, kafkaSpecs.Prefix()):
			// Not part of the event (tracing headers and the like).
		case v.Attribute(name) != nil:
			if err := v.Attribute(name).Set(e.Context, string(h.Value)); err != nil {
				return event.Event{}, fmt.Errorf("header %s: %w", name, err)
			}
		default:
			if err := e.Context.SetExtension(strings.TrimPrefix(name, kafkaSpecs.Prefix()), string(h.Value)); err != nil {
				return event.Event{}, fmt.Errorf("header %s: %w", name, err)
			}
		}
	}
	if len(r.Value) > 0 {
		e.DataEncoded = r.Value
	}
	return e, nil
}
