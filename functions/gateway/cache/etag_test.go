package cache_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/skyflow-oss/skyflow/functions/gateway/cache"
)

func TestETag(t *testing.T) {
	a, b := cache.ETag([]byte("a")), cache.ETag([]byte("b"))
	for _, e := range []string{a, b, cache.ETag(nil)} {
		if !regexp.MustCompile(`^"[A-Za-z0-9_-]{27}"$`).MatchString(e) {
			t.Errorf("ETag = %s, want a quoted 27-character base64url string", e)
		}
	}
	if a == b {
		t.Errorf("ETag(a) = ETag(b) = %s", a)
	}
	if again := cache.ETag([]byte("a")); again != a {
		t.Errorf("ETag(a) = %s, then %s", a, again)
	}
	if !cache.NotModified(a, a) {
		t.Errorf("NotModified(%s, %s) = false, want true", a, a)
	}
}

func TestNotModified(t *testing.T) {
	const etag = `"abc"`
	for _, tc := range []struct {
		name, inm, etag string
		want            bool
	}{
		{"exact", `"abc"`, etag, true},
		{"mismatched", `"abd"`, etag, false},
		{"prefix only", `"ab"`, etag, false},
		{"unquoted", `abc`, etag, false},
		{"empty header", ``, etag, false},
		{"blank header", "  \t", etag, false},
		{"star", `*`, etag, true},
		{"star with spaces", ` * `, etag, true},
		{"star without a current tag", `*`, ``, false},
		{"star in a list", `"x", *`, etag, false},
		{"list, first", `"abc", "x"`, etag, true},
		{"list, last", `"x","y" ,  "abc"`, etag, true},
		{"list, none", `"x", "y"`, etag, false},
		{"list with empty elements", `, ,"x",,"abc",`, etag, true},
		{"list with tabs", "\t\"x\",\t\"abc\"\t", etag, true},
		{"weak request tag", `W/"abc"`, etag, true},
		{"weak current tag", `"abc"`, `W/"abc"`, true},
		{"both weak", `W/"x", W/"abc"`, `W/"abc"`, true},
		{"lower-case w is not weak", `w/"abc"`, etag, false},
		{"comma inside a tag", `"a,b"`, `"a,b"`, true},
		{"comma inside a tag, split", `"a", "b"`, `"a,b"`, false},
		{"empty opaque tag", `""`, `""`, true},
		{"empty current tag", `"abc"`, ``, false},
		{"unquoted current tag", `abc`, `abc`, false},
		{"unterminated", `"abc`, etag, false},
		{"fault after a match", `"abc" junk`, etag, true},
		{"match after a fault", `junk, "abc"`, etag, false},
		{"missing comma", `"x" "abc"`, etag, false},
		{"space inside", `"ab c"`, `"ab c"`, false},
		{"obs-text", "\"\xe9t\xe9\"", "\"\xe9t\xe9\"", true},
		{"generated tag", cache.ETag([]byte("body")), cache.ETag([]byte("body")), true},
		{"generated tag, other body", cache.ETag([]byte("body")), cache.ETag([]byte("Body")), false},
	} {
		if got := cache.NotModified(tc.inm, tc.etag); got != tc.want {
			t.Errorf("%s: NotModified(%q, %q) = %v, want %v", tc.name, tc.inm, tc.etag, got, tc.want)
		}
	}
}

func FuzzNotModified(f *testing.F) {
	for _, s := range [][2]string{
		{`"abc"`, `"abc"`}, {`*`, `"abc"`}, {`W/"a", "b"`, `"b"`}, {``, ``}, {`"`, `"`},
		{`W/`, `W/"`}, {`,,,`, `"x"`}, {"\"\x80\"", "\"\x80\""}, {`"a" x`, `"a"`},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, inm, etag string) {
		got := cache.NotModified(inm, etag)
		if !got {
			return
		}
		// A match needs a current tag, and is either "*" or that tag's
		// opaque part (quotes and all) written in the request.
		if etag == "" {
			t.Fatalf("NotModified(%q, %q) = true with no current tag", inm, etag)
		}
		opaque := strings.TrimPrefix(strings.Trim(etag, " \t"), "W/")
		if strings.Trim(inm, " \t") != "*" && !strings.Contains(inm, opaque) {
			t.Fatalf("NotModified(%q, %q) = true, but %s is not in the request", inm, etag, opaque)
		}
		// Weakness does not change a match.
		if !cache.NotModified(inm, "W/"+opaque) || !cache.NotModified(inm, opaque) {
			t.Fatalf("NotModified(%q, %q) = true, but not for the weak and strong forms of %s", inm, etag, opaque)
		}
	})
}
