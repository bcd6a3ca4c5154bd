package migrate

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/catalog"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/store"
)

// The KMS configuration variables a migration sets (SPEC §8, §10).
const (
	EnvKMSVersion   = policy.EnvKMSVersion
	EnvKMSProfile   = policy.EnvKMSProfile
	EnvPolicyURL    = policy.EnvPolicyURL
	EnvPolicySHA256 = policy.EnvPolicySHA256
)

// PolicyOptions configure MigratePolicy.
type PolicyOptions struct {
	// Store holds the KMS and node-image releases.
	Store store.Store
	// Catalog is the compatibility catalog the target pair must be listed in.
	Catalog *catalog.Catalog
	// KMSVersion and NodeVersion are the target pair (X.Y.Z or X.Y.Z-rc.N, no "v").
	KMSVersion, NodeVersion string
	// Profile is the profile the KMS runs as.
	Profile release.Profile
	// Trust is the expected signer of the KMS release.
	Trust Trust
	// Locator says where the KMS will fetch the policy from (MERO_KMS_POLICY_URL).
	Locator AssetLocator
	// AllowNotReady accepts a policy_not_ready policy (release candidates) with a warning; without
	// it such a policy is refused, since a KMS running it releases keys to any node.
	AllowNotReady bool
	// KeptImages, when set, is a folder of OCI archives that a release run kept for the KMS
	// release (its work directory's images folder): the archive whose digest is the image the
	// release recorded for the profile is reported as PolicyResult.KeptImage.
	KeptImages string
	// ImageArchive, when set, is an OCI archive that must be the image the release recorded for
	// the profile: its digest is checked (a verification error otherwise) and it is reported
	// as PolicyResult.KeptImage.
	ImageArchive string
	// Log receives the [INFO]/[PASS]/[WARN] lines.
	Log *outcome.Logger
}

// Environment is what an operator sets on the KMS before the rolling restart.
type Environment struct {
	KMSVersion   string `json:"MERO_KMS_VERSION"`
	Profile      string `json:"MERO_KMS_PROFILE"`
	PolicyURL    string `json:"MERO_KMS_POLICY_URL"`
	PolicySHA256 string `json:"MERO_KMS_POLICY_SHA256"`
}

// Vars returns the variables in the order they are printed.
func (e Environment) Vars() [][2]string {
	return [][2]string{
		{EnvKMSVersion, e.KMSVersion},
		{EnvKMSProfile, e.Profile},
		{EnvPolicyURL, e.PolicyURL},
		{EnvPolicySHA256, e.PolicySHA256},
	}
}

// Getenv looks a variable up in the environment (a getenv for code that reads the KMS's
// configuration from the environment).
func (e Environment) Getenv(name string) string {
	for _, kv := range e.Vars() {
		if kv[0] == name {
			return kv[1]
		}
	}
	return ""
}

// Exports renders the environment as POSIX shell export lines, every value single-quoted.
func (e Environment) Exports() string {
	var b strings.Builder
	for _, kv := range e.Vars() {
		fmt.Fprintf(&b, "export %s=%s\n", kv[0], ShellQuote(kv[1]))
	}
	return b.String()
}

// ShellQuote single-quotes s for a POSIX shell; an embedded single quote is closed, escaped and
// reopened.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// PolicyResult is a verified migration target.
type PolicyResult struct {
	KMSRelease  string          `json:"kms_release"`
	NodeRelease string          `json:"node_release"`
	Profile     release.Profile `json:"profile"`
	// PolicyAsset is attestation-policy-{profile}.json; PolicySHA256 its verified digest.
	PolicyAsset  string `json:"policy_asset"`
	PolicySHA256 string `json:"policy_sha256"`
	// PolicyStatus is "ready" or "policy_not_ready".
	PolicyStatus string `json:"policy_status"`
	// Signer is the verified signature of the policy.
	Signer      *sign.Result `json:"signer"`
	Environment Environment  `json:"environment"`
	// KMSImage and ComposeHash are the deployment the KMS release recorded for the profile in
	// its (verified) published-mrtds.json: the image to run, pinned by digest, and the hash of
	// its app-compose (dstack extends it into RTMR3). Empty when the release records none.
	KMSImage    string `json:"kms_image,omitempty"`
	ComposeHash string `json:"compose_hash,omitempty"`
	// KeptImage is the OCI archive in PolicyOptions.KeptImages whose digest is KMSImage's: the
	// released image itself, to run where no registry serves it. Empty when none matches.
	KeptImage string `json:"kept_image,omitempty"`
	// PullImage is KMSImage when a registry serves it by digest (release.PullableImage): what
	// runs the released image where no archive of it is at hand. Empty for a release built
	// without a registry.
	PullImage string `json:"pull_image,omitempty"`
	// Policy are the verified policy bytes.
	Policy []byte `json:"-"`
}

// MigratePolicy prepares a KMS policy migration (SPEC §10): the pair must be listed as tested
// in the catalog under the profile (else a verification error naming the pair, exit 10); the
// policy asset is fetched and verified (FetchVerified); it must load as the KMS loads it (its
// kms_version and profile are the target's, its digest is the pin), must not be
// policy_not_ready unless AllowNotReady, and must accept the node release's published
// measurements of the profile. The result carries the environment to set.
func MigratePolicy(ctx context.Context, o PolicyOptions) (*PolicyResult, error) {
	if _, err := release.ParseVersion(o.KMSVersion); err != nil {
		return nil, fmt.Errorf("--kms-version: %w", err)
	}
	if _, err := release.ParseVersion(o.NodeVersion); err != nil {
		return nil, fmt.Errorf("--node-version: %w", err)
	}
	if _, err := release.ParseProfile(string(o.Profile)); err != nil {
		return nil, fmt.Errorf("--profile: %w", err)
	}
	if o.Catalog == nil {
		return nil, outcome.UsageErrorf("no compatibility catalog")
	}
	log := o.Log
	kmsTag := release.KMS.TagPrefix() + o.KMSVersion
	nodeTag := release.Node.TagPrefix() + o.NodeVersion

	if err := CheckPair(o.Catalog, o.KMSVersion, o.NodeVersion, o.Profile); err != nil {
		return nil, err
	}
	log.Passf("catalog: kms %s ↔ node image %s is tested for %s", o.KMSVersion, o.NodeVersion, o.Profile)

	asset := o.Profile.PolicyFile()
	v, err := FetchVerified(ctx, o.Store, kmsTag, asset, o.Trust)
	if err != nil {
		return nil, err
	}
	log.Passf("%s/%s: signature verified (%s), SHA-256 %s matches %s", kmsTag, asset, signerName(v.Signer), v.SHA256, "checksums.sha256")

	lp, err := policy.LoadForKMS(v.Data, kmsTag+"/"+asset, v.SHA256, o.KMSVersion, string(o.Profile))
	if err != nil {
		return nil, err
	}
	status := "ready"
	if lp.Policy.NotReady() {
		status = policy.StatusNotReady
		if !o.AllowNotReady {
			return nil, outcome.VerificationErrorf("%s/%s is %s: a KMS running it releases keys to any node; migrate to a release with a ready policy (or allow it explicitly for a release candidate)", kmsTag, asset, policy.StatusNotReady)
		}
		log.Warnf("%s/%s is %s: the KMS will accept any measurement and warn on every key request", kmsTag, asset, policy.StatusNotReady)
	} else {
		if err := checkNodeAccepted(ctx, o.Store, nodeTag, o.Profile, lp.Policy); err != nil {
			return nil, err
		}
		log.Passf("%s/%s accepts the %s measurements of %s", kmsTag, asset, o.Profile, nodeTag)
	}

	url, err := o.Locator.URL(kmsTag, asset)
	if err != nil {
		return nil, err
	}
	res := &PolicyResult{
		KMSRelease: kmsTag, NodeRelease: nodeTag, Profile: o.Profile, PolicyAsset: asset,
		PolicySHA256: v.SHA256, PolicyStatus: status, Signer: v.Signer, Policy: v.Data,
		Environment: Environment{KMSVersion: o.KMSVersion, Profile: string(o.Profile), PolicyURL: url, PolicySHA256: v.SHA256},
	}
	if rec, err := kmsDeployment(ctx, o.Store, kmsTag, o.Profile, o.Trust); err != nil {
		if o.ImageArchive != "" {
			return nil, fmt.Errorf("%s (%s): %s cannot be checked against the released image: %w", kmsTag, o.Profile, o.ImageArchive, err)
		}
		log.Warnf("%s: no verified deployment record for %s: %v", kmsTag, o.Profile, err)
	} else {
		res.KMSImage, res.ComposeHash = rec.Image, rec.ComposeHash
		if release.PullableImage(rec.Image) {
			res.PullImage = rec.Image
		}
		log.Infof("%s (%s) deploys %s (app-compose hash %s)", kmsTag, o.Profile, rec.Image, rec.ComposeHash)
		if o.ImageArchive != "" {
			if err := checkImageArchive(o.ImageArchive, rec.Image); err != nil {
				return nil, fmt.Errorf("%s (%s): %w", kmsTag, o.Profile, err)
			}
			res.KeptImage = o.ImageArchive
			log.Passf("%s is the released image %s", o.ImageArchive, rec.Image)
		}
		if o.KeptImages != "" && res.KeptImage == "" {
			if res.KeptImage, err = keptImage(o.KeptImages, rec.Image); err != nil {
				return nil, fmt.Errorf("%s (%s): %w", kmsTag, o.Profile, err)
			}
			if res.KeptImage != "" {
				log.Passf("%s is the released image %s", res.KeptImage, rec.Image)
			} else {
				log.Warnf("no OCI archive in %s is the released image %s", o.KeptImages, rec.Image)
			}
		}
	}
	return res, nil
}

// keptImage finds the archive in dir of image, pinned by digest (NAME@sha256:…); "" when image
// is not pinned or no archive matches.
func keptImage(dir, image string) (string, error) {
	_, pin, pinned := strings.Cut(image, "@")
	if !pinned {
		return "", nil
	}
	return measure.FindImageArchive(dir, pin)
}

// checkImageArchive checks that the OCI archive is image, pinned by digest (NAME@sha256:…).
func checkImageArchive(archive, image string) error {
	_, pin, pinned := strings.Cut(image, "@")
	if !pinned {
		return outcome.VerificationErrorf("the release records %s, not pinned by digest: %s cannot be checked against it", image, archive)
	}
	info, err := measure.InspectImage(archive)
	if err != nil {
		return err
	}
	if info.Digest != pin {
		return outcome.VerificationErrorf("%s is image %s, not the released %s", archive, info.Digest, image)
	}
	return nil
}

// kmsDeployment reads the KMS release's published-mrtds.json, verified like the policy, and
// returns the profile's record.
func kmsDeployment(ctx context.Context, st store.Store, kmsTag string, profile release.Profile, trust Trust) (measure.Record, error) {
	v, err := FetchVerified(ctx, st, kmsTag, release.PublishedMRTDsFile, trust)
	if err != nil {
		return measure.Record{}, err
	}
	pub, err := measure.ReadPublished(bytes.NewReader(v.Data))
	if err != nil {
		return measure.Record{}, fmt.Errorf("%s/%s: %w", kmsTag, release.PublishedMRTDsFile, err)
	}
	rec, ok := pub.Profiles[profile]
	if !ok {
		return measure.Record{}, outcome.VerificationErrorf("%s/%s: no %s record", kmsTag, release.PublishedMRTDsFile, profile)
	}
	return rec, nil
}

// CheckPair returns nil when the catalog lists kms ↔ node as tested under profile, else a
// verification error (exit 10) naming the pair and what is missing.
func CheckPair(c *catalog.Catalog, kms, node string, profile release.Profile) error {
	e, ok := c.Pair(kms, node)
	switch {
	case !ok:
		var with []string
		for _, x := range c.Compatible(release.KMS, kms) {
			if x.Tested {
				with = append(with, x.NodeImage)
			}
		}
		hint := "the catalog pairs it with no node image"
		if len(with) > 0 {
			hint = "tested node images for kms " + kms + ": " + strings.Join(with, ", ")
		}
		return outcome.VerificationErrorf("the compatibility catalog does not list the pair kms %s ↔ node image %s (%s)", kms, node, hint)
	case !e.Tested:
		return outcome.VerificationErrorf("the compatibility catalog lists kms %s ↔ node image %s but not as tested", kms, node)
	case !slices.Contains(e.Profiles, profile):
		var ps []string
		for _, p := range e.Profiles {
			ps = append(ps, string(p))
		}
		return outcome.VerificationErrorf("the compatibility catalog lists kms %s ↔ node image %s for %s only, not for %s", kms, node, strings.Join(ps, ", "), profile)
	}
	return nil
}

// checkNodeAccepted checks that the policy accepts the node release's published measurements of
// the profile (the TCB status is the platform's at run time and is left to the KMS).
func checkNodeAccepted(ctx context.Context, st store.Store, nodeTag string, profile release.Profile, p *policy.Policy) error {
	data, err := ReadAsset(ctx, st, nodeTag, release.PublishedMRTDsFile)
	if err != nil {
		return err
	}
	pub, err := measure.ReadPublished(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%s/%s: %w", nodeTag, release.PublishedMRTDsFile, err)
	}
	rec, ok := pub.Profiles[profile]
	if !ok {
		return outcome.VerificationErrorf("%s/%s: no %s record", nodeTag, release.PublishedMRTDsFile, profile)
	}
	if err := p.Accepts(rec, p.AllowedTCBStatus[0]); err != nil {
		return outcome.VerificationErrorf("the %s policy of kms %s does not accept the %s measurements of %s: %v", profile, p.KMSVersion, profile, nodeTag, err)
	}
	return nil
}

// signerName describes a verified signer for log lines.
func signerName(r *sign.Result) string {
	switch {
	case r == nil:
		return "unknown signer"
	case r.Identity != "":
		return "signed by " + r.Identity
	case r.KeyHint != "":
		return "signed by key " + r.KeyHint
	}
	return "signed by the given key"
}
