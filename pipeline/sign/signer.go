package sign

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// The public-good Sigstore instance, used by keyless signing unless other URLs are given.
const (
	DefaultFulcioURL = "https://fulcio.sigstore.dev"
	DefaultRekorURL  = "https://rekor.sigstore.dev"
)

// Signer produces Sigstore bundles (protobuf bundle v0.3, JSON) for files.
type Signer interface {
	// Sign signs content and returns the bundle JSON.
	Sign(ctx context.Context, content []byte) ([]byte, error)
	// SignFile signs the file at path and returns the bundle JSON.
	SignFile(ctx context.Context, path string) ([]byte, error)
}

// readArtifact reads a file to sign; a missing file is a missing-asset error.
func readArtifact(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, outcome.MissingAssetErrorf("sign: %s: file not found", path)
	case err != nil:
		return nil, fmt.Errorf("sign: %w", err)
	}
	return b, nil
}

// marshalBundle renders a bundle as JSON the way cosign and sigstore-go write it.
func marshalBundle(b *protobundle.Bundle) ([]byte, error) {
	out, err := protojson.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("marshal bundle: %w", err)
	}
	return out, nil
}

// checkURL validates a service URL flag.
func checkURL(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return outcome.UsageErrorf("%s URL %q is not an http(s) URL", what, raw)
	}
	return nil
}

// KeySignerOptions configures a KeySigner.
type KeySignerOptions struct {
	// RekorURL, when set, also records every signature in that Rekor log (a hashedrekord
	// entry), so that the bundle carries a transparency-log entry.
	RekorURL string
	// Timeout bounds each Rekor request (default 30s).
	Timeout time.Duration
}

// KeySigner signs with a long-lived key (a cosign key pair): for laptops and air-gapped
// runs. Bundles carry the public-key hint instead of a certificate.
type KeySigner struct {
	keypair *keyKeypair
	pub     crypto.PublicKey
	opts    KeySignerOptions
}

var _ Signer = (*KeySigner)(nil)

// NewKeySigner returns a signer for the private key (see LoadPrivateKey).
func NewKeySigner(priv crypto.Signer, opts KeySignerOptions) (*KeySigner, error) {
	if priv == nil {
		return nil, outcome.UsageErrorf("key signer: no private key")
	}
	kp, err := newKeyKeypair(priv)
	if err != nil {
		return nil, err
	}
	if opts.RekorURL != "" {
		if err := checkURL("rekor", opts.RekorURL); err != nil {
			return nil, err
		}
	}
	return &KeySigner{keypair: kp, pub: priv.Public(), opts: opts}, nil
}

// PublicKey returns the public key bundles are verified with.
func (s *KeySigner) PublicKey() crypto.PublicKey { return s.pub }

// Sign signs content with the key (and records it in Rekor when configured).
func (s *KeySigner) Sign(ctx context.Context, content []byte) ([]byte, error) {
	return s.bundle(ctx, &sgsign.PlainData{Data: content})
}

// bundle signs content (plain data or a DSSE payload) into a bundle.
func (s *KeySigner) bundle(ctx context.Context, content sgsign.Content) ([]byte, error) {
	opts := sgsign.BundleOptions{Context: ctx}
	if s.opts.RekorURL != "" {
		opts.TransparencyLogs = []sgsign.Transparency{sgsign.NewRekor(&sgsign.RekorOptions{BaseURL: s.opts.RekorURL, Timeout: s.opts.Timeout})}
	}
	b, err := sgsign.Bundle(content, s.keypair, opts)
	if err != nil {
		return nil, fmt.Errorf("key sign: %w", err)
	}
	return marshalBundle(b)
}

// SignFile signs the file at path.
func (s *KeySigner) SignFile(ctx context.Context, path string) ([]byte, error) {
	content, err := readArtifact(path)
	if err != nil {
		return nil, err
	}
	return s.Sign(ctx, content)
}

// KeylessOptions configures a KeylessSigner.
type KeylessOptions struct {
	// FulcioURL is the certificate authority (default DefaultFulcioURL).
	FulcioURL string
	// RekorURL is the transparency log (default DefaultRekorURL).
	RekorURL string
	// TSAURL, when set, is an RFC 3161 timestamp authority (full URL with path) whose
	// timestamp is added to every bundle.
	TSAURL string
	// Token provides the OIDC identity token (required).
	Token TokenSource
	// Transport is the HTTP transport for Fulcio and the TSA (nil: the default).
	Transport http.RoundTripper
	// Timeout bounds each request (default 30s).
	Timeout time.Duration
	// TrustedRoot, when set, is used to verify every bundle right after it is made.
	TrustedRoot root.TrustedMaterial
}

// KeylessSigner signs with an ephemeral key certified by Fulcio for the OIDC identity and
// records every signature in Rekor. One key and one certificate serve all the files signed
// while the certificate is valid, so a release costs one token and one Fulcio request.
type KeylessSigner struct {
	keypair *sgsign.EphemeralKeypair
	certs   *cachingCertificateProvider
	rekor   *sgsign.Rekor
	tsa     *sgsign.TimestampAuthority
	trusted root.TrustedMaterial
}

var _ Signer = (*KeylessSigner)(nil)

// NewKeylessSigner checks the options and creates the ephemeral key.
func NewKeylessSigner(opts KeylessOptions) (*KeylessSigner, error) {
	if opts.Token == nil {
		return nil, outcome.UsageErrorf("keyless signer: no OIDC token source")
	}
	if opts.FulcioURL == "" {
		opts.FulcioURL = DefaultFulcioURL
	}
	if opts.RekorURL == "" {
		opts.RekorURL = DefaultRekorURL
	}
	for what, u := range map[string]string{"fulcio": opts.FulcioURL, "rekor": opts.RekorURL} {
		if err := checkURL(what, u); err != nil {
			return nil, err
		}
	}
	kp, err := sgsign.NewEphemeralKeypair(nil)
	if err != nil {
		return nil, fmt.Errorf("keyless signer: %w", err)
	}
	s := &KeylessSigner{
		keypair: kp,
		certs: &cachingCertificateProvider{
			fulcio: sgsign.NewFulcio(&sgsign.FulcioOptions{BaseURL: opts.FulcioURL, Timeout: opts.Timeout, Transport: opts.Transport}),
			token:  opts.Token,
		},
		rekor:   sgsign.NewRekor(&sgsign.RekorOptions{BaseURL: opts.RekorURL, Timeout: opts.Timeout}),
		trusted: opts.TrustedRoot,
	}
	if opts.TSAURL != "" {
		if err := checkURL("timestamp authority", opts.TSAURL); err != nil {
			return nil, err
		}
		s.tsa = sgsign.NewTimestampAuthority(&sgsign.TimestampAuthorityOptions{URL: opts.TSAURL, Timeout: opts.Timeout, Transport: opts.Transport})
	}
	return s, nil
}

// Sign obtains (or reuses) the certificate, signs content and records it in Rekor.
func (s *KeylessSigner) Sign(ctx context.Context, content []byte) ([]byte, error) {
	return s.bundle(ctx, &sgsign.PlainData{Data: content})
}

// bundle signs content (plain data or a DSSE payload) into a bundle.
func (s *KeylessSigner) bundle(ctx context.Context, content sgsign.Content) ([]byte, error) {
	opts := sgsign.BundleOptions{
		Context:             ctx,
		CertificateProvider: s.certs,
		TransparencyLogs:    []sgsign.Transparency{s.rekor},
		TrustedRoot:         s.trusted,
	}
	if s.tsa != nil {
		opts.TimestampAuthorities = []*sgsign.TimestampAuthority{s.tsa}
	}
	b, err := sgsign.Bundle(content, s.keypair, opts)
	if err != nil {
		return nil, fmt.Errorf("keyless sign: %w", err)
	}
	return marshalBundle(b)
}

// SignFile signs the file at path.
func (s *KeylessSigner) SignFile(ctx context.Context, path string) ([]byte, error) {
	content, err := readArtifact(path)
	if err != nil {
		return nil, err
	}
	return s.Sign(ctx, content)
}

// cachingCertificateProvider asks Fulcio once and reuses the certificate for the same key
// until a minute before it expires.
type cachingCertificateProvider struct {
	fulcio *sgsign.Fulcio
	token  TokenSource

	mu       sync.Mutex
	der      []byte
	notAfter time.Time
}

// GetCertificate implements sigstore-go's CertificateProvider.
func (c *cachingCertificateProvider) GetCertificate(ctx context.Context, kp sgsign.Keypair, _ *sgsign.CertificateProviderOptions) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.der != nil && time.Until(c.notAfter) > time.Minute {
		return c.der, nil
	}
	tok, err := c.token.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("oidc token: %w", err)
	}
	der, err := c.fulcio.GetCertificate(ctx, kp, &sgsign.CertificateProviderOptions{IDToken: tok})
	if err != nil {
		return nil, fmt.Errorf("fulcio: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("fulcio: returned an unparsable certificate: %w", err)
	}
	c.der, c.notAfter = der, cert.NotAfter
	return der, nil
}
