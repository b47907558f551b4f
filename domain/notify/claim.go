package notify

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// StaleClaim is how old a 'sending' claim must be before another delivery
// may take it over: its process died mid-send. It is well above the
// longest a function works on one event (its timeout), so a live sender
// never loses its claim.
const StaleClaim = 5 * time.Minute

// ClaimState is the outcome of Take.
type ClaimState int

const (
	// Claimed: this delivery sends, then calls Done or Release.
	Claimed ClaimState = iota
	// AlreadySent: an earlier delivery sent it; send nothing.
	AlreadySent
	// Busy: another delivery is sending it right now; if it fails it
	// releases the claim and its own retry sends.
	Busy
)

// Execer is what claims are written with (a pool).
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Claim is a claimed row of notifications_sent: one channel, event and
// recipient (a user id for email, a push subscription id for push).
type Claim struct {
	db                                  Execer
	channel, source, eventID, recipient string
	at                                  time.Time
}

// Take claims the sending of n to recipient on channel. Only a Claimed
// claim is returned.
func Take(ctx context.Context, db Execer, channel string, n *Notice, recipient string) (*Claim, ClaimState, error) {
	c := &Claim{db: db, channel: channel, source: n.EventSource, eventID: n.EventID, recipient: recipient}
	for attempt := 0; ; attempt++ {
		err := db.QueryRow(ctx, `
			INSERT INTO notifications_sent AS n (channel, event_source, event_id, recipient) VALUES ($1, $2, $3, $4)
			ON CONFLICT (channel, event_source, event_id, recipient) DO UPDATE SET claimed_at = clock_timestamp()
			WHERE n.state = 'sending' AND n.claimed_at < clock_timestamp() - make_interval(secs => $5)
			RETURNING claimed_at`, channel, c.source, c.eventID, recipient, StaleClaim.Seconds()).Scan(&c.at)
		if err == nil {
			return c, Claimed, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return nil, 0, err
		}
		var state string
		err = db.QueryRow(ctx, `SELECT state FROM notifications_sent WHERE channel = $1 AND event_source = $2 AND event_id = $3 AND recipient = $4`,
			channel, c.source, c.eventID, recipient).Scan(&state)
		switch {
		case errors.Is(err, pgx.ErrNoRows) && attempt < 2:
			continue // released between the two statements: claim it now
		case errors.Is(err, pgx.ErrNoRows):
			return nil, Busy, nil
		case err != nil:
			return nil, 0, err
		case state == "sent":
			return nil, AlreadySent, nil
		}
		return nil, Busy, nil
	}
}

// finish runs a claim's last statement even when ctx has ended: a claim
// left behind would hold the notice back until it is stale.
func finish(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}

// Done records that the notice was sent (or that it never can be, such as
// a recipient the mail server refuses for good): a redelivery sends nothing.
func (c *Claim) Done(ctx context.Context) error {
	ctx, cancel := finish(ctx)
	defer cancel()
	_, err := c.db.Exec(ctx, `
		UPDATE notifications_sent SET state = 'sent', sent_at = clock_timestamp()
		WHERE channel = $1 AND event_source = $2 AND event_id = $3 AND recipient = $4 AND state = 'sending' AND claimed_at = $5`,
		c.channel, c.source, c.eventID, c.recipient, c.at)
	return err
}

// Release gives the claim up after a failed send, so that the Trigger's
// retry sends it.
func (c *Claim) Release(ctx context.Context) error {
	ctx, cancel := finish(ctx)
	defer cancel()
	_, err := c.db.Exec(ctx, `
		DELETE FROM notifications_sent
		WHERE channel = $1 AND event_source = $2 AND event_id = $3 AND recipient = $4 AND state = 'sending' AND claimed_at = $5`,
		c.channel, c.source, c.eventID, c.recipient, c.at)
	return err
}
