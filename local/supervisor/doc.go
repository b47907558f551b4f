// Package supervisor runs the functions of the local platform the way
// Knative Serving runs them in a cluster: each Knative Service is its own
// OS process behind a stable front address, started on its first request,
// stopped when idle (scale to zero) and restarted when it crashes.
//
// The front of a Service is an in-process reverse proxy, like Knative's
// activator and queue-proxy together: it holds requests while the process
// starts, limits concurrency (containerConcurrency), bounds each request
// (timeoutSeconds) and answers 502, 503 or 504 with a short text when the
// process cannot.
//
// The supervisor emulates Knative for development and tests; it never
// replaces it in production.
package supervisor
