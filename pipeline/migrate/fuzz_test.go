package migrate_test

import (
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"unicode/utf8"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"

	"github.com/calimero-network/mero-release/pipeline/migrate"
	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// FuzzShellQuote: whatever a value holds (a policy URL comes from a flag), the export line a
// shell reads gives back exactly that value, and nothing in it is executed or expanded.
func FuzzShellQuote(f *testing.F) {
	for _, s := range []string{"", "1.3.0", "it's", "'''", `$(id)`, "`id`", "a\nb", `\'`, "${HOME}", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsRune(s, 0) || !utf8.ValidString(s) {
			// No environment value holds a NUL byte; the Go shell parser reads UTF-8 only (single
			// quotes are byte-transparent in sh, which TestExportsRoundTripThroughAShell runs).
			return
		}
		if goParserRewrites(s) {
			shellRoundTrip(t, s)
			return
		}
		file, err := syntax.NewParser().Parse(strings.NewReader("export V="+migrate.ShellQuote(s)+"\n"), "")
		if err != nil {
			t.Fatalf("ShellQuote(%q) = %s does not parse: %v", s, migrate.ShellQuote(s), err)
		}
		if len(file.Stmts) != 1 {
			t.Fatalf("ShellQuote(%q) makes %d statements", s, len(file.Stmts))
		}
		decl, ok := file.Stmts[0].Cmd.(*syntax.DeclClause)
		if !ok || len(decl.Args) != 1 || decl.Args[0].Value == nil {
			t.Fatalf("ShellQuote(%q): not one export assignment", s)
		}
		for _, part := range decl.Args[0].Value.Parts {
			if _, ok := part.(*syntax.SglQuoted); !ok {
				if _, lit := part.(*syntax.Lit); !lit {
					t.Fatalf("ShellQuote(%q): part %T would be expanded", s, part)
				}
			}
		}
		fields, err := expand.Fields(&expand.Config{}, decl.Args[0].Value)
		if err != nil || len(fields) != 1 || fields[0] != s {
			t.Fatalf("ShellQuote(%q) reads back as %q (%v)", s, fields, err)
		}
	})
}

// goParserRewrites reports whether mvdan.cc/sh's lexer reads s as something else than a shell
// does, even inside single quotes: it uses U+0080 (utf8.RuneSelf) and U+0081 as its end-of-input
// and escaped-newline markers, and turns "\r\n" into "\n" (sh keeps the "\r"). Such a value is
// judged by a real shell instead.
func goParserRewrites(s string) bool {
	return strings.ContainsAny(s, "\u0080\u0081") || strings.Contains(s, "\r\n")
}

// shellRoundTrip checks with /bin/sh that the export line of s gives back exactly s.
func shellRoundTrip(t *testing.T, s string) {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	out, err := exec.Command(sh, "-c", "export V="+migrate.ShellQuote(s)+"\n"+`printf '%s' "$V"`).Output()
	if err != nil || string(out) != s {
		t.Fatalf("ShellQuote(%q) reads back in sh as %q (%v)", s, out, err)
	}
}

// FuzzAssetLocator: a policy URL base or store spec from the command line gives a usage error
// or a URL that parses and whose path names the tag and ends with the asset.
func FuzzAssetLocator(f *testing.F) {
	for _, s := range [][2]string{{"https://mirror.example.com/kms", ""}, {"", "github:a/b"}, {"", "dir:/srv/r"}, {"file:///x", ""}, {"http://h/%zz", ""}, {"", "dir:"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, base, spec string) {
		l := migrate.AssetLocator{Base: base, StoreSpec: spec}
		got, err := l.URL("mero-kms-v1.3.0", "attestation-policy-debug.json")
		if err != nil {
			if outcome.Code(err) != outcome.Usage {
				t.Fatalf("%+v: %v is not a usage error", l, err)
			}
			return
		}
		u, perr := url.Parse(got)
		if perr != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") {
			t.Fatalf("%+v gives %q (%v)", l, got, perr)
		}
		if !strings.HasSuffix(u.Path, "/attestation-policy-debug.json") || !strings.Contains(u.Path, "/mero-kms-v1.3.0/") {
			t.Fatalf("%+v gives %q, whose path %q does not name the tag and the asset", l, got, u.Path)
		}
	})
}
