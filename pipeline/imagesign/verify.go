package imagesign

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/sign"
)

// Places where signatures and attestations are looked for.
const (
	// WhereReferrer is the Sigstore bundles attached as OCI 1.1 referrers.
	WhereReferrer = "referrer"
	// WhereTag is cosign's tag scheme (sha256-<hex>.sig / .att).
	WhereTag = "tag"
)

// DefaultRequired are the attestations an image must carry besides its signature.
func DefaultRequired() []string { return []string{SPDXPredicateType, SLSAProvenancePredicateType} }

// VerifyOptions configures Verify.
type VerifyOptions struct {
	// Verifier holds the trusted material; Policy names the signer (key or identity).
	Verifier *sign.Verifier
	Policy   sign.Policy
	// Required are the predicate types that must be attested (default DefaultRequired).
	Required []string
	// Remote are the registry options.
	Remote []remote.Option
}

// Check is one verified signature or attestation.
type Check struct {
	// PredicateType is SignPredicateType for the signature.
	PredicateType string `json:"predicate_type"`
	// Where is WhereReferrer or WhereTag.
	Where string `json:"where"`
	// Signer is who signed it.
	Signer sign.Result `json:"signer"`
}

// Verified is the outcome of Verify.
type Verified struct {
	Digest string  `json:"digest"`
	Checks []Check `json:"checks"`
}

// Verify checks that ref (a tag or a digest) carries, both as Sigstore-bundle referrers and in
// cosign's tag scheme, a signature of its digest and each required attestation, signed by the
// signer the policy names. Anything missing or not verifying is a verification error (exit
// 10) naming what is missing and why the candidates failed; a bad policy is a usage error.
func Verify(ctx context.Context, ref name.Reference, opts VerifyOptions) (*Verified, error) {
	if opts.Verifier == nil {
		return nil, outcome.UsageErrorf("verify-image: no verifier")
	}
	required := opts.Required
	if required == nil {
		required = DefaultRequired()
	}
	ropts := append([]remote.Option{remote.WithContext(ctx)}, opts.Remote...)
	desc, err := remote.Head(ref, ropts...)
	if err != nil {
		if isNotFound(err) {
			return nil, outcome.VerificationErrorf("verify-image: %s: no such image in the registry", ref)
		}
		return nil, fmt.Errorf("verify-image: %s: %w", ref, err)
	}
	h := desc.Digest
	if d, ok := ref.(name.Digest); ok && d.DigestStr() != h.String() {
		return nil, outcome.VerificationErrorf("verify-image: the registry serves %s for %s", h, ref)
	}
	digestRef := ref.Context().Digest(h.String())
	raw, err := hex.DecodeString(h.Hex)
	if err != nil || h.Algorithm != "sha256" {
		return nil, outcome.VerificationErrorf("verify-image: digest %s is not sha256", h)
	}
	v := &verification{ctx: ctx, opts: opts, digest: h, raw: raw, res: &Verified{Digest: h.String()}}

	refs, err := listReferrerBundles(digestRef, ropts)
	if err != nil {
		return nil, err
	}
	for _, r := range refs {
		if r.err != nil {
			v.fail("referrer "+r.digest.String(), r.err)
			continue
		}
		v.dsse(WhereReferrer, "referrer "+r.digest.String(), r.bundle)
	}
	if err := v.tagSignatures(digestRef, ropts); err != nil {
		return nil, err
	}
	if err := v.tagAttestations(digestRef, ropts); err != nil {
		return nil, err
	}

	var missing []string
	for _, where := range []string{WhereReferrer, WhereTag} {
		for _, pt := range append([]string{SignPredicateType}, required...) {
			if !v.found(where, pt) {
				missing = append(missing, fmt.Sprintf("%s (%s)", kindName(pt), where))
			}
		}
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("verify-image: %s: no valid %s", digestRef, strings.Join(missing, ", "))
		if len(v.failures) > 0 {
			msg += "; rejected: " + strings.Join(v.failures, "; ")
		}
		return v.res, outcome.VerificationErrorf("%s", msg)
	}
	return v.res, nil
}

// kindName names a predicate type in messages.
func kindName(pt string) string {
	switch pt {
	case SignPredicateType:
		return "signature"
	case SPDXPredicateType:
		return "SBOM attestation"
	case SLSAProvenancePredicateType:
		return "provenance attestation"
	}
	return "attestation " + pt
}

// verification collects the checks of one image.
type verification struct {
	ctx      context.Context
	opts     VerifyOptions
	digest   v1.Hash
	raw      []byte
	res      *Verified
	failures []string
}

func (v *verification) found(where, pt string) bool {
	return slices.ContainsFunc(v.res.Checks, func(c Check) bool { return c.Where == where && c.PredicateType == pt })
}

func (v *verification) fail(what string, err error) {
	v.failures = append(v.failures, fmt.Sprintf("%s: %v", what, err))
}

// dsse verifies one DSSE bundle about the digest and records its predicate type.
func (v *verification) dsse(where, what string, bundleJSON []byte) {
	r, err := v.opts.Verifier.VerifyDSSESubject(v.ctx, bundleJSON, "sha256", v.raw, v.opts.Policy)
	if err != nil {
		v.fail(what, err)
		return
	}
	if r.PayloadType != InTotoPayloadType {
		v.fail(what, fmt.Errorf("payload type %q is not an in-toto statement", r.PayloadType))
		return
	}
	st, err := parseStatement(r.Payload)
	if err != nil {
		v.fail(what, err)
		return
	}
	v.res.Checks = append(v.res.Checks, Check{PredicateType: st.GetPredicateType(), Where: where, Signer: r.Result})
}

// tagLayers calls each for every layer of media type mediaType in the image of ref's cosign tag
// with suffix ("sig", "att"): its name for messages, its descriptor and its bytes. A missing tag
// image is no error (the caller finds the missing checks); a layer that cannot be read is.
func (v *verification) tagLayers(ref name.Digest, ropts []remote.Option, suffix string, mediaType types.MediaType, each func(what string, d v1.Descriptor, data []byte)) error {
	t := tagFor(ref, v.digest, suffix)
	img, ok, err := tagImage(t, ropts)
	if err != nil || !ok {
		return err
	}
	m, err := img.Manifest()
	if err != nil {
		return fmt.Errorf("verify-image: %s: %w", t, err)
	}
	for i, d := range m.Layers {
		what := fmt.Sprintf("%s layer %d", t.TagStr(), i)
		if d.MediaType != mediaType {
			continue
		}
		l, err := img.LayerByDigest(d.Digest)
		if err != nil {
			return fmt.Errorf("verify-image: %s: %w", what, err)
		}
		data, err := readLayer(l)
		if err != nil {
			return fmt.Errorf("verify-image: %s: %w", what, err)
		}
		each(what, d, data)
	}
	return nil
}

// tagSignatures verifies the .sig layers: each a signed simple-signing payload naming the digest.
func (v *verification) tagSignatures(ref name.Digest, ropts []remote.Option) error {
	return v.tagLayers(ref, ropts, "sig", SimpleSigningMediaType, func(what string, d v1.Descriptor, payload []byte) {
		ms, err := messageSignature(payload, d.Annotations[annSignature])
		if err != nil {
			v.fail(what, err)
			return
		}
		bj, err := legacyBundle(d.Annotations, ms, nil)
		if err != nil {
			v.fail(what, err)
			return
		}
		r, err := v.opts.Verifier.Verify(v.ctx, bj, bytes.NewReader(payload), v.opts.Policy)
		if err != nil {
			v.fail(what, err)
			return
		}
		var p simpleSigning
		if err := json.Unmarshal(payload, &p); err != nil {
			v.fail(what, fmt.Errorf("simple signing payload: %w", err))
			return
		}
		if p.Critical.Image.DockerManifestDigest != v.digest.String() || p.Critical.Type != simpleSigningType {
			v.fail(what, fmt.Errorf("signs %s (%q), not %s", p.Critical.Image.DockerManifestDigest, p.Critical.Type, v.digest))
			return
		}
		v.res.Checks = append(v.res.Checks, Check{PredicateType: SignPredicateType, Where: WhereTag, Signer: *r})
	})
}

// tagAttestations verifies the .att layers: DSSE envelopes of statements about the digest.
func (v *verification) tagAttestations(ref name.Digest, ropts []remote.Option) error {
	return v.tagLayers(ref, ropts, "att", DSSEMediaType, func(what string, d v1.Descriptor, data []byte) {
		env, err := parseEnvelope(data)
		if err != nil {
			v.fail(what, err)
			return
		}
		bj, err := legacyBundle(d.Annotations, nil, env)
		if err != nil {
			v.fail(what, err)
			return
		}
		v.dsse(WhereTag, what, bj)
	})
}
