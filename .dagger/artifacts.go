package main

import (
	"context"

	"dagger/mero-release/internal/dagger"
)

// Sbom generates a deterministic SPDX 2.3 JSON SBOM with syft (as a library).
func (m *MeroRelease) Sbom(
	ctx context.Context,
	// What to describe: an image archive, an OCI layout, a directory or a Packer manifest.json.
	input *dagger.File,
	// oci-archive, docker-archive or packer-manifest (use sbom-dir for directories).
	kind string,
	// What the SBOM describes, e.g. mero-kms.
	name string,
	// Its version, e.g. 1.3.0.
	version string,
	// Creation time, seconds since the epoch (SOURCE_DATE_EPOCH) — fixed so the output is reproducible.
	sourceDateEpoch string,
) (*dagger.File, error) {
	ctr := m.Container().WithMountedFile("/in/input", input).WithEnvVariable("SOURCE_DATE_EPOCH", sourceDateEpoch)
	return m.runFile(ctx, ctr, "/work/sbom.spdx.json", "sbom", "--input", "/in/input", "--kind", kind, "--name", name, "--version", version, "-o", "/work/sbom.spdx.json")
}

// SbomDir generates a deterministic SPDX 2.3 JSON SBOM of a directory (e.g. a node-image definition).
func (m *MeroRelease) SbomDir(
	ctx context.Context,
	// The directory to catalogue.
	input *dagger.Directory,
	// What the SBOM describes, e.g. mero-tee.
	name string,
	// Its version, e.g. 1.3.0.
	version string,
	// Creation time, seconds since the epoch (SOURCE_DATE_EPOCH).
	sourceDateEpoch string,
) (*dagger.File, error) {
	ctr := m.Container().WithMountedDirectory("/in/input", input).WithEnvVariable("SOURCE_DATE_EPOCH", sourceDateEpoch)
	return m.runFile(ctx, ctr, "/work/sbom.spdx.json", "sbom", "--input", "/in/input", "--kind", "dir", "--name", name, "--version", version, "-o", "/work/sbom.spdx.json")
}

// Checksums writes checksums.sha256 (sha256sum format) for every file of a directory.
func (m *MeroRelease) Checksums(
	ctx context.Context,
	// The release assets.
	assets *dagger.Directory,
) (*dagger.File, error) {
	ctr := m.Container().WithMountedDirectory("/in/assets", assets)
	return m.runFile(ctx, ctr, "/work/checksums.sha256", "checksums", "write", "--dir", "/in/assets", "-o", "/work/checksums.sha256")
}

// VerifyChecksums checks a directory against its checksums.sha256.
//
// Every mismatching, missing and unlisted file is reported.
func (m *MeroRelease) VerifyChecksums(
	ctx context.Context,
	// The assets, with checksums.sha256 among them.
	assets *dagger.Directory,
) (string, error) {
	rules, err := m.rules(ctx)
	if err != nil {
		return "", err
	}
	ctr := m.Container().WithMountedDirectory("/in/assets", assets)
	return m.run(ctx, ctr, "checksums", "verify", "--dir", "/in/assets", "--allow-unlisted", "*"+rules.BundleSuffix)
}

// Sign writes a Sigstore bundle (<file>.sigstore.json) for every file of a directory.
//
// With a key (cosign format) it signs locally; with keyless, a Fulcio certificate for the GitHub
// Actions identity and a Rekor entry.
func (m *MeroRelease) Sign(
	ctx context.Context,
	// The files to sign.
	assets *dagger.Directory,
	// Cosign private key.
	// +optional
	key *dagger.Secret,
	// Password of the key (COSIGN_PASSWORD).
	// +optional
	password *dagger.Secret,
	// Sign keyless (GitHub Actions OIDC token).
	// +optional
	keyless bool,
	// $ACTIONS_ID_TOKEN_REQUEST_URL of the GitHub Actions job (keyless).
	// +optional
	actionsIdTokenRequestUrl *dagger.Secret,
	// $ACTIONS_ID_TOKEN_REQUEST_TOKEN of the GitHub Actions job (keyless).
	// +optional
	actionsIdTokenRequestToken *dagger.Secret,
) (*dagger.Directory, error) {
	ctr, signArgs := signing{key, password, actionsIdTokenRequestUrl, actionsIdTokenRequestToken, keyless}.apply(m.Container())
	ctr = ctr.WithMountedDirectory("/work/assets", assets)
	names, err := assets.Entries(ctx)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, n := range names {
		files = append(files, "/work/assets/"+n)
	}
	args := append(append([]string{"sign"}, signArgs...), files...)
	ran := exec(ctr, args...)
	if _, err := result(ctx, ran, args); err != nil {
		return nil, err
	}
	return ran.Directory("/work/assets"), nil
}

// Verify checks a file's Sigstore bundle against a public key or a keyless identity.
func (m *MeroRelease) Verify(
	ctx context.Context,
	// The signed file.
	file *dagger.File,
	// Its bundle (<file>.sigstore.json).
	bundle *dagger.File,
	// Public key (cosign.pub) of a key-pair signature.
	// +optional
	key *dagger.File,
	// Expected certificate identity (keyless), e.g. https://github.com/OWNER/REPO/.github/workflows/release-kms-phala.yaml@refs/tags/mero-kms-v1.3.0.
	// +optional
	certificateIdentity string,
	// Expected OIDC issuer (keyless).
	// +optional
	// +default="https://token.actions.githubusercontent.com"
	certificateOidcIssuer string,
	// Sigstore trusted_root.json (keyless; default: the public Sigstore root).
	// +optional
	trustedRoot *dagger.File,
) (string, error) {
	rules, err := m.rules(ctx)
	if err != nil {
		return "", err
	}
	bundlePath := "/in/file" + rules.BundleSuffix
	ctr := m.Container().WithMountedFile("/in/file", file).WithMountedFile(bundlePath, bundle)
	ctr, keyPath := withFile(ctr, "cosign.pub", key)
	ctr, rootPath := withFile(ctr, "trusted_root.json", trustedRoot)
	args := []string{"verify", "--bundle", bundlePath}
	if keyPath != "" {
		args = append(args, "--key", keyPath)
	} else {
		args = append(args, "--certificate-identity", certificateIdentity, "--certificate-oidc-issuer", certificateOidcIssuer)
	}
	args = append(args, flag("trusted-root", rootPath)...)
	return m.run(ctx, ctr, append(args, "/in/file")...)
}

// Notes writes release notes from git history, the author's notes and the class's required sections.
//
// A section the release class requires that nobody wrote fails the call.
func (m *MeroRelease) Notes(
	ctx context.Context,
	// Release tag, e.g. mero-kms-v1.3.0.
	tag string,
	// Release author's notes (Markdown, ## sections).
	// +optional
	authorNotes *dagger.File,
	// This release's published-mrtds.json.
	// +optional
	measurements *dagger.File,
	// The previous release's published-mrtds.json.
	// +optional
	previousMeasurements *dagger.File,
	// Counterpart versions to list as compatible, besides the catalog's tested pairs.
	// +optional
	compatible []string,
	// Compatibility catalog whose tested pairs of this version are listed (default: the source's).
	// +optional
	catalog *dagger.File,
	// stable, rc or hotfix (default: classified from the repository's tags).
	// +optional
	class string,
) (*dagger.File, error) {
	ctr, notesPath := withFile(m.Container(), "author-notes.md", authorNotes)
	ctr, mPath := withFile(ctr, "published-mrtds.json", measurements)
	ctr, pPath := withFile(ctr, "previous-mrtds.json", previousMeasurements)
	ctr, catalogPath := withFile(ctr, catalogFile, catalog)
	if catalogPath == "" {
		catalogPath = catalogFile
	}
	args := []string{"notes", "--tag", tag, "--repo", srcPath, "--catalog", catalogPath, "-o", "/work/release-notes.md"}
	args = append(args, flag("author-notes", notesPath)...)
	args = append(args, flag("measurements", mPath)...)
	args = append(args, flag("previous-measurements", pPath)...)
	args = append(args, flag("compatible", csv(compatible))...)
	args = append(args, flag("class", class)...)
	return m.runFile(ctx, ctr, "/work/release-notes.md", args...)
}
