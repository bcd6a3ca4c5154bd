// Package migrate is the operators' side of a release (SPEC §10): moving a running KMS to the
// attestation policy of another KMS release, checking it afterwards, and the configuration a
// merod node uses to verify the KMS.
//
//   - MigratePolicy checks that the target KMS / node-image pair is listed as tested in the
//     compatibility catalog, downloads attestation-policy-{profile}.json from the KMS release,
//     verifies its Sigstore bundle and its SHA-256 against the release's signed
//     checksums.sha256, loads it exactly as the KMS will, and returns the environment to set
//     (MERO_KMS_VERSION, MERO_KMS_PROFILE, MERO_KMS_POLICY_URL, MERO_KMS_POLICY_SHA256).
//   - Check is the post-migration check: GET /health, POST /attest (a quote that verifies and
//     binds a fresh nonce), then a key release to a node booted from the node release's image.
//   - KMSAttestationConfig writes the merod [tee.kms.phala] attestation section: the KMS
//     release's published measurements for a profile and the KMS URL.
//
// Every release asset the package trusts is verified first (FetchVerified).
package migrate

import (
	"context"

	"github.com/calimero-network/mero-release/pipeline/store"
	"github.com/calimero-network/mero-release/pipeline/verified"
)

// MaxAssetSize bounds what is read of one small release asset (verified.MaxAssetSize).
const MaxAssetSize = verified.MaxAssetSize

// Trust says who must have signed a release's assets (verified.Trust).
type Trust = verified.Trust

// VerifiedAsset is a release asset whose bundle and checksum verified (verified.Asset).
type VerifiedAsset = verified.Asset

// FetchVerified downloads and verifies one asset of a published release (verified.Fetch).
func FetchVerified(ctx context.Context, st store.Store, tag, name string, trust Trust) (*VerifiedAsset, error) {
	return verified.Fetch(ctx, st, tag, name, trust)
}

// ReadAsset reads a whole asset of a release, unverified (verified.ReadAsset).
func ReadAsset(ctx context.Context, st store.Store, tag, name string) ([]byte, error) {
	return verified.ReadAsset(ctx, st, tag, name)
}
