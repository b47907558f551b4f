package schema

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode"
)

// maxMaskShow bounds n and m in SHOW_LAST_<n> and SHOW_FIRST_<n>_LAST_<m>:
// a mask that shows more than that is not much of a mask.
const maxMaskShow = 32

// maskSpec is a parsed mask: the EMAIL mask, or how many letters and
// digits to leave visible at each end.
type maskSpec struct {
	email       bool
	first, last int
}

// parseMask reads a column's mask; ok is false for an unknown one.
func parseMask(s string) (m maskSpec, ok bool) {
	switch {
	case s == "" || s == "SHOW_NONE":
		return maskSpec{}, true
	case s == "EMAIL":
		return maskSpec{email: true}, true
	case strings.HasPrefix(s, "SHOW_LAST_"):
		n, ok := maskCount(strings.TrimPrefix(s, "SHOW_LAST_"))
		return maskSpec{last: n}, ok
	case strings.HasPrefix(s, "SHOW_FIRST_"):
		first, last, found := strings.Cut(strings.TrimPrefix(s, "SHOW_FIRST_"), "_LAST_")
		if !found {
			return maskSpec{}, false
		}
		f, okF := maskCount(first)
		l, okL := maskCount(last)
		return maskSpec{first: f, last: l}, okF && okL
	}
	return maskSpec{}, false
}

// maskCount reads n in a mask: plain decimal (no sign, no leading zeros)
// from 0 to maxMaskShow, so that each mask has one spelling.
func maskCount(s string) (int, bool) {
	if s == "" || len(s) > 2 || (len(s) > 1 && s[0] == '0') || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n <= maxMaskShow
}

// Masked is what a MASKED read answers: the JSON string of the value's
// text under the column's mask.
//
//   - "" or SHOW_NONE: every letter and digit becomes X; separators stay,
//     so the shape shows (123-45-6789 → XXX-XX-XXXX).
//   - SHOW_LAST_<n>: all letters and digits but the last n become X
//     (4155558889 → XXXXXX8889, 123-45-6789 → XXX-XX-6789).
//   - SHOW_FIRST_<n>_LAST_<m>: all but the first n and last m.
//   - EMAIL: the local part keeps its first and last character and the
//     rest becomes *; the domain stays (sallyy@gmail.com → s****y@gmail.com).
//     A local part of 1 or 2 characters is all *; text without an @ is
//     masked as SHOW_NONE.
//
// A value with no more letters and digits than the mask would show is
// masked entirely: a mask never gives away a whole value. An unknown mask
// (Validate refuses those) masks as SHOW_NONE.
func (c *Column) Masked(v Value) json.RawMessage {
	m, ok := parseMask(c.Mask)
	if !ok {
		m = maskSpec{}
	}
	return encodeString(m.apply(v.Text))
}

func (m maskSpec) apply(text string) string {
	if m.email {
		if at := strings.LastIndexByte(text, '@'); at > 0 {
			return maskLocalPart(text[:at]) + text[at:]
		}
		return maskSpec{}.apply(text)
	}
	total := 0
	for _, r := range text {
		if hidden(r) {
			total++
		}
	}
	show := m.first + m.last
	first, last := m.first, m.last
	if show >= total {
		first, last = 0, 0
	}
	var b strings.Builder
	b.Grow(len(text))
	i := 0
	for _, r := range text {
		if !hidden(r) {
			b.WriteRune(r)
			continue
		}
		if i < first || i >= total-last {
			b.WriteRune(r)
		} else {
			b.WriteByte('X')
		}
		i++
	}
	return b.String()
}

// hidden reports whether a mask hides r: letters and digits carry the
// value; everything else is a separator that only shows its shape.
func hidden(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r)
}

func maskLocalPart(local string) string {
	r := []rune(local)
	if len(r) <= 2 {
		return strings.Repeat("*", len(r))
	}
	return string(r[0]) + strings.Repeat("*", len(r)-2) + string(r[len(r)-1])
}
