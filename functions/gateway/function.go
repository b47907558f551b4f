// Package main is the gateway: the only public function. For each request
// it finds the route (routes.yaml), authenticates the bearer credential,
// authorizes the route, rate-limits, answers from the response cache when
// it can, and otherwise turns the request into a binary-mode CloudEvent,
// signs it for the route's function (runtime/sender) and POSTs it there;
// the reply event becomes the HTTP response. Errors are the API's envelope
// and every response carries X-Request-Id.
//
// It also takes CloudEvents at POST / (trigger deliveries, verified by the
// host like any function's): the events that change a cached answer.
//
// It serves plain HTTP only: TLS ends in front of it, at Kourier in a
// cluster and at the local platform's front in development.
//
// This package is the wiring (settings, the pipeline, metrics); each step
// has its folder:
//
//	routes/          the route table, its matching, the OpenAPI document
//	edge/            authentication, the deny list, roles, CORS, the client's address
//	edge/ratelimit/  the rate limiter (Redis, in-process when Redis is down)
//	cache/           the response cache (Redis) and the events that make it stale
//	upstream/        the request as a signed CloudEvent to its function, and the reply
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/domain/identity/signing"
	"github.com/skyflow-oss/skyflow/functions/gateway/cache"
	"github.com/skyflow-oss/skyflow/functions/gateway/edge"
	"github.com/skyflow-oss/skyflow/functions/gateway/edge/ratelimit"
	"github.com/skyflow-oss/skyflow/functions/gateway/routes"
	"github.com/skyflow-oss/skyflow/functions/gateway/upstream"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/config"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/host"
	"github.com/skyflow-oss/skyflow/runtime/metrics"
	"github.com/skyflow-oss/skyflow/runtime/request"
	"github.com/skyflow-oss/skyflow/runtime/sender"
)

// Function is the gateway.
type Function struct {
	settings Settings
	routes   *routes.Router
	openapi  []byte
	cors     edge.CORS
	auth     *edge.Authenticator
	limits   *edge.RateLimits
	cache    *cache.Cache
	upstream *upstream.Forwarder
	pool     *pgxpool.Pool
	redis    *redis.Client
	metrics  *gatewayMetrics
}

// The host finds these methods by type assertion (runtime/host): one
// misspelt would compile and silently never run. The gateway has no
// Ready method on purpose (see Stop).
var (
	_ host.HTTPHandler   = (*Function)(nil)
	_ host.EventReceiver = (*Function)(nil)
	_ host.Starter       = (*Function)(nil)
	_ host.Stopper       = (*Function)(nil)
)

// New is called once per process.
func New() *Function { return &Function{} }

// Start reads the settings and connects; it does no I/O that could fail
// on a cold start besides opening pools lazily.
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	env := config.FromMap(cfg)
	s, err := LoadSettings(env)
	if err != nil {
		return err
	}
	tables := [][]byte{routes.Builtin}
	if s.ExtraRoutesFile != "" {
		extra, err := os.ReadFile(s.ExtraRoutesFile)
		if err != nil {
			return fmt.Errorf("configuration: SKYFLOW_EXTRA_ROUTES: %w", err)
		}
		tables = append(tables, extra)
	}
	table, err := routes.Load(tables...)
	if err != nil {
		return err
	}
	f.settings, f.routes, f.openapi = s, routes.NewRouter(table), routes.OpenAPI(table)
	signer, err := sender.ParseSigner(sender.Gateway, s.SenderKey)
	if err != nil {
		return fmt.Errorf("configuration: SKYFLOW_SENDER_KEY: %w", err)
	}
	opts, err := redis.ParseURL(s.RedisURL)
	if err != nil {
		return errors.New("configuration: REDIS_URL: is not a Redis URL (redis://host:port/db)")
	}
	f.redis = redis.NewClient(opts)
	if f.pool, err = db.Open(ctx, s.DatabaseURL); err != nil {
		return err
	}
	f.metrics = newGatewayMetrics(metrics.Registry)
	f.upstream = upstream.NewForwarder(signer, s.FunctionURL, s.UpstreamTimeout)
	f.cors = edge.CORS{Origins: s.CORSOrigins}
	keys := &identity.Backend{Pool: f.pool, Redis: f.redis, Settings: identity.Settings{RedisPrefix: s.RedisPrefix}}
	tokens := signing.NewRemote(f.upstream.FetchJWKS, s.TokenIssuer, s.TokenAudience, signing.RemoteOptions{})
	f.auth = edge.NewAuthenticator(tokens, keys)
	limiter := ratelimit.New(f.redis, s.RedisPrefix+"gw:", ratelimit.Options{Metrics: metrics.Registry})
	f.limits = edge.NewRateLimits(limiter, s.Limits, f.metrics.rateLimited)
	f.cache = cache.New(f.redis, s.RedisPrefix+"gw:", cache.Options{Metrics: metrics.Registry})
	return nil
}

// The gateway has no Ready method: it stays in the load balancer when
// Redis or PostgreSQL is down, and each request degrades as documented
// (rate limits per replica, cache misses, access tokens refused with 503
// while the deny list cannot be read, API keys refused while PostgreSQL is
// down), rather than every request failing at the ingress.

// Stop closes the connections.
func (f *Function) Stop(ctx context.Context) error {
	if f.pool != nil {
		f.pool.Close()
	}
	if f.redis != nil {
		f.redis.Close()
	}
	return nil
}

// Handle serves one client request.
func (f *Function) Handle(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := uuid.NewString()
	// The client's trace continues through the gateway to the function.
	ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := otel.Tracer("skyflow/gateway").Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	r = r.WithContext(context.WithValue(ctx, requestIDKey{}, id))
	w.Header().Set("X-Request-Id", id)
	rw := &statusWriter{ResponseWriter: w}
	route, params := f.routes.Match(r)
	f.cors.Headers(rw, r)
	switch {
	case edge.IsPreflight(r):
		f.cors.Preflight(rw, r)
	case route == nil:
		// The path is not echoed: a client may have put a value in it by mistake.
		fail(rw, apierr.NotFound("no route matches this method and path: see /openapi.json for the API"))
	default:
		span.SetName(route.Name())
		f.serve(rw, r, route, params)
	}
	name := "unmatched"
	if route != nil {
		name = route.Name()
	}
	f.metrics.observe(name, rw.status, start)
}

type requestIDKey struct{}

// serve runs the pipeline for a matched route.
func (f *Function) serve(w *statusWriter, r *http.Request, route *routes.Route, params map[string]string) {
	ctx := r.Context()
	client := edge.ClientAddr(r, f.settings.TrustedProxies)
	var p request.Principal
	if route.Anonymous() {
		if !f.limits.Allow(ctx, w, route.Class, "addr:"+client) {
			edge.TooMany(w)
			return
		}
	} else {
		c, err := f.auth.Authenticate(ctx, r, route)
		if err != nil {
			fail(w, apierr.From(err))
			return
		}
		// The deny list and the rate limit are two Redis round trips:
		// made at the same time.
		denied := make(chan error, 1)
		go func() { denied <- f.auth.CheckDenied(ctx, c) }()
		allowed := f.limits.Allow(ctx, w, route.Class, c.ID)
		err = <-denied
		if errors.Is(err, edge.ErrStaleKey) {
			// The cache entry is gone: this asks PostgreSQL.
			c, err = f.auth.Authenticate(ctx, r, route)
		}
		if err != nil {
			w.Header().Del("Retry-After")
			fail(w, apierr.From(err))
			return
		}
		if !allowed {
			edge.TooMany(w)
			return
		}
		p = c.Principal
	}
	var key string
	if route.Cache == nil {
		w.Header().Set("Cache-Control", "no-store")
	} else {
		key = cache.RequestKey(r, route, params, p)
		if f.cache.Answer(w, r, route, key) {
			return
		}
	}
	res := f.answer(r, route, params, p, client)
	if route.Cache != nil && res.Status == http.StatusOK {
		f.cache.Keep(ctx, w, r, route, params, key, res)
	}
	res.Write(w)
}

// answer is the route's answer: the gateway's own (OpenAPI), or the
// function's reply to the request as an event.
func (f *Function) answer(r *http.Request, route *routes.Route, params map[string]string, p request.Principal, client string) *upstream.Reply {
	if route.Function == "" {
		return &upstream.Reply{Status: http.StatusOK, ContentType: "application/json", Body: f.openapi}
	}
	body, err := upstream.ReadBody(r, f.settings.MaxBodyBytes)
	if err != nil {
		return upstream.ErrorReply(apierr.From(err), "")
	}
	ctx := r.Context()
	e := upstream.NewEvent(ctx.Value(requestIDKey{}).(string), r, route, params, p, client, body)
	res := f.upstream.Forward(ctx, route.Function, e)
	if res.Failure != "" {
		f.metrics.upstreamErrors.WithLabelValues(route.Function, res.Failure).Inc()
	}
	return res
}

// HandleEvent takes the trigger deliveries that invalidate cached answers.
func (f *Function) HandleEvent(ctx context.Context, e event.Event) (*event.Event, error) {
	if err := sender.Require(ctx, sender.Broker); err != nil {
		return nil, err
	}
	tags := cache.StaleTags(e)
	if len(tags) == 0 {
		return nil, apierr.InvalidArgument("the gateway does not handle %s events", e.Type())
	}
	if err := f.cache.Invalidate(ctx, tags...); err != nil {
		// 503 makes the broker retry: a stale cache must not outlive its event.
		return nil, apierr.Unavailable("the cache could not be invalidated: %v", err)
	}
	return nil, nil
}

// statusWriter remembers the status for the metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func fail(w http.ResponseWriter, e *apierr.Error) { apierr.Write(w, e) }
