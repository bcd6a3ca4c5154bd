package notes

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func reg(b byte) string { return strings.Repeat(string("0123456789abcdef"[b%16]), 96) }

// published builds a published-mrtds.json record set; rtmr2 of each profile differs so that
// profiles stay isolated, and bump changes MRTD and RTMR1 (a new base image).
func published(family release.Family, version string, bump bool) *measure.Published {
	p := &measure.Published{SchemaVersion: measure.PublishedSchemaVersion, Family: family, Version: version, Profiles: map[release.Profile]measure.Record{}}
	for i, prof := range release.Profiles() {
		r := measure.Record{MRTD: reg(1), RTMR0: reg(2), RTMR1: reg(3), RTMR2: reg(byte(4 + i)), RTMR3: reg(0), Source: "gcp-tdx-vm", MeasuredAt: "2026-11-20T10:00:00Z", QuoteSHA256: strings.Repeat("ab", 32)}
		if bump {
			r.MRTD, r.RTMR1, r.MeasuredAt = reg(10), reg(11), "2026-11-24T10:00:00Z"
		}
		p.Profiles[prof] = r
	}
	return p
}

func commits() []Commit {
	when := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	return []Commit{
		{Hash: "9f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c", Subject: "Merge pull request #41 from carol/docs", Author: Person{"Alice Liddell", "alice@example.com"}, When: when, PRs: []int{41}, Merge: true},
		{Hash: "8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b", Subject: "feat(kms)!: require a binding in /attest (#40)", Author: Person{"Alice Liddell", "alice@example.com"}, When: when, PRs: []int{40}},
		{Hash: "7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a", Subject: "fix: refuse a consumed challenge (#38)", Body: "Co-authored-by: Carol Danvers <carol@example.com>", Author: Person{"Bob Builder", "bob@example.com"}, CoAuthors: []Person{{"Carol Danvers", "carol@example.com"}}, When: when, PRs: []int{38}},
		{Hash: "6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39", Subject: "docs: policy migration for Vec<u8> keys [draft]", Author: Person{"Carol Danvers", "carol@example.com"}, When: when},
		{Hash: "5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928", Subject: "Bump the base image to ubuntu-2404-tdx-v20261101", Body: "BREAKING CHANGE: RTMR0 and RTMR1 change.", Author: Person{"Bob Builder", "bob@example.com"}, When: when},
		{Hash: "4a39281706f5e4d3c2b1a09f8e7d6c5b4a392817", Subject: "perf(policy): cache the policy digest", Author: Person{"Dave", "dave@example.com"}, When: when},
		{Hash: "39281706f5e4d3c2b1a09f8e7d6c5b4a39281706", Subject: "security: constant-time key comparison (#39)", Author: Person{"Dave", "dave@example.com"}, When: when, PRs: []int{39}},
		{Hash: "281706f5e4d3c2b1a09f8e7d6c5b4a3928170600", Subject: "tidy the README", Author: Person{"Alice Liddell", "alice@example.com"}, When: when},
	}
}

func mustParse(t *testing.T, file string) AuthorNotes {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func tagp(s string) *release.Tag {
	t := release.MustParseTag(s)
	return &t
}

// golden compares got with testdata/name (rewritten with -update).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./pipeline/notes -update to accept):\n--- got\n%s", path, got)
	}
}

func TestGenerateGolden(t *testing.T) {
	cases := []struct {
		name string
		in   Input
	}{
		{"stable-kms.md", Input{
			Tag: release.MustParseTag("mero-kms-v1.4.0"), Class: release.Stable, Previous: tagp("mero-kms-v1.3.0"),
			Commits: commits(), Author: mustParse(t, "testdata/stable-author.md"),
			Measurements:         published(release.KMS, "1.4.0", true),
			PreviousMeasurements: published(release.KMS, "1.3.0", false),
			Compatible:           []string{"1.3.0", "1.4.0", "1.3.0", "1.4.0-rc.2", "1.10.0"},
			RepoURL:              "https://github.com/calimero-network/mero-tee",
		}},
		{"rc-node.md", Input{
			Tag: release.MustParseTag("mero-tee-v2.0.0-rc.1"), Class: release.RC, Previous: tagp("mero-tee-v1.9.0"),
			Commits: commits()[5:],
		}},
		{"rc-node-measured.md", Input{
			Tag: release.MustParseTag("mero-tee-v2.0.0-rc.2"), Class: release.RC, Previous: tagp("mero-tee-v2.0.0-rc.1"),
			Commits:      commits()[7:],
			Measurements: published(release.Node, "2.0.0-rc.2", false),
		}},
		{"hotfix-kms.md", Input{
			Tag: release.MustParseTag("mero-kms-v1.3.1"), Class: release.Hotfix, Previous: tagp("mero-kms-v1.3.0"),
			Commits: commits()[2:3], Author: mustParse(t, "testdata/hotfix-author.md"),
			Measurements:         published(release.KMS, "1.3.1", false),
			PreviousMeasurements: published(release.KMS, "1.3.0", false),
			Compatible:           []string{"1.3.0"},
			RepoURL:              "https://github.com/calimero-network/mero-tee/",
		}},
		{"stable-first-release.md", Input{
			Tag: release.MustParseTag("mero-tee-v1.0.0"), Class: release.Stable,
			Commits: commits()[7:], Author: mustParse(t, "testdata/first-author.md"),
			Measurements: published(release.Node, "1.0.0", false),
			Compatible:   []string{"1.0.0"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Generate(c.in)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, c.name, got)
			again, err := Generate(c.in)
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("Generate is not deterministic: %v", err)
			}
		})
	}
}

func TestGenerateMeasurementChanges(t *testing.T) {
	prev := published(release.Node, "1.0.0", false)
	cur := published(release.Node, "1.1.0-rc.1", false)
	r := cur.Profiles[release.Debug]
	r.RTMR2 = reg(15)
	cur.Profiles[release.Debug] = r
	delete(cur.Profiles, release.DebugReadOnly)
	delete(prev.Profiles, release.LockedReadOnly)
	out, err := Generate(Input{Tag: release.MustParseTag("mero-tee-v1.1.0-rc.1"), Class: release.RC, Previous: tagp("mero-tee-v1.0.0"),
		Commits: commits()[7:], Measurements: cur, PreviousMeasurements: prev})
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		"Changed since `mero-tee-v1.0.0`: `debug` (RTMR2).",
		"| RTMR2 | `" + reg(4) + "` | `" + reg(15) + "` | **yes** |",
		"| MRTD | `" + reg(1) + "` | `" + reg(1) + "` | no |",
		"Not measured in this release (it was in `mero-tee-v1.0.0`).",
		"| RTMR0 | `" + reg(2) + "` | — | removed |",
		"| RTMR3 | — | `" + reg(0) + "` | new |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("notes lack %q:\n%s", want, s)
		}
	}
	if strings.Index(s, "Profile `debug`") > strings.Index(s, "Profile `debug-read-only`") || strings.Index(s, "Profile `debug-read-only`") > strings.Index(s, "Profile `locked-read-only`") {
		t.Error("profiles are not in release order")
	}
}

func TestGenerateMissingSections(t *testing.T) {
	full := mustParse(t, "testdata/stable-author.md")
	cases := []struct {
		name    string
		in      Input
		missing []string // each error line names the section and the class
	}{
		{"stable without upgrade path", Input{
			Tag: release.MustParseTag("mero-kms-v1.4.0"), Class: release.Stable, Previous: tagp("mero-kms-v1.3.0"), Commits: commits(),
			Author: without(full, release.SectionUpgradePath), Measurements: published(release.KMS, "1.4.0", false), Compatible: []string{"1.4.0"},
		}, []string{`"Upgrade path" is required for a stable release`}},
		{"stable without measurements or compatible versions", Input{
			Tag: release.MustParseTag("mero-kms-v1.4.0"), Class: release.Stable, Previous: tagp("mero-kms-v1.3.0"), Commits: commits(), Author: full,
		}, []string{`"MRTD/RTMR changes" is required for a stable release but was neither written nor generated: no measurements`, `"Compatible versions" is required for a stable release but was neither written nor generated: no compatible mero-tee versions`}},
		{"stable with nothing", Input{
			Tag: release.MustParseTag("mero-kms-v1.4.0"), Class: release.Stable,
		}, []string{`"Changelog" is required for a stable release but was neither written nor generated: no commits since the start of the history`, `"Breaking changes"`, `"Upgrade path"`, `"MRTD/RTMR changes"`, `"Compatible versions"`}},
		{"hotfix without an incident reference", Input{
			Tag: release.MustParseTag("mero-kms-v1.3.1"), Class: release.Hotfix, Previous: tagp("mero-kms-v1.3.0"), Commits: commits()[2:3],
			Author: without(mustParse(t, "testdata/hotfix-author.md"), release.SectionIncident),
		}, []string{`"CVE or incident" is required for a hotfix release but was neither written nor generated: write "## CVE or incident" in the author notes`}},
		{"hotfix with empty sections", Input{
			Tag: release.MustParseTag("mero-kms-v1.3.1"), Class: release.Hotfix, Previous: tagp("mero-kms-v1.3.0"), Commits: commits()[2:3],
			Author: AuthorNotes{Sections: []AuthorSection{{Heading: "Rollback", Section: release.SectionRollback}}},
		}, []string{`"CVE or incident"`, `"Exact change"`, `"Rollback"`, `"Why a patch release"`}},
		{"rc with only merge commits", Input{
			Tag: release.MustParseTag("mero-kms-v1.4.0-rc.2"), Class: release.RC, Previous: tagp("mero-kms-v1.4.0-rc.1"), Commits: commits()[:1],
		}, []string{`"Changelog" is required for a rc release but was neither written nor generated: no commits since mero-kms-v1.4.0-rc.1`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := Generate(c.in)
			if err == nil {
				t.Fatalf("Generate succeeded:\n%s", out)
			}
			if outcome.Code(err) != outcome.VerificationFailed {
				t.Errorf("exit code %d, want %d: %v", outcome.Code(err), outcome.VerificationFailed, err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(c.missing) {
				t.Errorf("%d errors, want %d: %v", len(lines), len(c.missing), err)
			}
			for i, want := range c.missing {
				if i < len(lines) && (!strings.Contains(lines[i], want) || !strings.Contains(lines[i], c.in.Tag.String()) || !strings.Contains(lines[i], string(c.in.Class))) {
					t.Errorf("error line %q does not name %s, the class and %q", lines[i], c.in.Tag, want)
				}
			}
		})
	}
	// an rc needs nothing but a changelog: abbreviated notes are fine
	if _, err := Generate(Input{Tag: release.MustParseTag("mero-kms-v1.4.0-rc.1"), Class: release.RC, Commits: commits()}); err != nil {
		t.Errorf("rc with a changelog only: %v", err)
	}
	// an author-written changelog satisfies the rule when there is no commit
	author := AuthorNotes{Sections: []AuthorSection{{Heading: "Changelog", Section: release.SectionChangelog, Body: "Re-tag of rc.1 with a fixed signature."}}}
	if _, err := Generate(Input{Tag: release.MustParseTag("mero-kms-v1.4.0-rc.2"), Class: release.RC, Author: author}); err != nil {
		t.Errorf("rc with a written changelog: %v", err)
	}
}

func without(n AuthorNotes, s release.Section) AuthorNotes {
	var out AuthorNotes
	out.Intro = n.Intro
	for _, sec := range n.Sections {
		if sec.Section != s {
			out.Sections = append(out.Sections, sec)
		}
	}
	return out
}

func TestGenerateBadInput(t *testing.T) {
	stable := release.MustParseTag("mero-kms-v1.4.0")
	bad := published(release.KMS, "1.4.0", false)
	r := bad.Profiles[release.Debug]
	r.MRTD = "not hex"
	bad.Profiles[release.Debug] = r
	cases := []struct {
		name string
		in   Input
		code int
		want string
	}{
		{"unknown class", Input{Tag: stable, Class: "beta"}, outcome.Usage, `class "beta"`},
		{"rc class, stable tag", Input{Tag: stable, Class: release.RC}, outcome.Usage, "class rc needs an X.Y.Z-rc.N tag"},
		{"stable class, rc tag", Input{Tag: release.MustParseTag("mero-kms-v1.4.0-rc.1"), Class: release.Stable}, outcome.Usage, "is class rc, not stable"},
		{"previous of the other family", Input{Tag: stable, Class: release.Stable, Previous: tagp("mero-tee-v1.3.0")}, outcome.Usage, "previous tag mero-tee-v1.3.0 is of family mero-tee"},
		{"previous not older", Input{Tag: stable, Class: release.Stable, Previous: tagp("mero-kms-v1.4.0")}, outcome.Usage, "is not older"},
		{"measurements of another version", Input{Tag: stable, Class: release.Stable, Measurements: published(release.KMS, "1.3.0", false)}, outcome.Usage, "measurements are of mero-kms 1.3.0, want mero-kms-v1.4.0"},
		{"measurements of another family", Input{Tag: stable, Class: release.Stable, Measurements: published(release.Node, "1.4.0", false)}, outcome.Usage, "measurements are of mero-tee 1.4.0"},
		{"previous measurements of another version", Input{Tag: stable, Class: release.Stable, Previous: tagp("mero-kms-v1.3.0"), Measurements: published(release.KMS, "1.4.0", false), PreviousMeasurements: published(release.KMS, "1.2.0", false)}, outcome.Usage, "previous measurements are of mero-kms 1.2.0, want mero-kms-v1.3.0"},
		{"previous measurements of another family", Input{Tag: stable, Class: release.Stable, Measurements: published(release.KMS, "1.4.0", false), PreviousMeasurements: published(release.Node, "1.2.0", false)}, outcome.Usage, "previous measurements are of family mero-tee"},
		{"previous measurements alone", Input{Tag: stable, Class: release.Stable, PreviousMeasurements: published(release.KMS, "1.3.0", false)}, outcome.Usage, "without this release's measurements"},
		{"invalid measurements", Input{Tag: stable, Class: release.Stable, Measurements: bad}, outcome.VerificationFailed, "profiles.debug.mrtd"},
		{"bad compatible version", Input{Tag: stable, Class: release.Stable, Compatible: []string{"1.2.0", "v1.3"}}, outcome.Usage, `compatible version 2: version "v1.3"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Generate(c.in)
			if outcome.Code(err) != c.code || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Generate = %v (exit %d), want exit %d mentioning %q", err, outcome.Code(err), c.code, c.want)
			}
		})
	}
}

// TestNotesFromRepository runs the stage as the CLI does: tags and history from a real git
// repository, the class and previous tag from the tags, then the notes.
func TestNotesFromRepository(t *testing.T) {
	r := kmsRepo(t)
	r.tag("mero-kms-v1.3.0", true)
	r.commit("carol", "fix(kms): zeroize the derived key (#15)")
	ctx := t.Context()
	tags, err := Tags(ctx, r.dir)
	if err != nil {
		t.Fatal(err)
	}
	tag := release.MustParseTag("mero-kms-v1.3.1")
	class := release.Classify(tag, tags)
	prev, ok := release.Previous(tag, tags, class != release.RC)
	if class != release.Hotfix || !ok || prev.String() != "mero-kms-v1.3.0" {
		t.Fatalf("class %s, previous %s %v", class, prev, ok)
	}
	history, err := History(ctx, r.dir, prev.String(), "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	out, err := Generate(Input{Tag: tag, Class: class, Previous: &prev, Commits: history, Author: mustParse(t, "testdata/hotfix-author.md")})
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if !strings.Contains(s, "1 commit by 1 contributor.") || !strings.Contains(s, "- **kms:** zeroize the derived key (#15, `") || !strings.Contains(s, "- Carol Danvers") {
		t.Errorf("notes:\n%s", s)
	}
}
