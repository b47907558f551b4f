package render

import (
	"slices"
	"strconv"
	"strings"

	"github.com/skyflow-oss/skyflow/internal/funcyaml"
)

// The Trigger as rendered.

type trigger struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   objectMeta  `json:"metadata"`
	Spec       triggerSpec `json:"spec"`
}

type triggerSpec struct {
	Broker     string      `json:"broker"`
	Filters    []filter    `json:"filters,omitempty"`
	Subscriber destination `json:"subscriber"`
	Delivery   *delivery   `json:"delivery,omitempty"`
}

// filter is one expression of the Subscriptions API filters.
type filter struct {
	Exact  map[string]string `json:"exact,omitempty"`
	Prefix map[string]string `json:"prefix,omitempty"`
}

type destination struct {
	Ref ref `json:"ref"`
}

type ref struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
}

type delivery struct {
	Retry          *int         `json:"retry,omitempty"`
	BackoffPolicy  string       `json:"backoffPolicy,omitempty"`
	BackoffDelay   string       `json:"backoffDelay,omitempty"`
	Timeout        string       `json:"timeout,omitempty"`
	DeadLetterSink *destination `json:"deadLetterSink,omitempty"`
}

func serviceRef(name string) destination {
	return destination{Ref: ref{APIVersion: "serving.knative.dev/v1", Kind: "Service", Name: name}}
}

func (fn *function) trigger(name string, sub funcyaml.Subscription) *trigger {
	ann := fn.merged.Deploy.Annotations
	t := &trigger{
		APIVersion: "eventing.knative.dev/v1",
		Kind:       "Trigger",
		Metadata: objectMeta{
			Name:   name,
			Labels: map[string]string{nameLabel: fn.merged.Name, partOfLabel: partOf},
		},
		Spec: triggerSpec{Broker: sub.Source, Subscriber: serviceRef(fn.merged.Name)},
	}
	if order := ann[funcyaml.DeliveryOrderAnnotation]; order != "" {
		t.Metadata.Annotations = map[string]string{DeliveryOrderAnnotation: order}
	}
	// One expression per attribute, by attribute name; a value ending in
	// '*' matches by prefix.
	attrs := make([]string, 0, len(sub.Filters))
	for a := range sub.Filters {
		attrs = append(attrs, a)
	}
	slices.Sort(attrs)
	for _, a := range attrs {
		v := sub.Filters[a]
		if p, ok := strings.CutSuffix(v, "*"); ok {
			t.Spec.Filters = append(t.Spec.Filters, filter{Prefix: map[string]string{a: p}})
		} else {
			t.Spec.Filters = append(t.Spec.Filters, filter{Exact: map[string]string{a: v}})
		}
	}
	d := &delivery{
		BackoffPolicy: ann[funcyaml.DeliveryBackoffPolicyAnnotation],
		BackoffDelay:  ann[funcyaml.DeliveryBackoffDelayAnnotation],
		Timeout:       ann[funcyaml.DeliveryTimeoutAnnotation],
	}
	if v := ann[funcyaml.DeliveryRetryAnnotation]; v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			d.Retry = &n
		}
	}
	if d.BackoffPolicy == "" && d.BackoffDelay != "" {
		d.BackoffPolicy = "exponential"
	}
	if dls := deadLetterSink(ann); dls != funcyaml.NoDeadLetterSink {
		sink := serviceRef(dls)
		d.DeadLetterSink = &sink
	}
	if *d != (delivery{}) {
		t.Spec.Delivery = d
	}
	return t
}
