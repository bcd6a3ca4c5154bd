package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"dagger/mero-release/internal/dagger"
)

// policyMount is the directory a KMS service reads its migrated policy from (file:// URL base).
const policyMount = "/policy"

// MigratePolicy verifies a KMS policy migration target and prints the environment to set (SPEC §10).
//
// The pair must be in the catalog; the policy is downloaded from the KMS release, its Sigstore
// bundle and checksum verified, and MERO_KMS_VERSION, MERO_KMS_PROFILE, MERO_KMS_POLICY_URL and
// MERO_KMS_POLICY_SHA256 printed as export lines (or JSON).
func (m *MeroRelease) MigratePolicy(
	ctx context.Context,
	// Target KMS version, e.g. 1.3.0.
	kmsVersion string,
	// Node-image version the KMS must serve, e.g. 1.3.0.
	nodeVersion string,
	// KMS profile: debug, debug-read-only or locked-read-only.
	profile string,
	// A local store (a release call's state directory or the store itself).
	// +optional
	store *dagger.Directory,
	// The GitHub repository whose releases to read instead (OWNER/REPO).
	// +optional
	githubRepository string,
	// Public key (cosign.pub) of key-signed releases (default for a state directory: its own).
	// +optional
	key *dagger.File,
	// Expected signer identity of keyless releases (the release workflow's certificate SAN).
	// +optional
	certificateIdentity string,
	// Expected OIDC issuer of keyless releases.
	// +optional
	// +default="https://token.actions.githubusercontent.com"
	certificateOidcIssuer string,
	// Sigstore trusted_root.json for keyless bundles (default: the public Sigstore root).
	// +optional
	trustedRoot *dagger.File,
	// Compatibility catalog (default: the state's updated catalog, else the source's).
	// +optional
	catalog *dagger.File,
	// Serve the policy from this mirror: MERO_KMS_POLICY_URL = BASE/<tag>/<asset>.
	// +optional
	policyUrlBase string,
	// Accept a policy_not_ready policy (release candidates only).
	// +optional
	allowNotReady bool,
	// Print a JSON object instead of export lines.
	// +optional
	jsonOutput bool,
) (string, error) {
	ctr, args, err := m.migratePolicyArgs(ctx, kmsVersion, nodeVersion, profile, store, githubRepository, key, certificateIdentity,
		certificateOidcIssuer, trustedRoot, catalog, policyUrlBase, allowNotReady, false)
	if err != nil {
		return "", err
	}
	if jsonOutput {
		args = append([]string{"--json"}, args...)
	}
	ran := exec(ctr, args...)
	if _, err := result(ctx, ran, args); err != nil {
		return "", err
	}
	return ran.Stdout(ctx)
}

// migratePolicyArgs mounts the inputs of `mero-release migrate-policy` and returns its arguments.
func (m *MeroRelease) migratePolicyArgs(ctx context.Context, kmsVersion, nodeVersion, profile string, store *dagger.Directory, githubRepository string,
	key *dagger.File, identity, issuer string, trustedRoot, catalog *dagger.File, urlBase string, allowNotReady, keptImage bool) (*dagger.Container, []string, error) {
	ctr, rs, err := m.withStore(ctx, m.Container(), "migrate-policy", store, githubRepository)
	if err != nil {
		return nil, nil, err
	}
	ctr, keyPath := withFile(ctr, "cosign.pub", key)
	ctr, rootPath := withFile(ctr, "trusted_root.json", trustedRoot)
	ctr, catalogPath := withFile(ctr, catalogFile, catalog)
	args := []string{"migrate-policy", "--kms-version", kmsVersion, "--node-version", nodeVersion, "--profile", profile,
		"--store", rs.spec, "--catalog", rs.catalog(catalogPath)}
	if identity != "" {
		args = append(args, "--certificate-identity", identity, "--certificate-oidc-issuer", issuer)
		args = append(args, flag("trusted-root", rootPath)...)
	} else {
		args = append(args, rs.verification(keyPath, rootPath)...)
	}
	args = append(args, flag("policy-url-base", urlBase)...)
	if allowNotReady {
		args = append(args, "--allow-not-ready")
	}
	if keptImage {
		args = append(args, flag("work", rs.stateWork)...)
	}
	return ctr, args, nil
}

// kmsEnvironment is the JSON `mero-release migrate-policy --json` prints.
type kmsEnvironment struct {
	KMSRelease  string            `json:"kms_release"`
	Environment map[string]string `json:"environment"`
	ComposeHash string            `json:"compose_hash"`
	// KMSImage is the image the release recorded for the profile, pinned by digest.
	KMSImage string `json:"kms_image"`
	// KeptImage is the state's archive of the released image (found by digest), or the given
	// archive the CLI checked, if any.
	KeptImage string `json:"kept_image"`
	// PullImage is KMSImage when a registry serves it by digest.
	PullImage string `json:"pull_image"`
}

// KmsService runs the released KMS of one profile as a Dagger service on port 8080.
//
// Its image is the released one, never a rebuild: --image (an OCI archive whose digest the CLI
// checks against the image the release recorded for the profile), else the archive a
// release-kms call kept in its state with that digest (migrate-policy --work finds it), else
// the recorded image pulled by digest from its registry. A release built without a registry
// whose state kept no archive cannot be run: the call fails saying so.
// Its policy is the verified release asset (migrate-policy), pinned by SHA-256 and read from a
// file:// URL.
// Quotes come from the sample KMS's simulated dstack VM running the app-compose the release
// recorded for the profile (migrate-policy reports it from the verified published-mrtds.json).
func (m *MeroRelease) KmsService(
	ctx context.Context,
	// KMS release version, e.g. 1.3.0.
	kmsVersion string,
	// Node-image version the KMS serves (the pair must be in the catalog), e.g. 1.3.0.
	nodeVersion string,
	// KMS profile: debug, debug-read-only or locked-read-only.
	profile string,
	// A release call's state directory (with releases/) or the local store itself.
	store *dagger.Directory,
	// Public key (cosign.pub) of the release (default for a state directory: its own).
	// +optional
	key *dagger.File,
	// Compatibility catalog (default: the state's updated catalog, else the source's).
	// +optional
	catalog *dagger.File,
	// The profile's released image, an OCI archive (its digest must be the released one).
	// +optional
	image *dagger.File,
	// Accept a policy_not_ready policy (release candidates only).
	// +optional
	allowNotReady bool,
) (*dagger.Service, error) {
	svc, _, err := m.kmsService(ctx, kmsVersion, nodeVersion, profile, store, key, catalog, image, allowNotReady)
	return svc, err
}

// kmsService is KmsService; it also says which image the service runs (for kms-check's result).
func (m *MeroRelease) kmsService(ctx context.Context, kmsVersion, nodeVersion, profile string, store *dagger.Directory, key, catalog, image *dagger.File,
	allowNotReady bool) (*dagger.Service, string, error) {
	ctr, args, err := m.migratePolicyArgs(ctx, kmsVersion, nodeVersion, profile, store, "", key, "", "", nil, catalog, "file://"+policyMount, allowNotReady, true)
	if err != nil {
		return nil, "", err
	}
	// A given archive is checked by the CLI: its digest must be the released image's.
	ctr, imagePath := withFile(ctr, "kms-image.oci.tar", image)
	args = append(args, flag("image", imagePath)...)
	const policyOut = "/out/policy.json"
	args = append([]string{"--json"}, append(args, "-o", policyOut)...)
	ran := exec(ctr, args...)
	if _, err := result(ctx, ran, args); err != nil {
		return nil, "", err
	}
	out, err := ran.Stdout(ctx)
	if err != nil {
		return nil, "", err
	}
	var env kmsEnvironment
	if err := json.Unmarshal([]byte(out), &env); err != nil {
		return nil, "", fmt.Errorf("kms-service: migrate-policy output: %w", err)
	}
	policyURL := env.Environment["MERO_KMS_POLICY_URL"]
	policyPath, ok := strings.CutPrefix(policyURL, "file://")
	if !ok || !strings.HasPrefix(policyPath, policyMount+"/") {
		return nil, "", fmt.Errorf("kms-service: migrate-policy gave MERO_KMS_POLICY_URL %q, want one under file://%s", policyURL, policyMount)
	}
	var kms *dagger.Container
	var source string
	kept, isKept := strings.CutPrefix(env.KeptImage, statePath+"/")
	switch {
	case image != nil:
		kms, source = dag.Container().Import(image), "the image given with --image, the released "+env.KMSImage
	case isKept:
		// migrate-policy reports a kept archive only when its verified digest is the released image
		kms, source = dag.Container().Import(store.File(kept)), "the archive the state kept of the released image: "+kept
	case env.PullImage != "":
		// pinned by digest: the engine verifies the pulled manifest against it
		kms, source = dag.Container().From(env.PullImage), "the released image pulled by digest: "+env.PullImage
	default:
		return nil, "", fmt.Errorf("kms-service: the released image of %s (%s) is %q: no registry serves it and the state kept no archive of it; pass the released OCI archive with --image (a rebuild would not be the released image)",
			env.KMSRelease, profile, env.KMSImage)
	}
	svc := kms.
		WithMountedFile(policyPath, ran.File(policyOut)).
		WithEnvVariable("MERO_KMS_LISTEN", "0.0.0.0:8080")
	for _, name := range []string{"MERO_KMS_VERSION", "MERO_KMS_PROFILE", "MERO_KMS_POLICY_URL", "MERO_KMS_POLICY_SHA256"} {
		svc = svc.WithEnvVariable(name, env.Environment[name])
	}
	if env.ComposeHash != "" {
		svc = svc.WithEnvVariable("MERO_KMS_COMPOSE_HASH", env.ComposeHash)
	}
	return svc.WithExposedPort(8080).AsService(dagger.ContainerAsServiceOpts{UseEntrypoint: true}), source, nil
}

// KmsCheck starts the released KMS as a Dagger service and checks it as after a migration.
//
// The service is kms-service's; the check is migrate-check's: health, a nonce-bound attestation,
// and a key released to a simulated node booted from the node release's image of the profile.
func (m *MeroRelease) KmsCheck(
	ctx context.Context,
	// KMS release version, e.g. 1.3.0.
	kmsVersion string,
	// Node-image release version whose image the test node boots, e.g. 1.3.0.
	nodeVersion string,
	// KMS profile: debug, debug-read-only or locked-read-only.
	profile string,
	// A release call's state directory (with releases/) or the local store itself.
	store *dagger.Directory,
	// Compatibility catalog (default: the state's updated catalog, else the source's).
	// +optional
	catalog *dagger.File,
	// The profile's released image, an OCI archive (default: as kms-service finds it).
	// +optional
	image *dagger.File,
	// Accept a policy_not_ready policy (release candidates only).
	// +optional
	allowNotReady bool,
) (string, error) {
	svc, ran, err := m.kmsService(ctx, kmsVersion, nodeVersion, profile, store, nil, catalog, image, allowNotReady)
	if err != nil {
		return "", err
	}
	ctr, rs, err := m.withStore(ctx, m.Container().WithServiceBinding("kms", svc), "kms-check", store, "")
	if err != nil {
		return "", err
	}
	out, err := m.run(ctx, ctr, "migrate-check", "--kms-url", "http://kms:8080", "--profile", profile, "--node-version", nodeVersion,
		"--kms-version", kmsVersion, "--store", rs.spec, "--image-base", srcPath)
	// The result names the image the service ran: a check that must not depend on log lines,
	// which a cached call does not print again.
	return "[INFO] the KMS service ran " + ran + "\n" + out, err
}

// MigrateCheck checks a migrated KMS at a URL: health, attestation and a key release (SPEC §10).
//
// The key is released to a simulated node booted from the node release's image of the profile.
func (m *MeroRelease) MigrateCheck(
	ctx context.Context,
	// The migrated KMS, e.g. https://kms.example.com.
	kmsUrl string,
	// The KMS's profile.
	profile string,
	// Node-image release version whose image the test node boots, e.g. 1.3.0.
	nodeVersion string,
	// Version the KMS must report (MERO_KMS_VERSION).
	kmsVersion string,
	// A local store holding the node release.
	// +optional
	store *dagger.Directory,
	// The GitHub repository whose releases to read instead (OWNER/REPO).
	// +optional
	githubRepository string,
	// Policy SHA-256 the KMS must report (MERO_KMS_POLICY_SHA256).
	// +optional
	policySha256 string,
	// PEM roots the KMS quote must chain to; default: the TDX simulator's root (use "intel" via
	// the CLI for production).
	// +optional
	trustedRoot *dagger.File,
) (string, error) {
	ctr, rs, err := m.withStore(ctx, m.Container(), "migrate-check", store, githubRepository)
	if err != nil {
		return "", err
	}
	ctr, rootPath := withFile(ctr, "kms-root.pem", trustedRoot)
	args := []string{"migrate-check", "--kms-url", kmsUrl, "--profile", profile, "--node-version", nodeVersion, "--kms-version", kmsVersion,
		"--store", rs.spec, "--image-base", srcPath}
	args = append(args, flag("policy-sha256", policySha256)...)
	args = append(args, flag("trusted-root", rootPath)...)
	return m.run(ctx, ctr, args...)
}

// KmsAttestationConfig writes the merod KMS attestation configuration (TOML) of a KMS release.
//
// It holds the KMS URL and the measurements and TCB statuses a node accepts from that KMS.
func (m *MeroRelease) KmsAttestationConfig(
	ctx context.Context,
	// KMS release tag, e.g. mero-kms-v1.3.0.
	kmsRelease string,
	// The KMS's profile.
	profile string,
	// The KMS URL the node connects to.
	kmsUrl string,
	// A local store (a release call's state directory or the store itself).
	// +optional
	store *dagger.Directory,
	// The GitHub repository whose releases to read instead (OWNER/REPO).
	// +optional
	githubRepository string,
	// Public key (cosign.pub) of key-signed releases (default for a state directory: its own).
	// +optional
	key *dagger.File,
	// Expected signer identity of keyless releases.
	// +optional
	certificateIdentity string,
	// Expected OIDC issuer of keyless releases.
	// +optional
	// +default="https://token.actions.githubusercontent.com"
	certificateOidcIssuer string,
) (*dagger.File, error) {
	ctr, rs, err := m.withStore(ctx, m.Container(), "kms-attestation-config", store, githubRepository)
	if err != nil {
		return nil, err
	}
	ctr, keyPath := withFile(ctr, "cosign.pub", key)
	args := []string{"kms-attestation-config", "--kms-release", kmsRelease, "--profile", profile, "--kms-url", kmsUrl, "--store", rs.spec,
		"-o", "/out/kms-attestation.toml"}
	if certificateIdentity != "" {
		args = append(args, "--certificate-identity", certificateIdentity, "--certificate-oidc-issuer", certificateOidcIssuer)
	} else {
		args = append(args, rs.verification(keyPath, "")...)
	}
	return m.runFile(ctx, ctr, "/out/kms-attestation.toml", args...)
}

// fileExists reports whether dir holds a regular file at path.
func fileExists(ctx context.Context, dir *dagger.Directory, path string) bool {
	ok, err := dir.Exists(ctx, path, dagger.DirectoryExistsOpts{ExpectedType: dagger.ExistsTypeRegularType})
	return err == nil && ok
}
