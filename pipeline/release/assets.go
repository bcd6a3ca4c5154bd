package release

import (
	"slices"
	"strings"
)

// Asset names shared by both families.
const (
	ChecksumsFile      = "checksums.sha256"
	SBOMFile           = "sbom.spdx.json"
	NotesFile          = "release-notes.md"
	PublishedMRTDsFile = "published-mrtds.json"
	// NodeImageManifest records the built node images (per profile) and the pinned base image.
	NodeImageManifest = "node-image-manifest.json"
	// KMSImageManifest records the built KMS images (per profile): digest and compose hash.
	KMSImageManifest = "kms-image-manifest.json"
	// VulnerabilitiesFile is the vulnerability scan of the release's SBOM (pipeline/vuln).
	VulnerabilitiesFile = "vulnerabilities.json"
	// BundleSuffix is appended to an asset's name for its Sigstore bundle.
	BundleSuffix = ".sigstore.json"
	// AttestationSuffix ends the name of an asset that is itself a Sigstore bundle holding a
	// DSSE in-toto attestation (not the bundle of another asset).
	AttestationSuffix = ".intoto" + BundleSuffix
	// ProvenanceFile is the release's SLSA v1 provenance (pipeline/provenance): a Sigstore bundle
	// of a DSSE-signed in-toto statement whose subjects are the content assets. It carries its
	// own signature (no bundle of its own) and checksums.sha256 lists it.
	ProvenanceFile = "provenance" + AttestationSuffix
)

// IsFileBundle reports whether an asset is the Sigstore bundle of another asset (NAME.sigstore.json),
// and returns that asset's name; an attestation (*.intoto.sigstore.json) is not.
func IsFileBundle(name string) (subject string, ok bool) {
	if strings.HasSuffix(name, AttestationSuffix) {
		return "", false
	}
	subject, ok = strings.CutSuffix(name, BundleSuffix)
	if !ok || subject == "" {
		return "", false
	}
	return subject, true
}

// BundleName is the Sigstore bundle file of an asset.
func BundleName(asset string) string { return asset + BundleSuffix }

// Assets are the files a release of a family must carry (SPEC §5): the signed content
// assets, the provenance, the checksum file, and one Sigstore bundle for each signed file.
type Assets struct {
	// Content are the content assets: the subjects of the provenance, each signed and listed in
	// checksums.sha256 (everything but the provenance, the checksum file and bundles).
	Content []string
}

// Checksummed is every file checksums.sha256 lists: the content and the provenance.
func (a Assets) Checksummed() []string {
	out := append(slices.Clone(a.Content), ProvenanceFile)
	slices.Sort(out)
	return out
}

// ExpectedAssets returns the asset list of a family. This is the one declaration both the
// publish stage and the auditor use.
func ExpectedAssets(f Family) Assets {
	var content []string
	if f == KMS {
		for _, p := range Profiles() {
			content = append(content, p.PolicyFile())
		}
		content = append(content, KMSImageManifest)
	} else {
		content = append(content, NodeImageManifest)
	}
	content = append(content, PublishedMRTDsFile, SBOMFile, VulnerabilitiesFile, NotesFile)
	slices.Sort(content)
	return Assets{Content: content}
}

// Signed is every file that gets a Sigstore bundle: the content and the checksum file.
func (a Assets) Signed() []string {
	return append(slices.Clone(a.Content), ChecksumsFile)
}

// All is every file of a complete release, bundles and provenance included, sorted.
func (a Assets) All() []string {
	all := []string{ProvenanceFile}
	for _, s := range a.Signed() {
		all = append(all, s, BundleName(s))
	}
	slices.Sort(all)
	return all
}
