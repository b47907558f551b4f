package edge

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyflow-oss/skyflow/functions/gateway/edge/ratelimit"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// RateLimits applies each route class's limit (SKYFLOW_RATE_LIMITS) to a
// subject: a principal, or the client's address on anonymous routes.
type RateLimits struct {
	limiter *ratelimit.Limiter
	limits  map[string]ratelimit.Limit // by class
	refused *prometheus.CounterVec     // by class
}

// NewRateLimits limits with limiter, counting each refusal in refused
// (labelled by class).
func NewRateLimits(limiter *ratelimit.Limiter, limits map[string]ratelimit.Limit, refused *prometheus.CounterVec) *RateLimits {
	return &RateLimits{limiter: limiter, limits: limits, refused: refused}
}

// Allow applies class's limit to subject and sets the rate-limit headers.
func (l *RateLimits) Allow(ctx context.Context, w http.ResponseWriter, class, subject string) bool {
	d := l.limiter.Allow(ctx, class, subject, l.limits[class])
	d.SetHeaders(w.Header())
	if !d.Allowed {
		l.refused.WithLabelValues(class).Inc()
	}
	return d.Allowed
}

// TooMany answers a request over its rate limit (Allow set the headers).
func TooMany(w http.ResponseWriter) {
	apierr.Write(w, apierr.ResourceExhausted("too many requests: retry after %s seconds", w.Header().Get("Retry-After")))
}
