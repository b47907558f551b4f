// Package delivery delivers Skyflow's events to the webhook endpoints that
// subscribed to them (domain/webhooks): each delivery signed per Standard
// Webhooks (webhook-id, webhook-timestamp, webhook-signature:
// v1,<base64 HMAC-SHA256>) with the endpoint's secret, retried on a
// schedule, dead-lettered, and an endpoint that keeps failing disabled.
// Outbound requests go through runtime/safehttp, so an endpoint cannot
// reach inside the network.
//
// Domain logic lives in domain/, settings included: the notify-webhook
// function folder is a thin adapter that opens a [Dispatcher] (its
// settings are read by Dispatcher.Open), checks who sent each event and
// hands it to Dispatch, or a ping to Sweep.
package delivery

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/domain/webhooks"
	"github.com/skyflow-oss/skyflow/runtime/safehttp"
)

// Defaults of a Dispatcher.
const (
	DefaultTimeout          = 10 * time.Second
	DefaultConcurrency      = 16
	DefaultDisableAfter     = 24 * time.Hour
	DefaultDisableAfterDead = 5
	DefaultRetention        = 30 * 24 * time.Hour
	DefaultInlineBudget     = 15 * time.Second
	DefaultSweepWait        = 20 * time.Second
	// maxResponseBytes of a response are read (so the connection can be
	// reused) and thrown away; nothing of a response body is kept.
	maxResponseBytes = 64 << 10
	// maxRetryAfter caps how long a Retry-After may push a retry back.
	maxRetryAfter = time.Hour
	// UserAgent is sent with every delivery.
	UserAgent = "Skyflow-Webhooks/1.0 (+https://github.com/skyflow-oss/skyflow)"
)

// Dispatcher delivers events to the endpoints that subscribed to them
// (notify-webhook): a delivery row per endpoint and event, the first
// attempt at once, the retries by Sweep on the Schedule, the dead-letter
// event after the last, and the endpoint disabled when it keeps failing.
type Dispatcher struct {
	*webhooks.Backend
	Source   string // the CloudEvents source of its events
	Schedule Schedule
	// Timeout bounds each attempt (connect, TLS, request, response headers).
	Timeout time.Duration
	// Concurrency is how many attempts run at once.
	Concurrency int
	// DisableAfter: an endpoint whose every attempt has failed for this
	// long is disabled (0: never for that reason).
	DisableAfter time.Duration
	// DisableAfterDead: an endpoint with this many dead deliveries in a
	// row is disabled (0: never for that reason).
	DisableAfterDead int
	// Retention: finished deliveries older than this leave the log.
	Retention time.Duration
	// InlineBudget bounds the attempts made while handling an event; what
	// did not fit is left to the sweep.
	InlineBudget time.Duration
	// SweepBudget is how long one ping's Sweep works (notify-webhook).
	SweepBudget time.Duration
	// SweepWait: a sweep that finds nothing due waits for a retry falling
	// due within this long (within its budget) rather than leave it to the
	// next ping.
	SweepWait time.Duration
	Client    *http.Client
	Now       func() time.Time

	metrics    *metrics
	secrets    secretCache
	clientOnce sync.Once
}

// NewDispatcher returns a dispatcher on b with the defaults, registering
// its metrics with the process's registry.
func NewDispatcher(b *webhooks.Backend, source string) (*Dispatcher, error) {
	m, err := newMetrics()
	if err != nil {
		return nil, err
	}
	d := &Dispatcher{Backend: b, Source: source, Schedule: DefaultSchedule, Timeout: DefaultTimeout,
		Concurrency: DefaultConcurrency, DisableAfter: DefaultDisableAfter, DisableAfterDead: DefaultDisableAfterDead,
		Retention: DefaultRetention, InlineBudget: DefaultInlineBudget, SweepBudget: DefaultSweepBudget, SweepWait: DefaultSweepWait,
		Now: time.Now, metrics: m}
	return d, nil
}

// client is the dispatcher's HTTP client: the policy's (no redirects, no
// proxy, every dialled address checked), made once, whichever of the
// concurrent attempts asks first.
func (d *Dispatcher) client() *http.Client {
	d.clientOnce.Do(func() {
		if d.Client == nil {
			d.Client = d.Policy.Client(d.Timeout)
		}
	})
	return d.Client
}

func (d *Dispatcher) now() time.Time { return d.Now().UTC().Truncate(time.Microsecond) }

// lease is how long a claimed attempt keeps its row from other sweepers:
// longer than the attempt can take.
func (d *Dispatcher) lease() time.Duration { return d.Timeout + 30*time.Second }

// Dispatched says what Dispatch did with an event.
type Dispatched struct {
	Endpoints int // endpoints the event is for
	Created   int // delivery rows made (fewer on a redelivery)
	Attempted int // attempts made at once
}

// Dispatch delivers e to every active endpoint that subscribed to its type
// (and its vault, for endpoints limited to one): it records one delivery
// per endpoint, once however often e is redelivered, and makes the first
// attempts. A failing endpoint is not an error: its delivery is retried by
// the sweep. The error is the dispatcher's own (the database), for the
// broker to retry.
func (d *Dispatcher) Dispatch(ctx context.Context, e event.Event) (Dispatched, error) {
	var out Dispatched
	if !webhooks.Deliverable(e.Type()) {
		return out, nil
	}
	targets, err := d.targets(ctx, e)
	if err != nil || len(targets) == 0 {
		return out, err
	}
	out.Endpoints = len(targets)
	now := d.now()
	payload, err := PayloadOf(e, now)
	if err != nil {
		return out, fmt.Errorf("webhooks: payload of %s: %w", e.ID(), err)
	}
	ids := make([]string, len(targets))
	msgIDs := make([]string, len(targets))
	for i, t := range targets {
		ids[i], msgIDs[i] = uuid.NewString(), webhooks.MessageID(t, e.Source(), e.ID())
	}
	// New deliveries are made claimed for their first attempt (attempts 1,
	// leased), which saves a claim's commit on every event; a redelivered
	// event's rows exist already and make none. The commit does not wait
	// for the disk (see asyncCommit): the attempt's record that follows a
	// failure does, and flushes this one with it.
	var claims []claim
	err = asyncCommit(ctx, d.Pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
		WITH ins AS (
			INSERT INTO webhook_deliveries (id, endpoint_id, event_source, event_id, event_type, message_id, payload,
				attempts, next_attempt_at, last_attempt_at, created_at, updated_at)
			SELECT k.id, k.endpoint_id, $3, $4, $5, k.message_id, $6, 1, $9, $7, $7, $7
			FROM unnest($1::uuid[], $2::uuid[], $8::text[]) AS k(id, endpoint_id, message_id)
			JOIN webhook_endpoints w ON w.id = k.endpoint_id
			ON CONFLICT (endpoint_id, event_source, event_id) DO NOTHING
			RETURNING *)
		SELECT `+claimColumns+` FROM ins d JOIN webhook_endpoints w ON w.id = d.endpoint_id`,
			ids, targets, e.Source(), e.ID(), e.Type(), payload, now, msgIDs, now.Add(d.lease()))
		if err != nil {
			return err
		}
		claims, err = scanClaims(rows)
		return err
	})
	if err != nil {
		return out, fmt.Errorf("webhooks: record deliveries of %s: %w", e.ID(), err)
	}
	out.Created = len(claims)
	d.metrics.created.Add(float64(out.Created))
	if out.Created < len(targets) {
		// A redelivery: the event's deliveries that are due (a crashed
		// earlier handling left them unattempted) are attempted now.
		more, err := d.claim(ctx, len(targets), targets, e.Source(), e.ID())
		if err != nil {
			d.release(ctx, claims)
			return out, err
		}
		claims = append(claims, more...)
	}
	out.Attempted, err = d.attemptAll(ctx, claims, time.Now().Add(d.InlineBudget))
	return out, err
}

// targets are the endpoints e goes to.
func (d *Dispatcher) targets(ctx context.Context, e event.Event) ([]string, error) {
	about := webhookOf(e)
	if e.Type() == webhooks.TestedType {
		// A test goes to the endpoint it tests, and to no other.
		if _, err := uuid.Parse(about); err != nil {
			return nil, nil
		}
		var id string
		err := d.Pool.QueryRow(ctx, `SELECT id::text FROM webhook_endpoints WHERE id = $1`, about).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, nil
		}
		return []string{id}, err
	}
	vault := ""
	if v, ok := e.Extensions()["vaultid"].(string); ok {
		vault = v
	}
	rows, err := d.Pool.Query(ctx, `SELECT id::text, event_types FROM webhook_endpoints
		WHERE status = 'active' AND (vault_id IS NULL OR vault_id = $1)`, vault)
	if err != nil {
		return nil, fmt.Errorf("webhooks: endpoints: %w", err)
	}
	var (
		out      []string
		id       string
		patterns []string
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &patterns}, func() error {
		if !webhooks.MatchAny(patterns, e.Type()) {
			return nil
		}
		if aboutEndpointHealth(e.Type()) && id == about {
			return nil // never an endpoint's own failures to itself
		}
		out = append(out, id)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: endpoints: %w", err)
	}
	return out, nil
}

// claim is one attempt taken by this process: the delivery, its attempt
// number and where and how it goes.
type claim struct {
	id, endpointID                  string
	eventSource, eventID, eventType string
	messageID                       string
	payload                         []byte
	attempt                         int
	url, owner                      string
	secret                          []byte
	secretVersion                   int
	previousSecret                  []byte
	previousVersion                 *int
	previousExpires                 *time.Time
}

// claimColumns are a claim's columns, of deliveries d and endpoints w.
const claimColumns = `d.id::text, d.endpoint_id::text, d.event_source, d.event_id, d.event_type, d.message_id, d.payload, d.attempts,
	w.url, w.owner, w.secret, w.secret_version, w.previous_secret, w.previous_secret_version, w.previous_expires_at`

func scanClaims(rows pgx.Rows) ([]claim, error) {
	var out []claim
	var c claim
	_, err := pgx.ForEachRow(rows, []any{&c.id, &c.endpointID, &c.eventSource, &c.eventID, &c.eventType, &c.messageID, &c.payload, &c.attempt,
		&c.url, &c.owner, &c.secret, &c.secretVersion, &c.previousSecret, &c.previousVersion, &c.previousExpires}, func() error {
		out = append(out, c)
		c = claim{}
		return nil
	})
	return out, err
}

// claim takes up to limit due attempts (of one event's deliveries when
// endpoints is set), raising each one's attempt count and leasing it, so
// no other process takes the same attempt: rows another transaction holds
// are skipped. Deliveries of disabled endpoints wait, except tests.
func (d *Dispatcher) claim(ctx context.Context, limit int, endpoints []string, source, id string) ([]claim, error) {
	now := d.now()
	rows, err := d.Pool.Query(ctx, `
		WITH due AS (
			SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id
			WHERE d.state = 'pending' AND d.next_attempt_at <= $1
			  AND (w.status = 'active' OR d.event_type = $3)
			  AND ($4::uuid[] IS NULL OR (d.endpoint_id = ANY($4) AND d.event_source = $5 AND d.event_id = $6))
			ORDER BY d.next_attempt_at
			LIMIT $2
			FOR UPDATE OF d SKIP LOCKED)
		UPDATE webhook_deliveries d SET attempts = d.attempts + 1, next_attempt_at = $7, last_attempt_at = $1, updated_at = $1
		FROM due, webhook_endpoints w
		WHERE d.id = due.id AND w.id = d.endpoint_id
		RETURNING `+claimColumns,
		now, limit, webhooks.TestedType, endpoints, source, id, now.Add(d.lease()))
	if err != nil {
		return nil, fmt.Errorf("webhooks: claim deliveries: %w", err)
	}
	out, err := scanClaims(rows)
	if err != nil {
		return nil, fmt.Errorf("webhooks: claim deliveries: %w", err)
	}
	return out, nil
}

// release gives claimed attempts that were not made back, due now.
func (d *Dispatcher) release(ctx context.Context, claims []claim) {
	if len(claims) == 0 {
		return
	}
	ids := make([]string, len(claims))
	attempts := make([]int32, len(claims))
	for i, c := range claims {
		ids[i], attempts[i] = c.id, int32(c.attempt)
	}
	if _, err := d.Pool.Exec(context.WithoutCancel(ctx), `UPDATE webhook_deliveries d SET attempts = d.attempts - 1, next_attempt_at = $3
		FROM unnest($1::uuid[], $2::int[]) AS k(id, attempts)
		WHERE d.id = k.id AND d.attempts = k.attempts AND d.state = 'pending'`, ids, attempts, d.now()); err != nil {
		// Their lease runs out and the sweep takes them, one attempt short.
		slog.Warn("webhooks: claimed attempts could not be released", "count", len(claims), "error", err)
	}
}

// attemptAll makes the claimed attempts, Concurrency at a time, starting
// none that could not finish before the deadline: those are released for
// the sweep. It returns how many attempts it made; an error is the
// database's.
func (d *Dispatcher) attemptAll(ctx context.Context, claims []claim, deadline time.Time) (int, error) {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    []error
		skipped []claim
		made    int
	)
	sem := make(chan struct{}, max(d.Concurrency, 1))
	for _, c := range claims {
		sem <- struct{}{}
		if time.Until(deadline) < d.Timeout || ctx.Err() != nil {
			<-sem
			skipped = append(skipped, c)
			continue
		}
		made++
		wg.Go(func() {
			defer func() { <-sem }()
			// The attempt and its record outlive a cancelled ctx (the
			// broker gave up waiting): the row is leased and the receiver
			// may have the message; recording it is cheaper than sending
			// it twice.
			actx := context.WithoutCancel(ctx)
			if err := d.record(actx, c, d.attempt(actx, c)); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	d.release(ctx, skipped)
	return made, errors.Join(errs...)
}

// run claims and makes attempts, Concurrency at a time, until nothing is
// left to claim or the deadline leaves no room for another attempt. It
// returns how many attempts it made; an error is the database's.
func (d *Dispatcher) run(ctx context.Context, deadline time.Time, take func(ctx context.Context, limit int) ([]claim, error)) (int, error) {
	n := 0
	for time.Until(deadline) >= d.Timeout && ctx.Err() == nil {
		batch, err := take(ctx, max(d.Concurrency, 1))
		if err != nil || len(batch) == 0 {
			return n, err
		}
		made, err := d.attemptAll(ctx, batch, deadline)
		n += made
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// result is what one attempt came to.
type result struct {
	status     int           // the HTTP status, 0 when no response came
	err        string        // a short transport error, never a body
	class      string        // for metrics: 2xx, 3xx, 4xx, 5xx, timeout, refused, network
	latency    time.Duration // request start to the response read
	retryAfter time.Duration
	at         time.Time
}

func (r result) ok() bool { return r.status >= 200 && r.status <= 299 }

// attempt POSTs the delivery once, signed with the endpoint's secrets.
func (d *Dispatcher) attempt(ctx context.Context, c claim) result {
	at := d.Now()
	res := result{at: at.UTC().Truncate(time.Microsecond)}
	if c.attempt > d.Schedule.Attempts() {
		// The last attempt was claimed by a process that died before it
		// recorded it: none is left.
		res.err, res.class = "the last attempt was interrupted", "network"
		return res
	}
	keys, err := d.keys(c, at)
	if err != nil {
		slog.Error("webhooks: an endpoint's secret could not be opened", "webhook_id", c.endpointID, "error", err)
		res.err, res.class = "the endpoint's signing secret could not be opened", "network"
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(c.payload))
	if err != nil {
		res.err, res.class = "the endpoint URL is not usable", "network"
		return res
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(HeaderID, c.messageID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(c.messageID, at, c.payload, keys...))
	start := time.Now()
	resp, err := d.client().Do(req)
	if err != nil {
		res.latency = time.Since(start)
		res.err, res.class = describe(err, d.Timeout)
		d.metrics.observe(res)
		return res
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	resp.Body.Close()
	res.latency = time.Since(start)
	res.status = resp.StatusCode
	res.class = fmt.Sprintf("%dxx", resp.StatusCode/100)
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		res.retryAfter = retryAfter(resp.Header.Get("Retry-After"), at)
	}
	if !res.ok() {
		res.err = fmt.Sprintf("HTTP %d", resp.StatusCode)
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			res.err += " (redirects are not followed: subscribe the final URL)"
		}
	}
	d.metrics.observe(res)
	return res
}

// keys are the endpoint's signing keys at t: its secret and, during a
// rotation's overlap, the previous one.
func (d *Dispatcher) keys(c claim, t time.Time) ([]webhooks.Secret, error) {
	cur, err := d.secrets.get(d.Backend, c.endpointID, c.secretVersion, c.secret)
	if err != nil {
		return nil, err
	}
	keys := []webhooks.Secret{cur}
	if c.previousSecret != nil && c.previousVersion != nil && c.previousExpires != nil && t.Before(*c.previousExpires) {
		prev, err := d.secrets.get(d.Backend, c.endpointID, *c.previousVersion, c.previousSecret)
		if err != nil {
			return nil, err
		}
		keys = append(keys, prev)
	}
	return keys, nil
}

// retryAfter reads a Retry-After header (seconds or an HTTP date), capped.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(h); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// describe turns a transport error into a short message and a metrics
// class. It never includes the URL (url.Error's text does: it may hold a
// token) or anything the receiver sent.
func describe(err error, timeout time.Duration) (msg, class string) {
	var (
		refused  *safehttp.RefusedError
		dnsErr   *net.DNSError
		certErr  *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		invalid  x509.CertificateInvalidError
		recErr   tls.RecordHeaderError
		urlError *url.Error
	)
	switch {
	case errors.As(err, &refused):
		return "refused: " + refused.Error(), "refused"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Sprintf("timed out after %s", timeout), "timeout"
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "DNS: no such host", "network"
		}
		return "DNS: lookup failed", "network"
	case errors.As(err, &certErr), errors.As(err, &unknown), errors.As(err, &hostErr), errors.As(err, &invalid):
		return "TLS: the certificate is not valid for the host", "network"
	case errors.As(err, &recErr):
		return "TLS: the endpoint does not speak TLS", "network"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused", "network"
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before a response", "network"
	case errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable", "network"
	case errors.As(err, &urlError) && urlError.Timeout():
		return fmt.Sprintf("timed out after %s", timeout), "timeout"
	}
	return "network error", "network"
}

// record stores an attempt's result: the delivery succeeds, waits for its
// next attempt, or is dead (with its dead-letter event); the endpoint's
// health follows, and an endpoint that keeps failing is disabled (with its
// event), all in one transaction. A result for an attempt that is no
// longer the delivery's current one (its lease ran out and another process
// took the next) is dropped.
func (d *Dispatcher) record(ctx context.Context, c claim, r result) error {
	if r.ok() {
		return d.recordSuccess(ctx, c, r)
	}
	var (
		dead     bool
		disabled string
	)
	err := d.Publisher.Transact(ctx, func(tx pgx.Tx) ([]event.Event, error) {
		dead, disabled = false, ""
		var (
			status          string
			failingSince    *time.Time
			consecutiveDead int
		)
		// The endpoint first (then the delivery), as deletion does.
		err := tx.QueryRow(ctx, `SELECT status, failing_since, consecutive_dead FROM webhook_endpoints WHERE id = $1 FOR UPDATE`,
			c.endpointID).Scan(&status, &failingSince, &consecutiveDead)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, nil // deleted meanwhile: its deliveries went with it
		}
		if err != nil {
			return nil, err
		}
		now := d.now()
		var latency *int
		if r.latency > 0 || r.status != 0 {
			ms := int(r.latency.Milliseconds())
			latency = &ms
		}
		var lastStatus *int
		if r.status != 0 {
			lastStatus = &r.status
		}
		var lastErr *string
		if r.err != "" {
			r.err = truncate(r.err, maxErrorLength)
			lastErr = &r.err
		}
		gone := r.status == http.StatusGone
		wait, more := d.Schedule.Next(c.attempt, nil)
		wait = max(wait, r.retryAfter)
		var events []event.Event
		if gone || !more {
			dead = true
			tag, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET state = 'dead', next_attempt_at = NULL, finished_at = $3,
				last_status = $4, last_error = $5, last_latency_ms = $6, updated_at = $3
				WHERE id = $1 AND attempts = $2 AND state = 'pending'`, c.id, c.attempt, now, lastStatus, lastErr, latency)
			if err != nil || tag.RowsAffected() == 0 {
				return nil, err
			}
			consecutiveDead++
			if !aboutEndpointHealth(c.eventType) {
				events = append(events, webhooks.NewEvent(d.Source, webhooks.DeliveryFailedType, "", c.endpointID, now, webhooks.DeliveryFailedData{
					WebhookID: c.endpointID, Owner: c.owner, DeliveryID: c.id, EventSource: c.eventSource, EventID: c.eventID,
					EventType: c.eventType, MessageID: c.messageID, Attempts: c.attempt, LastStatus: lastStatus, LastError: r.err}))
			}
		} else {
			tag, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET next_attempt_at = $3, last_status = $4, last_error = $5,
				last_latency_ms = $6, updated_at = $7
				WHERE id = $1 AND attempts = $2 AND state = 'pending'`, c.id, c.attempt, r.at.Add(wait), lastStatus, lastErr, latency, now)
			if err != nil || tag.RowsAffected() == 0 {
				return nil, err
			}
		}
		if failingSince == nil {
			failingSince = &r.at
		}
		if status == webhooks.StatusActive {
			switch {
			case gone:
				disabled = "gone"
			case d.DisableAfterDead > 0 && consecutiveDead >= d.DisableAfterDead:
				disabled = "dead_deliveries"
			case d.DisableAfter > 0 && !now.Before(failingSince.Add(d.DisableAfter)):
				disabled = "failing"
			}
		}
		reason := ""
		switch disabled {
		case "gone":
			reason = "the endpoint answered 410 Gone"
		case "dead_deliveries":
			reason = fmt.Sprintf("%d deliveries in a row failed every attempt", consecutiveDead)
		case "failing":
			reason = fmt.Sprintf("every delivery attempt has failed since %s", failingSince.UTC().Format(time.RFC3339))
		}
		if disabled != "" {
			var u, owner string
			if err := tx.QueryRow(ctx, `UPDATE webhook_endpoints SET status = 'disabled', disabled_at = $2, disabled_reason = $3,
				failing_since = $4, consecutive_dead = $5, updated_at = $2 WHERE id = $1 RETURNING url, owner`,
				c.endpointID, now, reason, failingSince, consecutiveDead).Scan(&u, &owner); err != nil {
				return nil, err
			}
			events = append(events, webhooks.NewEvent(d.Source, webhooks.DisabledType, "", c.endpointID, now, webhooks.DisabledData{
				WebhookID: c.endpointID, URL: u, Owner: owner, Reason: reason, FailingSince: failingSince}))
		} else if _, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET failing_since = $2, consecutive_dead = $3 WHERE id = $1`,
			c.endpointID, failingSince, consecutiveDead); err != nil {
			return nil, err
		}
		return events, nil
	})
	if err != nil {
		return fmt.Errorf("webhooks: record delivery %s attempt %d: %w", c.id, c.attempt, err)
	}
	switch {
	case dead:
		d.metrics.deliveries.WithLabelValues("dead").Inc()
		slog.Warn("webhook delivery dead", "webhook_id", c.endpointID, "delivery_id", c.id, "event_type", c.eventType, "attempts", c.attempt, "last_error", r.err)
	default:
		d.metrics.retries.Inc()
	}
	if disabled != "" {
		d.metrics.disabled.WithLabelValues(disabled).Inc()
		slog.Warn("webhook endpoint disabled", "webhook_id", c.endpointID, "reason", disabled)
	}
	return nil
}

// recordSuccess stores a success in one round trip, without waiting for
// the disk (see asyncCommit): the endpoint's row is written only when its
// health changes (or its last success is a minute old), so a busy
// endpoint's deliveries do not queue on its row, and never locked before
// the delivery's, so it cannot deadlock with a deletion.
func (d *Dispatcher) recordSuccess(ctx context.Context, c claim, r result) error {
	now := d.now()
	ms := int(r.latency.Milliseconds())
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`SET LOCAL synchronous_commit = off`)
	b.Queue(`UPDATE webhook_endpoints SET failing_since = NULL, consecutive_dead = 0, last_success_at = $2::timestamptz
		WHERE id = $1 AND (failing_since IS NOT NULL OR consecutive_dead <> 0 OR last_success_at IS NULL OR last_success_at < $2::timestamptz - interval '1 minute')`,
		c.endpointID, now)
	b.Queue(`UPDATE webhook_deliveries SET state = 'succeeded', next_attempt_at = NULL, finished_at = $3,
		last_status = $4, last_error = NULL, last_latency_ms = $5, updated_at = $3
		WHERE id = $1 AND attempts = $2 AND state = 'pending'`, c.id, c.attempt, now, r.status, ms)
	b.Queue(`COMMIT`)
	if err := d.Pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("webhooks: record delivery %s attempt %d: %w", c.id, c.attempt, err)
	}
	d.metrics.deliveries.WithLabelValues("succeeded").Inc()
	return nil
}

// asyncCommit runs fn in a transaction whose commit does not wait for
// PostgreSQL to flush it (synchronous_commit off; the WAL writer flushes
// within a fraction of a second). Only a crash of PostgreSQL itself in
// that window loses such a commit, and what the dispatcher commits this
// way is safe to lose, as the outbox's send marks are: a new delivery row
// whose first attempt succeeded (the receiver has the message; the log
// misses it) and a success (the delivery is sent again after its lease
// and the receiver drops it by webhook-id). A failure's record, which
// holds the retry, and the dead-letter and disabled events wait for the
// disk as usual, and flush every earlier commit with them.
func asyncCommit(ctx context.Context, pool *pgxpool.Pool, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			return err
		}
		return fn(tx)
	})
}

// Swept says what a sweep did.
type Swept struct {
	Attempted int
	Deleted   int64 // finished deliveries past the retention
}

// Sweep makes the attempts that are due, Concurrency at a time, until the
// deadline leaves no room for another; while nothing is due it waits for a
// retry falling due within SweepWait. Then it deletes finished deliveries
// older than the retention. Several sweepers (replicas, pings) may run at
// once: each attempt is claimed by one.
func (d *Dispatcher) Sweep(ctx context.Context, deadline time.Time) (Swept, error) {
	var out Swept
	due := func(ctx context.Context, limit int) ([]claim, error) { return d.claim(ctx, limit, nil, "", "") }
	for {
		n, err := d.run(ctx, deadline, due)
		out.Attempted += n
		if err != nil {
			return out, err
		}
		next, err := d.nextDue(ctx)
		if err != nil {
			return out, err
		}
		if next == nil {
			break
		}
		wait := next.Sub(d.Now())
		if wait > d.SweepWait || time.Now().Add(max(wait, 0)+d.Timeout).After(deadline) {
			break
		}
		if n == 0 {
			// Due but not claimable yet (another sweeper holds it):
			// never spin.
			wait = max(wait, 100*time.Millisecond)
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return out, ctx.Err()
			case <-t.C:
			}
		}
	}
	if d.Retention > 0 {
		tag, err := d.Pool.Exec(ctx, `DELETE FROM webhook_deliveries WHERE id IN (
			SELECT id FROM webhook_deliveries WHERE finished_at < $1 ORDER BY finished_at LIMIT 5000)`, d.now().Add(-d.Retention))
		if err != nil {
			return out, fmt.Errorf("webhooks: retention: %w", err)
		}
		out.Deleted = tag.RowsAffected()
	}
	var pending int64
	if err := d.Pool.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'`).Scan(&pending); err == nil {
		d.metrics.pending.Set(float64(pending))
	}
	return out, nil
}

// nextDue is when the next claimable attempt falls due, nil when none is
// pending.
func (d *Dispatcher) nextDue(ctx context.Context) (*time.Time, error) {
	var next *time.Time
	err := d.Pool.QueryRow(ctx, `SELECT min(d.next_attempt_at) FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id
		WHERE d.state = 'pending' AND (w.status = 'active' OR d.event_type = $1)`, webhooks.TestedType).Scan(&next)
	if err != nil {
		return nil, fmt.Errorf("webhooks: next due: %w", err)
	}
	return next, nil
}

// secretCache keeps unwrapped secrets by endpoint and version (a version's
// key never changes), so a delivery does not cost a KEK call (a Vault
// round trip with Transit).
type secretCache struct {
	mu sync.Mutex
	m  map[string]webhooks.Secret
}

const secretCacheSize = 10000

func (c *secretCache) get(b *webhooks.Backend, endpointID string, version int, wrapped []byte) (webhooks.Secret, error) {
	key := endpointID + "/" + strconv.Itoa(version)
	c.mu.Lock()
	s, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	s, err := b.OpenSecret(wrapped, endpointID, version)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= secretCacheSize {
		c.m = map[string]webhooks.Secret{}
	}
	c.m[key] = s
	c.mu.Unlock()
	return s, nil
}

// maxErrorLength bounds a stored transport error.
const maxErrorLength = 200

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
