package sign

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// DSSEResult describes a verified DSSE bundle: who signed it (Result; its Digest is the
// SHA-256 of the payload) and the signed payload with its type. Whether the payload says
// anything about a given file is for the caller to check (pipeline/provenance).
type DSSEResult struct {
	Result
	// PayloadType is the envelope's payload type (InTotoPayloadType for an attestation).
	PayloadType string `json:"payload_type"`
	// Payload is the signed payload (for an attestation, the in-toto statement JSON).
	Payload []byte `json:"-"`
}

// ParseDSSEBundle parses a bundle's JSON and checks it holds a DSSE envelope with exactly one
// signature (the way sigstore-go and cosign make them). Errors are verification errors.
func ParseDSSEBundle(data []byte) (*Bundle, error) {
	b, err := parseBundle(data)
	if err != nil {
		return nil, err
	}
	env := b.GetDsseEnvelope()
	if env == nil {
		return nil, outcome.VerificationErrorf("bundle holds no DSSE envelope (it is a signature over a file: verify it with the file)")
	}
	if len(env.GetSignatures()) != 1 {
		return nil, outcome.VerificationErrorf("DSSE envelope has %d signatures, want exactly 1", len(env.GetSignatures()))
	}
	return b, nil
}

// IsDSSEBundle reports whether bundle JSON holds a DSSE envelope rather than a message
// signature (a cheap look, not a verification).
func IsDSSEBundle(data []byte) bool {
	b, err := parseBundle(data)
	return err == nil && b.GetDsseEnvelope() != nil
}

// VerifyDSSE checks that bundleJSON is a DSSE envelope whose signature verifies and whose
// signer is the one the policy names (certificate chain, SCT, Rekor entry and identity for
// keyless bundles; the public key otherwise), and that its payload type is payloadType (empty:
// any). It returns the payload; failures are verification errors (exit 10), a bad policy a
// usage error.
func (v *Verifier) VerifyDSSE(ctx context.Context, bundleJSON []byte, payloadType string, policy Policy) (*DSSEResult, error) {
	b, err := ParseDSSEBundle(bundleJSON)
	if err != nil {
		return nil, err
	}
	// The envelope's signature covers its payload (DSSE pre-authentication encoding); what the
	// payload says about artifacts is checked by the caller against the verified payload.
	return v.verifyDSSE(ctx, b, payloadType, policy, verify.WithoutArtifactUnsafe())
}

// VerifyDSSEBundle is VerifyDSSE for a bundle parsed with ParseDSSEBundle.
func (v *Verifier) VerifyDSSEBundle(ctx context.Context, b *Bundle, payloadType string, policy Policy) (*DSSEResult, error) {
	return v.verifyDSSE(ctx, b, payloadType, policy, verify.WithoutArtifactUnsafe())
}

func (v *Verifier) verifyDSSE(ctx context.Context, b *Bundle, payloadType string, policy Policy, artifact verify.ArtifactPolicyOption) (*DSSEResult, error) {
	cp, err := compilePolicy(policy)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	env := b.GetDsseEnvelope()
	if env == nil {
		return nil, outcome.VerificationErrorf("bundle holds no DSSE envelope")
	}
	if payloadType != "" && env.GetPayloadType() != payloadType {
		return nil, outcome.VerificationErrorf("DSSE payload type is %q, want %q", env.GetPayloadType(), payloadType)
	}
	sum := sha256.Sum256(env.GetPayload())
	res := &Result{Digest: "sha256:" + hex.EncodeToString(sum[:])}
	r, err := v.verifyBundle(cp, b, artifact, res)
	if err != nil {
		return nil, err
	}
	return &DSSEResult{Result: *r, PayloadType: env.GetPayloadType(), Payload: env.GetPayload()}, nil
}

// VerifyDSSESubject is VerifyDSSE for an in-toto statement that must name an artifact: the
// envelope's payload type is InTotoPayloadType and sigstore-go checks that the statement lists
// digest (algorithm "sha256", "sha384" or "sha512") among its subjects, besides the signature
// and the signer. Used for attestations attached to a registry image (pipeline/imagesign).
func (v *Verifier) VerifyDSSESubject(ctx context.Context, bundleJSON []byte, algorithm string, digest []byte, policy Policy) (*DSSEResult, error) {
	if _, err := NewDigestHash(algorithm); err != nil {
		return nil, err
	}
	b, err := ParseDSSEBundle(bundleJSON)
	if err != nil {
		return nil, err
	}
	return v.verifyDSSE(ctx, b, InTotoPayloadType, policy, verify.WithArtifactDigest(algorithm, digest))
}
