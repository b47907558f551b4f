-- Web Push subscriptions (functions/push-* and functions/notify-push): one
-- row per browser or device a user subscribed, from the browser's
-- PushSubscription. The endpoint is a capability URL (whoever knows it can
-- send to the device, within what the push service checks): it is never
-- logged or shown, only its origin. p256dh and auth are the subscription's
-- public key and authentication secret (RFC 8291): what the payload is
-- encrypted to. Subscribing the same endpoint again updates its row; an
-- endpoint belongs to one user at a time (a browser profile another user
-- subscribes now is theirs: the first user's notices must not reach it).
CREATE TABLE push_subscriptions (
	id              uuid        PRIMARY KEY,
	user_id         uuid        NOT NULL REFERENCES users ON DELETE CASCADE,
	endpoint        text        NOT NULL CHECK (endpoint LIKE 'https://%' AND length(endpoint) <= 2048),
	-- An uncompressed P-256 point (65 bytes) and a 16-byte secret.
	p256dh          bytea       NOT NULL CHECK (length(p256dh) = 65),
	auth            bytea       NOT NULL CHECK (length(auth) = 16),
	device_name     text        NOT NULL DEFAULT '',
	-- The browser's expirationTime, when it gave one.
	expires_at      timestamptz,
	created_at      timestamptz NOT NULL DEFAULT now(),
	updated_at      timestamptz NOT NULL DEFAULT now(),
	last_success_at timestamptz,
	UNIQUE (endpoint)
);
CREATE INDEX push_subscriptions_by_user ON push_subscriptions (user_id, created_at);
