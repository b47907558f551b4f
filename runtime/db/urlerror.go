package db

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrInvalidURL is wrapped by the errors [Open] and [ParseConfig] return for
// a connection string that cannot be parsed.
var ErrInvalidURL = errors.New("db: invalid database URL")

// parseError turns a pgx parse error into one that never contains the
// password. It does not wrap err: pgconn.ParseConfigError keeps the raw
// connection string in a public field.
func parseError(connString string, err error) error {
	reason := "cannot parse"
	var pce *pgconn.ParseConfigError
	if errors.As(err, &pce) {
		reason = pgxReason(pce)
	}
	if isURL(connString) {
		if _, err := url.Parse(connString); err != nil {
			// Its error quotes the raw URL, so only say what to do.
			reason += " (percent-encode any special characters in the user name and password)"
		}
	}
	shown := ""
	if r := redacted(connString); r != "" {
		shown = fmt.Sprintf(" %q", r)
	}
	msg := scrub(fmt.Sprintf("%s: %s", shown, reason), connString)
	return fmt.Errorf("%w%s", ErrInvalidURL, msg)
}

// Reasons whose inner error quotes only a setting's value, never the
// password, and so may be shown.
var showInner = []string{"cannot parse pool_", "failed to configure TLS", "invalid connect_timeout", "invalid sslcertmode"}

// pgxReason extracts pgx's own message from "cannot parse `<conn>`: msg
// (inner)", dropping the connection string and, unless it is known to be
// harmless, the inner error.
func pgxReason(pce *pgconn.ParseConfigError) string {
	full := pce.Error()
	inner := ""
	if u := pce.Unwrap(); u != nil {
		inner = u.Error()
		full = strings.TrimSuffix(full, " ("+inner+")")
	}
	i := strings.LastIndex(full, "`: ")
	if i < 0 {
		return "cannot parse"
	}
	reason := full[i+len("`: "):]
	for _, p := range showInner {
		if inner != "" && strings.HasPrefix(reason, p) {
			reason += " (" + inner + ")"
			break
		}
	}
	return reason
}

// redacted returns connString with every password masked, or "" when it is
// not a URL that parses cleanly (then nothing of it is shown).
func redacted(connString string) string {
	if !isURL(connString) {
		return ""
	}
	u, err := url.Parse(connString)
	if err != nil {
		return ""
	}
	q := u.Query()
	for k := range q {
		if isPasswordKey(k) {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

var kvPassword = regexp.MustCompile(`(?i)(?:^|\s)(?:ssl)?password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// scrub replaces any password found in connString by "xxxxx" in msg: a last
// line of defence should a message ever quote the connection string.
func scrub(msg, connString string) string {
	var secrets []string
	if isURL(connString) {
		if u, err := url.Parse(connString); err == nil {
			if p, ok := u.User.Password(); ok {
				secrets = append(secrets, p)
			}
			for k, vs := range u.Query() {
				if isPasswordKey(k) {
					secrets = append(secrets, vs...)
				}
			}
		}
		// The raw text between "scheme://user:" and the last "@", as typed.
		rest := connString[strings.Index(connString, "://")+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if colon := strings.Index(rest[:at], ":"); colon >= 0 {
				secrets = append(secrets, rest[colon+1:at])
			}
		}
	} else {
		for _, m := range kvPassword.FindAllStringSubmatch(connString, -1) {
			secrets = append(secrets, strings.Trim(m[1], "'"))
		}
	}
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return msg
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

func isPasswordKey(k string) bool {
	k = strings.ToLower(k)
	return k == "password" || k == "sslpassword"
}

var kvKey = regexp.MustCompile(`^[A-Za-z_]+$`)

// hasParam reports whether connString sets the parameter key explicitly.
func hasParam(connString, key string) bool {
	if !kvKey.MatchString(key) {
		return false
	}
	if isURL(connString) {
		u, err := url.Parse(connString)
		return err == nil && u.Query().Has(key)
	}
	return regexp.MustCompile(`(?:^|\s)` + key + `\s*=`).MatchString(connString)
}
