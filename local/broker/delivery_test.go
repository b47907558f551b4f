package broker

import (
	"testing"
	"time"

	"github.com/skyflow-oss/skyflow/local/manifest"
)

func TestTriggerDeliveryOverridesBrokerFieldByField(t *testing.T) {
	dls := &manifest.Destination{URI: "http://dls"}
	broker := &manifest.Delivery{Retry: 5, BackoffPolicy: "exponential", BackoffDelay: time.Second, DeadLetterSink: dls}
	trigger := &manifest.Delivery{Retry: 2, BackoffPolicy: "linear", Timeout: time.Second}
	got := effectiveDelivery(trigger, broker)
	if got.Retry != 2 || got.BackoffPolicy != "linear" || got.BackoffDelay != time.Second || got.Timeout != time.Second || got.DeadLetterSink != dls {
		t.Fatalf("merged delivery = %+v", got)
	}
	def := effectiveDelivery(nil, nil)
	if def.Retry != 0 || def.Timeout != defaultTimeout || def.BackoffDelay != defaultBackoffDelay || def.DeadLetterSink != nil {
		t.Fatalf("default delivery = %+v", def)
	}
}

func TestRetryableStatusesFollowTheKnativeDataPlaneContract(t *testing.T) {
	for status, want := range map[int]bool{
		0: true, 404: true, 408: true, 409: true, 429: true, 500: true, 502: true, 503: true,
		301: false, 400: false, 401: false, 403: false, 410: false, 413: false, 422: false,
	} {
		a := attempt{status: status}
		if got := a.retryable(); got != want {
			t.Errorf("status %d: retryable = %v, want %v", status, got, want)
		}
	}
}
