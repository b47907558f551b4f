package push

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/db"
)

// Store keeps subscriptions in push_subscriptions (migration 0009).
type Store struct {
	Pool *pgxpool.Pool
}

// dbError hides database details from clients: a 503 they may retry.
func dbError(err error) error {
	return db.APIError(err, "push subscriptions", "push subscriptions are not available right now; try again")
}

const columns = `id, device_name, endpoint, created_at, updated_at, expires_at, last_success_at`

func scan(row pgx.Row) (Subscription, error) {
	var s Subscription
	var id uuid.UUID
	var endpoint string
	err := row.Scan(&id, &s.DeviceName, &endpoint, &s.CreatedAt, &s.UpdatedAt, &s.ExpiresAt, &s.LastSuccessAt)
	s.ID, s.PushService = id.String(), Origin(endpoint)
	return s, err
}

// Subscribe stores a user's subscription. Subscribing an endpoint again
// updates it (new keys, name, expiry) and keeps its id; an endpoint
// another user had subscribed (the same browser profile, someone else
// signed in) becomes this user's alone, so the first user's notices stop
// reaching it. A user keeps at most MaxPerUser subscriptions.
func (st *Store) Subscribe(ctx context.Context, userID uuid.UUID, s *NewSubscription) (*Subscription, error) {
	var out Subscription
	err := pgx.BeginFunc(ctx, st.Pool, func(tx pgx.Tx) error {
		// One subscription change per user at a time: the limit holds.
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT true FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&exists); errors.Is(err, pgx.ErrNoRows) {
			return apierr.NotFound("no such user")
		} else if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM push_subscriptions WHERE endpoint = $1 AND user_id <> $2`, s.Endpoint, userID); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM push_subscriptions WHERE user_id = $1 AND endpoint <> $2`, userID, s.Endpoint).Scan(&n); err != nil {
			return err
		}
		if n >= MaxPerUser {
			return apierr.AlreadyExists("you have %d push subscriptions already, the most there may be: remove one you no longer use (DELETE /v1/users/me/push-subscriptions/{subscriptionID}) first", n)
		}
		var err error
		out, err = scan(tx.QueryRow(ctx, `
			INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth, device_name, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (endpoint) DO UPDATE SET p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth,
				device_name = EXCLUDED.device_name, expires_at = EXCLUDED.expires_at, updated_at = now()
			RETURNING `+columns, uuid.New(), userID, s.Endpoint, s.P256dh, s.Auth, s.DeviceName, s.ExpiresAt))
		return err
	})
	if err != nil {
		return nil, dbError(err)
	}
	return &out, nil
}

// List returns a user's subscriptions, oldest first.
func (st *Store) List(ctx context.Context, userID uuid.UUID) (*Subscriptions, error) {
	rows, err := st.Pool.Query(ctx, `SELECT `+columns+` FROM push_subscriptions WHERE user_id = $1 ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	out := &Subscriptions{Subscriptions: []Subscription{}}
	for rows.Next() {
		s, err := scan(rows)
		if err != nil {
			return nil, dbError(err)
		}
		out.Subscriptions = append(out.Subscriptions, s)
	}
	return out, dbError(rows.Err())
}

// Unsubscribe deletes a user's subscription; another user's, or one that
// does not exist, is the same 404.
func (st *Store) Unsubscribe(ctx context.Context, userID uuid.UUID, id string) (*Unsubscribed, error) {
	notFound := apierr.NotFound("you have no push subscription %q: list yours with GET /v1/users/me/push-subscriptions", id)
	sid, err := uuid.Parse(id)
	if err != nil {
		return nil, notFound
	}
	tag, err := st.Pool.Exec(ctx, `DELETE FROM push_subscriptions WHERE id = $1 AND user_id = $2`, sid, userID)
	if err != nil {
		return nil, dbError(err)
	}
	if tag.RowsAffected() == 0 {
		return nil, notFound
	}
	return &Unsubscribed{ID: sid.String(), Deleted: true}, nil
}

// Target is a subscription to send to, keys included.
type Target struct {
	ID       uuid.UUID
	Endpoint string
	P256dh   []byte
	Auth     []byte
}

// Targets are a user's subscriptions that have not expired.
func (st *Store) Targets(ctx context.Context, userID uuid.UUID, now time.Time) ([]Target, error) {
	rows, err := st.Pool.Query(ctx, `
		SELECT id, endpoint, p256dh, auth FROM push_subscriptions
		WHERE user_id = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at, id`, userID, now)
	if err != nil {
		return nil, err
	}
	var out []Target
	var t Target
	_, err = pgx.ForEachRow(rows, []any{&t.ID, &t.Endpoint, &t.P256dh, &t.Auth}, func() error {
		out = append(out, t)
		return nil
	})
	return out, err
}

// Remove deletes a subscription its push service says is gone (404, 410).
func (st *Store) Remove(ctx context.Context, id uuid.UUID) error {
	_, err := st.Pool.Exec(ctx, `DELETE FROM push_subscriptions WHERE id = $1`, id)
	return err
}

// Delivered notes a push the push service accepted.
func (st *Store) Delivered(ctx context.Context, id uuid.UUID, at time.Time) error {
	_, err := st.Pool.Exec(ctx, `UPDATE push_subscriptions SET last_success_at = $2 WHERE id = $1`, id, at)
	return err
}
