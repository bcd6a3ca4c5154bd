package main

import (
	"context"
	"fmt"

	"dagger/mero-release/internal/dagger"
)

// Publish publishes a directory of assembled release assets: draft → upload → check → publish.
//
// Every asset of the family must be there; a failure leaves a draft that a re-run completes, and
// a published release is never changed. Returns the state (local store) or the log (GitHub).
func (m *MeroRelease) Publish(
	ctx context.Context,
	// Release tag, e.g. mero-kms-v1.3.0.
	tag string,
	// The assembled assets (with checksums.sha256 and the Sigstore bundles).
	assets *dagger.Directory,
	// Publish to GitHub Releases of OWNER/REPO (with the github-token).
	// +optional
	githubRepository string,
	// Output of an earlier call (releases/); empty for a fresh local store.
	// +optional
	state *dagger.Directory,
) (*dagger.Directory, error) {
	ctr := m.Container().WithMountedDirectory(inputDir+"/assets", assets)
	storeSpec := "dir:" + statePath + "/releases"
	switch {
	case githubRepository != "":
		ctr = ctr.WithEnvVariable("GITHUB_REPOSITORY", githubRepository)
		if m.GithubToken != nil {
			ctr = ctr.WithSecretVariable("GITHUB_TOKEN", m.GithubToken)
		}
		storeSpec = "github:" + githubRepository
	case state != nil:
		ctr = ctr.WithMountedDirectory(statePath, state)
	}
	return m.runState(ctx, ctr, "publish", "--tag", tag, "--dir", inputDir+"/assets", "--store", storeSpec)
}

// CatalogPr opens or updates the pull request that changes compatibility-catalog.json.
//
// One branch per release (mero-release/catalog-<tag>); idempotent, never a direct push.
func (m *MeroRelease) CatalogPr(
	ctx context.Context,
	// The release whose E2E run produced the catalog, e.g. mero-kms-v1.3.0.
	tag string,
	// The repository, OWNER/REPO.
	githubRepository string,
	// The new compatibility-catalog.json (e.g. a release call's work/compatibility-catalog.json).
	catalog *dagger.File,
	// Branch the pull request targets (default: the repository's default branch).
	// +optional
	base string,
) (string, error) {
	if m.GithubToken == nil {
		return "", fmt.Errorf("catalog-pr %s: --github-token is required", tag)
	}
	ctr := m.Container().WithMountedFile(inputDir+"/"+catalogFile, catalog).
		WithEnvVariable("GITHUB_REPOSITORY", githubRepository).
		WithSecretVariable("GITHUB_TOKEN", m.GithubToken)
	args := []string{"catalog-pr", "--tag", tag, "--repo", githubRepository, "--file", inputDir + "/" + catalogFile}
	return m.run(ctx, ctr, append(args, flag("base", base)...)...)
}

// GcpSweep deletes ephemeral measurement VMs older than a given age (leftovers of killed runs).
//
// Only VMs labelled as ephemeral mero-release VMs are ever touched.
func (m *MeroRelease) GcpSweep(
	ctx context.Context,
	// GCP project (GCP_PROJECT_ID).
	gcpProject string,
	// GCP zone (GCP_ZONE).
	gcpZone string,
	// GCP service-account key (GCP_SERVICE_ACCOUNT_KEY).
	gcpServiceAccountKey *dagger.Secret,
	// Minimum age of a VM to delete.
	// +optional
	// +default="24h"
	olderThan string,
	// List what would be deleted without deleting.
	// +optional
	dryRun bool,
) (string, error) {
	ctr := m.Container().WithSecretVariable("GCP_SERVICE_ACCOUNT_KEY", gcpServiceAccountKey)
	args := []string{"gcp", "sweep", "--gcp-project", gcpProject, "--gcp-zone", gcpZone, "--older-than", olderThan}
	if dryRun {
		args = append(args, "--dry-run")
	}
	return m.run(ctx, ctr, args...)
}
