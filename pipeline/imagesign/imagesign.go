// Package imagesign signs and attests container images in an OCI registry where cosign
// (v2.6) looks, and verifies them:
//
//   - OCI 1.1 referrers of the image digest, each a Sigstore bundle (v0.3) holding a DSSE
//     envelope of an in-toto statement about the digest: the signature (predicate type
//     https://sigstore.dev/cosign/sign/v1, as `cosign sign --new-bundle-format` makes it),
//     the SBOM (https://spdx.dev/Document) and the SLSA provenance
//     (https://slsa.dev/provenance/v1). `cosign verify --new-bundle-format` and
//     `cosign verify-attestation --new-bundle-format` read them. Registries without the
//     referrers API get the OCI fallback tag (sha256-<hex>), which go-containerregistry writes.
//   - cosign's tag scheme, as fallback for older clients: sha256-<hex>.sig holds a signed
//     simple-signing payload for the digest, sha256-<hex>.att the DSSE envelopes of the
//     attestations, with cosign's annotations (signature, certificate, Rekor bundle,
//     predicateType). `cosign verify` and `cosign verify-attestation` read them.
//
// Signing goes through pipeline/sign (key or keyless, sigstore-go); statements use the
// in-toto attestation types. Attach is idempotent: what is attached already is not added again.
package imagesign

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	intotov1 "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/calimero-network/mero-release/pipeline/sign"
)

// Predicate types of the statements attached to an image.
const (
	// SignPredicateType is the predicate type of cosign's image signature statement.
	SignPredicateType = "https://sigstore.dev/cosign/sign/v1"
	// SPDXPredicateType is the predicate type of an SPDX SBOM (cosign --type spdxjson).
	SPDXPredicateType = "https://spdx.dev/Document"
	// SLSAProvenancePredicateType is SLSA provenance v1 (cosign --type slsaprovenance1).
	SLSAProvenancePredicateType = "https://slsa.dev/provenance/v1"
)

// Media types and annotations of what is attached (cosign v2.6.1's values).
const (
	// BundleMediaType is the artifact type and layer media type of a Sigstore bundle referrer.
	BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// SimpleSigningMediaType is the layer media type of a .sig signature.
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// DSSEMediaType is the layer media type of a .att attestation.
	DSSEMediaType = "application/vnd.dsse.envelope.v1+json"
	// InTotoPayloadType is the DSSE payload type of in-toto statements.
	InTotoPayloadType = sign.InTotoPayloadType
	// emptyConfigMediaType is the config of a referrer manifest (the OCI empty descriptor).
	emptyConfigMediaType = "application/vnd.oci.empty.v1+json"

	annSignature     = "dev.cosignproject.cosign/signature"
	annCertificate   = "dev.sigstore.cosign/certificate"
	annRekorBundle   = "dev.sigstore.cosign/bundle"
	annPredicateType = "predicateType"
	annCreated       = "org.opencontainers.image.created"
	annBundleContent = "dev.sigstore.bundle.content"
	annBundlePredTyp = "dev.sigstore.bundle.predicateType"
)

// Attestation is an in-toto predicate to attach to an image.
type Attestation struct {
	// PredicateType names the predicate (SPDXPredicateType, SLSAProvenancePredicateType, …).
	PredicateType string
	// Predicate is the predicate, a JSON object.
	Predicate []byte
}

// statement renders the in-toto statement about the image digest (subject name: the
// repository) with the predicate (nil: none, as cosign's signature statement).
func statement(repo string, digest v1.Hash, predicateType string, predicate []byte) ([]byte, error) {
	st := &intotov1.Statement{
		Type:          intotov1.StatementTypeUri,
		Subject:       []*intotov1.ResourceDescriptor{{Name: repo, Digest: map[string]string{digest.Algorithm: digest.Hex}}},
		PredicateType: predicateType,
	}
	if predicate != nil {
		st.Predicate = &structpb.Struct{}
		if err := protojson.Unmarshal(predicate, st.Predicate); err != nil {
			return nil, fmt.Errorf("%s predicate: not a JSON object: %w", predicateType, err)
		}
		if err := st.Validate(); err != nil {
			return nil, fmt.Errorf("%s statement: %w", predicateType, err)
		}
	}
	out, err := protojson.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("%s statement: %w", predicateType, err)
	}
	return out, nil
}

// parseStatement reads an in-toto statement.
func parseStatement(payload []byte) (*intotov1.Statement, error) {
	st := &intotov1.Statement{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(payload, st); err != nil {
		return nil, fmt.Errorf("not an in-toto statement: %w", err)
	}
	return st, nil
}
