package sign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"regexp"
	"strings"
	"time"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/calimero-network/mero-release/pipeline/internal/ctxio"
	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// maxBundleSize bounds a bundle file; real bundles are a few KiB.
const maxBundleSize = 4 << 20

// Identity is the expected signer of a keyless bundle: the certificate's subject
// alternative name (for GitHub Actions, the workflow: https://github.com/OWNER/REPO/.github/workflows/release-kms-phala.yaml@refs/tags/…)
// and OIDC issuer, each exact or a regular expression (Go syntax, unanchored unless
// written with ^…$), plus optional checks of Fulcio's certificate extensions.
type Identity struct {
	SAN          string
	SANRegexp    string
	Issuer       string
	IssuerRegexp string
	// Repository, when set, must equal the Source Repository URI extension
	// (OID 1.3.6.1.4.1.57264.1.12), e.g. https://github.com/OWNER/REPO.
	Repository string
	// Ref, when set, must equal the Source Repository Ref extension (1.3.6.1.4.1.57264.1.14),
	// e.g. refs/tags/mero-kms-v1.2.0.
	Ref string
	// RefRegexp, when set, must match the Source Repository Ref extension.
	RefRegexp string
}

// Policy says who must have signed: exactly one of Identity (keyless bundles) and
// PublicKey (key-pair bundles).
type Policy struct {
	Identity  *Identity
	PublicKey crypto.PublicKey
}

// compiledPolicy is a checked Policy.
type compiledPolicy struct {
	identity    *Identity
	certID      verify.CertificateIdentity
	sanRe       *regexp.Regexp
	issuerRe    *regexp.Regexp
	refRe       *regexp.Regexp
	key         crypto.PublicKey
	keyVerifier signature.Verifier
	keyHint     string
}

func compilePolicy(p Policy) (*compiledPolicy, error) {
	switch {
	case p.Identity == nil && p.PublicKey == nil:
		return nil, outcome.UsageErrorf("verify: a policy needs an expected identity or a public key")
	case p.Identity != nil && p.PublicKey != nil:
		return nil, outcome.UsageErrorf("verify: give either an expected identity or a public key, not both")
	}
	cp := &compiledPolicy{}
	if p.PublicKey != nil {
		alg, err := algorithmFor(p.PublicKey)
		if err != nil {
			return nil, err
		}
		v, err := signature.LoadVerifier(p.PublicKey, alg.GetHashType())
		if err != nil {
			return nil, outcome.UsageErrorf("verify: public key: %v", err)
		}
		hint, err := KeyHint(p.PublicKey)
		if err != nil {
			return nil, err
		}
		cp.key, cp.keyVerifier, cp.keyHint = p.PublicKey, v, hint
		return cp, nil
	}
	id := *p.Identity
	if (id.SAN == "") == (id.SANRegexp == "") {
		return nil, outcome.UsageErrorf("verify: give exactly one of the certificate identity and the certificate identity regexp")
	}
	if (id.Issuer == "") == (id.IssuerRegexp == "") {
		return nil, outcome.UsageErrorf("verify: give exactly one of the certificate OIDC issuer and the certificate OIDC issuer regexp")
	}
	if id.Ref != "" && id.RefRegexp != "" {
		return nil, outcome.UsageErrorf("verify: give at most one of the ref and the ref regexp")
	}
	var err error
	compile := func(what, expr string) *regexp.Regexp {
		if expr == "" || err != nil {
			return nil
		}
		var re *regexp.Regexp
		if re, err = regexp.Compile(expr); err != nil {
			err = outcome.UsageErrorf("verify: %s regexp %q: %v", what, expr, err)
		}
		return re
	}
	cp.sanRe = compile("certificate identity", id.SANRegexp)
	cp.issuerRe = compile("issuer", id.IssuerRegexp)
	cp.refRe = compile("ref", id.RefRegexp)
	if err != nil {
		return nil, err
	}
	ext := certificate.Extensions{SourceRepositoryURI: id.Repository, SourceRepositoryRef: id.Ref}
	certID, err := verify.NewShortCertificateIdentity(id.Issuer, id.IssuerRegexp, id.SAN, id.SANRegexp)
	if err != nil {
		return nil, outcome.UsageErrorf("verify: %v", err)
	}
	certID.Extensions = ext
	cp.identity, cp.certID = &id, certID
	return cp, nil
}

// checkIdentity compares a certificate summary with the expected identity and says, in
// plain words, what differs.
func (cp *compiledPolicy) checkIdentity(s certificate.Summary) error {
	id := cp.identity
	switch {
	case id.SAN != "" && s.SubjectAlternativeName != id.SAN:
		return outcome.VerificationErrorf("certificate identity %q does not match expected %q", s.SubjectAlternativeName, id.SAN)
	case cp.sanRe != nil && !cp.sanRe.MatchString(s.SubjectAlternativeName):
		return outcome.VerificationErrorf("certificate identity %q does not match expected pattern %q", s.SubjectAlternativeName, id.SANRegexp)
	case id.Issuer != "" && s.Issuer != id.Issuer:
		return outcome.VerificationErrorf("certificate issuer %q does not match expected OIDC issuer %q", s.Issuer, id.Issuer)
	case cp.issuerRe != nil && !cp.issuerRe.MatchString(s.Issuer):
		return outcome.VerificationErrorf("certificate issuer %q does not match expected OIDC issuer pattern %q", s.Issuer, id.IssuerRegexp)
	case id.Repository != "" && s.SourceRepositoryURI != id.Repository:
		return outcome.VerificationErrorf("certificate source repository %q does not match expected %q", s.SourceRepositoryURI, id.Repository)
	case id.Ref != "" && s.SourceRepositoryRef != id.Ref:
		return outcome.VerificationErrorf("certificate source repository ref %q does not match expected %q", s.SourceRepositoryRef, id.Ref)
	case cp.refRe != nil && !cp.refRe.MatchString(s.SourceRepositoryRef):
		return outcome.VerificationErrorf("certificate source repository ref %q does not match expected pattern %q", s.SourceRepositoryRef, id.RefRegexp)
	}
	return nil
}

// Result describes a verified bundle.
type Result struct {
	// Digest is the artifact's digest, "sha256:<hex>" (or sha384/sha512 for such keys).
	Digest string `json:"digest"`
	// Keyless results: the certificate's identity, issuer and GitHub provenance.
	Identity      string `json:"identity,omitempty"`
	Issuer        string `json:"issuer,omitempty"`
	Repository    string `json:"repository,omitempty"`
	Ref           string `json:"ref,omitempty"`
	BuildSigner   string `json:"build_signer,omitempty"`
	RunInvocation string `json:"run_invocation,omitempty"`
	// KeyHint is the bundle's public-key hint (key-pair bundles).
	KeyHint string `json:"key_hint,omitempty"`
	// TlogEntries is how many transparency-log entries were verified.
	TlogEntries int `json:"tlog_entries"`
	// Timestamps are the verified signing times (Rekor integrated time, RFC 3161).
	Timestamps []time.Time `json:"timestamps,omitempty"`
}

// Verifier verifies bundles against trusted material. It is safe for concurrent use, and
// meant to be shared: it checks a Fulcio certificate's chain and SCTs once for all the bundles
// that carry it (see chainCache).
type Verifier struct {
	trusted root.TrustedMaterial
	// keyless is trusted with each Fulcio CA remembering its chains.
	keyless root.TrustedMaterial
	scts    *sctCache
}

// NewVerifier returns a verifier. trusted holds the Fulcio CAs, Rekor logs, CT logs and
// TSAs (see LoadTrustedRoot, PublicGoodTrustedRoot); it may be nil when only key-pair
// bundles without transparency-log entries are verified.
func NewVerifier(trusted root.TrustedMaterial) *Verifier {
	return &Verifier{trusted: trusted, keyless: withChainCache(trusted), scts: &sctCache{verified: map[[sha256.Size]byte]bool{}}}
}

// ParseBundle parses a bundle's JSON and checks it is a signature over a file (a message
// signature, not a DSSE envelope). Errors are verification errors naming the problem.
func ParseBundle(data []byte) (*Bundle, error) {
	b, err := parseBundle(data)
	if err != nil {
		return nil, err
	}
	ms := b.GetMessageSignature()
	if ms == nil {
		return nil, outcome.VerificationErrorf("bundle holds no message signature (a DSSE attestation is not a file signature)")
	}
	if ms.GetMessageDigest() == nil || len(ms.GetMessageDigest().GetDigest()) == 0 {
		return nil, outcome.VerificationErrorf("bundle message signature has no artifact digest")
	}
	if _, err := digestHash(ms.GetMessageDigest().GetAlgorithm()); err != nil {
		return nil, err
	}
	return b, nil
}

// digestHash maps a bundle digest algorithm to a hash constructor and its name.
func digestHash(alg protocommon.HashAlgorithm) (func() hash.Hash, error) {
	switch alg {
	case protocommon.HashAlgorithm_SHA2_256:
		return sha256.New, nil
	case protocommon.HashAlgorithm_SHA2_384:
		return sha512.New384, nil
	case protocommon.HashAlgorithm_SHA2_512:
		return sha512.New, nil
	default:
		return nil, outcome.VerificationErrorf("bundle digest algorithm %s is not supported", alg)
	}
}

func digestName(alg protocommon.HashAlgorithm) string {
	switch alg {
	case protocommon.HashAlgorithm_SHA2_384:
		return "sha384"
	case protocommon.HashAlgorithm_SHA2_512:
		return "sha512"
	default:
		return "sha256"
	}
}

// Verify checks that bundleJSON is a valid signature of artifact by the signer the policy
// names: the artifact digest, the signature, the certificate chain to a trusted Fulcio CA
// (and its SCT when the trusted material lists CT logs), the Rekor entry and the signer's
// identity, or the public key. The artifact is read once. Failures are verification
// errors (exit 10) with a message saying what did not match; a bad policy is a usage error.
func (v *Verifier) Verify(ctx context.Context, bundleJSON []byte, artifact io.Reader, policy Policy) (*Result, error) {
	cp, err := compilePolicy(policy)
	if err != nil {
		return nil, err
	}
	b, err := ParseBundle(bundleJSON)
	if err != nil {
		return nil, err
	}
	h, err := NewDigestHash(BundleDigestAlgorithm(b))
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(h, ctxio.Reader(ctx, artifact)); err != nil {
		return nil, fmt.Errorf("verify: read artifact: %w", err)
	}
	return v.verifyParsed(cp, b, h.Sum(nil))
}

// VerifyDigest is Verify for an artifact whose digest the caller computed already (a checksum
// pass that read the file once): digest is the artifact's hash with the algorithm the bundle
// signs (BundleDigestAlgorithm). Nothing is read again.
func (v *Verifier) VerifyDigest(ctx context.Context, b *Bundle, digest []byte, policy Policy) (*Result, error) {
	cp, err := compilePolicy(policy)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return v.verifyParsed(cp, b, digest)
}

// BundleDigestAlgorithm names the hash of the artifact a parsed bundle signs: "sha256",
// "sha384" or "sha512".
func BundleDigestAlgorithm(b *Bundle) string {
	return digestName(b.GetMessageSignature().GetMessageDigest().GetAlgorithm())
}

// NewDigestHash returns a hash for a digest algorithm name of BundleDigestAlgorithm.
func NewDigestHash(name string) (hash.Hash, error) {
	switch name {
	case "sha256":
		return sha256.New(), nil
	case "sha384":
		return sha512.New384(), nil
	case "sha512":
		return sha512.New(), nil
	default:
		return nil, outcome.VerificationErrorf("digest algorithm %q is not supported", name)
	}
}

// verifyParsed checks a parsed bundle against the artifact's digest with a compiled policy.
func (v *Verifier) verifyParsed(cp *compiledPolicy, b *Bundle, digest []byte) (*Result, error) {
	md := b.GetMessageSignature().GetMessageDigest()
	name := digestName(md.GetAlgorithm())
	if !bytes.Equal(digest, md.GetDigest()) {
		return nil, outcome.VerificationErrorf("artifact digest does not match the bundle: the bundle signs %s:%s, the artifact is %s:%s",
			name, hex.EncodeToString(md.GetDigest()), name, hex.EncodeToString(digest))
	}

	res := &Result{Digest: name + ":" + hex.EncodeToString(digest)}
	return v.verifyBundle(cp, b, verify.WithArtifactDigest(name, digest), res)
}

// verifyBundle checks a parsed bundle's signature, certificate or key, transparency-log entries
// and signer identity, with artifact saying what it must sign, and fills res.
func (v *Verifier) verifyBundle(cp *compiledPolicy, b *Bundle, artifact verify.ArtifactPolicyOption, res *Result) (*Result, error) {
	vc, err := b.VerificationContent()
	if err != nil {
		return nil, outcome.VerificationErrorf("bundle verification material: %v", err)
	}
	// sigstore-go parses and verifies the Rekor entries itself; counting them needs no parse.
	tlogs := b.GetVerificationMaterial().GetTlogEntries()
	cert := vc.Certificate()

	var trusted root.TrustedMaterial
	var vopts []verify.VerifierOption
	var popts []verify.PolicyOption
	if cp.key != nil {
		if cert != nil {
			return nil, outcome.VerificationErrorf("bundle is signed keyless with a certificate for %q, but a public key was expected", summarySAN(cert))
		}
		res.KeyHint = b.VerificationMaterial.GetPublicKey().GetHint()
		key := root.NewExpiringKey(cp.keyVerifier, time.Time{}, time.Time{})
		keyMaterial := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return key, nil })
		trusted = keyMaterial
		vopts = append(vopts, verify.WithNoObserverTimestamps())
		if len(tlogs) > 0 && v.trusted != nil {
			trusted = root.TrustedMaterialCollection{keyMaterial, v.trusted}
			vopts = append(vopts, verify.WithTransparencyLog(1))
			res.TlogEntries = len(tlogs)
		}
		popts = append(popts, verify.WithKey())
	} else {
		if cert == nil {
			hint := b.VerificationMaterial.GetPublicKey().GetHint()
			return nil, outcome.VerificationErrorf("bundle is signed with a key (hint %q), but a keyless identity was expected", hint)
		}
		if v.trusted == nil {
			return nil, outcome.UsageErrorf("verify: keyless bundles need trusted material (a trusted_root.json or the public Sigstore root)")
		}
		if len(tlogs) == 0 {
			return nil, outcome.VerificationErrorf("bundle has no transparency-log (Rekor) entry")
		}
		// The SCTs are checked below, once per certificate (sctCache), instead of by
		// verify.WithSignedCertificateTimestamps for every bundle.
		trusted = v.keyless
		vopts = append(vopts, verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1))
		popts = append(popts, verify.WithCertificateIdentity(cp.certID))
		res.TlogEntries = len(tlogs)
	}
	sev, err := verify.NewVerifier(trusted, vopts...)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	vr, err := sev.Verify(b, verify.NewPolicy(artifact, popts...))
	if err != nil {
		return nil, cp.explain(err, cert, res.KeyHint)
	}
	if cert != nil && len(v.trusted.CTLogs()) > 0 {
		if err := v.checkSCTs(cert, vr.VerifiedTimestamps); err != nil {
			return nil, cp.explain(err, cert, res.KeyHint)
		}
	}
	if s := vr.Signature.Certificate; s != nil {
		// sigstore-go has checked the identity already; this restates it in our words.
		if err := cp.checkIdentity(*s); err != nil {
			return nil, err
		}
		res.Identity, res.Issuer = s.SubjectAlternativeName, s.Issuer
		res.Repository, res.Ref = s.SourceRepositoryURI, s.SourceRepositoryRef
		res.BuildSigner, res.RunInvocation = s.BuildSignerURI, s.RunInvocationURI
	}
	for _, ts := range vr.VerifiedTimestamps {
		res.Timestamps = append(res.Timestamps, ts.Timestamp)
	}
	return res, nil
}

// checkSCTs verifies the SCTs of a verified certificate against the trusted CT logs, as
// sigstore-go's verifier does: over the chains built at the last verified signing time.
func (v *Verifier) checkSCTs(cert *x509.Certificate, times []verify.TimestampVerificationResult) error {
	var chains [][]*x509.Certificate
	for _, ts := range times {
		var err error
		if chains, err = verify.VerifyLeafCertificate(ts.Timestamp, cert, v.keyless); err != nil {
			return fmt.Errorf("failed to verify leaf certificate: %w", err)
		}
	}
	return v.scts.check(chains, v.trusted)
}

// explain turns a sigstore-go failure into a verification error saying what failed.
func (cp *compiledPolicy) explain(err error, cert *x509.Certificate, hint string) error {
	var noID *verify.ErrNoMatchingCertificateIdentity
	if errors.As(err, &noID) && cert != nil {
		if s, serr := certificate.SummarizeCertificate(cert); serr == nil {
			if e := cp.checkIdentity(s); e != nil {
				return e
			}
		}
		return outcome.VerificationErrorf("certificate identity does not match the policy: %v", err)
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "failed to verify log inclusion"):
		return outcome.VerificationErrorf("transparency-log (Rekor) entry does not verify against the trusted root: %v", err)
	case strings.Contains(msg, "failed to verify timestamps"):
		return outcome.VerificationErrorf("no trusted signing time (Rekor integrated time or RFC 3161 timestamp): %v", err)
	case strings.Contains(msg, "failed to verify leaf certificate"):
		return outcome.VerificationErrorf("certificate does not chain to a trusted Fulcio CA at the signing time: %v", err)
	case strings.Contains(msg, "signed certificate timestamp"):
		return outcome.VerificationErrorf("certificate transparency (SCT) check failed: %v", err)
	case cp.key != nil && strings.Contains(msg, "signature"):
		return outcome.VerificationErrorf("signature does not verify with the given public key (bundle key hint %q, given key hint %q)", hint, cp.keyHint)
	case strings.Contains(msg, "signature"):
		return outcome.VerificationErrorf("signature does not verify with the bundle's certificate: %v", err)
	default:
		return outcome.VerificationErrorf("bundle does not verify: %v", err)
	}
}

// summarySAN returns the SAN of a certificate for messages.
func summarySAN(cert *x509.Certificate) string {
	s, err := certificate.SummarizeCertificate(cert)
	if err != nil {
		return "(unreadable certificate)"
	}
	return s.SubjectAlternativeName
}
