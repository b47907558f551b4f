package cache

import (
	"crypto/sha256"
	"encoding/base64"
)

// ETag returns a strong entity tag for body, quoted as in the ETag header:
// 162 bits of its SHA-256 in base64url, enough that two bodies never share
// one, short enough for every request's If-None-Match.
func ETag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:])[:27] + `"`
}

// NotModified reports whether a GET with the If-None-Match field value
// ifNoneMatch, for a resource whose current entity tag is etag, is to be
// answered 304 Not Modified (RFC 9110, 13.1.2): the value is "*" or a
// comma-separated list of entity tags one of which matches etag by weak
// comparison (a W/ prefix on either side is ignored). A request with several
// If-None-Match lines must have them joined with ", ". An empty or malformed
// etag matches nothing, and a malformed list matches only by the tags before
// the fault.
func NotModified(ifNoneMatch, etag string) bool {
	cur, rest, ok := scanETag(etag)
	if !ok || trimOWS(rest) != "" {
		return false
	}
	v := trimOWS(ifNoneMatch)
	if v == "*" {
		return true
	}
	for v != "" {
		if v[0] == ',' { // empty list elements are allowed (RFC 9110, 5.6.1.2)
			v = trimOWS(v[1:])
			continue
		}
		tag, rest, ok := scanETag(v)
		if !ok {
			return false
		}
		if opaque(tag) == opaque(cur) {
			return true
		}
		v = trimOWS(rest)
		if v != "" && v[0] != ',' {
			return false
		}
	}
	return false
}

// scanETag reads the entity tag at the start of s:
//
//	entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE
//	etagc      = %x21 / %x23-7E / obs-text
func scanETag(s string) (tag, rest string, ok bool) {
	start := 0
	if len(s) >= 2 && s[0] == 'W' && s[1] == '/' {
		start = 2
	}
	if len(s) < start+2 || s[start] != '"' {
		return "", "", false
	}
	for i := start + 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return s[:i+1], s[i+1:], true
		case c == 0x21 || c >= 0x23 && c <= 0x7e || c >= 0x80:
		default:
			return "", "", false
		}
	}
	return "", "", false
}

// opaque drops the weakness indicator, for weak comparison.
func opaque(tag string) string {
	if len(tag) >= 2 && tag[0] == 'W' && tag[1] == '/' {
		return tag[2:]
	}
	return tag
}

// trimOWS trims optional whitespace (spaces and tabs) from both ends.
func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
