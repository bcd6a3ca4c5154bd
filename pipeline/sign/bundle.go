package sign

import (
	"errors"
	"fmt"
	"sync"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"golang.org/x/mod/semver"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// Bundle is a parsed Sigstore bundle: sigstore-go's bundle with its transparency-log entries
// parsed once, when the bundle is read, and its verification material parsed once, when first
// asked for. sigstore-go's own bundle parses every Rekor entry (and, in rekor's hashedrekord
// type, checks its signature) in UnmarshalJSON and again for each verification, and the
// certificate at every step that asks for it; as a verify.SignedEntity, Bundle hands
// sigstore-go's verifier the parts parsed already. It is safe for concurrent use.
type Bundle struct {
	*bundle.Bundle
	entries        []*tlog.Entry
	promise, proof bool
	content        func() (verify.VerificationContent, error)
}

// TlogEntries returns the bundle's transparency-log entries, parsed when it was read.
func (b *Bundle) TlogEntries() ([]*tlog.Entry, error) { return b.entries, nil }

// HasInclusionPromise reports whether an entry carries a signed entry timestamp (SET).
func (b *Bundle) HasInclusionPromise() bool { return b.promise }

// HasInclusionProof reports whether an entry carries an inclusion proof.
func (b *Bundle) HasInclusionProof() bool { return b.proof }

// VerificationContent returns the bundle's certificate or public key, parsed once.
func (b *Bundle) VerificationContent() (verify.VerificationContent, error) { return b.content() }

// parseBundle reads bundle JSON and makes the checks sigstore-go's bundle.UnmarshalJSON makes
// (FuzzParseBundleAgrees holds the two to the same verdicts): a media type of version v0.1 to
// v0.3, a message signature or DSSE envelope, a certificate, chain or public key, transparency-
// log entries that parse, an inclusion promise in each v0.1 bundle with entries and an
// inclusion proof from v0.2, and no certificate chain from v0.3. Unlike UnmarshalJSON it keeps
// the parsed entries. Errors are verification errors.
func parseBundle(data []byte) (*Bundle, error) {
	if len(data) > maxBundleSize {
		return nil, outcome.VerificationErrorf("bundle is %d bytes, more than the %d allowed", len(data), maxBundleSize)
	}
	pb := new(protobundle.Bundle)
	if err := protojson.Unmarshal(data, pb); err != nil {
		return nil, outcome.VerificationErrorf("bundle is not a valid Sigstore bundle: %v", err)
	}
	b := &Bundle{Bundle: &bundle.Bundle{Bundle: pb}}
	if err := b.validate(); err != nil {
		return nil, outcome.VerificationErrorf("bundle is not a valid Sigstore bundle: %v", err)
	}
	b.content = sync.OnceValues(b.Bundle.VerificationContent)
	return b, nil
}

// validate is sigstore-go's bundle validation (pkg/bundle, v1.3.0), keeping the entries.
func (b *Bundle) validate() error {
	version, err := b.Version()
	if err != nil {
		return fmt.Errorf("error getting bundle version: %w", err)
	}
	if semver.Compare(version, "v0.1") < 0 {
		return fmt.Errorf("%w: bundle version %s is not supported", bundle.ErrUnsupportedMediaType, version)
	}
	switch b.Content.(type) {
	case *protobundle.Bundle_DsseEnvelope, *protobundle.Bundle_MessageSignature:
	case nil:
		return fmt.Errorf("invalid bundle: %w", bundle.ErrMissingBundleContent)
	default:
		return errors.New("invalid bundle: invalid bundle content: bundle content must be either a message signature or dsse envelope")
	}
	if b.VerificationMaterial == nil || b.VerificationMaterial.Content == nil {
		return fmt.Errorf("invalid bundle: %w", bundle.ErrMissingVerificationMaterial)
	}
	switch b.VerificationMaterial.Content.(type) {
	case *protobundle.VerificationMaterial_PublicKey, *protobundle.VerificationMaterial_Certificate, *protobundle.VerificationMaterial_X509CertificateChain:
	default:
		return errors.New("invalid bundle: invalid verification material content: verification material must be one of public key, x509 certificate and x509 certificate chain")
	}
	// sigstore-go's parser of the entries, run once.
	if b.entries, err = b.Bundle.TlogEntries(); err != nil {
		return err
	}
	for _, e := range b.entries {
		b.promise = b.promise || e.HasInclusionPromise()
		b.proof = b.proof || e.HasInclusionProof()
	}
	if semver.Compare(version, "v0.1") == 0 {
		if len(b.entries) > 0 && !b.promise {
			return errors.New("inclusion promises missing in bundle (required for bundle v0.1)")
		}
	} else if len(b.entries) > 0 && !b.proof {
		return errors.New("inclusion proof missing in bundle (required for bundle v0.2)")
	}
	if semver.Compare(version, "v0.3") >= 0 && b.VerificationMaterial.GetX509CertificateChain() != nil {
		return errors.New("verification material cannot be X.509 certificate chain (for bundle v0.3)")
	}
	if semver.Compare(version, "v0.4") >= 0 {
		return fmt.Errorf("%w: bundle version %s is not yet supported", bundle.ErrUnsupportedMediaType, version)
	}
	return nil
}
