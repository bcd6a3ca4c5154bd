package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// The KMS configuration of SPEC §8: the variables that select, and optionally pin, the
// attestation policy a KMS starts with. A KMS and every tool that configures one use these.
const (
	// EnvKMSVersion is the KMS's release version; the policy's kms_version must equal it (it
	// is release.KMS.VersionVariable()).
	EnvKMSVersion = "MERO_KMS_VERSION"
	// EnvKMSProfile is the KMS's profile; the policy's profile must equal it.
	EnvKMSProfile = "MERO_KMS_PROFILE"
	// EnvPolicyURL is where the KMS fetches its policy at start-up.
	EnvPolicyURL = "MERO_KMS_POLICY_URL"
	// EnvPolicySHA256 optionally pins the SHA-256 of the policy bytes.
	EnvPolicySHA256 = "MERO_KMS_POLICY_SHA256"
)

// Loaded is an attestation policy as a KMS starts with it (LoadForKMS).
type Loaded struct {
	// Policy is the policy, loaded and validated (Load).
	Policy *Policy
	// SHA256 is the hex SHA-256 of the bytes the policy was loaded from.
	SHA256 string
	// Source names where the bytes came from (a URL, a file, a release asset), for messages.
	Source string
	// Data are the bytes the policy was loaded from (what a KMS launched with it must fetch).
	Data []byte
}

// LoadForKMS loads policy bytes read from source the way a KMS does at start-up (SPEC §8):
// the optional SHA-256 pin (hex, any case) must match the bytes, the policy must load (Load:
// syntax, schema, Validate), and its kms_version and profile must be the KMS's version and
// profile. Every refusal is a verification error (exit 10) naming source: the KMS must not
// start with that policy.
func LoadForKMS(data []byte, source, wantSHA256, version, profile string) (*Loaded, error) {
	sum := sha256.Sum256(data)
	got := hex.EncodeToString(sum[:])
	if wantSHA256 != "" && !strings.EqualFold(got, wantSHA256) {
		return nil, outcome.VerificationErrorf("attestation policy %s: SHA-256 is %s but %s pins %s: refusing to start", source, got, EnvPolicySHA256, strings.ToLower(wantSHA256))
	}
	p, err := Load(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("attestation policy %s: %w", source, err)
	}
	if p.KMSVersion != version {
		return nil, outcome.VerificationErrorf("attestation policy %s: kms_version is %q but %s is %q: refusing to start", source, p.KMSVersion, EnvKMSVersion, version)
	}
	if string(p.Profile) != profile {
		return nil, outcome.VerificationErrorf("attestation policy %s: profile is %q but %s is %q: refusing to start", source, p.Profile, EnvKMSProfile, profile)
	}
	return &Loaded{Policy: p, SHA256: got, Source: source, Data: bytes.Clone(data)}, nil
}

// dataURLPrefix starts a policy carried inline in MERO_KMS_POLICY_URL (RFC 2397, base64).
const dataURLPrefix = "data:application/json;base64,"

// DataURL carries policy bytes inline as MERO_KMS_POLICY_URL: a data: URL (RFC 2397, base64).
// It is how a KMS that cannot reach the release's assets gets its policy — a CVM deployed by
// the release's E2E before the release is published; the SHA-256 pin still binds the bytes.
func DataURL(data []byte) string {
	return dataURLPrefix + base64.StdEncoding.EncodeToString(data)
}

// ParseDataURL returns the bytes of a data: URL DataURL wrote; ok is false for any other URL.
func ParseDataURL(rawURL string) (data []byte, ok bool, err error) {
	enc, ok := strings.CutPrefix(rawURL, dataURLPrefix)
	if !ok {
		return nil, false, nil
	}
	data, err = base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, true, outcome.UsageErrorf("%s: data: URL: %v", EnvPolicyURL, err)
	}
	return data, true, nil
}
