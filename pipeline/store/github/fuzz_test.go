package github

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzParseRepository: an accepted OWNER/REPO splits back into exactly the input, and nothing
// panics.
func FuzzParseRepository(f *testing.F) {
	for _, s := range []string{"calimero-network/mero-tee", "a/b", "a", "a/b/c", "/", "a/..", "ä/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		owner, repo, err := ParseRepository(s)
		if err != nil {
			return
		}
		if owner+"/"+repo != s || owner == "" || repo == "" || strings.Contains(repo, "/") {
			t.Fatalf("ParseRepository(%q) = %q, %q", s, owner, repo)
		}
	})
}

// FuzzValidateAssetName: an accepted name is one path element GitHub keeps as it is.
func FuzzValidateAssetName(f *testing.F) {
	for _, s := range []string{"checksums.sha256", "a.sigstore.json", ".x", "a b", "a/b", "x.", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateAssetName(s) != nil {
			return
		}
		if strings.ContainsAny(s, "/\\ \t\n") || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || len(s) > 255 {
			t.Fatalf("accepted %q", s)
		}
	})
}

// FuzzAskedWait: Retry-After and x-ratelimit-reset headers from a server never panic and
// never give a negative wait.
func FuzzAskedWait(f *testing.F) {
	for _, s := range []string{"7", "0", "-1", "Wed, 21 Oct 2015 07:28:00 GMT", "abc", "99999999999999999999", ""} {
		f.Add(s, "1700000000", "0")
	}
	f.Fuzz(func(t *testing.T, retryAfter, reset, remaining string) {
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		h.Set("X-Ratelimit-Reset", reset)
		h.Set("X-Ratelimit-Remaining", remaining)
		if d, ok := askedWait(&http.Response{Header: h}); ok && (d < 0 || d > longestAsk+time.Second) {
			t.Fatalf("wait %v out of range", d)
		}
	})
}
