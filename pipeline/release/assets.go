package release

import "slices"

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
)

// BundleName is the Sigstore bundle file of an asset.
func BundleName(asset string) string { return asset + BundleSuffix }

// Assets are the files a release of a family must carry (SPEC §5): the signed content
// assets, the checksum file, and one Sigstore bundle for each of them.
type Assets struct {
	// Content are the assets listed in checksums.sha256 (everything but the checksum file and bundles).
	Content []string
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

// All is every file of a complete release, bundles included, sorted.
func (a Assets) All() []string {
	var all []string
	for _, s := range a.Signed() {
		all = append(all, s, BundleName(s))
	}
	slices.Sort(all)
	return all
}
