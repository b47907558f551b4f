package sender

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The pod's service-account token and cluster CA, where Kubernetes mounts them.
const (
	DefaultTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token" //nolint:gosec // G101: a path where the token is mounted, not a credential
	DefaultCAFile    = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
)

const (
	// FunctionPlaceholder in an audience template stands for the receiving function.
	FunctionPlaceholder = "{function}"
	// keysRefresh is how long a fetched key set is used before it is fetched again.
	keysRefresh = 10 * time.Minute
	// keysMinRefetch bounds the fetches an unknown kid can cause, so that
	// tokens with made-up kids cannot make the function hammer the issuer.
	keysMinRefetch = 10 * time.Second
	fetchTimeout   = 10 * time.Second
	maxDocument    = 1 << 20
)

// ErrKeysUnavailable is wrapped, with ErrInvalid, when an OIDC issuer's
// keys cannot be fetched: the sender may retry rather than give up.
var ErrKeysUnavailable = errors.New("the sender's signing keys cannot be fetched")

// oidcMethods are the only algorithms an OIDC token may use: never none,
// never HMAC (whose "secret" would be a public key), never EdDSA (that
// path is the Ed25519 assertions').
var oidcMethods = []string{"RS256", "RS384", "RS512", "ES256", "ES384"}

// OIDCSender is one entry of SKYFLOW_TRUSTED_OIDC: the tokens that Issuer
// issues to Subject are from the sender Name.
type OIDCSender struct {
	Name     string // the sender, as Require names it: "broker", "ping"
	Issuer   string // the token issuer's URL, exactly as in the tokens' iss
	Subject  string // e.g. system:serviceaccount:knative-eventing:kafka-broker-dispatcher
	Audience string // template; FunctionPlaceholder is replaced by the function
}

// AudienceFor is the audience a token must carry to be delivered to function.
func (s OIDCSender) AudienceFor(function string) string {
	return strings.ReplaceAll(s.Audience, FunctionPlaceholder, function)
}

// OIDCOptions says how to fetch the issuers' keys. The zero value suits a pod.
type OIDCOptions struct {
	// HTTPClient fetches the discovery documents and key sets. By default a
	// client trusting the system roots plus the cluster CA (CAFile).
	HTTPClient *http.Client
	// TokenFile holds a bearer token sent with the fetches (the API server
	// serves its key set only to authenticated callers); DefaultTokenFile
	// when empty. It is read at each fetch, as the kubelet rotates it, and
	// skipped when absent.
	TokenFile string
	// CAFile is the cluster CA, trusted in addition to the system roots
	// (managed clusters publish their issuer under a public certificate);
	// DefaultCAFile when empty. Ignored when HTTPClient is set.
	CAFile string
	// Now is the clock of the key cache; time.Now when nil.
	Now func() time.Time
}

// ParseTrustedOIDC reads SKYFLOW_TRUSTED_OIDC: entries separated by ";",
//
//	name=<issuer URL> <subject> [audience template]
//
// where the audience template defaults to "{function}" and must contain
// it, so that a token delivered to one function is refused by all others.
func ParseTrustedOIDC(spec string) ([]OIDCSender, error) {
	var out []OIDCSender
	for entry := range strings.SplitSeq(spec, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, rest, _ := strings.Cut(entry, "=")
		name = strings.TrimSpace(name)
		fields := strings.Fields(rest)
		if name == "" || strings.ContainsAny(name, " \t") || len(fields) < 2 || len(fields) > 3 {
			return nil, fmt.Errorf("trusted OIDC sender %q: want name=<issuer URL> <subject> [audience template]", name)
		}
		s := OIDCSender{Name: name, Issuer: fields[0], Subject: fields[1], Audience: FunctionPlaceholder}
		if len(fields) == 3 {
			s.Audience = fields[2]
		}
		if err := checkIssuer(s.Issuer); err != nil {
			return nil, fmt.Errorf("trusted OIDC sender %q: issuer %q: %w", name, s.Issuer, err)
		}
		if !strings.Contains(s.Audience, FunctionPlaceholder) {
			return nil, fmt.Errorf("trusted OIDC sender %q: the audience template %q must contain %s, or a token for one function would be accepted by every function", name, s.Audience, FunctionPlaceholder)
		}
		for _, o := range out {
			if o.Issuer == s.Issuer && o.Subject == s.Subject {
				return nil, fmt.Errorf("trusted OIDC senders %q and %q: both are %s from %s", o.Name, name, s.Subject, s.Issuer)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// checkIssuer requires an https URL: the keys it serves decide who may
// send events, and the pod's token may be sent to it.
func checkIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("want an https URL without query or fragment")
	}
	return nil
}

// TrustOIDC makes v also accept the OIDC tokens described by spec (see
// ParseTrustedOIDC). Call it before v verifies events. An empty spec adds nothing.
func (v *Verifier) TrustOIDC(spec string, o OIDCOptions) error {
	senders, err := ParseTrustedOIDC(spec)
	if err != nil {
		return err
	}
	if len(senders) == 0 {
		return nil
	}
	if o.HTTPClient == nil {
		if o.HTTPClient, err = clusterClient(orDefault(o.CAFile, DefaultCAFile)); err != nil {
			return err
		}
	}
	o.TokenFile = orDefault(o.TokenFile, DefaultTokenFile)
	if o.Now == nil {
		o.Now = time.Now
	}
	for _, s := range senders {
		for _, had := range v.oidc {
			if had.Issuer == s.Issuer && had.Subject == s.Subject {
				return fmt.Errorf("trusted OIDC sender %q: %s from %s is already trusted as %q", s.Name, s.Subject, s.Issuer, had.Name)
			}
		}
		if _, ok := v.keys[s.Issuer]; ok {
			return fmt.Errorf("trusted OIDC sender %q: %s also names an Ed25519 sender", s.Name, s.Issuer)
		}
	}
	if v.issuers == nil {
		v.issuers = map[string]*keySet{}
	}
	for _, s := range senders {
		// Entries of one issuer share its key cache.
		if v.issuers[s.Issuer] == nil {
			v.issuers[s.Issuer] = &keySet{issuer: s.Issuer, opts: o}
		}
		v.oidc = append(v.oidc, s)
	}
	return nil
}

// ParseVerifier builds the verifier of SKYFLOW_TRUSTED_SENDERS (Ed25519
// keys, see ParseTrusted) and SKYFLOW_TRUSTED_OIDC (see TrustOIDC); either
// may be empty, not both.
func ParseVerifier(trustedSenders, trustedOIDC string, o OIDCOptions) (*Verifier, error) {
	if strings.TrimSpace(trustedSenders) == "" && strings.TrimSpace(trustedOIDC) == "" {
		return nil, errors.New("no trusted senders and no trusted OIDC senders: every event would be refused")
	}
	v := NewVerifier()
	if strings.TrimSpace(trustedSenders) != "" {
		var err error
		if v, err = ParseTrusted(trustedSenders); err != nil {
			return nil, err
		}
	}
	if err := v.TrustOIDC(trustedOIDC, o); err != nil {
		return nil, err
	}
	if len(v.keys) == 0 && len(v.oidc) == 0 {
		return nil, errors.New("no trusted senders: every event would be refused")
	}
	return v, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// isOIDC reports whether token claims to come from a trusted OIDC issuer;
// the claim is only a routing hint, checked by verifyOIDC.
func (v *Verifier) isOIDC(token string) bool {
	if len(v.issuers) == 0 {
		return false
	}
	var c jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &c); err != nil {
		return false
	}
	return v.issuers[c.Issuer] != nil
}

// verifyOIDC checks a token of a trusted OIDC issuer delivered to function.
func (v *Verifier) verifyOIDC(token, function string, now time.Time) (*Claims, error) {
	var c jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		ks := v.issuers[c.Issuer]
		if ks == nil {
			return nil, errors.New("untrusted issuer")
		}
		kid, _ := t.Header["kid"].(string)
		return ks.keys(kid, t.Method.Alg())
	},
		jwt.WithValidMethods(oidcMethods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if ke := (*keysError)(nil); errors.As(err, &ke) {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, ke) // names the issuer and the failure, not the token
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, reason(err))
	}
	i := slices.IndexFunc(v.oidc, func(s OIDCSender) bool { return s.Issuer == c.Issuer && s.Subject == c.Subject })
	if i < 0 {
		return nil, fmt.Errorf("%w: it was issued to an identity that is not a trusted sender", ErrInvalid)
	}
	if !slices.Contains(c.Audience, v.oidc[i].AudienceFor(function)) {
		return nil, fmt.Errorf("%w: it is for another function", ErrInvalid)
	}
	// Callers know the sender by its name, as with the Ed25519 assertions.
	c.Issuer = v.oidc[i].Name
	return &Claims{RegisteredClaims: c}, nil
}

// keySet caches one issuer's keys, found through OIDC discovery.
type keySet struct {
	issuer string
	opts   OIDCOptions

	fetch     sync.Mutex // one fetch at a time; the others wait for its keys
	mu        sync.RWMutex
	set       []jwk
	fetched   time.Time // of the keys in set
	attempted time.Time // of the last fetch, failed or not
	failure   error     // of the last fetch
}

// keysError says why an issuer's keys could not be fetched.
type keysError struct {
	issuer string
	err    error
}

func (e *keysError) Error() string {
	return fmt.Sprintf("%v from %s: %v", ErrKeysUnavailable, e.issuer, e.err)
}
func (e *keysError) Unwrap() error { return ErrKeysUnavailable }

type jwk struct {
	kid, alg string
	key      crypto.PublicKey
}

// fits pins each key type to its algorithms, against algorithm confusion,
// and honours the key's own alg when it names one.
func (k jwk) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch key := k.key.(type) {
	case *rsa.PublicKey:
		return alg == "RS256" || alg == "RS384" || alg == "RS512"
	case *ecdsa.PublicKey:
		return alg == "ES256" && key.Curve == elliptic.P256() || alg == "ES384" && key.Curve == elliptic.P384()
	}
	return false
}

// keys returns the keys that may have signed a token with kid and alg
// (all that fit alg when the token names no kid), fetching the key set
// when it is stale or lacks them.
func (ks *keySet) keys(kid, alg string) (any, error) {
	now := ks.opts.Now()
	found, fresh := ks.lookup(kid, alg, now)
	if len(found.Keys) > 0 && fresh {
		return found, nil
	}
	ks.fetch.Lock()
	defer ks.fetch.Unlock()
	// Another caller may have fetched while this one waited.
	now = ks.opts.Now()
	if found, fresh = ks.lookup(kid, alg, now); len(found.Keys) > 0 && fresh {
		return found, nil
	}
	ks.mu.RLock()
	recent := !ks.attempted.IsZero() && now.Sub(ks.attempted) < keysMinRefetch
	err := ks.failure
	ks.mu.RUnlock()
	if !recent {
		set, ferr := ks.get()
		ks.mu.Lock()
		ks.attempted, ks.failure, err = now, ferr, ferr
		if ferr == nil {
			ks.set, ks.fetched = set, now
		}
		ks.mu.Unlock()
		if ferr == nil {
			found, _ = ks.lookup(kid, alg, now)
		}
	}
	switch {
	case len(found.Keys) > 0:
		return found, nil // after a failed refresh, the last good keys
	case err != nil:
		return nil, &keysError{ks.issuer, err}
	}
	return nil, errors.New("no key of the issuer fits the token")
}

func (ks *keySet) lookup(kid, alg string, now time.Time) (jwt.VerificationKeySet, bool) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	var found jwt.VerificationKeySet
	for _, k := range ks.set {
		if (kid == "" || k.kid == kid) && k.fits(alg) {
			found.Keys = append(found.Keys, k.key)
		}
	}
	return found, !ks.fetched.IsZero() && now.Sub(ks.fetched) < keysRefresh
}

// get fetches the discovery document, then the key set it names.
func (ks *keySet) get() ([]jwk, error) {
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := ks.getJSON(strings.TrimSuffix(ks.issuer, "/")+"/.well-known/openid-configuration", &doc); err != nil {
		return nil, err
	}
	// OIDC Discovery 1.0 §4.3: the document must be the issuer's own.
	if doc.Issuer != ks.issuer {
		return nil, fmt.Errorf("the discovery document is for issuer %q", doc.Issuer)
	}
	if u, err := url.Parse(doc.JWKSURI); err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("the discovery document's jwks_uri %q is not an https URL", doc.JWKSURI)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := ks.getJSON(doc.JWKSURI, &set); err != nil {
		return nil, err
	}
	var out []jwk
	for _, raw := range set.Keys {
		// Keys of other types or uses are skipped: they can sign nothing here.
		if k, ok := parseJWK(raw); ok {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s has no RSA or EC signing key", doc.JWKSURI)
	}
	return out, nil
}

func (ks *keySet) getJSON(target string, into any) error {
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	// The pod's token goes only to the issuer's own origin.
	if sameOrigin(target, ks.issuer) {
		token, err := os.ReadFile(ks.opts.TokenFile)
		switch {
		case err == nil && len(strings.TrimSpace(string(token))) > 0:
			req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("service-account token: %w", err)
		}
	}
	resp, err := ks.opts.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", target, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDocument)).Decode(into); err != nil {
		return fmt.Errorf("GET %s: %w", target, err)
	}
	return nil
}

func sameOrigin(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && ua.Scheme == ub.Scheme && strings.EqualFold(ua.Host, ub.Host)
}

// parseJWK reads an RSA (2048 bits or more) or EC (P-256, P-384) signing key.
func parseJWK(raw json.RawMessage) (jwk, bool) {
	var j struct {
		Kty, Use, Kid, Alg, Crv, N, E, X, Y string
	}
	if json.Unmarshal(raw, &j) != nil || (j.Use != "" && j.Use != "sig") {
		return jwk{}, false
	}
	b64 := base64.RawURLEncoding.DecodeString
	k := jwk{kid: j.Kid, alg: j.Alg}
	switch j.Kty {
	case "RSA":
		n, err1 := b64(j.N)
		e, err2 := b64(j.E)
		if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
			return jwk{}, false
		}
		key := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if key.N.BitLen() < 2048 || key.E < 3 || key.E%2 == 0 {
			return jwk{}, false
		}
		k.key = key
	case "EC":
		curve, size := elliptic.P256(), 32
		switch j.Crv {
		case "P-256":
		case "P-384":
			curve, size = elliptic.P384(), 48
		default:
			return jwk{}, false
		}
		x, err1 := b64(j.X)
		y, err2 := b64(j.Y)
		if err1 != nil || err2 != nil || len(x) != size || len(y) != size {
			return jwk{}, false
		}
		// ParseUncompressedPublicKey refuses points off the curve.
		key, err := ecdsa.ParseUncompressedPublicKey(curve, slices.Concat([]byte{4}, x, y))
		if err != nil {
			return jwk{}, false
		}
		k.key = key
	default:
		return jwk{}, false
	}
	return k, true
}

// clusterClient trusts the system roots and, when mounted, the cluster CA.
func clusterClient(caFile string) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(caFile)
	switch {
	case err == nil:
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cluster CA %s: no PEM certificate", caFile)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: fetchTimeout}, nil
}
