// Package verified reads release assets that a stage is about to trust — a counterpart
// release's published-mrtds.json or attestation policies, a policy an operator migrates to —
// only after verifying them: the asset's Sigstore bundle against the expected signer, and its
// SHA-256 against the release's checksums.sha256, whose own bundle is verified the same way.
// The expected signer comes from the caller (a key or a keyless identity), never from the
// release being read.
package verified

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/calimero-network/mero-release/pipeline/checksum"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/store"
)

// MaxAssetSize bounds what is read of one small release asset (policies, measurements,
// checksums, bundles).
const MaxAssetSize = 16 << 20

// Trust says who must have signed a release's assets: a public key or a keyless identity
// (sign.Policy), checked by Verifier (which holds the trusted root for keyless bundles).
type Trust struct {
	Policy   sign.Policy
	Verifier *sign.Verifier
}

// Asset is a release asset whose Sigstore bundle verified and whose SHA-256 equals the
// entry of the release's (also verified) checksums.sha256.
type Asset struct {
	Tag  string `json:"tag"`
	Name string `json:"name"`
	// SHA256 is the hex digest of Data.
	SHA256 string `json:"sha256"`
	// Signer describes the verified signature of the asset.
	Signer *sign.Result `json:"signer"`
	// Data are the asset's bytes.
	Data []byte `json:"-"`
}

// Fetch downloads the asset name of the published release tag and verifies it: its
// bundle (name.sigstore.json) against trust, then its SHA-256 against checksums.sha256, whose
// own bundle is verified the same way. A missing release or asset is a missing-asset error
// (exit 11); a draft release, a bad signature, a wrong signer or a digest mismatch is a
// verification error (exit 10).
func Fetch(ctx context.Context, st store.Store, tag, name string, trust Trust) (*Asset, error) {
	if st == nil {
		return nil, outcome.UsageErrorf("no release store")
	}
	if trust.Verifier == nil || (trust.Policy.PublicKey == nil) == (trust.Policy.Identity == nil) {
		return nil, outcome.UsageErrorf("%s/%s: give the expected signer: a public key or a certificate identity and issuer", tag, name)
	}
	rel, err := st.Release(ctx, tag)
	if errors.Is(err, store.ErrNotFound) {
		return nil, outcome.MissingAssetErrorf("release %s: not found in the store", tag)
	}
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", tag, err)
	}
	if rel.Draft {
		return nil, outcome.VerificationErrorf("release %s is a draft: only published releases are trusted", tag)
	}
	data, res, err := readSigned(ctx, st, tag, name, trust)
	if err != nil {
		return nil, err
	}
	sumsData, _, err := readSigned(ctx, st, tag, release.ChecksumsFile, trust)
	if err != nil {
		return nil, err
	}
	sums, err := checksum.Parse(bytes.NewReader(sumsData))
	if err != nil {
		return nil, outcome.VerificationErrorf("%s/%s: %v", tag, release.ChecksumsFile, err)
	}
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	want, ok := sums.Lookup(name)
	switch {
	case !ok:
		return nil, outcome.VerificationErrorf("%s/%s: %s is not listed", tag, release.ChecksumsFile, name)
	case want != digest:
		return nil, outcome.VerificationErrorf("%s/%s: SHA-256 %s, but %s lists %s", tag, name, digest, release.ChecksumsFile, want)
	}
	return &Asset{Tag: tag, Name: name, SHA256: digest, Signer: res, Data: data}, nil
}

// readSigned reads an asset and its bundle and verifies the signature.
func readSigned(ctx context.Context, st store.Store, tag, name string, trust Trust) ([]byte, *sign.Result, error) {
	data, err := ReadAsset(ctx, st, tag, name)
	if err != nil {
		return nil, nil, err
	}
	bundleJSON, err := ReadAsset(ctx, st, tag, release.BundleName(name))
	if err != nil {
		return nil, nil, err
	}
	res, err := trust.Verifier.Verify(ctx, bundleJSON, bytes.NewReader(data), trust.Policy)
	if err != nil {
		return nil, nil, fmt.Errorf("%s/%s: signature: %w", tag, name, err)
	}
	return data, res, nil
}

// ReadAsset reads a whole asset of a release (at most MaxAssetSize bytes). A missing asset is a
// missing-asset error (exit 11) naming the release and the asset.
func ReadAsset(ctx context.Context, st store.Store, tag, name string) ([]byte, error) {
	rc, err := st.OpenAsset(ctx, tag, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, outcome.MissingAssetErrorf("%s/%s: not found in the store", tag, name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", tag, name, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, MaxAssetSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", tag, name, err)
	}
	if len(data) > MaxAssetSize {
		return nil, outcome.VerificationErrorf("%s/%s: larger than %d bytes", tag, name, MaxAssetSize)
	}
	return data, nil
}
