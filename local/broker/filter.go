package broker

import (
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/skyflow-oss/skyflow/local/manifest"
)

// matches tells whether a Trigger wants an event. The Subscriptions API
// filters, when there are any, must all pass; otherwise the legacy
// attribute filter applies, where an empty value means "present, any value".
func matches(t *manifest.Trigger, e *event.Event) bool {
	if len(t.Filters) > 0 {
		for i := range t.Filters {
			if !filterMatches(&t.Filters[i], e) {
				return false
			}
		}
		return true
	}
	for name, want := range t.Attributes {
		got, ok := attribute(e, name)
		if !ok || (want != "" && got != want) {
			return false
		}
	}
	return true
}

// filterMatches evaluates one filter expression; exactly one dialect is set
// (manifest.Load checks that, and refuses CESQL).
func filterMatches(f *manifest.Filter, e *event.Event) bool {
	switch {
	case f.Exact != nil:
		return eachAttribute(f.Exact, e, func(got, want string) bool { return got == want })
	case f.Prefix != nil:
		return eachAttribute(f.Prefix, e, strings.HasPrefix)
	case f.Suffix != nil:
		return eachAttribute(f.Suffix, e, strings.HasSuffix)
	case f.All != nil:
		for i := range f.All {
			if !filterMatches(&f.All[i], e) {
				return false
			}
		}
		return true
	case f.Any != nil:
		for i := range f.Any {
			if filterMatches(&f.Any[i], e) {
				return true
			}
		}
		return false
	case f.Not != nil:
		return !filterMatches(f.Not, e)
	}
	return false // no dialect or CESQL: nothing the local platform can evaluate
}

// eachAttribute is true when every named attribute exists and passes test.
func eachAttribute(want map[string]string, e *event.Event, test func(got, want string) bool) bool {
	for name, w := range want {
		got, ok := attribute(e, name)
		if !ok || !test(got, w) {
			return false
		}
	}
	return true
}

// attribute is the string value of a context attribute or an extension,
// and whether the event has it.
func attribute(e *event.Event, name string) (string, bool) {
	var v string
	switch strings.ToLower(name) {
	case "specversion":
		v = e.SpecVersion()
	case "id":
		v = e.ID()
	case "source":
		v = e.Source()
	case "type":
		v = e.Type()
	case "subject":
		v = e.Subject()
	case "datacontenttype":
		v = e.DataContentType()
	case "dataschema":
		v = e.DataSchema()
	case "time":
		if e.Time().IsZero() {
			return "", false
		}
		v = types.FormatTime(e.Time())
	default:
		ext, ok := e.Extensions()[strings.ToLower(name)]
		if !ok {
			return "", false
		}
		s, err := types.Format(ext)
		return s, err == nil
	}
	return v, v != ""
}
