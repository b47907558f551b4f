package passwords

import (
	_ "embed"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/skyflow-oss/skyflow/runtime/apierr"
)

// commonText lists, one a line and lower-cased, some of the passwords most
// often found in breach corpora that are long enough to pass MinLength
// (shorter ones are refused anyway). It is a speed bump against the first
// guesses of every attacker, not a breach database.
//
//go:embed common.txt
var commonText string

var common = func() map[string]bool {
	m := make(map[string]bool)
	for line := range strings.Lines(commonText) {
		if w := strings.TrimSpace(line); w != "" {
			m[w] = true
		}
	}
	return m
}()

// Check applies the rules for a new password and returns an *apierr.Error
// (400) saying which one it breaks: at most MaxLength bytes, valid UTF-8, at
// least MinLength characters, not only whitespace, and not one of the most
// common passwords (compared lower-cased). The message never contains the
// password.
//
// The length in characters is the count of code points, without Unicode
// normalisation: simple, and the same on every client.
func Check(password string) error {
	switch {
	case len(password) > MaxLength:
		return tooLong() // first: the other checks are linear in the length
	case !utf8.ValidString(password):
		return apierr.InvalidArgument("The password is not valid UTF-8 text.")
	case password != "" && strings.TrimFunc(password, unicode.IsSpace) == "":
		return apierr.InvalidArgument("The password cannot be only spaces: use at least %d characters that include letters, digits or symbols.", MinLength)
	case utf8.RuneCountInString(password) < MinLength:
		return apierr.InvalidArgument("The password is too short: use at least %d characters.", MinLength)
	case common[strings.ToLower(strings.TrimSpace(password))]:
		return apierr.InvalidArgument("The password is one of the most commonly used passwords, which attackers try first: choose another.")
	}
	return nil
}
