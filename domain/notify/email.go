package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/domain/identity"
	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/config"
	"github.com/skyflow-oss/skyflow/runtime/db"
)

// EmailSource is the notify-email function's CloudEvents source, where
// the verification tokens it mails come from (domain/identity).
const EmailSource = "/skyflow/functions/notify-email"

// Emailer is the email channel (notify-email): it mails each notice to
// its recipients through an SMTP relay. Each email is claimed in
// notifications_sent before it is sent and marked sent after, so a
// redelivered event sends nothing twice; a relay that cannot be reached
// or answers 4xx releases the claim and fails the event, so the Trigger
// retries; a recipient or message the relay refuses for good (5xx) is
// logged without the address and dropped. Messages carry ids and names
// only, and the verification token only in the link.
//
// It is a db.Backend: db.Lifecycle[Emailer, *Emailer] opens and closes it.
type Emailer struct {
	Pool      *pgxpool.Pool
	Metrics   *Metrics
	relay     *relay
	publicURL string
	templates *templates
	identity  *identity.Service
}

// Open reads the settings (every bad one reported at once), parses the
// templates and opens the database lazily:
//
//	DATABASE_URL
//	SKYFLOW_SMTP_URL      smtp://user:password@host:587 (STARTTLS, required) or smtps://…:465
//	SKYFLOW_SMTP_FROM     Skyflow <no-reply@example.com>
//	SKYFLOW_SMTP_CA_FILE  optional: more CA certificates (PEM) to trust for the relay
//	SKYFLOW_PUBLIC_URL    the web application's address: verification links point there
func (m *Emailer) Open(ctx context.Context, cfg map[string]string) error {
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
	metrics, err := NewMetrics(ChannelEmail)
	if err != nil {
		return err
	}
	pool, err := db.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	m.Pool, m.relay, m.publicURL, m.templates, m.Metrics = pool, r, public.String(), t, metrics
	m.identity = identity.NewService(&identity.Backend{Pool: pool}, EmailSource)
	return nil
}

// Ready reports whether the database answers.
func (m *Emailer) Ready(ctx context.Context) bool { return db.Ping(ctx, m.Pool) == nil }

// Close closes the pool.
func (m *Emailer) Close(context.Context) error {
	m.Pool.Close()
	return nil
}

// errBusy: another delivery of the same event is sending to the same
// recipient right now. 409 is retried: if that delivery fails, it
// releases the claim and this one's retry sends.
var errBusy = apierr.AlreadyExists("another delivery of this event is sending the same email right now; retry later")

// Send emails the notice of event e to each of its recipients.
func (m *Emailer) Send(ctx context.Context, e event.Event) error {
	n, err := FromEvent(ctx, m.Pool, e)
	if err != nil {
		return err
	}
	var failed []error
	busy := false
	for _, id := range n.Users {
		switch err := m.notify(ctx, n, id); {
		case errors.Is(err, errBusy):
			busy = true
		case err != nil:
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		// A 500: the Trigger retries; recipients already sent to are not
		// sent to again.
		return fmt.Errorf("%d of %d emails of %s were not sent: %w", len(failed), len(n.Users), n.Name, errors.Join(failed...))
	}
	if busy {
		return errBusy
	}
	return nil
}

// notify emails n to one user, at most once.
func (m *Emailer) notify(ctx context.Context, n *Notice, id uuid.UUID) error {
	r, err := LoadRecipient(ctx, m.Pool, id)
	if err != nil {
		return err
	}
	if r == nil {
		m.Metrics.Skipped(n, "no_user")
		return nil
	}
	if why := r.Skip(n, ChannelEmail); why != "" {
		m.Metrics.Skipped(n, why)
		slog.DebugContext(ctx, "email not sent", "notice", n.Name, "user_id", id, "reason", why)
		return nil
	}
	claim, state, err := Take(ctx, m.Pool, ChannelEmail, n, id.String())
	switch {
	case err != nil:
		return err
	case state == AlreadySent:
		m.Metrics.Skipped(n, "duplicate")
		return nil
	case state == Busy:
		m.Metrics.Skipped(n, "busy")
		return errBusy
	}
	v := view{}
	if n.Name == NoticeVerifyEmail {
		token, err := m.identity.IssueVerification(ctx, id.String())
		if err != nil {
			claim.Release(ctx)
			return err
		}
		v.Link = VerificationLink(m.publicURL, token)
		v.ExpiresIn = fmt.Sprintf("%d hours", int(identity.VerificationTTL.Hours()))
	}
	msg, err := m.message(n, r, v)
	if err != nil {
		claim.Release(ctx)
		m.Metrics.Failed(n, "error")
		return err
	}
	outcome, err := m.relay.send(ctx, msg)
	switch outcome {
	case delivered:
		m.Metrics.Sent(n)
		slog.InfoContext(ctx, "email sent", "notice", n.Name, "user_id", id, "event_id", n.EventID)
		return claim.Done(ctx)
	case rejected:
		// Sending again would fail again: recorded as done, dropped.
		m.Metrics.Failed(n, "rejected")
		slog.WarnContext(ctx, "the relay refused an email for good; dropped", "notice", n.Name, "user_id", id, "event_id", n.EventID, "error", err)
		return claim.Done(ctx)
	}
	m.Metrics.Failed(n, "temporary")
	slog.WarnContext(ctx, "email not sent; the event will be retried", "notice", n.Name, "user_id", id, "event_id", n.EventID, "error", err)
	if rerr := claim.Release(ctx); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}
