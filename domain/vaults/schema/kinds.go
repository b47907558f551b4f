package schema

import (
	"net/mail"
	"regexp"
	"sync"
	"sync/atomic"
	"time"
)

// checkValidation applies the column's validation to a value's text and
// returns a message (without the value) saying what was expected, or "".
func (c *Column) checkValidation(text string) string {
	val := c.Validation
	if val == nil {
		return ""
	}
	if val.Regex != "" {
		re, err := compileAnchored(val.Regex)
		if err != nil || !re.MatchString(text) {
			return "does not match the pattern the vault schema sets for it; check the value's format"
		}
		return ""
	}
	switch val.Kind {
	case KindCardNumber:
		if !validCardNumber(text) {
			return "expects a card number: 12 to 19 digits, optionally grouped with spaces or dashes, with a valid check digit"
		}
	case KindSSN:
		if !validSSN(text) {
			return "expects a US social security number in the form AAA-GG-SSSS (area not 000, 666 or 9xx; group not 00; serial not 0000)"
		}
	case KindEmail:
		if !validEmail(text) {
			return "expects an email address such as name@example.com, without a display name or angle brackets, at most 254 characters"
		}
	case KindPhoneE164:
		if !validE164(text) {
			return "expects a phone number in E.164 form: + then 8 to 15 digits, the first not 0, with no spaces (e.g. +14155552671)"
		}
	case KindDate:
		if !validDate(text) {
			return "expects a date in the form YYYY-MM-DD (e.g. 2024-01-31)"
		}
	}
	return ""
}

// validCardNumber: 12–19 digits, single spaces or dashes between digits
// allowed, and the Luhn check digit right.
func validCardNumber(s string) bool {
	digits, sum := 0, 0
	// Walk from the right so that every second digit is doubled.
	for i := len(s) - 1; i >= 0; i-- {
		ch := s[i]
		switch {
		case ch >= '0' && ch <= '9':
			d := int(ch - '0')
			if digits%2 == 1 {
				d *= 2
				if d > 9 {
					d -= 9
				}
			}
			sum += d
			digits++
		case ch == ' ' || ch == '-':
			if i == 0 || i == len(s)-1 || s[i-1] == ' ' || s[i-1] == '-' {
				return false
			}
		default:
			return false
		}
	}
	return digits >= 12 && digits <= 19 && sum%10 == 0
}

// validSSN: AAA-GG-SSSS with the numbers the SSA never issues refused.
func validSSN(s string) bool {
	if len(s) != 11 || s[3] != '-' || s[6] != '-' {
		return false
	}
	for i, ch := range []byte(s) {
		if i == 3 || i == 6 {
			continue
		}
		if ch < '0' || ch > '9' {
			return false
		}
	}
	area, group, serial := s[0:3], s[4:6], s[7:11]
	return area != "000" && area != "666" && area[0] != '9' && group != "00" && serial != "0000"
}

// validEmail: an RFC 5322 addr-spec exactly as net/mail parses it, so a
// display name, angle brackets or comments are refused.
func validEmail(s string) bool {
	if len(s) > 254 {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s
}

func validE164(s string) bool {
	if len(s) < 9 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for _, ch := range []byte(s[1:]) {
		if ch < '0' || ch > '9' {
			return false
		}
	}
	return true
}

// validDate: YYYY-MM-DD naming a real day (time.Parse refuses 2023-02-29).
func validDate(s string) bool {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return false
	}
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

// Compiled regexes are cached by source: the same few schemas' patterns
// are applied on every write. The cache is bounded in case schemas churn.
var (
	regexCache     sync.Map // source → *regexp.Regexp
	regexCacheSize atomic.Int64
)

const maxCachedRegexes = 4096

// compileAnchored compiles a validation regex so that it must match the
// whole value. Callers have checked that src compiles on its own, so the
// wrapping cannot change its meaning (an unbalanced ")" in src could).
func compileAnchored(src string) (*regexp.Regexp, error) {
	if re, ok := regexCache.Load(src); ok {
		return re.(*regexp.Regexp), nil
	}
	if _, err := regexp.Compile(src); err != nil {
		return nil, err
	}
	re, err := regexp.Compile(`^(?:` + src + `)$`)
	if err != nil {
		return nil, err
	}
	if regexCacheSize.Load() < maxCachedRegexes {
		if _, loaded := regexCache.LoadOrStore(src, re); !loaded {
			regexCacheSize.Add(1)
		}
	}
	return re, nil
}
