// Package main is the notify-email function: it emails people what the
// platform's events mean for them. Its Triggers bring
// com.skyflow.user.registered (the verification email, always sent),
// com.skyflow.user.login.locked and com.skyflow.apikey.created (security
// notices) and com.skyflow.webhook.disabled (webhooks notices); domain/notify
// maps each to a notice, its recipients and their preferences.
//
// Each email is claimed in notifications_sent before it is sent and
// marked sent after, so a redelivered event sends nothing twice; a relay
// that cannot be reached or answers 4xx releases the claim and fails the
// event, so the Trigger retries; a recipient or message the relay refuses
// for good (5xx) is logged without the address and dropped. Messages carry
// ids and names only, and the verification token only in the link.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/domain/notify"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/config"
	"github.com/skyflow-oss/skyflow/runtime/db"
	"github.com/skyflow-oss/skyflow/runtime/sender"
)

// Source is where the function's verification tokens come from (domain/identity).
const Source = "/skyflow/functions/notify-email"

// Function is the notify-email function.
type Function struct {
	db.Lifecycle[db.Database, *db.Database]
	relay     *relay
	publicURL string
	templates *templates
	metrics   *notify.Metrics
	identity  *identity.Service
}

// New is called once per process.
func New() *Function { return &Function{} }

// Start reads the settings (every bad one reported at once), parses the
// templates and opens the database lazily:
//
//	DATABASE_URL
//	SKYFLOW_SMTP_URL      smtp://user:password@host:587 (STARTTLS, required) or smtps://…:465
//	SKYFLOW_SMTP_FROM     Skyflow <no-reply@example.com>
//	SKYFLOW_SMTP_CA_FILE  optional: more CA certificates (PEM) to trust for the relay
//	SKYFLOW_PUBLIC_URL    the web application's address: verification links point there
func (f *Function) Start(ctx context.Context, cfg map[string]string) error {
	env := config.FromMap(cfg)
	r, errs := relayFromEnv(env)
	public := env.URL("SKYFLOW_PUBLIC_URL", "https", "http")
	if public == nil {
		env.Required("SKYFLOW_PUBLIC_URL", "the web application's address, such as https://app.example.com (verification links point there)")
	} else if public.RawQuery != "" || public.Fragment != "" {
		errs = append(errs, errors.New("SKYFLOW_PUBLIC_URL: takes no query or fragment"))
	}
	dbURL := env.Required("DATABASE_URL", "the PostgreSQL database")
	if err := errors.Join(append([]error{env.Err()}, errs...)...); err != nil {
		return err
	}
	t, err := parseTemplates()
	if err != nil {
		return err
	}
	m, err := notify.NewMetrics(notify.ChannelEmail)
	if err != nil {
		return err
	}
	pool, err := db.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	f.Backend, f.relay, f.publicURL, f.templates, f.metrics = &db.Database{Pool: pool}, r, public.String(), t, m
	f.identity = identity.NewService(&identity.Backend{Pool: pool}, Source)
	return nil
}

// errBusy: another delivery of the same event is sending to the same
// recipient right now. 409 is retried: if that delivery fails, it
// releases the claim and this one's retry sends.
var errBusy = apierr.AlreadyExists("another delivery of this event is sending the same email right now; retry later")

// Handle emails the event's notice to each of its recipients.
func (f *Function) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	if err := sender.Require(ctx, sender.Broker); err != nil {
		return nil, err
	}
	n, err := notify.FromEvent(ctx, f.Backend.Pool, e)
	if err != nil {
		return nil, err
	}
	var failed []error
	busy := false
	for _, id := range n.Users {
		switch err := f.notify(ctx, n, id); {
		case errors.Is(err, errBusy):
			busy = true
		case err != nil:
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		// A 500: the Trigger retries; recipients already sent to are not
		// sent to again.
		return nil, fmt.Errorf("%d of %d emails of %s were not sent: %w", len(failed), len(n.Users), n.Name, errors.Join(failed...))
	}
	if busy {
		return nil, errBusy
	}
	return nil, nil
}

// notify emails n to one user, at most once.
func (f *Function) notify(ctx context.Context, n *notify.Notice, id uuid.UUID) error {
	r, err := notify.LoadRecipient(ctx, f.Backend.Pool, id)
	if err != nil {
		return err
	}
	if r == nil {
		f.metrics.Skipped(n, "no_user")
		return nil
	}
	if why := r.Skip(n, notify.ChannelEmail); why != "" {
		f.metrics.Skipped(n, why)
		slog.DebugContext(ctx, "email not sent", "notice", n.Name, "user_id", id, "reason", why)
		return nil
	}
	claim, state, err := notify.Take(ctx, f.Backend.Pool, notify.ChannelEmail, n, id.String())
	switch {
	case err != nil:
		return err
	case state == notify.AlreadySent:
		f.metrics.Skipped(n, "duplicate")
		return nil
	case state == notify.Busy:
		f.metrics.Skipped(n, "busy")
		return errBusy
	}
	v := view{}
	if n.Name == notify.NoticeVerifyEmail {
		token, err := f.identity.IssueVerification(ctx, id.String())
		if err != nil {
			claim.Release(ctx)
			return err
		}
		v.Link = notify.VerificationLink(f.publicURL, token)
		v.ExpiresIn = fmt.Sprintf("%d hours", int(identity.VerificationTTL.Hours()))
	}
	msg, err := f.message(n, r, v)
	if err != nil {
		claim.Release(ctx)
		f.metrics.Failed(n, "error")
		return err
	}
	outcome, err := f.relay.send(ctx, msg)
	switch outcome {
	case delivered:
		f.metrics.Sent(n)
		slog.InfoContext(ctx, "email sent", "notice", n.Name, "user_id", id, "event_id", n.EventID)
		return claim.Done(ctx)
	case rejected:
		// Sending again would fail again: recorded as done, dropped.
		f.metrics.Failed(n, "rejected")
		slog.WarnContext(ctx, "the relay refused an email for good; dropped", "notice", n.Name, "user_id", id, "event_id", n.EventID, "error", err)
		return claim.Done(ctx)
	}
	f.metrics.Failed(n, "temporary")
	slog.WarnContext(ctx, "email not sent; the event will be retried", "notice", n.Name, "user_id", id, "event_id", n.EventID, "error", err)
	if rerr := claim.Release(ctx); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}
