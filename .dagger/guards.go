package main

import (
	"context"
	"fmt"
	"strings"

	"dagger/mero-release/internal/dagger"
)

// GuardVersionSync fails unless the tag's version equals the family's version variable (SPEC §4.2).
func (m *MeroRelease) GuardVersionSync(
	ctx context.Context,
	// Release tag, e.g. mero-kms-v1.3.0 or mero-tee-v1.3.0-rc.1.
	tag string,
	// Value of MERO_KMS_VERSION (KMS tags) or MERO_TEE_VERSION (node tags), e.g. 1.3.0.
	version string,
) (string, error) {
	return m.run(ctx, m.Container(), "guard", "version-sync", "--tag", tag, "--version", version)
}

// GuardAllowedEnv fails if any workflow sets or exports an ALLOWED_* variable (SPEC §4.4).
func (m *MeroRelease) GuardAllowedEnv(
	ctx context.Context,
	// Workflows to scan (default: the source's .github/workflows).
	// +optional
	workflows *dagger.Directory,
) (string, error) {
	ctr, dir := withDir(m.Container(), "workflows", workflows)
	if dir == "" {
		dir = ".github/workflows"
	}
	return m.run(ctx, ctr, "guard", "allowed-env", "--workflows", dir)
}

// GuardPrDocs fails when a PR changes release files without docs (SPEC §4.1).
//
// When the catalog changes, the notes must also mention every new entry: the PR body
// (--pr-body) or a notes file. With --git-range the changed paths and both catalogs are read
// from the source's git history (go-git; the checkout needs both ends).
func (m *MeroRelease) GuardPrDocs(
	ctx context.Context,
	// Paths the PR changes (git diff --name-only); or give --git-range.
	// +optional
	changed []string,
	// BASE..HEAD of the source's git history, e.g. HEAD^1..HEAD for a pull request's merge commit.
	// +optional
	gitRange string,
	// The pull request's body: it must name every new catalog pair.
	// +optional
	prBody string,
	// compatibility-catalog.json before the PR.
	// +optional
	baseCatalog *dagger.File,
	// compatibility-catalog.json after the PR.
	// +optional
	headCatalog *dagger.File,
	// Release notes or PR body that must mention new catalog entries.
	// +optional
	notes *dagger.File,
) (string, error) {
	ctr := m.Container()
	args := []string{"guard", "pr-docs"}
	if gitRange != "" {
		if len(changed) > 0 {
			return "", fmt.Errorf("guard-pr-docs: give --changed or --git-range, not both")
		}
		args = append(args, "--git-range", gitRange)
	} else {
		ctr = ctr.WithNewFile(inputDir+"/changed.txt", strings.Join(changed, "\n")+"\n")
		args = append(args, "--changed", inputDir+"/changed.txt")
	}
	if prBody != "" {
		ctr = ctr.WithNewFile(inputDir+"/pr-body.md", prBody)
		args = append(args, "--notes", inputDir+"/pr-body.md")
	}
	ctr, base := withFile(ctr, "base-catalog.json", baseCatalog)
	ctr, head := withFile(ctr, "head-catalog.json", headCatalog)
	ctr, notesPath := withFile(ctr, "notes.md", notes)
	args = append(args, flag("base-catalog", base)...)
	args = append(args, flag("head-catalog", head)...)
	args = append(args, flag("notes", notesPath)...)
	return m.run(ctx, ctr, args...)
}

// GuardDependency checks the KMS ↔ node dependency (SPEC §4.3).
//
// The counterpart release must exist, the catalog must list the pair, and the KMS policies must
// allow only MRTDs that the counterpart published.
func (m *MeroRelease) GuardDependency(
	ctx context.Context,
	// Release tag being released.
	tag string,
	// Version of the counterpart release (node image for a KMS tag, KMS for a node tag), e.g. 1.2.0.
	counterpart string,
	// The release store: a directory in the local store layout.
	store *dagger.Directory,
	// Compatibility catalog (default: the source's compatibility-catalog.json).
	// +optional
	catalog *dagger.File,
	// Directory with the attestation-policy-*.json being released (KMS releases).
	// +optional
	policies *dagger.Directory,
) (string, error) {
	ctr, storeDir := withDir(m.Container(), "store", store)
	ctr, catalogPath := withFile(ctr, "compatibility-catalog.json", catalog)
	ctr, policiesDir := withDir(ctr, "policies", policies)
	args := []string{"guard", "dependency", "--tag", tag, "--counterpart", counterpart, "--store", "dir:" + storeDir}
	args = append(args, flag("catalog", catalogPath)...)
	args = append(args, flag("policies", policiesDir)...)
	return m.run(ctx, ctr, args...)
}
