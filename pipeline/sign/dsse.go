package sign

import (
	"context"
	"fmt"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// DSSESigner signs payloads (in-toto statements) as DSSE envelopes in Sigstore bundles. The
// key and keyless signers and Lazy implement it.
type DSSESigner interface {
	// SignDSSE signs payload of payloadType and returns the bundle JSON.
	SignDSSE(ctx context.Context, payloadType string, payload []byte) ([]byte, error)
}

var (
	_ DSSESigner = (*KeySigner)(nil)
	_ DSSESigner = (*KeylessSigner)(nil)
	_ DSSESigner = (*Lazy)(nil)
)

// SignDSSE signs payload as a DSSE envelope with the key (recorded in Rekor when configured).
func (s *KeySigner) SignDSSE(ctx context.Context, payloadType string, payload []byte) ([]byte, error) {
	return s.bundle(ctx, &sgsign.DSSEData{Data: payload, PayloadType: payloadType})
}

// SignDSSE signs payload as a DSSE envelope with the Fulcio certificate and records it in Rekor.
func (s *KeylessSigner) SignDSSE(ctx context.Context, payloadType string, payload []byte) ([]byte, error) {
	return s.bundle(ctx, &sgsign.DSSEData{Data: payload, PayloadType: payloadType})
}

// SignDSSE builds the signer when needed and signs payload as a DSSE envelope.
func (l *Lazy) SignDSSE(ctx context.Context, payloadType string, payload []byte) ([]byte, error) {
	s, err := l.signer()
	if err != nil {
		return nil, err
	}
	d, ok := s.(DSSESigner)
	if !ok {
		return nil, fmt.Errorf("sign: %T cannot sign DSSE envelopes", s)
	}
	return d.SignDSSE(ctx, payloadType, payload)
}

// DSSEResult is a verified DSSE bundle: who signed it and what it says.
type DSSEResult struct {
	Result
	// PayloadType and Payload are the envelope's verified content (an in-toto statement).
	PayloadType string
	Payload     []byte
}

// VerifyDSSE checks that bundleJSON is a DSSE envelope signed by the signer the policy names
// (the same checks as Verify: certificate chain, SCT, Rekor entry, identity, or the key) whose
// in-toto statement names the artifact digest (algorithm "sha256", …) among its subjects.
// Failures are verification errors (exit 10); a bad policy is a usage error.
func (v *Verifier) VerifyDSSE(ctx context.Context, bundleJSON []byte, algorithm string, digest []byte, policy Policy) (*DSSEResult, error) {
	cp, err := compilePolicy(policy)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(bundleJSON) > maxBundleSize {
		return nil, outcome.VerificationErrorf("bundle is %d bytes, more than the %d allowed", len(bundleJSON), maxBundleSize)
	}
	b := &bundle.Bundle{Bundle: new(protobundle.Bundle)}
	if err := b.UnmarshalJSON(bundleJSON); err != nil {
		return nil, outcome.VerificationErrorf("bundle is not a valid Sigstore bundle: %v", err)
	}
	env := b.GetDsseEnvelope()
	if env == nil {
		return nil, outcome.VerificationErrorf("bundle holds no DSSE envelope (a file signature is not an attestation)")
	}
	if _, err := NewDigestHash(algorithm); err != nil {
		return nil, err
	}
	res, err := v.verifyEntity(cp, b, algorithm, digest)
	if err != nil {
		return nil, err
	}
	return &DSSEResult{Result: *res, PayloadType: env.GetPayloadType(), Payload: env.GetPayload()}, nil
}
