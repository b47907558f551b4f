package main

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/skyflow-oss/skyflow/functions/gateway/edge/ratelimit"
	"github.com/skyflow-oss/skyflow/runtime/config"
)

// DefaultLimits are the rate limits when SKYFLOW_RATE_LIMITS sets none:
// per principal for data and management, per client address for the
// anonymous routes (auth: log in, register, token exchange). The data
// limit is sized for a backend service: one API key of an application
// carries that application's whole traffic, so it stops a runaway client
// rather than shaping normal load.
const DefaultLimits = "data=5000/s:10000,management=20/s:40,auth=10/s:20,anonymous=50/s:100"

// Settings are the gateway's settings, read from the environment.
type Settings struct {
	DatabaseURL   string // DATABASE_URL: API keys
	RedisURL      string // REDIS_URL: rate limits, response cache, deny list
	RedisPrefix   string // REDIS_PREFIX (default skyflow:)
	SenderKey     string // SKYFLOW_SENDER_KEY: the gateway's Ed25519 seed (base64)
	TokenIssuer   string // SKYFLOW_TOKEN_ISSUER (default skyflow)
	TokenAudience string // SKYFLOW_TOKEN_AUDIENCE (default skyflow-api)
	// FunctionURLs (SKYFLOW_FUNCTION_URLS, name=url,…) wins over
	// FunctionURLTemplate (SKYFLOW_FUNCTION_URL_TEMPLATE, {name} replaced;
	// default the cluster-local Knative address).
	FunctionURLs        map[string]string
	FunctionURLTemplate string
	UpstreamTimeout     time.Duration // SKYFLOW_UPSTREAM_TIMEOUT (default 60s)
	MaxBodyBytes        int64         // SKYFLOW_MAX_BODY_BYTES (default 1 MiB): larger bodies get 413
	Limits              map[string]ratelimit.Limit
	CORSOrigins         []string       // SKYFLOW_CORS_ORIGINS: browser origins allowed ("*" for any)
	TrustedProxies      []netip.Prefix // SKYFLOW_TRUSTED_PROXIES: whose X-Forwarded-For names the client
	// ExtraRoutesFile (SKYFLOW_EXTRA_ROUTES) adds routes to an operator's
	// own functions, in the form of routes.yaml.
	ExtraRoutesFile string
}

// LoadSettings reads the settings, reporting every bad value at once.
func LoadSettings(env *config.Env) (Settings, error) {
	s := Settings{
		DatabaseURL:         env.Required("DATABASE_URL", "the PostgreSQL server of the API keys (postgres://…)"),
		RedisURL:            env.Required("REDIS_URL", "the Redis server (redis://…)"),
		RedisPrefix:         env.String("REDIS_PREFIX", "skyflow:"),
		SenderKey:           env.Required("SKYFLOW_SENDER_KEY", "the gateway's Ed25519 signing seed (base64)"),
		TokenIssuer:         env.String("SKYFLOW_TOKEN_ISSUER", "skyflow"),
		TokenAudience:       env.String("SKYFLOW_TOKEN_AUDIENCE", "skyflow-api"),
		FunctionURLTemplate: env.String("SKYFLOW_FUNCTION_URL_TEMPLATE", "http://{name}.skyflow.svc.cluster.local"),
		UpstreamTimeout:     env.Duration("SKYFLOW_UPSTREAM_TIMEOUT", 60*time.Second),
		MaxBodyBytes:        int64(env.Int("SKYFLOW_MAX_BODY_BYTES", 1<<20)),
		ExtraRoutesFile:     env.String("SKYFLOW_EXTRA_ROUTES", ""),
	}
	urls, limits := env.String("SKYFLOW_FUNCTION_URLS", ""), env.String("SKYFLOW_RATE_LIMITS", DefaultLimits)
	origins, proxies := env.String("SKYFLOW_CORS_ORIGINS", ""), env.String("SKYFLOW_TRUSTED_PROXIES", "")
	if err := env.Err(); err != nil {
		return s, err
	}
	var err error
	if s.FunctionURLs, err = parseFunctionURLs(urls); err != nil {
		return s, err
	}
	if s.Limits, err = ratelimit.ParseLimits(limits); err != nil {
		return s, fmt.Errorf("configuration: SKYFLOW_RATE_LIMITS: %w", err)
	}
	for _, class := range []string{"data", "management", "auth", "anonymous"} {
		if _, ok := s.Limits[class]; !ok {
			return s, fmt.Errorf("configuration: SKYFLOW_RATE_LIMITS: no limit for class %q (the route table uses data, management, auth, anonymous)", class)
		}
	}
	for _, o := range strings.Split(origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			s.CORSOrigins = append(s.CORSOrigins, o)
		}
	}
	for _, p := range strings.Split(proxies, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			return s, fmt.Errorf("configuration: SKYFLOW_TRUSTED_PROXIES: %q is not a CIDR prefix such as 10.0.0.0/8", p)
		}
		s.TrustedProxies = append(s.TrustedProxies, prefix)
	}
	return s, nil
}

func parseFunctionURLs(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, entry := range strings.Split(s, ",") {
		if entry = strings.TrimSpace(entry); entry == "" {
			continue
		}
		name, raw, ok := strings.Cut(entry, "=")
		u, err := url.Parse(raw)
		if !ok || err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("configuration: SKYFLOW_FUNCTION_URLS: %q is not name=http://host:port", entry)
		}
		out[name] = raw
	}
	return out, nil
}

// FunctionURL is where a function takes its events.
func (s Settings) FunctionURL(name string) string {
	if u, ok := s.FunctionURLs[name]; ok {
		return u
	}
	return strings.ReplaceAll(s.FunctionURLTemplate, "{name}", name)
}
