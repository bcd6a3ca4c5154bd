package main

import (
	"context"
	"fmt"
	"strings"

	"dagger/mero-release/internal/dagger"
)

// MeasureKms measures KMS images by inspection: image digest, dstack compose hash, RTMR3 replay.
//
// Images and composes are given per profile, in the order `mero-release profiles` lists them
// (debug, debug-read-only, locked-read-only).
func (m *MeroRelease) MeasureKms(
	ctx context.Context,
	// KMS release version, e.g. 1.3.0.
	version string,
	// OCI image archives, one per profile (debug, debug-read-only, locked-read-only).
	images []*dagger.File,
	// The app-compose (or docker compose) of each profile, pinned to its image digest.
	composes []*dagger.File,
) (*dagger.File, error) {
	rules, err := m.rules(ctx)
	if err != nil {
		return nil, err
	}
	profiles := rules.Profiles
	if len(images) != len(profiles) || len(composes) != len(profiles) {
		return nil, fmt.Errorf("measure-kms: give %d images and %d composes (%s)", len(profiles), len(profiles), strings.Join(profiles, ", "))
	}
	ctr, imagePaths := withFiles(m.Container(), "images", "tar", images)
	ctr, composePaths := withFiles(ctr, "composes", "json", composes)
	args := []string{"measure-kms", "--version", version, "-o", "/work/published-mrtds.json"}
	for i, p := range profiles {
		args = append(args, "--image", p+"="+imagePaths[i], "--compose", p+"="+composePaths[i])
	}
	return m.runFile(ctx, ctr, "/work/published-mrtds.json", args...)
}

// MeasureNode boots each profile's node image on an ephemeral TDX VM and records MRTD/RTMR0–3.
//
// The simulator boots the source's examples/node-image; GCP boots the named images and deletes
// every VM on every path.
func (m *MeroRelease) MeasureNode(
	ctx context.Context,
	// Node-image release version, e.g. 1.3.0.
	version string,
	// VM provider: sim or gcp.
	// +optional
	// +default="sim"
	provider string,
	// PROFILE=IMAGE per profile (default for sim: examples/node-image for every profile).
	// +optional
	image []string,
	// GCP project (GCP_PROJECT_ID).
	// +optional
	gcpProject string,
	// TDX-capable GCP zone (GCP_ZONE).
	// +optional
	gcpZone string,
	// GCP service-account key (GCP_SERVICE_ACCOUNT_KEY).
	// +optional
	gcpServiceAccountKey *dagger.Secret,
) (*dagger.File, error) {
	if len(image) == 0 && provider == "sim" {
		// every profile the CLI lists boots the source's example image
		rules, err := m.rules(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range rules.Profiles {
			image = append(image, p+"=examples/node-image")
		}
	}
	ctr := m.Container()
	if gcpServiceAccountKey != nil {
		ctr = ctr.WithSecretVariable("GCP_SERVICE_ACCOUNT_KEY", gcpServiceAccountKey)
	}
	args := []string{"measure-node", "--version", version, "--provider", provider, "-o", "/work/published-mrtds.json"}
	args = append(args, repeated("image", image)...)
	args = append(args, flag("gcp-project", gcpProject)...)
	args = append(args, flag("gcp-zone", gcpZone)...)
	return m.runFile(ctx, ctr, "/work/published-mrtds.json", args...)
}

// ParseQuote parses a TDX quote and prints its measurements; with verify, checks its signature chain.
func (m *MeroRelease) ParseQuote(
	ctx context.Context,
	// The raw TDX quote.
	quote *dagger.File,
	// Verify the PCK chain, QE report and attestation-key signature.
	// +optional
	verify bool,
	// PEM root(s) to verify against instead of Intel's SGX root (e.g. the TDX simulator's).
	// +optional
	trustedRoot *dagger.File,
) (string, error) {
	ctr := m.Container().WithMountedFile("/in/quote.dat", quote)
	ctr, rootPath := withFile(ctr, "root.pem", trustedRoot)
	args := []string{"parse-quote", "--json"}
	if verify {
		args = append(args, "--verify")
	}
	args = append(args, flag("trusted-root", rootPath)...)
	return m.run(ctx, ctr, append(args, "/in/quote.dat")...)
}
