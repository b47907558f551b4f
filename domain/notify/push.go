package notify

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/domain/push"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/config"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/safehttp"
)

// pushTimeout bounds one push: connect, TLS and the push service's answer.
const pushTimeout = 15 * time.Second

// Pusher is the Web Push channel (notify-push): it sends each notice to
// the browsers and devices its recipients subscribed (domain/push), when
// their preferences choose push for its kind.
//
// Each push is encrypted to the subscription (RFC 8291, aes128gcm) and
// signed with the platform's VAPID key (RFC 8292), with TTL and Urgency
// headers; its payload is a [PushPayload] and carries ids and names only.
// Each is claimed in notifications_sent per subscription, so a redelivery
// pushes nothing twice. A push service that says the subscription is gone
// (404, 410) gets it deleted; one that says try later (429, 5xx) or cannot
// be reached fails the event, which the Trigger retries, without pushing
// again to subscriptions already served. Endpoints are connected to only
// at public addresses (or SKYFLOW_PUSH_ALLOWED_NETWORKS), and never logged.
//
// It is a db.Backend: db.Lifecycle[Pusher, *Pusher] opens and closes it.
type Pusher struct {
	Pool    *pgxpool.Pool
	Store   *push.Store
	Metrics *Metrics
	vapid   *push.VAPID
	client  *http.Client
	now     func() time.Time
}

// Open reads the settings (every bad one reported at once) and opens the
// database lazily:
//
//	DATABASE_URL
//	SKYFLOW_VAPID_PUBLIC_KEY, SKYFLOW_VAPID_PRIVATE_KEY  the VAPID key pair (base64url)
//	SKYFLOW_VAPID_SUBJECT          mailto:ops@example.com or an https URL
//	SKYFLOW_PUSH_ALLOWED_NETWORKS  optional: non-public networks push services may be in
//	SKYFLOW_PUSH_CA_FILE           optional (development, tests): more CAs to trust for push services
func (p *Pusher) Open(ctx context.Context, cfg map[string]string) error {
	env := config.FromMap(cfg)
	v, errs := push.VAPIDFromEnv(env)
	policy, err := safehttp.ParseNetworks(env.String(push.AllowedNetworksEnv, ""))
	if err != nil {
		errs = append(errs, errors.New(push.AllowedNetworksEnv+": "+err.Error()))
	}
	roots, err := rootsWith(env.String("SKYFLOW_PUSH_CA_FILE", ""))
	if err != nil {
		errs = append(errs, err)
	}
	dbURL := env.Required("DATABASE_URL", "the PostgreSQL database")
	if err := errors.Join(append([]error{env.Err()}, errs...)...); err != nil {
		return err
	}
	m, err := NewMetrics(ChannelPush)
	if err != nil {
		return err
	}
	pool, err := db.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	p.Pool, p.Store, p.vapid, p.Metrics = pool, &push.Store{Pool: pool}, v, m
	// The policy's client (its dialer checks every address; no proxy, no
	// redirects), trusting SKYFLOW_PUSH_CA_FILE's roots as well when set.
	p.client = policy.Client(pushTimeout)
	p.client.Transport.(*http.Transport).TLSClientConfig.RootCAs = roots
	if p.now == nil {
		p.now = time.Now
	}
	return nil
}

// Ready reports whether the database answers.
func (p *Pusher) Ready(ctx context.Context) bool { return db.Ping(ctx, p.Pool) == nil }

// Close closes the pool.
func (p *Pusher) Close(context.Context) error {
	p.Pool.Close()
	return nil
}

// rootsWith is the system's roots plus the certificates in caFile (nil:
// the system's roots alone).
func rootsWith(caFile string) (*x509.CertPool, error) {
	if caFile == "" {
		return nil, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("SKYFLOW_PUSH_CA_FILE: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("SKYFLOW_PUSH_CA_FILE: holds no PEM certificate")
	}
	return pool, nil
}

// errPushBusy: another delivery of the same event is pushing to the same
// subscription right now (409, retried).
var errPushBusy = apierr.AlreadyExists("another delivery of this event is pushing to the same subscription right now; retry later")

// PushPayload is what a push carries: what a service worker shows
// (self.registration.showNotification(title, {body, tag})) and what it
// needs to link it to the event. Ids and names only.
type PushPayload struct {
	Title   string    `json:"title"`
	Body    string    `json:"body"`
	Kind    string    `json:"kind"`
	Notice  string    `json:"notice"`
	EventID string    `json:"event_id"`
	Time    time.Time `json:"time"`
	// Tag lets a newer notice of the same kind replace an older one on the
	// screen (the Notification API's tag).
	Tag string `json:"tag"`
}

// Send pushes the notice of event e to each recipient's subscriptions.
func (p *Pusher) Send(ctx context.Context, e event.Event) error {
	n, err := FromEvent(ctx, p.Pool, e)
	if err != nil {
		return err
	}
	if n.Kind == KindAccount {
		return nil // the verification link is emailed, never pushed
	}
	payload, err := json.Marshal(PushPayload{Title: n.Title, Body: n.Body, Kind: n.Kind, Notice: n.Name, EventID: n.EventID, Time: n.Time, Tag: "skyflow-" + n.Name})
	if err != nil {
		return err
	}
	var failed []error
	busy := false
	for _, id := range n.Users {
		errs, isBusy, err := p.notify(ctx, n, id, payload)
		if err != nil {
			return err
		}
		failed, busy = append(failed, errs...), busy || isBusy
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d pushes of %s were not delivered: %w", len(failed), n.Name, errors.Join(failed...))
	}
	if busy {
		return errPushBusy
	}
	return nil
}

// notify pushes n to one user's subscriptions: the failures to retry,
// whether another delivery holds a claim, or an error that fails the
// event (the database).
func (p *Pusher) notify(ctx context.Context, n *Notice, id uuid.UUID, payload []byte) (failed []error, busy bool, err error) {
	r, err := LoadRecipient(ctx, p.Pool, id)
	if err != nil {
		return nil, false, err
	}
	if r == nil {
		p.Metrics.Skipped(n, "no_user")
		return nil, false, nil
	}
	if why := r.Skip(n, ChannelPush); why != "" {
		p.Metrics.Skipped(n, why)
		return nil, false, nil
	}
	targets, err := p.Store.Targets(ctx, id, p.now())
	if err != nil {
		return nil, false, err
	}
	for _, t := range targets {
		claim, state, err := Take(ctx, p.Pool, ChannelPush, n, t.ID.String())
		switch {
		case err != nil:
			return nil, false, err
		case state == AlreadySent:
			p.Metrics.Skipped(n, "duplicate")
			continue
		case state == Busy:
			p.Metrics.Skipped(n, "busy")
			busy = true
			continue
		}
		if err := p.send(ctx, n, id, t, payload); err != nil {
			if rerr := claim.Release(ctx); rerr != nil {
				return nil, false, errors.Join(err, rerr)
			}
			failed = append(failed, err)
			continue
		}
		if err := claim.Done(ctx); err != nil {
			return nil, false, err
		}
	}
	return failed, busy, nil
}

// send pushes to one subscription; an error means try again later. What
// can never work (the subscription is gone, the push service refuses the
// push for good) is handled here and is no error.
func (p *Pusher) send(ctx context.Context, n *Notice, user uuid.UUID, t push.Target, payload []byte) error {
	log := slog.With("notice", n.Name, "user_id", user, "subscription_id", t.ID, "event_id", n.EventID)
	resp, err := webpush.SendNotificationWithContext(ctx, payload, &webpush.Subscription{
		Endpoint: t.Endpoint,
		Keys:     webpush.Keys{P256dh: base64.RawURLEncoding.EncodeToString(t.P256dh), Auth: base64.RawURLEncoding.EncodeToString(t.Auth)},
	}, &webpush.Options{
		HTTPClient:      p.client,
		Subscriber:      p.vapid.Subscriber(),
		VAPIDPublicKey:  p.vapid.PublicKey,
		VAPIDPrivateKey: p.vapid.PrivateKey,
		TTL:             int(n.TTL.Seconds()),
		Urgency:         webpush.Urgency(n.Urgency),
	})
	if err != nil {
		if errors.Is(err, safehttp.ErrRefused) {
			// Its host now resolves to an address Skyflow does not call.
			p.Metrics.Failed(n, "rejected")
			log.WarnContext(ctx, "push not sent: the endpoint's address is not public; dropped")
			return nil
		}
		p.Metrics.Failed(n, "temporary")
		// The error text names the endpoint: not logged, not returned.
		log.WarnContext(ctx, "push not sent: the push service could not be reached; the event will be retried")
		return errors.New("a push service could not be reached")
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		p.Metrics.Sent(n)
		log.InfoContext(ctx, "push sent", "status", code)
		if err := p.Store.Delivered(ctx, t.ID, p.now()); err != nil {
			log.WarnContext(ctx, "recording the push's success", "error", err)
		}
		return nil
	case code == http.StatusNotFound || code == http.StatusGone:
		// The browser unsubscribed or the subscription expired.
		p.Metrics.Failed(n, "gone")
		log.InfoContext(ctx, "the push service says the subscription is gone; deleted", "status", code)
		return p.Store.Remove(ctx, t.ID)
	case code == http.StatusTooManyRequests || code >= 500:
		p.Metrics.Failed(n, "temporary")
		log.WarnContext(ctx, "the push service said try later; the event will be retried", "status", code)
		return fmt.Errorf("a push service answered %d", code)
	default:
		// 400, 401, 403 (a key the subscription was not made with), 413:
		// sending the same push again would fail again.
		p.Metrics.Failed(n, "rejected")
		log.WarnContext(ctx, "the push service refused the push; dropped", "status", code)
		return nil
	}
}
