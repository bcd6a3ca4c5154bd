package main

import (
	"context"
	"fmt"

	"dagger/mero-release/internal/dagger"
)

// statePath is where a release call keeps its state: releases/ (the local store) and work/.
const statePath = "/state"

// signing is how release functions sign (and how the auditor checks it).
type signing struct {
	key, password, idTokenURL, idTokenToken *dagger.Secret
	keyless                                 bool
}

// apply mounts the signing material and returns the CLI flags that select it.
func (s signing) apply(ctr *dagger.Container) (*dagger.Container, []string) {
	var args []string
	if s.password != nil {
		ctr = ctr.WithSecretVariable("COSIGN_PASSWORD", s.password)
	}
	switch {
	case s.keyless:
		if s.idTokenURL != nil && s.idTokenToken != nil {
			ctr = ctr.WithSecretVariable("ACTIONS_ID_TOKEN_REQUEST_URL", s.idTokenURL).
				WithSecretVariable("ACTIONS_ID_TOKEN_REQUEST_TOKEN", s.idTokenToken)
		}
		args = append(args, "--keyless")
	case s.key != nil:
		ctr = ctr.WithMountedSecret("/run/secrets/cosign.key", s.key)
		args = append(args, "--key", "/run/secrets/cosign.key")
	}
	return ctr, args
}

// releaseContainer prepares a release run: the state directory, the store, GitHub and signing.
func (m *MeroRelease) releaseContainer(state *dagger.Directory, githubRepository string, sig signing) (*dagger.Container, []string) {
	if state == nil {
		state = dag.Directory()
	}
	ctr := m.Container().WithDirectory(statePath, state)
	args := []string{"--work", statePath + "/work", "--catalog-out", statePath + "/work/compatibility-catalog.json"}
	if githubRepository != "" {
		ctr = ctr.WithEnvVariable("GITHUB_REPOSITORY", githubRepository)
		args = append(args, "--store", "github:"+githubRepository)
		if m.GithubToken != nil {
			ctr = ctr.WithSecretVariable("GITHUB_TOKEN", m.GithubToken)
		}
	} else {
		args = append(args, "--store", "dir:"+statePath+"/releases")
	}
	ctr, signArgs := sig.apply(ctr)
	return ctr, append(args, signArgs...)
}

// runState runs the CLI and returns the state directory after it, or an error with the CLI's log.
func (m *MeroRelease) runState(ctx context.Context, ctr *dagger.Container, args ...string) (*dagger.Directory, error) {
	ran := exec(ctr, args...)
	if _, err := result(ctx, ran, args); err != nil {
		return nil, err
	}
	return ran.Directory(statePath), nil
}

// ReleaseKms runs the KMS release pipeline for a tag and returns the state directory.
//
// Stages (SPEC §3): version sync → counterpart → build the image per profile (pushed when a
// registry is set) → policies → measurements → SBOM → dependency guard → notes → checksums →
// sign → stage → audit → E2E → publish → audit → catalog. The returned directory holds releases/
// (the local store) and work/ (assets, images, report.json, the updated catalog); pass it back as
// --state to release against the same store.
func (m *MeroRelease) ReleaseKms(
	ctx context.Context,
	// Release tag, e.g. mero-kms-v1.3.0.
	tag string,
	// The repository's MERO_KMS_VERSION; must equal the tag's version.
	version string,
	// Node-image version to pair with (default: the newest published).
	// +optional
	counterpart string,
	// Output of an earlier release call (releases/ and work/); empty for a fresh local store.
	// +optional
	state *dagger.Directory,
	// Publish to GitHub Releases of OWNER/REPO (with the github-token) instead of the local store.
	// +optional
	githubRepository string,
	// The KMS binary (linux/amd64, static); default: built from examples/kms in the builder image.
	// +optional
	kmsBinary *dagger.File,
	// Push the profile images to this registry, e.g. ghcr.io/OWNER (GHCR_REGISTRY).
	// +optional
	registry string,
	// Registry token with packages:write (GHCR_TOKEN).
	// +optional
	ghcrToken *dagger.Secret,
	// Release author's notes (Markdown with the sections the class requires).
	// +optional
	authorNotes *dagger.File,
	// Cosign private key; default: a local key pair kept in the state's work/keys.
	// +optional
	signingKey *dagger.Secret,
	// Password of the cosign key (COSIGN_PASSWORD).
	// +optional
	cosignPassword *dagger.Secret,
	// Sign keyless with Fulcio + Rekor and the GitHub Actions OIDC token.
	// +optional
	keyless bool,
	// $ACTIONS_ID_TOKEN_REQUEST_URL of the GitHub Actions job (keyless).
	// +optional
	actionsIdTokenRequestUrl *dagger.Secret,
	// $ACTIONS_ID_TOKEN_REQUEST_TOKEN of the GitHub Actions job (keyless).
	// +optional
	actionsIdTokenRequestToken *dagger.Secret,
) (*dagger.Directory, error) {
	ctr, args := m.releaseContainer(state, githubRepository, signing{signingKey, cosignPassword, actionsIdTokenRequestUrl, actionsIdTokenRequestToken, keyless})
	if kmsBinary == nil {
		kmsBinary = goBuild(m.Source, m.BuilderImage, "./examples/kms/cmd/mero-kms")
	}
	ctr = ctr.WithMountedFile("/in/mero-kms", kmsBinary)
	if ghcrToken != nil {
		ctr = ctr.WithSecretVariable("GHCR_TOKEN", ghcrToken)
	}
	ctr, notesPath := withFile(ctr, "author-notes.md", authorNotes)
	args = append([]string{"release-kms", "--tag", tag, "--version", version, "--kms-binary", "/in/mero-kms"}, args...)
	args = append(args, flag("counterpart", counterpart)...)
	args = append(args, flag("registry", registry)...)
	args = append(args, flag("author-notes", notesPath)...)
	return m.runState(ctx, ctr, args...)
}

// ReleaseNodeImage runs the node-image release pipeline for a tag and returns the state directory.
//
// Every profile's image is booted on an ephemeral TDX VM (the simulator by default, a GCP
// Confidential VM with --provider gcp), its quote verified and MRTD/RTMR0–3 published; the VM is
// deleted on every path. The rest follows release-kms: SBOM, notes, checksums, sign, stage, audit,
// E2E, publish, audit, catalog.
func (m *MeroRelease) ReleaseNodeImage(
	ctx context.Context,
	// Release tag, e.g. mero-tee-v1.3.0.
	tag string,
	// The repository's MERO_TEE_VERSION; must equal the tag's version.
	version string,
	// KMS version to pair with in E2E (default: the newest published).
	// +optional
	counterpart string,
	// Output of an earlier release call (releases/ and work/); empty for a fresh local store.
	// +optional
	state *dagger.Directory,
	// Publish to GitHub Releases of OWNER/REPO (with the github-token) instead of the local store.
	// +optional
	githubRepository string,
	// VM provider: sim (TDX simulator) or gcp.
	// +optional
	// +default="sim"
	provider string,
	// PROFILE=IMAGE the provider boots (GCP image names); default: examples/node-image.
	// +optional
	image []string,
	// GCP project (GCP_PROJECT_ID), for --provider gcp.
	// +optional
	gcpProject string,
	// TDX-capable GCP zone (GCP_ZONE), for --provider gcp.
	// +optional
	gcpZone string,
	// GCP service-account key (GCP_SERVICE_ACCOUNT_KEY), for --provider gcp.
	// +optional
	gcpServiceAccountKey *dagger.Secret,
	// Release author's notes (Markdown with the sections the class requires).
	// +optional
	authorNotes *dagger.File,
	// Cosign private key; default: a local key pair kept in the state's work/keys.
	// +optional
	signingKey *dagger.Secret,
	// Password of the cosign key (COSIGN_PASSWORD).
	// +optional
	cosignPassword *dagger.Secret,
	// Sign keyless with Fulcio + Rekor and the GitHub Actions OIDC token.
	// +optional
	keyless bool,
	// $ACTIONS_ID_TOKEN_REQUEST_URL of the GitHub Actions job (keyless).
	// +optional
	actionsIdTokenRequestUrl *dagger.Secret,
	// $ACTIONS_ID_TOKEN_REQUEST_TOKEN of the GitHub Actions job (keyless).
	// +optional
	actionsIdTokenRequestToken *dagger.Secret,
) (*dagger.Directory, error) {
	ctr, args := m.releaseContainer(state, githubRepository, signing{signingKey, cosignPassword, actionsIdTokenRequestUrl, actionsIdTokenRequestToken, keyless})
	if gcpServiceAccountKey != nil {
		ctr = ctr.WithSecretVariable("GCP_SERVICE_ACCOUNT_KEY", gcpServiceAccountKey)
	}
	ctr, notesPath := withFile(ctr, "author-notes.md", authorNotes)
	args = append([]string{"release-node-image", "--tag", tag, "--version", version, "--provider", provider}, args...)
	args = append(args, flag("counterpart", counterpart)...)
	args = append(args, repeated("image", image)...)
	args = append(args, flag("gcp-project", gcpProject)...)
	args = append(args, flag("gcp-zone", gcpZone)...)
	args = append(args, flag("author-notes", notesPath)...)
	return m.runState(ctx, ctr, args...)
}

// Audit re-checks a published release (SPEC §6): assets, signatures, checksums, policies.
//
// Give either the local store (a release call's state directory, or its releases/) or a GitHub
// repository. Key-signed releases are checked against --key; keyless ones against the release
// workflow's identity in the repository.
func (m *MeroRelease) Audit(
	ctx context.Context,
	// Release tag, e.g. mero-tee-v1.3.0.
	tag string,
	// A local store: a release call's state directory (with releases/) or the store itself.
	// +optional
	store *dagger.Directory,
	// Audit the GitHub release of OWNER/REPO instead (with the github-token).
	// +optional
	githubRepository string,
	// Public key (cosign.pub) of a key-signed release; default for a state directory: its work/keys/cosign.pub.
	// +optional
	key *dagger.File,
	// Sigstore trusted_root.json for keyless bundles (default: the public Sigstore root).
	// +optional
	trustedRoot *dagger.File,
) (string, error) {
	ctr := m.Container()
	args := []string{"audit", "--tag", tag}
	switch {
	case githubRepository != "":
		ctr = ctr.WithEnvVariable("GITHUB_REPOSITORY", githubRepository)
		if m.GithubToken != nil {
			ctr = ctr.WithSecretVariable("GITHUB_TOKEN", m.GithubToken)
		}
		args = append(args, "--store", "github:"+githubRepository)
	case store != nil:
		ctr = ctr.WithDirectory(statePath, store)
		storeDir := statePath
		if entries, err := store.Entries(ctx); err == nil && contains(entries, "releases/") {
			storeDir = statePath + "/releases"
			if key == nil && contains(entries, "work/") {
				key = store.File("work/keys/cosign.pub")
			}
		}
		args = append(args, "--store", "dir:"+storeDir)
	default:
		return "", fmt.Errorf("audit %s: give --store or --github-repository", tag)
	}
	ctr, keyPath := withFile(ctr, "cosign.pub", key)
	ctr, rootPath := withFile(ctr, "trusted_root.json", trustedRoot)
	args = append(args, flag("key", keyPath)...)
	args = append(args, flag("trusted-root", rootPath)...)
	return m.run(ctx, ctr, args...)
}

// EndToEnd runs the post-release E2E suite and guardrails A–D (SPEC §7) on a KMS and a node release.
func (m *MeroRelease) EndToEnd(
	ctx context.Context,
	// KMS release tag, e.g. mero-kms-v1.3.0.
	kmsRelease string,
	// Node-image release tag, e.g. mero-tee-v1.3.0.
	nodeRelease string,
	// A release call's state directory (with releases/) or the local store itself.
	store *dagger.Directory,
	// Compatibility catalog (default: the source's compatibility-catalog.json).
	// +optional
	catalog *dagger.File,
	// Report failures but succeed (E2E is advisory for release candidates).
	// +optional
	advisory bool,
) (string, error) {
	ctr := m.Container().WithDirectory(statePath, store)
	storeDir := statePath
	if entries, err := store.Entries(ctx); err == nil && contains(entries, "releases/") {
		storeDir = statePath + "/releases"
	}
	ctr, catalogPath := withFile(ctr, catalogFile, catalog)
	if catalogPath == "" {
		catalogPath = catalogFile
	}
	args := []string{"e2e", "--kms-release", kmsRelease, "--node-release", nodeRelease, "--store", "dir:" + storeDir,
		"--catalog", catalogPath, "--image-base", srcPath}
	if advisory {
		args = append(args, "--advisory")
	}
	return m.run(ctx, ctr, args...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
