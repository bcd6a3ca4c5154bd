package audit

import (
	"maps"
	"slices"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/store"
)

// isBundle reports whether an asset is the Sigstore bundle of another asset (an attestation such
// as the provenance is an asset of its own).
func isBundle(name string) bool {
	_, ok := release.IsFileBundle(name)
	return ok
}

// unexpectedAssets records a finding for every asset the family does not list: a failure in a
// release whose auditor is blocking beyond an rc (stable, hotfix), a warning in an rc. The bundle
// of an unexpected asset is not a finding of its own (its verification is); a bundle whose
// asset is not in the release is a failure in every class.
func (a *auditor) unexpectedAssets(unexpected map[string]store.Asset, rel *store.Release) {
	present := map[string]bool{}
	for _, as := range rel.Assets {
		present[as.Name] = true
	}
	blocking := a.report.Class != release.RC
	for _, name := range slices.Sorted(maps.Keys(unexpected)) {
		if isBundle(name) {
			subject, _ := release.IsFileBundle(name)
			if !present[subject] || isBundle(subject) || subject == release.ProvenanceFile {
				a.fail(CheckAssets, name, outcome.VerificationFailed, "a bundle of %s, which is not a signed asset of the release", subject)
			}
			continue
		}
		if blocking {
			a.fail(CheckAssets, name, outcome.VerificationFailed, "not an asset of a %s release (unexpected assets block a %s release)", a.tag.Family, a.report.Class)
		} else {
			a.warn(CheckAssets, name, "not an asset of a %s release", a.tag.Family)
		}
	}
}
