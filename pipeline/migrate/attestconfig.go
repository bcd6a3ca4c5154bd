package migrate

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"slices"

	"github.com/BurntSushi/toml"

	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/store"
)

// AttestationConfigOptions configure KMSAttestationConfig.
type AttestationConfigOptions struct {
	// Store holds the KMS release.
	Store store.Store
	// KMSRelease is the KMS release tag (mero-kms-vX.Y.Z) the node is to trust.
	KMSRelease string
	// Profile is the profile the KMS runs as.
	Profile release.Profile
	// KMSURL is where the node reaches the KMS (http:// or https://).
	KMSURL string
	// TCBStatus are the TCB statuses accepted for the KMS's platform (default UpToDate).
	TCBStatus []string
	// Trust is the expected signer of the KMS release.
	Trust Trust
	// Log receives [PASS] lines.
	Log *outcome.Logger
}

// AttestationConfig is the configuration a merod node verifies the KMS with: the measurements
// the KMS release published for the profile (one allowed value per register) and its URL.
type AttestationConfig struct {
	KMSRelease string          `json:"kms_release"`
	KMSVersion string          `json:"kms_version"`
	Profile    release.Profile `json:"profile"`
	KMSURL     string          `json:"kms_url"`
	// TCBStatuses are the accepted TCB statuses of the KMS's platform.
	TCBStatuses []string `json:"allowed_tcb_statuses"`
	// Record is the KMS's published measurement of the profile (MRTD, RTMR0–3, compose hash).
	Record measure.Record `json:"measurements"`
	// PublishedSHA256 is the verified digest of the published-mrtds.json it came from.
	PublishedSHA256 string `json:"published_mrtds_sha256"`
}

// KMSAttestationConfig builds the merod attestation configuration of a KMS release: its
// published-mrtds.json is fetched and verified (FetchVerified), the profile's record is taken as
// the expected MRTD/RTMR0–3 and compose hash. A bad URL, profile or TCB status is a usage error;
// a release without a record for the profile, or one whose record is not a KMS measurement (no
// compose hash), a verification error.
func KMSAttestationConfig(ctx context.Context, o AttestationConfigOptions) (*AttestationConfig, error) {
	tag, err := release.ParseTag(o.KMSRelease)
	if err != nil {
		return nil, fmt.Errorf("--kms-release: %w", err)
	}
	if tag.Family != release.KMS {
		return nil, outcome.UsageErrorf("--kms-release %s: not a %s tag", tag, release.KMS)
	}
	if _, err := release.ParseProfile(string(o.Profile)); err != nil {
		return nil, fmt.Errorf("--profile: %w", err)
	}
	u, err := url.Parse(o.KMSURL)
	if o.KMSURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, outcome.UsageErrorf("--kms-url %q: want the KMS's http:// or https:// URL", o.KMSURL)
	}
	tcb := o.TCBStatus
	if len(tcb) == 0 {
		tcb = policy.DefaultTCBStatus()
	}
	for _, s := range tcb {
		if !slices.Contains(policy.TCBStatuses(), s) || s == policy.TCBRevoked {
			return nil, outcome.UsageErrorf("--tcb-status %q: want one of %v (never Revoked)", s, policy.TCBStatuses())
		}
	}
	v, err := FetchVerified(ctx, o.Store, tag.String(), release.PublishedMRTDsFile, o.Trust)
	if err != nil {
		return nil, err
	}
	o.Log.Passf("%s/%s: signature verified (%s), SHA-256 %s matches checksums.sha256", tag, release.PublishedMRTDsFile, signerName(v.Signer), v.SHA256)
	pub, err := measure.ReadPublished(bytes.NewReader(v.Data))
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", tag, release.PublishedMRTDsFile, err)
	}
	if pub.Family != release.KMS || pub.Version != tag.Version.String() {
		return nil, outcome.VerificationErrorf("%s/%s: describes %s %s, not this release", tag, release.PublishedMRTDsFile, pub.Family, pub.Version)
	}
	rec, ok := pub.Profiles[o.Profile]
	if !ok {
		return nil, outcome.VerificationErrorf("%s/%s: no %s record", tag, release.PublishedMRTDsFile, o.Profile)
	}
	if rec.ComposeHash == "" {
		return nil, outcome.VerificationErrorf("%s/%s: the %s record has no compose_hash: not a KMS measurement", tag, release.PublishedMRTDsFile, o.Profile)
	}
	return &AttestationConfig{
		KMSRelease: tag.String(), KMSVersion: tag.Version.String(), Profile: o.Profile, KMSURL: o.KMSURL,
		TCBStatuses: slices.Clone(tcb), Record: rec, PublishedSHA256: v.SHA256,
	}, nil
}

// merodConfig is the TOML shape of merod's KMS section.
type merodConfig struct {
	TEE struct {
		KMS struct {
			Phala struct {
				URL         string           `toml:"url"`
				Attestation merodAttestation `toml:"attestation"`
			} `toml:"phala"`
		} `toml:"kms"`
	} `toml:"tee"`
}

type merodAttestation struct {
	Enabled            bool     `toml:"enabled"`
	AcceptMock         bool     `toml:"accept_mock"`
	KMSVersion         string   `toml:"kms_version"`
	Profile            string   `toml:"profile"`
	AllowedTCBStatuses []string `toml:"allowed_tcb_statuses"`
	AllowedMRTD        []string `toml:"allowed_mrtd"`
	AllowedRTMR0       []string `toml:"allowed_rtmr0"`
	AllowedRTMR1       []string `toml:"allowed_rtmr1"`
	AllowedRTMR2       []string `toml:"allowed_rtmr2"`
	AllowedRTMR3       []string `toml:"allowed_rtmr3"`
	ComposeHash        string   `toml:"compose_hash"`
}

// TOML renders the configuration as merod's [tee.kms.phala] section (the shape of mero-tee's
// generate-merod-kms-phala-attestation-config.sh), with a header naming the release.
func (c *AttestationConfig) TOML() ([]byte, error) {
	var m merodConfig
	m.TEE.KMS.Phala.URL = c.KMSURL
	m.TEE.KMS.Phala.Attestation = merodAttestation{
		Enabled: true, KMSVersion: c.KMSVersion, Profile: string(c.Profile),
		AllowedTCBStatuses: c.TCBStatuses,
		AllowedMRTD:        []string{c.Record.MRTD}, AllowedRTMR0: []string{c.Record.RTMR0}, AllowedRTMR1: []string{c.Record.RTMR1},
		AllowedRTMR2: []string{c.Record.RTMR2}, AllowedRTMR3: []string{c.Record.RTMR3},
		ComposeHash: c.Record.ComposeHash,
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# merod KMS attestation config, generated by mero-release from %s (profile %s).\n", c.KMSRelease, c.Profile)
	fmt.Fprintf(&b, "# Source: %s, SHA-256 %s (signature and checksum verified).\n", release.PublishedMRTDsFile, c.PublishedSHA256)
	b.WriteString("# Pin this to a reviewed release: do not follow the latest release automatically.\n\n")
	enc := toml.NewEncoder(&b)
	enc.Indent = ""
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encode merod config: %w", err)
	}
	return b.Bytes(), nil
}
