// Package notify turns Skyflow's domain events into notices for people:
// who gets one (users, by id), of which kind, and what it says, and sends
// them on the email ([Emailer]: an SMTP relay, the templates) and Web Push
// ([Pusher]) channels. Both channels share the event → notice mapping,
// the users' channel preferences, and the claims in notifications_sent
// that make a redelivered event send nothing twice.
//
// Domain logic lives in domain/, and the notify-email and notify-push
// function folders are thin adapters: they check who sent the event and
// hand it to their channel here.
//
// A notice carries identifiers and names only: never a token, a record
// value, a secret, an API key (its name and prefix only) or a webhook's
// full URL (its origin only: such URLs often embed a secret).
//
// Kinds and defaults: a user's preferences (users.preferences, kind →
// channels, set with PUT /v1/users/me/preferences) say on which channels a
// kind of notice reaches them. A kind the preferences do not name falls
// back to Defaults; a kind mapped to an empty list is opted out of. The
// account kind (the verification email) is transactional: always sent, by
// email, whatever the preferences say.
package notify

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kinds of notices.
const (
	// KindAccount is the verification email: always sent, by email only.
	KindAccount = "account"
	// KindSecurity: an account locked after failed logins, a new API key
	// on a service account the user made or made by the user.
	KindSecurity = "security"
	// KindWebhooks: a webhook endpoint of the user's was disabled.
	KindWebhooks = "webhooks"
)

// Channels.
const (
	ChannelEmail = "email"
	ChannelPush  = "push"
)

// Defaults are the channels of a kind a user's preferences do not name;
// domain/identity's DefaultPreferences say the same (a test checks).
var Defaults = map[string][]string{
	KindSecurity: {ChannelEmail},
	KindWebhooks: {ChannelEmail},
}

// Channels are the channels a user with prefs gets notices of kind on.
func Channels(prefs map[string][]string, kind string) []string {
	if kind == KindAccount {
		return []string{ChannelEmail}
	}
	if chs, ok := prefs[kind]; ok {
		return chs // an empty list: opted out
	}
	return Defaults[kind]
}

// Wants reports whether a user with prefs gets notices of kind on channel.
func Wants(prefs map[string][]string, kind, channel string) bool {
	return slices.Contains(Channels(prefs, kind), channel)
}

// safeText keeps a short free-text field (a reason) only when it is plain:
// printable, without markup or URLs, at most max characters; otherwise it
// is replaced by fallback. Such fields come from other services and must
// not smuggle a value or a link into a message.
func safeText(s string, max int, fallback string) string {
	s = strings.TrimSpace(s)
	if s == "" || utf8.RuneCountInString(s) > max || strings.Contains(s, "://") {
		return fallback
	}
	for _, r := range s {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(" _-.,:;()'/", r)) {
			return fallback
		}
	}
	return s
}
