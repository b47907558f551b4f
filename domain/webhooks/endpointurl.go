package webhooks

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
	"github.com/skyflow-oss/skyflow/runtime/safehttp"
)

// Limits of an endpoint's URL and description.
const (
	MaxURLLength         = 2048
	MaxDescriptionLength = 500
	// resolveTimeout bounds the name lookup at subscribe time.
	resolveTimeout = 5 * time.Second
)

// ParseURL checks an endpoint URL's form: absolute http or https, a host,
// no user information, no fragment, at most MaxURLLength bytes, printable
// ASCII. It returns the URL as it will be used. Messages never echo the
// URL: it may carry a token.
func ParseURL(raw string) (*url.URL, error) {
	switch {
	case raw == "":
		return nil, apierr.InvalidArgument("url is required: the https URL the deliveries are POSTed to")
	case len(raw) > MaxURLLength:
		return nil, apierr.InvalidArgument("url is longer than %d characters", MaxURLLength)
	}
	for _, r := range raw {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' ' {
			return nil, apierr.InvalidArgument("url must be printable ASCII without spaces: percent-encode other characters and write an internationalized host name in its xn-- form")
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, apierr.InvalidArgument("url is not a valid URL")
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, apierr.InvalidArgument("url must be an https (or http) URL")
	case u.Opaque != "" || u.Host == "":
		return nil, apierr.InvalidArgument("url must be absolute, such as https://hooks.example.com/skyflow")
	case u.User != nil:
		return nil, apierr.InvalidArgument("url must not carry a user name or password (user:password@host): check the signature to authenticate deliveries instead")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, apierr.InvalidArgument("url must not have a #fragment: it is never sent")
	}
	host := u.Hostname()
	if host == "" {
		return nil, apierr.InvalidArgument("url has no host")
	}
	if port := u.Port(); port != "" {
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return nil, apierr.InvalidArgument("url has an invalid port")
		}
	}
	if strings.HasPrefix(u.Host, "[") && strings.Contains(host, "%") {
		return nil, apierr.InvalidArgument("url must not name an IPv6 zone")
	}
	return u, nil
}

// CheckDestination resolves the URL's host and refuses it when the policy
// does (safehttp): an internal address, or a name that resolves to one.
// The message names the host and why, never the whole URL.
func CheckDestination(ctx context.Context, policy *safehttp.Policy, resolver *net.Resolver, u *url.URL) error {
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	err := policy.CheckHost(ctx, resolver, u.Hostname())
	var refused *safehttp.RefusedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &refused):
		return apierr.InvalidArgument("url is refused: its host %s is %s. Webhooks deliver to public addresses only; an operator can allow an internal network with SKYFLOW_WEBHOOK_ALLOWED_NETWORKS", refused.Host, refused.Reason)
	case errors.Is(err, safehttp.ErrUnresolvable):
		return apierr.InvalidArgument("url is refused: its host %s does not resolve; subscribe once it does", u.Hostname())
	}
	return apierr.InvalidArgument("url is refused: its host could not be checked")
}
