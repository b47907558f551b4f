package signing

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// lockKey names the advisory lock that serializes key creation across
	// processes: "skysign" in ASCII, unlikely to collide with other keys.
	lockKey int64 = 0x736b79_7369676e
	// cacheFor is how long keys read from the table are trusted before
	// reading again, to see keys other replicas made.
	cacheFor = 30 * time.Second
	// minReload spaces reads caused by unknown kids, so tokens with made-up
	// kids cost at most one query per interval instead of one each.
	minReload = time.Second
)

// key is one signing key as cached; priv is set only for the key that signs.
type key struct {
	kid         string
	pub         ed25519.PublicKey
	priv        ed25519.PrivateKey
	created     time.Time
	signUntil   time.Time
	verifyUntil time.Time
}

// String and GoString keep the private key out of any accidental log line.
func (k *key) String() string   { return "signing key " + k.kid }
func (k *key) GoString() string { return k.String() }

// state is an immutable snapshot of the keys still verifying.
type state struct {
	keys map[string]*key
	// signer is the newest key able to sign when the snapshot was made,
	// with its private key; nil if there was none or it could not be
	// unwrapped (signerErr).
	signer    *key
	signerErr error
	// started is the real time the read began: a key committed before
	// then is in the snapshot.
	started time.Time
}

// row is a signing_keys row.
type row struct {
	kid, alg, kekID                 string
	pub, wrapped                    []byte
	created, signUntil, verifyUntil time.Time
}

const selectCols = `kid, alg, public_key, private_key, kek_id, created_at, sign_until, verify_until`

func (r *row) scan(s pgx.Row) error {
	return s.Scan(&r.kid, &r.alg, &r.pub, &r.wrapped, &r.kekID, &r.created, &r.signUntil, &r.verifyUntil)
}

// associatedData binds a wrapped private key to its kid, so a wrapped key
// copied into another row does not unwrap.
func associatedData(kid string) []byte { return []byte("skyflow/signing-key/" + kid) }

// usable reports whether s may sign a token at now without rotating first.
func (k *Keyring) usable(s *key, now time.Time) bool {
	return s != nil && s.priv != nil && now.Before(s.signUntil) && now.Sub(s.created) < k.o.RotateEvery
}

// signingKey returns the key to sign with at now, making one if needed.
func (k *Keyring) signingKey(ctx context.Context, now time.Time) (*key, error) {
	st, err := k.current(ctx)
	if err != nil {
		return nil, err
	}
	if k.usable(st.signer, now) {
		return st.signer, nil
	}
	nk, err := k.ensure(ctx, now, false)
	if err != nil {
		// A key merely due for rotation may still sign until sign_until;
		// failing log in because rotation failed would be worse.
		if s := st.signer; s != nil && s.priv != nil && now.Before(s.signUntil) && ctx.Err() == nil {
			return s, nil
		}
		return nil, err
	}
	return nk, nil
}

// publicKey returns the public key of kid if it still verifies at now. An
// unknown kid makes the keyring read the table again, since another replica
// may have just rotated.
func (k *Keyring) publicKey(ctx context.Context, kid string, now time.Time) (ed25519.PublicKey, error) {
	st, err := k.current(ctx)
	if err != nil {
		return nil, &lookupError{err}
	}
	if key := st.keys[kid]; key != nil {
		return verifying(key, now)
	}
	if !plausibleKid(kid) {
		return nil, errUnknownKey
	}
	st, err = k.refresh(ctx, time.Now(), true)
	if err != nil {
		return nil, &lookupError{err}
	}
	if key := st.keys[kid]; key != nil {
		return verifying(key, now)
	}
	return nil, errUnknownKey
}

func verifying(key *key, now time.Time) (ed25519.PublicKey, error) {
	if !now.Before(key.verifyUntil) {
		return nil, errUnknownKey // retired: as unknown as a made-up kid
	}
	return key.pub, nil
}

// plausibleKid spares the database kids this package could not have made.
func plausibleKid(kid string) bool {
	b, err := base64.RawURLEncoding.DecodeString(kid)
	return err == nil && len(b) == kidBytes
}

// current returns the snapshot, reading the table again when it is older
// than cacheFor. If that read fails the old snapshot is still used: its keys
// are checked against the clock anyway, and an outage should not stop
// verification.
func (k *Keyring) current(ctx context.Context) (*state, error) {
	st := k.st.Load()
	if st != nil && time.Since(st.started) < cacheFor {
		return st, nil
	}
	nst, err := k.refresh(ctx, time.Now().Add(-cacheFor), false)
	if err != nil {
		if st != nil {
			return st, nil
		}
		return nil, err
	}
	return nst, nil
}

// refresh reads the table unless a read that started after `after` has
// already been stored (by a concurrent caller). With throttle, it waits until
// minReload has passed since the last read.
func (k *Keyring) refresh(ctx context.Context, after time.Time, throttle bool) (*state, error) {
	if err := k.lock(ctx); err != nil {
		return nil, err
	}
	defer k.unlock()
	st := k.st.Load()
	if st != nil && st.started.After(after) {
		return st, nil
	}
	if throttle && st != nil {
		if d := minReload - time.Since(st.started); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			}
		}
	}
	nst, err := k.load(ctx, st)
	if err != nil {
		return nil, err
	}
	k.st.Store(nst)
	return nst, nil
}

func (k *Keyring) lock(ctx context.Context) error {
	select {
	case k.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (k *Keyring) unlock() { <-k.sem }

// load reads every key still verifying and unwraps the newest signing one,
// reusing prev's unwrapped key when it is the same: with Vault Transit as the
// KEK, unwrapping is a network call.
func (k *Keyring) load(ctx context.Context, prev *state) (*state, error) {
	now := k.o.Now()
	st := &state{keys: map[string]*key{}, started: time.Now()}
	rows, err := k.pool.Query(ctx, `SELECT `+selectCols+` FROM signing_keys
		WHERE verify_until > $1 ORDER BY created_at DESC, kid DESC`, now)
	if err != nil {
		return nil, fmt.Errorf("signing: read keys: %w", err)
	}
	var rs []row
	for rows.Next() {
		var r row
		if err := r.scan(rows); err != nil {
			rows.Close()
			return nil, fmt.Errorf("signing: read keys: %w", err)
		}
		rs = append(rs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("signing: read keys: %w", err)
	}
	for _, r := range rs {
		if r.alg != Alg {
			continue // a later algorithm; this code can neither sign nor verify with it
		}
		key, err := publicOnly(r)
		if err != nil {
			return nil, err
		}
		st.keys[key.kid] = key
		if st.signer != nil || st.signerErr != nil || !now.Before(r.signUntil) {
			continue
		}
		if old := prevPrivate(prev, key.kid); old != nil {
			key.priv = old
		} else if key.priv, err = k.unwrap(r); err != nil {
			st.signerErr = err
			continue
		}
		st.signer = key
	}
	return st, nil
}

func prevPrivate(prev *state, kid string) ed25519.PrivateKey {
	if prev == nil || prev.keys[kid] == nil {
		return nil
	}
	return prev.keys[kid].priv
}

// publicOnly makes the cached key of r without its private key.
func publicOnly(r row) (*key, error) {
	pub, err := x509.ParsePKIXPublicKey(r.pub)
	if err != nil {
		return nil, fmt.Errorf("signing: key %s: public key: %w", r.kid, err)
	}
	edPub, ok := pub.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("signing: key %s: public key is %T, not Ed25519", r.kid, pub)
	}
	return &key{kid: r.kid, pub: edPub, created: r.created, signUntil: r.signUntil, verifyUntil: r.verifyUntil}, nil
}

// unwrap decrypts r's private key with the KEK and checks it belongs to r's
// public key.
func (k *Keyring) unwrap(r row) (ed25519.PrivateKey, error) {
	der, err := k.kek.Decrypt(r.wrapped, associatedData(r.kid))
	if err != nil {
		return nil, fmt.Errorf("signing: key %s (wrapped by %s): unwrap: %w", r.kid, r.kekID, err)
	}
	defer clear(der)
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		// The parse error is not wrapped: it may quote key bytes.
		return nil, fmt.Errorf("signing: key %s: unwrapped private key is not PKCS #8", r.kid)
	}
	edPriv, ok := priv.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing: key %s: private key is not Ed25519", r.kid)
	}
	pub, err := x509.MarshalPKIXPublicKey(edPriv.Public())
	if err != nil || !bytes.Equal(pub, r.pub) {
		return nil, fmt.Errorf("signing: key %s: private key does not match public key", r.kid)
	}
	return edPriv, nil
}

// ensure makes a new signing key (force), or else returns a usable one,
// making one only if no process has made one since it was found lacking.
func (k *Keyring) ensure(ctx context.Context, now time.Time, force bool) (*key, error) {
	if err := k.lock(ctx); err != nil {
		return nil, err
	}
	defer k.unlock()
	st := k.st.Load()
	if !force && st != nil && k.usable(st.signer, now) {
		return st.signer, nil // another goroutine got here first
	}
	nk, err := k.createOrFind(ctx, now, force)
	if err != nil {
		return nil, err
	}
	// Install it as the signer without a full read; the next periodic read
	// (or this one, if there was no snapshot) will pick up the rest.
	nst := &state{keys: map[string]*key{}, signer: nk}
	if st != nil {
		maps.Copy(nst.keys, st.keys)
		nst.started = st.started
	}
	nst.keys[nk.kid] = nk
	k.st.Store(nst)
	return nk, nil
}

// createOrFind runs in a transaction holding the advisory lock, so of
// several processes finding no key at once one makes it and the others,
// rechecking after the lock, find it.
func (k *Keyring) createOrFind(ctx context.Context, now time.Time, force bool) (*key, error) {
	tx, err := k.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("signing: create key: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // releases the lock if not committed
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey); err != nil {
		return nil, fmt.Errorf("signing: create key: lock: %w", err)
	}
	if !force {
		var r row
		err := r.scan(tx.QueryRow(ctx, `SELECT `+selectCols+` FROM signing_keys
			WHERE alg = $1 AND sign_until > $2 AND created_at > $3
			ORDER BY created_at DESC, kid DESC LIMIT 1`, Alg, now, now.Add(-k.o.RotateEvery)))
		switch {
		case err == nil:
			key, err := publicOnly(r)
			if err != nil {
				return nil, err
			}
			if key.priv, err = k.unwrap(r); err != nil {
				return nil, err
			}
			return key, nil
		case !errors.Is(err, pgx.ErrNoRows):
			return nil, fmt.Errorf("signing: find key: %w", err)
		}
	}
	// The newest key signs, so a new key must be strictly newer than every
	// other even if clocks (or tests) make now no later than theirs.
	var latest *time.Time
	if err := tx.QueryRow(ctx, `SELECT max(created_at) FROM signing_keys`).Scan(&latest); err != nil {
		return nil, fmt.Errorf("signing: create key: %w", err)
	}
	if latest != nil && !now.After(*latest) {
		now = latest.Add(time.Microsecond)
	}
	key, r, err := k.generate(now)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO signing_keys (`+selectCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		r.kid, r.alg, r.pub, r.wrapped, r.kekID, r.created, r.signUntil, r.verifyUntil); err != nil {
		return nil, fmt.Errorf("signing: store key: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("signing: store key: %w", err)
	}
	return key, nil
}

// kidBytes is the randomness in a kid: enough that kids never collide.
const kidBytes = 12

// generate makes a key created at now and its row, the private key wrapped.
func (k *Keyring) generate(now time.Time) (*key, row, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, row{}, fmt.Errorf("signing: generate key: %w", err)
	}
	kidRaw := make([]byte, kidBytes)
	rand.Read(kidRaw)
	kid := base64.RawURLEncoding.EncodeToString(kidRaw)

	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, row{}, fmt.Errorf("signing: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, row{}, fmt.Errorf("signing: generate key: %w", err)
	}
	wrapped, err := k.kek.Encrypt(der, associatedData(kid))
	clear(der)
	if err != nil {
		return nil, row{}, fmt.Errorf("signing: wrap key: %w", err)
	}
	// PostgreSQL keeps microseconds; the cached times match the stored ones.
	created := now.Truncate(time.Microsecond)
	signUntil := created.Add(k.o.RotateEvery + signSlack)
	verifyUntil := signUntil.Add(MaxTTL + verifySkew)
	r := row{kid: kid, alg: Alg, kekID: k.kek.ID(), pub: pubDER, wrapped: wrapped,
		created: created, signUntil: signUntil, verifyUntil: verifyUntil}
	return &key{kid: kid, pub: pub, priv: priv, created: created, signUntil: signUntil, verifyUntil: verifyUntil}, r, nil
}
