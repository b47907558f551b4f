// Package metrics holds the one Prometheus registry of a process, served on
// GET /metrics (SKY-ARCH-003), with the Go runtime and process collectors.
//
// Labels carry names, types and status codes only: never request data.
package metrics

import (
	"errors"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry is the process's registry; packages register their metrics here.
var Registry = newRegistry()

func newRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Handler serves the registry in the Prometheus text format.
func Handler() http.Handler {
	return promhttp.HandlerFor(Registry, promhttp.HandlerOpts{Registry: Registry})
}

// Register registers c with r, or returns the equal collector already
// registered, so that several users in one process (publishers, caches,
// limiters, tests) share one set of series. Other errors are joined into
// *errp.
func Register[C prometheus.Collector](r prometheus.Registerer, c C, errp *error) C {
	err := r.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	*errp = errors.Join(*errp, err)
	return c
}

// BoundedLabel keeps a label's cardinality bounded when its values come from
// outside (event types sent by a caller): past max distinct values, new ones
// are counted as "other".
type BoundedLabel struct {
	mu   sync.Mutex
	max  int
	seen map[string]struct{}
}

// NewBoundedLabel allows up to limit distinct values.
func NewBoundedLabel(limit int) *BoundedLabel {
	return &BoundedLabel{max: limit, seen: map[string]struct{}{}}
}

// Value returns v, or "other" once max other values have been seen.
func (b *BoundedLabel) Value(v string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.seen[v]; ok {
		return v
	}
	if len(b.seen) >= b.max {
		return "other"
	}
	b.seen[v] = struct{}{}
	return v
}
