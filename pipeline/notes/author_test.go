package notes

import (
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

const authorFile = "# Title the author wrote\n" +
	"\n" +
	"A summary paragraph.\n" +
	"\n" +
	"## upgrade PATH\n" +
	"\n" +
	"Roll the KMS first.\n" +
	"\n" +
	"```sh\n" +
	"## not a heading: inside a fence\n" +
	"mero-release catalog query\n" +
	"```\n" +
	"\n" +
	"### Details stay in the section\n" +
	"\n" +
	"More text.\n" +
	"\n" +
	"##   Breaking   changes ##\n" +
	"- The `/attest` body needs `nonceB64`.\n" +
	"##Not a heading either\n" +
	"## Highlights\n" +
	"Faster key release.\n" +
	"## Rollback\n" +
	"\n"

func TestParse(t *testing.T) {
	n, err := Parse(strings.NewReader(authorFile))
	if err != nil {
		t.Fatal(err)
	}
	if n.Intro != "# Title the author wrote\n\nA summary paragraph." {
		t.Errorf("intro = %q", n.Intro)
	}
	var heads []string
	for _, s := range n.Sections {
		heads = append(heads, s.Heading+"|"+string(s.Section))
	}
	want := []string{"upgrade PATH|Upgrade path", "Breaking   changes|Breaking changes", "Highlights|", "Rollback|Rollback"}
	if strings.Join(heads, ",") != strings.Join(want, ",") {
		t.Errorf("sections = %q, want %q", heads, want)
	}
	up, ok := n.Section(release.SectionUpgradePath)
	if !ok || !strings.Contains(up, "## not a heading: inside a fence") || !strings.Contains(up, "### Details stay in the section") || !strings.HasSuffix(up, "More text.") {
		t.Errorf("upgrade path body = %q", up)
	}
	if n.Sections[0].Line != 5 || n.Sections[1].Line != 18 {
		t.Errorf("heading lines = %d, %d", n.Sections[0].Line, n.Sections[1].Line)
	}
	br, _ := n.Section(release.SectionBreakingChanges)
	if br != "- The `/attest` body needs `nonceB64`.\n##Not a heading either" {
		t.Errorf("breaking changes body = %q", br)
	}
	if _, ok := n.Section(release.SectionRollback); ok {
		t.Error("an empty section counts as written")
	}
	if _, ok := n.Section(release.SectionIncident); ok {
		t.Error("an absent section counts as written")
	}
	if extra := n.Extra(); len(extra) != 1 || extra[0].Heading != "Highlights" || extra[0].Body != "Faster key release." {
		t.Errorf("extra = %+v", extra)
	}
}

func TestParseEdgeCases(t *testing.T) {
	empty, err := Parse(strings.NewReader(""))
	if err != nil || empty.Intro != "" || len(empty.Sections) != 0 {
		t.Errorf("empty file = %+v, %v", empty, err)
	}
	// a fence closed by a longer fence of the same character; a ~~~ fence does not close ```
	n, err := Parse(strings.NewReader("## Changelog\n```\n~~~\n## inside\n````\n## Rollback\nundo\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Sections) != 2 || !strings.Contains(n.Sections[0].Body, "## inside") {
		t.Errorf("fences: %+v", n.Sections)
	}
	// an unclosed fence swallows the rest of the file, like Markdown renderers do
	n, err = Parse(strings.NewReader("## Changelog\n```\n## Rollback\n"))
	if err != nil || len(n.Sections) != 1 {
		t.Errorf("unclosed fence: %+v, %v", n.Sections, err)
	}
	// CRLF line endings and up to three leading spaces
	n, err = Parse(strings.NewReader("   ## Rollback\r\nundo\r\n    ## code block, not a heading\r\n"))
	if err != nil || len(n.Sections) != 1 || n.Sections[0].Section != release.SectionRollback || !strings.HasSuffix(n.Sections[0].Body, "not a heading") {
		t.Errorf("CRLF and indentation: %+v, %v", n.Sections, err)
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]string{
		"## Rollback\nx\n\n## rollback\ny\n":    `notes line 4: section "rollback" appears twice (first on line 1)`,
		"intro\n##\nbody\n":                     "notes line 2: empty",
		"## Upgrade  path\n## upgrade path\n":   "notes line 2",
		"x\n" + strings.Repeat("a", 2<<20) + "": "notes line 2",
	}
	for in, want := range cases {
		_, err := Parse(strings.NewReader(in))
		if outcome.Code(err) != outcome.Usage || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%.40q) = %v, want a usage error containing %q", in, err, want)
		}
	}
}

func TestSectionFor(t *testing.T) {
	for _, s := range KnownSections() {
		for _, h := range []string{string(s), strings.ToUpper(string(s)), "  " + strings.ToLower(string(s)) + " "} {
			if got, ok := SectionFor(h); !ok || got != s {
				t.Errorf("SectionFor(%q) = %q, %v", h, got, ok)
			}
		}
	}
	if _, ok := SectionFor("Upgrade notes"); ok {
		t.Error("SectionFor(Upgrade notes) matched")
	}
	// every section a class can require is a known section
	for _, c := range []release.Class{release.Stable, release.RC, release.Hotfix} {
		for _, s := range release.RulesFor(c).RequiredSections {
			if _, ok := SectionFor(string(s)); !ok {
				t.Errorf("%s requires %q, which notes does not know", c, s)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(authorFile)
	f.Add("## Changelog\n```\n## x\n```\n## Rollback\n")
	f.Add("##\n")
	f.Add("~~~~\n## a\n~~~\n## b\n")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(strings.NewReader(s))
		if err != nil {
			if outcome.Code(err) != outcome.Usage || !strings.HasPrefix(err.Error(), "notes line ") {
				t.Fatalf("Parse error %v: want a usage error naming the line", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, sec := range n.Sections {
			key := strings.ToLower(strings.Join(strings.Fields(sec.Heading), " "))
			if key == "" || seen[key] {
				t.Fatalf("section %q empty or duplicate", sec.Heading)
			}
			seen[key] = true
			if sec.Body != strings.TrimSpace(sec.Body) {
				t.Fatalf("body of %q not trimmed", sec.Heading)
			}
		}
	})
}
