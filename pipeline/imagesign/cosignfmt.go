package imagesign

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/encoding/protojson"
)

// bundleV01MediaType is the Sigstore bundle version whose Rekor entries need only an
// inclusion promise (SET), which is all cosign's tag scheme keeps.
const bundleV01MediaType = "application/vnd.dev.sigstore.bundle+json;version=0.1"

// rekorBundle is cosign's dev.sigstore.cosign/bundle annotation: the Rekor entry and its
// signed entry timestamp (cosign's pkg/cosign/bundle.RekorBundle; the outer field names are
// not tagged there, so they are capitalised in JSON).
type rekorBundle struct {
	SignedEntryTimestamp []byte
	Payload              tlog.RekorPayload
}

// simpleSigning is the payload of a .sig signature (containers/image simple signing, as
// cosign writes it).
type simpleSigning struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// simpleSigningType is the critical.type of cosign image signatures.
const simpleSigningType = "cosign container image signature"

// simpleSigningPayload renders the .sig payload for the digest in repo.
func simpleSigningPayload(repo string, digest v1.Hash) ([]byte, error) {
	var p simpleSigning
	p.Critical.Identity.DockerReference = repo
	p.Critical.Image.DockerManifestDigest = digest.String()
	p.Critical.Type = simpleSigningType
	out, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("simple signing payload: %w", err)
	}
	return out, nil
}

// parseBundle reads a Sigstore bundle's JSON.
func parseBundle(data []byte) (*protobundle.Bundle, error) {
	b := &protobundle.Bundle{}
	if err := protojson.Unmarshal(data, b); err != nil {
		return nil, fmt.Errorf("sigstore bundle: %w", err)
	}
	return b, nil
}

// legacyAnnotations renders a bundle's verification material as cosign's layer annotations:
// the certificate (keyless) and the Rekor entry with its SET (when the bundle has one).
func legacyAnnotations(b *protobundle.Bundle) (map[string]string, error) {
	ann := map[string]string{}
	vm := b.GetVerificationMaterial()
	der := vm.GetCertificate().GetRawBytes()
	if certs := vm.GetX509CertificateChain().GetCertificates(); der == nil && len(certs) > 0 {
		der = certs[0].GetRawBytes()
	}
	if der != nil {
		ann[annCertificate] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	for _, e := range vm.GetTlogEntries() {
		set := e.GetInclusionPromise().GetSignedEntryTimestamp()
		if set == nil {
			continue
		}
		rb := rekorBundle{SignedEntryTimestamp: set, Payload: tlog.RekorPayload{
			Body:           base64.StdEncoding.EncodeToString(e.GetCanonicalizedBody()),
			IntegratedTime: e.GetIntegratedTime(),
			LogIndex:       e.GetLogIndex(),
			LogID:          hex.EncodeToString(e.GetLogId().GetKeyId()),
		}}
		out, err := json.Marshal(rb)
		if err != nil {
			return nil, fmt.Errorf("rekor bundle annotation: %w", err)
		}
		ann[annRekorBundle] = string(out)
		break
	}
	return ann, nil
}

// envelopeJSON renders a DSSE bundle's envelope as the JSON cosign stores in a .att layer.
func envelopeJSON(b *protobundle.Bundle) ([]byte, error) {
	env := b.GetDsseEnvelope()
	if env == nil {
		return nil, fmt.Errorf("bundle holds no DSSE envelope")
	}
	out := dsse.Envelope{PayloadType: env.GetPayloadType(), Payload: base64.StdEncoding.EncodeToString(env.GetPayload())}
	for _, s := range env.GetSignatures() {
		out.Signatures = append(out.Signatures, dsse.Signature{KeyID: s.GetKeyid(), Sig: base64.StdEncoding.EncodeToString(s.GetSig())})
	}
	data, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("dsse envelope: %w", err)
	}
	return data, nil
}

// parseEnvelope reads a .att layer's DSSE envelope into the bundle's form.
func parseEnvelope(data []byte) (*protodsse.Envelope, error) {
	var env dsse.Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("dsse envelope: %w", err)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("dsse envelope payload: %w", err)
	}
	out := &protodsse.Envelope{PayloadType: env.PayloadType, Payload: payload}
	for _, s := range env.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			return nil, fmt.Errorf("dsse envelope signature: %w", err)
		}
		out.Signatures = append(out.Signatures, &protodsse.Signature{Sig: sig, Keyid: s.KeyID})
	}
	return out, nil
}

// legacyBundle rebuilds a Sigstore bundle (v0.1: the Rekor entry with its SET) from a tag-scheme
// layer's annotations and content (a message signature or a DSSE envelope), so that the same
// verifier checks both places.
func legacyBundle(ann map[string]string, ms *protocommon.MessageSignature, env *protodsse.Envelope) ([]byte, error) {
	b := &protobundle.Bundle{MediaType: bundleV01MediaType, VerificationMaterial: &protobundle.VerificationMaterial{}}
	vm := b.VerificationMaterial
	if c := ann[annCertificate]; c != "" {
		block, _ := pem.Decode([]byte(c))
		if block == nil {
			return nil, fmt.Errorf("certificate annotation is not PEM")
		}
		vm.Content = &protobundle.VerificationMaterial_X509CertificateChain{X509CertificateChain: &protocommon.X509CertificateChain{
			Certificates: []*protocommon.X509Certificate{{RawBytes: block.Bytes}},
		}}
	} else {
		vm.Content = &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{}}
	}
	if r := ann[annRekorBundle]; r != "" {
		var rb rekorBundle
		if err := json.Unmarshal([]byte(r), &rb); err != nil {
			return nil, fmt.Errorf("rekor bundle annotation: %w", err)
		}
		bodyB64, _ := rb.Payload.Body.(string)
		body, err := base64.StdEncoding.DecodeString(bodyB64)
		if err != nil {
			return nil, fmt.Errorf("rekor bundle annotation body: %w", err)
		}
		var kind struct {
			Kind       string `json:"kind"`
			APIVersion string `json:"apiVersion"`
		}
		if err := json.Unmarshal(body, &kind); err != nil {
			return nil, fmt.Errorf("rekor bundle annotation body: %w", err)
		}
		logID, err := hex.DecodeString(rb.Payload.LogID)
		if err != nil {
			return nil, fmt.Errorf("rekor bundle annotation log ID: %w", err)
		}
		vm.TlogEntries = []*protorekor.TransparencyLogEntry{{
			LogIndex:          rb.Payload.LogIndex,
			LogId:             &protocommon.LogId{KeyId: logID},
			KindVersion:       &protorekor.KindVersion{Kind: kind.Kind, Version: kind.APIVersion},
			IntegratedTime:    rb.Payload.IntegratedTime,
			InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: rb.SignedEntryTimestamp},
			CanonicalizedBody: body,
		}}
	}
	switch {
	case ms != nil:
		b.Content = &protobundle.Bundle_MessageSignature{MessageSignature: ms}
	case env != nil:
		b.Content = &protobundle.Bundle_DsseEnvelope{DsseEnvelope: env}
	}
	out, err := protojson.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return out, nil
}

// messageSignature is the bundle content of a .sig layer: the payload's SHA-256 and the signature.
func messageSignature(payload []byte, b64sig string) (*protocommon.MessageSignature, error) {
	sig, err := base64.StdEncoding.DecodeString(b64sig)
	if err != nil {
		return nil, fmt.Errorf("signature annotation: %w", err)
	}
	sum := sha256.Sum256(payload)
	return &protocommon.MessageSignature{
		MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum[:]},
		Signature:     sig,
	}, nil
}
