package notify

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Recipient is a user a notice is for.
type Recipient struct {
	ID          uuid.UUID
	Email       string
	DisplayName string
	Verified    bool
	Preferences map[string][]string
}

// LoadRecipient reads a user; nil (and no error) when the user is gone.
func LoadRecipient(ctx context.Context, q Querier, id uuid.UUID) (*Recipient, error) {
	r := &Recipient{ID: id}
	err := q.QueryRow(ctx, `SELECT email, display_name, email_verified_at IS NOT NULL, preferences FROM users WHERE id = $1`, id).
		Scan(&r.Email, &r.DisplayName, &r.Verified, &r.Preferences)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Skip says why a recipient gets no notice on channel, or "" when they
// get one: the verification email only goes to an address not verified
// yet, every other notice only to a verified one (an address nobody has
// confirmed may be someone else's), and only on the channels the user's
// preferences choose.
func (r *Recipient) Skip(n *Notice, channel string) string {
	switch {
	case n.Kind == KindAccount && r.Verified:
		return "already_verified"
	case n.Kind != KindAccount && !r.Verified:
		return "unverified"
	case !Wants(r.Preferences, n.Kind, channel):
		return "opted_out"
	}
	return ""
}
