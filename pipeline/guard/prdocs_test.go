package guard

import (
	"regexp"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/catalog"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

func cat(t *testing.T, entries ...string) *catalog.Catalog {
	t.Helper()
	c := catalog.New()
	for _, e := range entries {
		kms, node, _ := strings.Cut(e, "/")
		if _, err := c.Add(catalog.Entry{KMS: kms, NodeImage: node, Profiles: release.Profiles(), Tested: true}); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestReleaseAndDocPaths(t *testing.T) {
	release := []string{"attestation-policy-debug.json", "policies/attestation-policy-locked-read-only.json", "published-mrtds.json",
		"a/b/published-mrtds.json", "compatibility-catalog.json", "./compatibility-catalog.json", "scripts/release-kms.sh", "tools/scripts/release-node.sh", `scripts\release-x.sh`}
	notRelease := []string{"attestation-policy.json", "attestation-policy-debug.yaml", "published-mrtds.json.bak", "scripts/build-kms-image.sh",
		"release-kms.sh", "scripts/release-kms.py", "docs/compatibility-catalog.md", "catalog.json", ""}
	for _, p := range release {
		if !IsReleasePath(p) {
			t.Errorf("IsReleasePath(%q) = false", p)
		}
	}
	for _, p := range notRelease {
		if IsReleasePath(p) {
			t.Errorf("IsReleasePath(%q) = true", p)
		}
	}
	docs := []string{"README.md", "docs/policies.md", "docs/img/flow.png", "sub/docs/x.txt", "CHANGELOG", "CHANGELOG.txt", "readme.rst", "notes/x.MD", "README"}
	notDocs := []string{"doc.go", "src/documentation.txt", "mydocs/x.txt", "attestation-policy-debug.json", "LICENSE"}
	for _, p := range docs {
		if !IsDocPath(p) {
			t.Errorf("IsDocPath(%q) = false", p)
		}
	}
	for _, p := range notDocs {
		if IsDocPath(p) {
			t.Errorf("IsDocPath(%q) = true", p)
		}
	}
}

func TestPRDocs(t *testing.T) {
	base := cat(t, "1.2.0/1.2.0")
	head := cat(t, "1.2.0/1.2.0", "1.3.0/1.3.0", "1.3.0/1.2.0")
	cases := []struct {
		name    string
		in      PRDocsInput
		code    int
		failed  []string // substrings of failed checks, in order
		mention []string // substrings of the whole report
	}{
		{"nothing changed", PRDocsInput{}, outcome.OK, nil, []string{"no release file changed"}},
		{"code only", PRDocsInput{Changed: []string{"pipeline/guard/prdocs.go", "go.mod"}}, outcome.OK, nil, nil},
		{"docs only", PRDocsInput{Changed: []string{"README.md"}}, outcome.OK, nil, nil},
		{"policy without docs", PRDocsInput{Changed: []string{"policies/attestation-policy-debug.json", "go.sum"}},
			outcome.VerificationFailed, []string{"policies/attestation-policy-debug.json changed but no documentation did"}, nil},
		{"every release file without docs", PRDocsInput{Changed: []string{"published-mrtds.json", "scripts/release-kms.sh", "compatibility-catalog.json", "attestation-policy-debug.json"}},
			outcome.VerificationFailed, []string{"attestation-policy-debug.json, compatibility-catalog.json, published-mrtds.json, scripts/release-kms.sh changed"}, []string{"were not checked"}},
		{"policy with docs", PRDocsInput{Changed: []string{"policies/attestation-policy-debug.json", "docs/policies.md"}},
			outcome.OK, nil, []string{"documented in docs/policies.md"}},
		{"script with changelog", PRDocsInput{Changed: []string{"scripts/release-node.sh", "CHANGELOG.md", ""}}, outcome.OK, nil, nil},
		{"catalog, docs, notes mention both", PRDocsInput{
			Changed:       []string{"compatibility-catalog.json", "docs/compatibility.md"},
			CatalogBefore: base, CatalogAfter: head,
			NotesText: "## Compatibility\n- KMS 1.3.0 / node 1.3.0 (all profiles)\n- mero-kms-v1.3.0 works with mero-tee-v1.2.0\n",
		}, outcome.OK, nil, []string{"mentioned on line 2", "mentioned on line 3"}},
		{"catalog, notes miss one", PRDocsInput{
			Changed:       []string{"compatibility-catalog.json", "docs/compatibility.md"},
			CatalogBefore: base, CatalogAfter: head,
			NotesText: "KMS 1.3.0 / node 1.3.0\n",
		}, outcome.VerificationFailed, []string{"kms 1.3.0 / node image 1.2.0 (profiles debug, debug-read-only, locked-read-only) is not mentioned"}, nil},
		{"versions on different lines do not count", PRDocsInput{
			Changed:       []string{"compatibility-catalog.json", "docs/c.md"},
			CatalogBefore: base, CatalogAfter: cat(t, "1.2.0/1.2.0", "1.3.0/1.2.0"),
			NotesText: "KMS 1.3.0\nnode 1.2.0\n",
		}, outcome.VerificationFailed, []string{"kms 1.3.0 / node image 1.2.0"}, nil},
		{"equal versions must appear twice", PRDocsInput{
			Changed:       []string{"compatibility-catalog.json", "docs/c.md"},
			CatalogBefore: base, CatalogAfter: cat(t, "1.2.0/1.2.0", "1.3.0/1.3.0"),
			NotesText: "Now at 1.3.0.\n",
		}, outcome.VerificationFailed, []string{"kms 1.3.0 / node image 1.3.0"}, nil},
		{"an rc or a longer version is not the version", PRDocsInput{
			Changed:       []string{"compatibility-catalog.json", "docs/c.md"},
			CatalogBefore: base, CatalogAfter: cat(t, "1.2.0/1.2.0", "1.3.0/1.2.0"),
			NotesText: "KMS 1.3.0-rc.1 / node 1.2.0\nKMS 11.3.0 / node 1.2.0\nKMS 1.3.0.1 / node 1.2.0\nKMS 1.3.0-beta / node 1.2.0\ndev1.3.0 and 1.2.0\n",
		}, outcome.VerificationFailed, []string{"kms 1.3.0 / node image 1.2.0"}, nil},
		{"v prefixes and punctuation are fine", PRDocsInput{
			Changed:       []string{"compatibility-catalog.json", "docs/c.md"},
			CatalogBefore: base, CatalogAfter: cat(t, "1.2.0/1.2.0", "1.3.0-rc.2/1.2.0"),
			NotesText: "Compatible: (v1.3.0-rc.2, v1.2.0).\n",
		}, outcome.OK, nil, nil},
		{"both failures at once", PRDocsInput{
			Changed:       []string{"compatibility-catalog.json"},
			CatalogBefore: base, CatalogAfter: head,
		}, outcome.VerificationFailed, []string{"no documentation", "kms 1.3.0 / node image 1.3.0", "kms 1.3.0 / node image 1.2.0"}, nil},
		{"a changed pair counts (new profile)", PRDocsInput{
			Changed:       []string{"compatibility-catalog.json", "docs/c.md"},
			CatalogBefore: &catalog.Catalog{SchemaVersion: "1", Entries: []catalog.Entry{{KMS: "1.2.0", NodeImage: "1.2.0", Profiles: []release.Profile{release.Debug}, Tested: true}}},
			CatalogAfter:  base,
		}, outcome.VerificationFailed, []string{"kms 1.2.0 / node image 1.2.0"}, nil},
		{"new catalog file: every entry is new", PRDocsInput{
			Changed:      []string{"compatibility-catalog.json", "docs/c.md"},
			CatalogAfter: base, NotesText: "KMS 1.2.0 / node 1.2.0",
		}, outcome.OK, nil, []string{"mentioned on line 1"}},
		{"catalog reformatted only", PRDocsInput{
			Changed:       []string{"compatibility-catalog.json", "docs/c.md"},
			CatalogBefore: base, CatalogAfter: cat(t, "1.2.0/1.2.0"),
		}, outcome.OK, nil, []string{"no new or changed compatibility pair"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := PRDocs(c.in)
			if outcome.Code(err) != c.code {
				t.Fatalf("code %d (%v), want %d; report %v", outcome.Code(err), err, c.code, r.Checks)
			}
			failed := r.Failed()
			if len(failed) != len(c.failed) {
				t.Fatalf("failed checks %v, want %d", failed, len(c.failed))
			}
			for i, want := range c.failed {
				if !strings.Contains(failed[i].Message, want) && !strings.Contains(failed[i].Name, want) {
					t.Errorf("failed[%d] = %v, want it to mention %q", i, failed[i], want)
				}
				if !strings.Contains(err.Error(), failed[i].Message) {
					t.Errorf("error %q does not carry %q", err, failed[i].Message)
				}
			}
			var all strings.Builder
			for _, ch := range r.Checks {
				all.WriteString(ch.String() + "\n")
			}
			for _, want := range c.mention {
				if !strings.Contains(all.String(), want) {
					t.Errorf("report does not mention %q:\n%s", want, all.String())
				}
			}
		})
	}
}

func TestVersionsOn(t *testing.T) {
	got := versionsOn("KMS v1.3.0, node mero-tee-v1.2.0-rc.4; not 11.2.0x 1.2.0.1 a1.2.0 1.2.0-beta 2.0.0+b; yes (3.0.0). 4.0.0-rc.1")
	want := []string{"1.3.0", "1.2.0-rc.4", "3.0.0", "4.0.0-rc.1"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("versionsOn = %v, want %v", got, want)
	}
}

func FuzzPRDocsNotes(f *testing.F) {
	f.Add("KMS 1.3.0 / node 1.3.0\n", "compatibility-catalog.json\ndocs/x.md")
	f.Add("mero-kms-v1.3.0-rc.1 with v1.2.0; 11.2.0x 1.2.0.1", "scripts/release-kms.sh")
	f.Add("\x00\xff 1.2.3-rc.0 01.2.3", "../../attestation-policy-debug.json\n\\README")
	before := catalog.New()
	after := catalog.New()
	if _, err := after.Add(catalog.Entry{KMS: "1.3.0", NodeImage: "1.2.0", Profiles: release.Profiles(), Tested: true}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, notes, changed string) {
		for _, line := range strings.Split(notes, "\n") {
			for _, v := range versionsOn(line) {
				if !regexpVersion.MatchString(v) || !strings.Contains(line, v) {
					t.Fatalf("token %q of %q is not a version on the line", v, line)
				}
			}
		}
		r, err := PRDocs(PRDocsInput{Changed: strings.Split(changed, "\n"), CatalogBefore: before, CatalogAfter: after, NotesText: notes})
		if (err == nil) != r.Passed() {
			t.Fatalf("err %v but Passed() = %v", err, r.Passed())
		}
		if err != nil && outcome.Code(err) != outcome.VerificationFailed {
			t.Fatalf("code %d: %v", outcome.Code(err), err)
		}
	})
}

var regexpVersion = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-rc\.[0-9]+)?$`)
