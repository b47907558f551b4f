package manifest

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/robfig/cron/v3"
)

// Annotation keys of Knative Eventing and its Kafka broker that the local
// runtime honours.
const (
	BrokerClassAnnotation   = "eventing.knative.dev/broker.class"
	DeliveryOrderAnnotation = "kafka.eventing.knative.dev/delivery.order"
	InitialOffsetAnnotation = "kafka.eventing.knative.dev/initial.offset"
)

// Broker is a Knative Eventing Broker, stored in one Kafka topic.
type Broker struct {
	Meta
	Class    string
	Delivery *Delivery
}

// Topic is the Kafka topic that holds the Broker's events, named as
// Knative's Kafka broker names it so that topics are interchangeable.
func (b *Broker) Topic() string {
	return "knative-broker-" + b.Namespace + "-" + b.Name
}

// Trigger subscribes a destination to the events of a Broker that pass its filters.
type Trigger struct {
	Meta
	Broker string
	// Attributes is the legacy spec.filter.attributes: exact matches, where
	// an empty value matches any value. Ignored when Filters is set.
	Attributes map[string]string
	Filters    []Filter
	Subscriber Destination
	Delivery   *Delivery
	// Ordered delivers one event at a time per partition.
	Ordered bool
	// FromEarliest makes a new consumer group start at the topic's first
	// offset (replay); by default it starts at the end, as Knative does.
	FromEarliest bool
}

// ConsumerGroup is the Kafka consumer group of the Trigger, as Knative names it.
func (t *Trigger) ConsumerGroup() string {
	return "knative-trigger-" + t.Namespace + "-" + t.Name
}

// Filter is one Subscriptions API filter expression: exactly one dialect is set.
type Filter struct {
	Exact  map[string]string `json:"exact,omitempty"`
	Prefix map[string]string `json:"prefix,omitempty"`
	Suffix map[string]string `json:"suffix,omitempty"`
	All    []Filter          `json:"all,omitempty"`
	Any    []Filter          `json:"any,omitempty"`
	Not    *Filter           `json:"not,omitempty"`
	CESQL  string            `json:"cesql,omitempty"`
}

// Destination is an addressable: a reference to a Service or Broker, an
// absolute URI, or a reference plus a path relative to it.
type Destination struct {
	Ref *Ref   `json:"ref,omitempty"`
	URI string `json:"uri,omitempty"`
}

// Ref names a Kubernetes object.
type Ref struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Namespace  string `json:"namespace,omitempty"`
}

// Delivery is the Knative delivery spec: retries, backoff, timeout, dead letter.
type Delivery struct {
	Retry          int
	BackoffPolicy  string // "exponential" (default) or "linear"
	BackoffDelay   time.Duration
	Timeout        time.Duration
	DeadLetterSink *Destination
}

// Backoff is the wait before retry number n (1-based).
func (d *Delivery) Backoff(n int) time.Duration {
	if d.BackoffPolicy == "linear" {
		return d.BackoffDelay * time.Duration(n)
	}
	return d.BackoffDelay * time.Duration(1<<min(n-1, 30))
}

// PingSource sends an event to its sink on a cron schedule.
type PingSource struct {
	Meta
	Schedule    string
	Timezone    string
	ContentType string
	Data        string
	Sink        Destination
	// Every is the parsed schedule.
	Every cron.Schedule
}

type deliveryYAML struct {
	Retry          *int         `json:"retry"`
	BackoffPolicy  string       `json:"backoffPolicy"`
	BackoffDelay   string       `json:"backoffDelay"`
	Timeout        string       `json:"timeout"`
	DeadLetterSink *Destination `json:"deadLetterSink"`
}

type brokerYAML struct {
	Spec struct {
		Delivery *deliveryYAML `json:"delivery"`
	} `json:"spec"`
}

func (y *brokerYAML) broker(m Meta) (Broker, error) {
	d, err := y.Spec.Delivery.delivery(m.where("Broker"), "spec.delivery")
	if err != nil {
		return Broker{}, err
	}
	return Broker{Meta: m, Class: m.Annotations[BrokerClassAnnotation], Delivery: d}, nil
}

type triggerYAML struct {
	Spec struct {
		Broker string `json:"broker"`
		Filter *struct {
			Attributes map[string]string `json:"attributes"`
		} `json:"filter"`
		Filters    []Filter      `json:"filters"`
		Subscriber Destination   `json:"subscriber"`
		Delivery   *deliveryYAML `json:"delivery"`
	} `json:"spec"`
}

func (y *triggerYAML) trigger(m Meta) (Trigger, error) {
	where := m.where("Trigger")
	t := Trigger{Meta: m, Broker: y.Spec.Broker, Filters: y.Spec.Filters, Subscriber: y.Spec.Subscriber}
	if t.Broker == "" {
		return Trigger{}, fmt.Errorf("%s: spec.broker is required", where)
	}
	if y.Spec.Filter != nil {
		t.Attributes = y.Spec.Filter.Attributes
		for k := range t.Attributes {
			if !attributeName.MatchString(k) {
				return Trigger{}, fmt.Errorf("%s: spec.filter.attributes: %q is not a CloudEvents attribute name (lower-case letters and digits)", where, k)
			}
		}
	}
	for i := range t.Filters {
		if err := t.Filters[i].check(fmt.Sprintf("spec.filters[%d]", i)); err != nil {
			return Trigger{}, fmt.Errorf("%s: %w", where, err)
		}
	}
	if err := t.Subscriber.check("spec.subscriber"); err != nil {
		return Trigger{}, fmt.Errorf("%s: %w", where, err)
	}
	var err error
	if t.Delivery, err = y.Spec.Delivery.delivery(where, "spec.delivery"); err != nil {
		return Trigger{}, err
	}
	switch order := m.Annotations[DeliveryOrderAnnotation]; order {
	case "", "unordered":
	case "ordered":
		t.Ordered = true
	default:
		return Trigger{}, fmt.Errorf("%s: metadata.annotations[%s]: %q is neither ordered nor unordered", where, DeliveryOrderAnnotation, order)
	}
	switch off := m.Annotations[InitialOffsetAnnotation]; off {
	case "", "latest":
	case "earliest":
		t.FromEarliest = true
	default:
		return Trigger{}, fmt.Errorf("%s: metadata.annotations[%s]: %q is neither earliest nor latest", where, InitialOffsetAnnotation, off)
	}
	return t, nil
}

var attributeName = regexp.MustCompile(`^[a-z0-9]+$`)

func (f *Filter) check(field string) error {
	dialects := 0
	for _, set := range []bool{f.Exact != nil, f.Prefix != nil, f.Suffix != nil, f.All != nil, f.Any != nil, f.Not != nil, f.CESQL != ""} {
		if set {
			dialects++
		}
	}
	if dialects != 1 {
		return fmt.Errorf("%s: a filter sets exactly one dialect (exact, prefix, suffix, all, any, not), found %d", field, dialects)
	}
	if f.CESQL != "" {
		return fmt.Errorf("%s.cesql: the CloudEvents SQL dialect is not supported by the local platform; use exact, prefix, suffix, all, any or not", field)
	}
	for name, m := range map[string]map[string]string{"exact": f.Exact, "prefix": f.Prefix, "suffix": f.Suffix} {
		if m == nil {
			continue
		}
		if len(m) != 1 {
			return fmt.Errorf("%s.%s: names exactly one attribute, found %d", field, name, len(m))
		}
		for k, v := range m {
			if !attributeName.MatchString(k) {
				return fmt.Errorf("%s.%s: %q is not a CloudEvents attribute name", field, name, k)
			}
			if v == "" && name != "exact" {
				return fmt.Errorf("%s.%s.%s: the value is empty", field, name, k)
			}
		}
	}
	for i := range f.All {
		if err := f.All[i].check(fmt.Sprintf("%s.all[%d]", field, i)); err != nil {
			return err
		}
	}
	for i := range f.Any {
		if err := f.Any[i].check(fmt.Sprintf("%s.any[%d]", field, i)); err != nil {
			return err
		}
	}
	if f.Not != nil {
		return f.Not.check(field + ".not")
	}
	return nil
}

func (d *Destination) check(field string) error {
	switch {
	case d.Ref == nil && d.URI == "":
		return fmt.Errorf("%s: a ref or a uri is required", field)
	case d.Ref != nil && d.Ref.Kind != "Service" && d.Ref.Kind != "Broker":
		return fmt.Errorf("%s.ref.kind: %q is not a Service or a Broker", field, d.Ref.Kind)
	case d.Ref != nil && d.Ref.Name == "":
		return fmt.Errorf("%s.ref.name is required", field)
	}
	return nil
}

func (y *deliveryYAML) delivery(where, field string) (*Delivery, error) {
	if y == nil {
		return nil, nil
	}
	d := &Delivery{BackoffPolicy: y.BackoffPolicy, DeadLetterSink: y.DeadLetterSink}
	if y.Retry != nil {
		if *y.Retry < 0 {
			return nil, fmt.Errorf("%s: %s.retry: %d is negative", where, field, *y.Retry)
		}
		d.Retry = *y.Retry
	}
	switch d.BackoffPolicy {
	case "":
		d.BackoffPolicy = "exponential"
	case "exponential", "linear":
	default:
		return nil, fmt.Errorf("%s: %s.backoffPolicy: %q is neither exponential nor linear", where, field, d.BackoffPolicy)
	}
	var err error
	if d.BackoffDelay, err = isoDuration(y.BackoffDelay); err != nil {
		return nil, fmt.Errorf("%s: %s.backoffDelay: %w", where, field, err)
	}
	if d.Timeout, err = isoDuration(y.Timeout); err != nil {
		return nil, fmt.Errorf("%s: %s.timeout: %w", where, field, err)
	}
	if d.DeadLetterSink != nil {
		if err := d.DeadLetterSink.check(field + ".deadLetterSink"); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
	}
	return d, nil
}

var isoPattern = regexp.MustCompile(`^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// isoDuration parses the ISO-8601 durations Knative uses (PT0.2S, PT1M, P1D).
// Years and months are refused: their length is not fixed.
func isoDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	m := isoPattern.FindStringSubmatch(s)
	if m == nil || s == "P" || s == "PT" {
		return 0, fmt.Errorf("%q is not an ISO-8601 duration such as PT0.5S or PT1M", s)
	}
	units := []time.Duration{7 * 24 * time.Hour, 24 * time.Hour, time.Hour, time.Minute}
	var d time.Duration
	for i, u := range units {
		if m[i+1] != "" {
			n, _ := strconv.Atoi(m[i+1])
			d += time.Duration(n) * u
		}
	}
	if m[5] != "" {
		sec, _ := strconv.ParseFloat(m[5], 64)
		d += time.Duration(sec * float64(time.Second))
	}
	return d, nil
}

type pingSourceYAML struct {
	Spec struct {
		Schedule    string      `json:"schedule"`
		Timezone    string      `json:"timezone"`
		ContentType string      `json:"contentType"`
		Data        string      `json:"data"`
		Sink        Destination `json:"sink"`
	} `json:"spec"`
}

func (y *pingSourceYAML) pingSource(m Meta) (PingSource, error) {
	where := m.where("PingSource")
	p := PingSource{Meta: m, Schedule: y.Spec.Schedule, Timezone: y.Spec.Timezone,
		ContentType: y.Spec.ContentType, Data: y.Spec.Data, Sink: y.Spec.Sink}
	spec := p.Schedule
	if p.Timezone != "" {
		if _, err := time.LoadLocation(p.Timezone); err != nil {
			return PingSource{}, fmt.Errorf("%s: spec.timezone: %q is not a time zone", where, p.Timezone)
		}
		spec = "CRON_TZ=" + p.Timezone + " " + spec
	}
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return PingSource{}, fmt.Errorf("%s: spec.schedule: %q is not a cron schedule: %w", where, p.Schedule, err)
	}
	p.Every = sched
	if err := p.Sink.check("spec.sink"); err != nil {
		return PingSource{}, fmt.Errorf("%s: %w", where, err)
	}
	return p, nil
}
