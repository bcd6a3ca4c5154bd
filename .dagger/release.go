package main

import (
	"context"
	"fmt"
	"strings"

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

// releaseOptions are the inputs both release functions hand the CLI the same way: the signer,
// the calling workflow run, the vulnerability database and where E2E runs the KMS.
type releaseOptions struct {
	sig    signing
	run    githubRun
	vulnDB *dagger.Directory
	phala  phala
}

// releaseContainer prepares a release run: the state directory, the store, the catalog, GitHub
// and opts (signing, the workflow run, the vulnerability database, the KMS provider). The
// catalog read is the given one, else the state's (what earlier release calls recorded), else
// the source's; the updated catalog goes to the state's work/.
func (m *MeroRelease) releaseContainer(ctx context.Context, state *dagger.Directory, catalog *dagger.File, githubRepository string, opts releaseOptions) (*dagger.Container, []string) {
	// A fresh run starts without a state directory: the CLI creates it. Inputs are mounted,
	// never copied (see Container).
	const stateCatalog = statePath + "/work/" + catalogFile
	ctr := m.Container()
	args := []string{"--work", statePath + "/work", "--catalog-out", stateCatalog}
	if state != nil {
		ctr = ctr.WithMountedDirectory(statePath, state)
		if catalog == nil && fileExists(ctx, state, "work/"+catalogFile) {
			args = append(args, "--catalog", stateCatalog)
		}
	}
	ctr, catalogPath := withFile(ctr, catalogFile, catalog)
	args = append(args, flag("catalog", catalogPath)...)
	if githubRepository != "" {
		ctr = ctr.WithEnvVariable("GITHUB_REPOSITORY", githubRepository)
		args = append(args, "--store", "github:"+githubRepository)
		if m.GithubToken != nil {
			ctr = ctr.WithSecretVariable("GITHUB_TOKEN", m.GithubToken)
		}
	} else {
		args = append(args, "--store", "dir:"+statePath+"/releases")
	}
	if strings.Contains(m.BuilderImage, "@sha256:") {
		// the toolchain image that built the CLI, a resolved input of the release's provenance
		args = append(args, "--builder-image", m.BuilderImage)
	}
	ctr, signArgs := opts.sig.apply(ctr)
	args = append(args, signArgs...)
	ctr = opts.run.apply(ctr)
	ctr, vulnArgs := withVulnDB(ctr, opts.vulnDB)
	args = append(args, vulnArgs...)
	ctr, phalaArgs := opts.phala.apply(ctr)
	return ctr, append(args, phalaArgs...)
}

// githubRun is the GitHub Actions run that calls the function (its variables do not reach the
// container by themselves): the CLI takes the workflow ref as the builder id of the release's
// provenance, the commit as its source and the run as its invocation (provenanceBuild).
type githubRun struct {
	workflowRef, sha, runID string
}

// apply sets the run's GitHub Actions variables when a workflow ref is given.
func (g githubRun) apply(ctr *dagger.Container) *dagger.Container {
	if g.workflowRef == "" {
		return ctr
	}
	ctr = ctr.WithEnvVariable("GITHUB_ACTIONS", "true").WithEnvVariable("GITHUB_WORKFLOW_REF", g.workflowRef)
	if g.sha != "" {
		ctr = ctr.WithEnvVariable("GITHUB_SHA", g.sha)
	}
	if g.runID != "" {
		ctr = ctr.WithEnvVariable("GITHUB_RUN_ID", g.runID)
	}
	return ctr
}

// withVulnDB mounts a grype vulnerability database directory for the release's vulnerability
// gate (--vuln-db); without one the CLI scans with the repository's advisory list.
func withVulnDB(ctr *dagger.Container, db *dagger.Directory) (*dagger.Container, []string) {
	ctr, path := withDir(ctr, "vuln-db", db)
	return ctr, flag("vuln-db", path)
}

// phala is where E2E runs the KMS: locally (the default) or, for kms-provider phala, as Phala
// Cloud CVMs through the API at url with the key (the CLI checks that both are there).
type phala struct {
	provider, url string
	apiKey        *dagger.Secret
}

// apply sets the Phala API's variables and returns the CLI flags that select the KMS provider.
func (p phala) apply(ctr *dagger.Container) (*dagger.Container, []string) {
	if p.url != "" {
		ctr = ctr.WithEnvVariable("PHALA_DSTACK_URL", p.url)
	}
	if p.apiKey != nil {
		ctr = ctr.WithSecretVariable("PHALA_API_KEY", p.apiKey)
	}
	return ctr, flag("kms-provider", p.provider)
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
// The three profile images are built here from the KMS's Dockerfile (the sample KMS of
// examples/ by default) and handed to the pipeline as OCI archives: those bytes are measured,
// SBOM'd, run in E2E and, with a registry, pushed. Stages (SPEC §3): version sync → counterpart
// → images → policies → measurements → SBOM → notes → checksums → sign → stage → audit →
// [push the digests, for kms-provider phala] → E2E → dependency guard → push → publish → audit
// → catalog. With kms-provider phala, E2E deploys each profile's image as a Phala Cloud CVM,
// probes it and deletes it on every path. The returned directory holds
// releases/ (the local store) and work/ (assets, images, report.json, the updated catalog);
// pass it back as --state to release against the same store.
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
	// Compatibility catalog to read (COMPATIBILITY_CATALOG_PATH); default: the state's updated
	// catalog, else the source's.
	// +optional
	catalog *dagger.File,
	// Publish to GitHub Releases of OWNER/REPO (with the github-token) instead of the local store.
	// +optional
	githubRepository string,
	// Source directory of a Dockerfile-based KMS (default: this repository, examples/kms).
	// +optional
	kmsSource *dagger.Directory,
	// The KMS Dockerfile inside the KMS source.
	// +optional
	// +default="examples/kms/Dockerfile"
	dockerfile string,
	// A prebuilt static KMS binary (linux/amd64) the Dockerfile copies instead of compiling it
	// (KMS_BINARY_SOURCE=prebuilt): for builders that reach no image registry.
	// +optional
	kmsBinary *dagger.File,
	// Push the profile images to this registry, e.g. ghcr.io/OWNER (GHCR_REGISTRY), after the
	// staged release passed its audit and E2E.
	// +optional
	registry string,
	// Registry user (GitHub: the actor).
	// +optional
	registryUsername string,
	// Registry token with packages:write (GHCR_TOKEN).
	// +optional
	ghcrToken *dagger.Secret,
	// Release author's notes (Markdown with the sections the class requires); default: the
	// notes convention, release-notes/<tag>.md of the history (the source unless --history).
	// +optional
	authorNotes *dagger.File,
	// Git repository whose history, tags and release-notes/<tag>.md feed the notes and the
	// hotfix rule (default: the source), e.g. the scratch history of the lifecycle.
	// +optional
	history *dagger.Directory,
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
	// Open or update the catalog pull request on the GitHub repository after E2E passed.
	// +optional
	catalogPr bool,
	// Where E2E runs the KMS: local (a process) or phala (a Phala Cloud CVM per profile running
	// the release's image; needs phala-dstack-url, phala-api-key and a registry to pull from).
	// +optional
	// +default="local"
	kmsProvider string,
	// The Phala Cloud API, …/api/v1 (PHALA_DSTACK_URL), for kms-provider phala.
	// +optional
	phalaDstackUrl string,
	// The Phala Cloud API key (PHALA_API_KEY), for kms-provider phala.
	// +optional
	phalaApiKey *dagger.Secret,
	// A grype vulnerability database directory (mero-release vulndb update --dir) for the
	// vulnerability gate; default: the repository's advisory list vulndb/advisories.json, a narrow
	// scan the release reports as such.
	// +optional
	vulnDb *dagger.Directory,
	// Download the newest grype vulnerability database for the gate first (vulndb-update: grype's
	// public listing, or vuln-db-listing-url / vuln-db-listing); the release workflows do.
	// +optional
	vulnDbUpdate bool,
	// With vuln-db-update: grype's database listing to read (a mirror's URL).
	// +optional
	vulnDbListingUrl string,
	// With vuln-db-update: a service serving a listing (mero-release vulndb mirror), e.g.
	// tcp://localhost:8000.
	// +optional
	vulnDbListing *dagger.Service,
	// $GITHUB_WORKFLOW_REF of the calling workflow run: the builder id of the release's
	// provenance (without it the builder is "local").
	// +optional
	githubWorkflowRef string,
	// $GITHUB_SHA of the calling workflow run: the source commit of the release's provenance.
	// +optional
	githubSha string,
	// $GITHUB_RUN_ID of the calling workflow run: the provenance's invocation.
	// +optional
	githubRunId string,
) (*dagger.Directory, error) {
	vulnDb, err := m.vulnDatabase(ctx, vulnDb, vulnDbUpdate, vulnDbListingUrl, vulnDbListing)
	if err != nil {
		return nil, err
	}
	ctr, args := m.releaseContainer(ctx, state, catalog, githubRepository, releaseOptions{
		sig:    signing{signingKey, cosignPassword, actionsIdTokenRequestUrl, actionsIdTokenRequestToken, keyless},
		run:    githubRun{githubWorkflowRef, githubSha, githubRunId},
		vulnDB: vulnDb,
		phala:  phala{kmsProvider, phalaDstackUrl, phalaApiKey},
	})
	rules, err := m.rules(ctx)
	if err != nil {
		return nil, err
	}
	build := m.kmsBuildOf(kmsSource, dockerfile, kmsBinary)
	images := build.archives(rules.Profiles, version)
	for i, p := range rules.Profiles {
		path := inputDir + "/images/" + p + ".oci.tar"
		ctr = ctr.WithMountedFile(path, images[i])
		args = append(args, "--image", p+"="+path)
	}
	if ghcrToken != nil {
		ctr = ctr.WithSecretVariable("GHCR_TOKEN", ghcrToken)
	}
	if registryUsername != "" {
		ctr = ctr.WithEnvVariable("GITHUB_ACTOR", registryUsername)
	}
	ctr, notesPath := withFile(ctr, "author-notes.md", authorNotes)
	ctr, historyPath := withDir(ctr, "history", history)
	args = append(args, flag("history", historyPath)...)
	args = append([]string{"release-kms", "--tag", tag, "--version", version}, args...)
	args = append(args, flag("counterpart", counterpart)...)
	args = append(args, flag("registry", registry)...)
	args = append(args, flag("author-notes", notesPath)...)
	if catalogPr {
		args = append(args, "--catalog-pr")
	}
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
	// Compatibility catalog to read (COMPATIBILITY_CATALOG_PATH); default: the state's updated
	// catalog, else the source's.
	// +optional
	catalog *dagger.File,
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
	// Build the node images first (build-node-image: Packer for gcp, the simulator's description
	// for sim) and release those.
	// +optional
	build bool,
	// Image family prefix of the built images (GCP_IMAGE_FAMILY), with --build.
	// +optional
	imageFamily string,
	// GCP project (GCP_PROJECT_ID), for --provider gcp.
	// +optional
	gcpProject string,
	// TDX-capable GCP zone (GCP_ZONE), for --provider gcp.
	// +optional
	gcpZone string,
	// GCP service-account key (GCP_SERVICE_ACCOUNT_KEY), for --provider gcp.
	// +optional
	gcpServiceAccountKey *dagger.Secret,
	// Release author's notes (Markdown with the sections the class requires); default: the
	// notes convention, release-notes/<tag>.md of the history (the source unless --history).
	// +optional
	authorNotes *dagger.File,
	// Git repository whose history, tags and release-notes/<tag>.md feed the notes and the
	// hotfix rule (default: the source), e.g. the scratch history of the lifecycle.
	// +optional
	history *dagger.Directory,
	// KMS executable E2E runs as processes (default: the sample KMS inside the CLI).
	// +optional
	kmsBinary *dagger.File,
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
	// Open or update the catalog pull request on the GitHub repository after E2E passed.
	// +optional
	catalogPr bool,
	// Where E2E runs the KMS: local (a process) or phala (a Phala Cloud CVM per profile running
	// the image the KMS release recorded; needs phala-dstack-url and phala-api-key).
	// +optional
	// +default="local"
	kmsProvider string,
	// The Phala Cloud API, …/api/v1 (PHALA_DSTACK_URL), for kms-provider phala.
	// +optional
	phalaDstackUrl string,
	// The Phala Cloud API key (PHALA_API_KEY), for kms-provider phala.
	// +optional
	phalaApiKey *dagger.Secret,
	// A grype vulnerability database directory (mero-release vulndb update --dir) for the
	// vulnerability gate; default: the repository's advisory list vulndb/advisories.json, a narrow
	// scan the release reports as such.
	// +optional
	vulnDb *dagger.Directory,
	// Download the newest grype vulnerability database for the gate first (vulndb-update: grype's
	// public listing, or vuln-db-listing-url / vuln-db-listing); the release workflows do.
	// +optional
	vulnDbUpdate bool,
	// With vuln-db-update: grype's database listing to read (a mirror's URL).
	// +optional
	vulnDbListingUrl string,
	// With vuln-db-update: a service serving a listing (mero-release vulndb mirror), e.g.
	// tcp://localhost:8000.
	// +optional
	vulnDbListing *dagger.Service,
	// $GITHUB_WORKFLOW_REF of the calling workflow run: the builder id of the release's
	// provenance (without it the builder is "local").
	// +optional
	githubWorkflowRef string,
	// $GITHUB_SHA of the calling workflow run: the source commit of the release's provenance.
	// +optional
	githubSha string,
	// $GITHUB_RUN_ID of the calling workflow run: the provenance's invocation.
	// +optional
	githubRunId string,
) (*dagger.Directory, error) {
	vulnDb, err := m.vulnDatabase(ctx, vulnDb, vulnDbUpdate, vulnDbListingUrl, vulnDbListing)
	if err != nil {
		return nil, err
	}
	ctr, args := m.releaseContainer(ctx, state, catalog, githubRepository, releaseOptions{
		sig:    signing{signingKey, cosignPassword, actionsIdTokenRequestUrl, actionsIdTokenRequestToken, keyless},
		run:    githubRun{githubWorkflowRef, githubSha, githubRunId},
		vulnDB: vulnDb,
		phala:  phala{kmsProvider, phalaDstackUrl, phalaApiKey},
	})
	ctr, kmsPath := withFile(ctr, "mero-kms", kmsBinary)
	args = append(args, flag("kms-binary", kmsPath)...)
	if build {
		if len(image) > 0 {
			return nil, fmt.Errorf("release-node-image %s: --build builds the images: drop --image", tag)
		}
		// Refuse a mismatching version before spending a Packer build on it.
		if _, err := m.GuardVersionSync(ctx, tag, version); err != nil {
			return nil, err
		}
		if provider == "gcp" {
			built, err := m.BuildNodeImage(ctx, tag, provider, nil, gcpProject, gcpZone, imageFamily, gcpServiceAccountKey, "")
			if err != nil {
				return nil, err
			}
			const builtPath = inputDir + "/node-image"
			ctr = ctr.WithMountedDirectory(builtPath, built)
			args = append(args, "--packer-manifest", builtPath+"/packer-manifest.json")
		} else {
			// The simulator's image description is built into the state, where the release's
			// node-image-manifest.json points and later calls with this state boot it from.
			builtPath := statePath + "/work/node-images/" + tag
			buildArgs := nodeBuildArgs(tag, "sim", "examples/node-image", builtPath, "", "", "")
			ctr = exec(ctr, buildArgs...)
			if _, err := result(ctx, ctr, buildArgs); err != nil {
				return nil, err
			}
			rules, err := m.rules(ctx)
			if err != nil {
				return nil, err
			}
			for _, p := range rules.Profiles {
				image = append(image, p+"="+builtPath)
			}
			args = append(args, "--sbom-input", builtPath)
		}
	}
	if catalogPr {
		args = append(args, "--catalog-pr")
	}
	if gcpServiceAccountKey != nil {
		ctr = ctr.WithSecretVariable("GCP_SERVICE_ACCOUNT_KEY", gcpServiceAccountKey)
	}
	ctr, notesPath := withFile(ctr, "author-notes.md", authorNotes)
	ctr, historyPath := withDir(ctr, "history", history)
	args = append(args, flag("history", historyPath)...)
	args = append([]string{"release-node-image", "--tag", tag, "--version", version, "--provider", provider}, args...)
	args = append(args, flag("counterpart", counterpart)...)
	args = append(args, repeated("image", image)...)
	args = append(args, flag("gcp-project", gcpProject)...)
	args = append(args, flag("gcp-zone", gcpZone)...)
	args = append(args, flag("author-notes", notesPath)...)
	return m.runState(ctx, ctr, args...)
}

// Audit re-checks a published release (SPEC §6): assets, signatures, checksums, policies and
// the binding of every asset to the tag.
//
// Give either the local store (a release call's state directory, or its releases/) or a GitHub
// repository. The expected signer comes from the caller, never from the store audited (a
// state's own work/keys/cosign.pub is not trusted): --key for key-signed releases,
// --certificate-identity (or --github-repository: its release workflow) for keyless ones, else
// the key the source repository pins (.github/release-signer.pub); with none of them the call
// is a usage error (exit 2) saying what to pass.
// Exit codes of the auditor: 10 for a verification failure, 11 for a missing asset.
func (m *MeroRelease) Audit(
	ctx context.Context,
	// Release tag, e.g. mero-tee-v1.3.0.
	tag string,
	// A local store: a release call's state directory (with releases/) or the store itself.
	// +optional
	store *dagger.Directory,
	// Audit the GitHub release of OWNER/REPO instead (with the github-token); keyless bundles
	// must then come from that repository's release workflow.
	// +optional
	githubRepository string,
	// Public key (cosign.pub) of a key-signed release.
	// +optional
	key *dagger.File,
	// Keyless signer: https://github.com/OWNER/REPO/.github/workflows/FILE@refs/tags/TAG.
	// +optional
	certificateIdentity string,
	// Sigstore trusted_root.json for keyless bundles (default: the public Sigstore root).
	// +optional
	trustedRoot *dagger.File,
	// Print the JSON report (stdout) instead of the [PASS]/[FAIL] lines.
	// +optional
	jsonReport bool,
) (string, error) {
	ctr, rs, err := m.withStore(ctx, m.Container(), "audit "+tag, store, githubRepository)
	if err != nil {
		return "", err
	}
	ctr, keyPath := withFile(ctr, "cosign.pub", key)
	ctr, rootPath := withFile(ctr, "trusted_root.json", trustedRoot)
	args := []string{"audit", "--tag", tag, "--store", rs.spec, "--repo-dir", srcPath}
	// Only what the caller gave: the CLI falls back to the source's pinned key, never to the
	// store's own key (rs.verification's default is for the state's own runs, not for audits).
	args = append(args, flag("key", keyPath)...)
	args = append(args, flag("certificate-identity", certificateIdentity)...)
	args = append(args, flag("trusted-root", rootPath)...)
	if jsonReport {
		args = append([]string{"--json"}, args...)
	}
	return m.run(ctx, ctr, args...)
}

// EndToEnd runs the post-release E2E suite and guardrails A–D (SPEC §7) on a KMS and a node release.
//
// The KMS instances run the KMS release's policies and recorded deployment; their quotes are
// checked against the KMS release's published measurements too.
func (m *MeroRelease) EndToEnd(
	ctx context.Context,
	// KMS release tag, e.g. mero-kms-v1.3.0.
	kmsRelease string,
	// Node-image release tag, e.g. mero-tee-v1.3.0.
	nodeRelease string,
	// A release call's state directory (with releases/) or the local store itself.
	store *dagger.Directory,
	// Compatibility catalog (default: the state's updated catalog, else the source's).
	// +optional
	catalog *dagger.File,
	// KMS executable to run as processes (e.g. the one of the released image); default: the
	// sample KMS inside the CLI.
	// +optional
	kmsBinary *dagger.File,
	// Report failures but succeed (E2E is advisory for release candidates).
	// +optional
	advisory bool,
) (string, error) {
	ctr, rs, err := m.withStore(ctx, m.Container(), "end-to-end", store, "")
	if err != nil {
		return "", err
	}
	ctr, catalogPath := withFile(ctr, catalogFile, catalog)
	ctr, kmsPath := withFile(ctr, "mero-kms", kmsBinary)
	args := []string{"e2e", "--kms-release", kmsRelease, "--node-release", nodeRelease, "--store", rs.spec,
		"--catalog", rs.catalog(catalogPath), "--image-base", srcPath, "--check-kms-measurements"}
	args = append(args, flag("kms-binary", kmsPath)...)
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
