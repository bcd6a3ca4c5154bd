package release

import (
	"slices"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

func TestParseTag(t *testing.T) {
	good := map[string]Tag{
		"mero-kms-v1.3.0":       {KMS, Version{1, 3, 0, 0}},
		"mero-kms-v1.3.0-rc.2":  {KMS, Version{1, 3, 0, 2}},
		"mero-tee-v0.0.1":       {Node, Version{0, 0, 1, 0}},
		"mero-tee-v10.20.30":    {Node, Version{10, 20, 30, 0}},
		"mero-tee-v2.0.0-rc.11": {Node, Version{2, 0, 0, 11}},
	}
	for in, want := range good {
		got, err := ParseTag(in)
		if err != nil {
			t.Errorf("ParseTag(%q): %v", in, err)
			continue
		}
		if got != want || got.String() != in {
			t.Errorf("ParseTag(%q) = %+v (%s), want %+v", in, got, got, want)
		}
	}
	bad := map[string]string{
		"":                                   "must start with",
		"v1.2.3":                             "must start with",
		"mero-node-v1.2.3":                   "must start with",
		"mero-kms-1.2.3":                     "must start with",
		"mero-kms-v1.2":                      "X.Y.Z",
		"mero-kms-v1.2.3-rc":                 "X.Y.Z-rc.N",
		"mero-kms-v1.2.3-rc.":                "X.Y.Z-rc.N",
		"mero-kms-v1.2.3-rc.0":               "N >= 1",
		"mero-kms-v01.2.3":                   "leading zeros",
		"mero-kms-v1.2.3-beta1":              "X.Y.Z-rc.N",
		"mero-kms-v1.2.3 ":                   "X.Y.Z",
		"mero-tee-v1.2.3.4":                  "X.Y.Z",
		"mero-kms-vv1.2.3":                   "no leading v",
		"mero-kms-v99999999999999999999.0.0": "too large",
	}
	for in, want := range bad {
		_, err := ParseTag(in)
		if err == nil {
			t.Errorf("ParseTag(%q) succeeded, want error", in)
			continue
		}
		if outcome.Code(err) != outcome.Usage {
			t.Errorf("ParseTag(%q): exit code %d, want %d", in, outcome.Code(err), outcome.Usage)
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ParseTag(%q) = %q, want it to mention %q", in, err, want)
		}
	}
}

func TestVersionCompare(t *testing.T) {
	ordered := []string{"0.9.9", "1.0.0-rc.1", "1.0.0-rc.2", "1.0.0-rc.10", "1.0.0", "1.0.1", "1.1.0", "2.0.0-rc.1", "2.0.0"}
	for i := range ordered {
		for j := range ordered {
			a, b := MustParseVersion(ordered[i]), MustParseVersion(ordered[j])
			want := cmpInt(i, j)
			if got := a.Compare(b); got != want {
				t.Errorf("%s vs %s = %d, want %d", a, b, got, want)
			}
		}
	}
}

func TestClassify(t *testing.T) {
	published := ParseTags([]string{"mero-kms-v1.2.0", "mero-kms-v1.3.0", "mero-kms-v1.4.0-rc.1", "mero-tee-v1.2.0", "unrelated-tag"})
	cases := map[string]Class{
		"mero-kms-v1.4.0-rc.2": RC,
		"mero-kms-v1.4.0":      Stable,
		"mero-kms-v1.2.1":      Hotfix, // base 1.2.0 published
		"mero-kms-v1.3.1":      Hotfix,
		"mero-kms-v1.5.1":      Stable, // base 1.5.0 never published
		"mero-kms-v1.4.1":      Stable, // base is only an rc
		"mero-tee-v1.2.1":      Hotfix,
		"mero-tee-v1.3.1":      Stable, // 1.3.0 is a KMS tag, not a node one
	}
	for in, want := range cases {
		if got := Classify(MustParseTag(in), published); got != want {
			t.Errorf("Classify(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestProgression(t *testing.T) {
	published := ParseTags([]string{"mero-kms-v1.2.0", "mero-kms-v1.3.0", "mero-kms-v1.4.0-rc.1", "mero-tee-v2.0.0"})
	ok := []string{"mero-kms-v1.4.0-rc.2", "mero-kms-v1.4.0", "mero-kms-v1.2.1", "mero-kms-v1.3.1", "mero-kms-v1.3.0", "mero-kms-v2.0.0", "mero-tee-v2.1.0-rc.1"}
	for _, in := range ok {
		if err := Progression(MustParseTag(in), published); err != nil {
			t.Errorf("Progression(%s): %v", in, err)
		}
	}
	backwards := []string{"mero-kms-v1.1.0", "mero-kms-v1.3.0-rc.5", "mero-kms-v1.4.0-rc.1-x", "mero-kms-v1.2.0-rc.1", "mero-kms-v1.1.1", "mero-tee-v1.0.0-rc.1"}
	for _, in := range backwards {
		tag, err := ParseTag(in)
		if err != nil {
			continue // malformed is a different rule
		}
		err = Progression(tag, published)
		if err == nil || outcome.Code(err) != outcome.Usage || !strings.Contains(err.Error(), "goes backwards") {
			t.Errorf("Progression(%s) = %v, want a usage error that says it goes backwards", in, err)
		}
	}
	// a hotfix that skips a patch on its line is not the next patch: 1.2.0 published, 1.2.1 published, 1.2.1 again is a rerun, 1.2.0 is backwards
	withPatch := append(published, MustParseTag("mero-kms-v1.2.1"))
	if err := Progression(MustParseTag("mero-kms-v1.2.2"), withPatch); err != nil {
		t.Errorf("next hotfix on a line: %v", err)
	}
}

func TestPrevious(t *testing.T) {
	published := ParseTags([]string{"mero-kms-v1.2.0", "mero-kms-v1.3.0-rc.1", "mero-kms-v1.3.0", "mero-tee-v1.9.0"})
	prev, ok := Previous(MustParseTag("mero-kms-v1.4.0"), published, false)
	if !ok || prev.String() != "mero-kms-v1.3.0" {
		t.Errorf("Previous = %s %v", prev, ok)
	}
	prev, ok = Previous(MustParseTag("mero-kms-v1.3.0"), published, true)
	if !ok || prev.String() != "mero-kms-v1.2.0" {
		t.Errorf("Previous stable = %s %v", prev, ok)
	}
	if _, ok := Previous(MustParseTag("mero-kms-v1.0.0"), published, false); ok {
		t.Error("Previous of the first release should not exist")
	}
}

func TestRulesFor(t *testing.T) {
	rc, stable, hotfix := RulesFor(RC), RulesFor(Stable), RulesFor(Hotfix)
	if rc.E2EBlocking || rc.DependencyGuardBlocking || !rc.PolicyNotReadyAllowed || !rc.Prerelease || rc.MayBeLatest || rc.CatalogUpdateRequired {
		t.Errorf("rc rules wrong: %+v", rc)
	}
	if !stable.E2EBlocking || !stable.DependencyGuardBlocking || stable.PolicyNotReadyAllowed || stable.Prerelease || !stable.CatalogUpdateRequired || !stable.AuditorRequired {
		t.Errorf("stable rules wrong: %+v", stable)
	}
	for _, s := range []Section{SectionChangelog, SectionBreakingChanges, SectionUpgradePath, SectionMeasurements, SectionCompatibility} {
		if !slices.Contains(stable.RequiredSections, s) {
			t.Errorf("stable does not require %q", s)
		}
	}
	if !hotfix.E2EBlocking || !hotfix.DependencyGuardBlocking || hotfix.PolicyNotReadyAllowed || !hotfix.CatalogUpdateOnMeasurementChange {
		t.Errorf("hotfix rules wrong: %+v", hotfix)
	}
	for _, s := range []Section{SectionIncident, SectionChangeDetail, SectionRollback, SectionWhyPatch} {
		if !slices.Contains(hotfix.RequiredSections, s) {
			t.Errorf("hotfix does not require %q", s)
		}
	}
}

func TestExpectedAssets(t *testing.T) {
	kms := ExpectedAssets(KMS)
	for _, want := range []string{"attestation-policy-debug.json", "attestation-policy-debug-read-only.json", "attestation-policy-locked-read-only.json", SBOMFile, PublishedMRTDsFile, NotesFile} {
		if !slices.Contains(kms.Content, want) {
			t.Errorf("KMS assets lack %s", want)
		}
	}
	all := kms.All()
	if !slices.Contains(all, "checksums.sha256.sigstore.json") || !slices.Contains(all, ChecksumsFile) {
		t.Errorf("KMS All() lacks the checksum file or its bundle: %v", all)
	}
	if len(all) != 2*(len(kms.Content)+1)+1 {
		t.Errorf("every signed file needs exactly one bundle, plus the provenance: %d files for %d content", len(all), len(kms.Content))
	}
	if !slices.Contains(all, ProvenanceFile) || slices.Contains(all, BundleName(ProvenanceFile)) || slices.Contains(kms.Signed(), ProvenanceFile) {
		t.Errorf("the provenance is an asset that signs itself: %v", all)
	}
	if sums := kms.Checksummed(); !slices.Contains(sums, ProvenanceFile) || len(sums) != len(kms.Content)+1 || !slices.IsSorted(sums) {
		t.Errorf("checksums.sha256 lists the content and the provenance: %v", sums)
	}
	for name, want := range map[string]string{"sbom.spdx.json.sigstore.json": "sbom.spdx.json", ProvenanceFile: "", "x.intoto.sigstore.json": "", BundleSuffix: "", "notes.md": ""} {
		if got, ok := IsFileBundle(name); got != want || ok != (want != "") {
			t.Errorf("IsFileBundle(%q) = %q, %v", name, got, ok)
		}
	}
	node := ExpectedAssets(Node)
	if slices.Contains(node.Content, "attestation-policy-debug.json") {
		t.Error("node releases carry no KMS policy")
	}
	if !slices.IsSorted(node.Content) || !slices.IsSorted(all) {
		t.Error("asset lists must be sorted")
	}
}

func TestFamilyFacts(t *testing.T) {
	if KMS.VersionVariable() != "MERO_KMS_VERSION" || Node.VersionVariable() != "MERO_TEE_VERSION" {
		t.Error("version variables")
	}
	if KMS.Counterpart() != Node || Node.Counterpart() != KMS {
		t.Error("counterparts")
	}
	if _, err := ParseFamily("bogus"); outcome.Code(err) != outcome.Usage {
		t.Errorf("ParseFamily(bogus) = %v", err)
	}
	if _, err := ParseProfile("prod"); outcome.Code(err) != outcome.Usage {
		t.Errorf("ParseProfile(prod) = %v", err)
	}
}

func FuzzParseTag(f *testing.F) {
	for _, s := range []string{"mero-kms-v1.3.0", "mero-tee-v1.2.3-rc.4", "mero-kms-v", "mero-tee-v1.2.3-rc.", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tag, err := ParseTag(s)
		if err != nil {
			if outcome.Code(err) != outcome.Usage {
				t.Fatalf("ParseTag(%q): error of exit code %d, want usage", s, outcome.Code(err))
			}
			return
		}
		if tag.String() != s {
			t.Fatalf("round trip: %q -> %q", s, tag)
		}
	})
}
