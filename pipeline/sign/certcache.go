package sign

import (
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"sync"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

// maxCachedCertificates bounds each certificate cache; past it, certificates are verified
// without being remembered.
const maxCachedCertificates = 1024

// The checks of a keyless bundle that depend only on its Fulcio certificate — the chain to a
// trusted CA and the certificate's embedded SCTs — give the same verdict for every bundle
// that carries the certificate, and every bundle a release signs in one run carries the same
// one. A Verifier makes them once per certificate and remembers the successes: the chain per
// leaf certificate and CA (reused only at a time when every certificate of the chain and the
// CA are valid), the SCT verdict per leaf certificate and issuers. Failures are never
// remembered, and the transparency-log entry, the signature and the identity are checked for
// every bundle.

// chainCache is a Fulcio CA whose successful chain verifications are remembered per leaf.
type chainCache struct {
	ca     *root.FulcioCertificateAuthority
	mu     sync.Mutex
	chains map[[sha256.Size]byte][][]*x509.Certificate
}

// Verify is ca.Verify, answered from the cache when the certificate's chains were built before
// and are valid at observerTimestamp.
func (c *chainCache) Verify(cert *x509.Certificate, observerTimestamp time.Time) ([][]*x509.Certificate, error) {
	key := sha256.Sum256(cert.Raw)
	if chains := c.lookup(key, cert, observerTimestamp); chains != nil {
		return chains, nil
	}
	chains, err := c.ca.Verify(cert, observerTimestamp)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.chains) < maxCachedCertificates {
		c.chains[key] = chains
	}
	c.mu.Unlock()
	return chains, nil
}

// lookup returns the remembered chains of cert that are valid at t, with cert as their leaf,
// or nil. A certificate with critical extensions x509 does not handle is never answered from
// the cache (x509 rejects it).
func (c *chainCache) lookup(key [sha256.Size]byte, cert *x509.Certificate, t time.Time) [][]*x509.Certificate {
	if len(cert.UnhandledCriticalExtensions) > 0 {
		return nil
	}
	if !c.ca.ValidityPeriodStart.IsZero() && t.Before(c.ca.ValidityPeriodStart) ||
		!c.ca.ValidityPeriodEnd.IsZero() && t.After(c.ca.ValidityPeriodEnd) {
		return nil
	}
	c.mu.Lock()
	cached := c.chains[key]
	c.mu.Unlock()
	var out [][]*x509.Certificate
	for _, chain := range cached {
		if validAt(chain, t) {
			out = append(out, append([]*x509.Certificate{cert}, chain[1:]...))
		}
	}
	return out
}

// validAt reports whether every certificate of chain is valid at t (x509's rule).
func validAt(chain []*x509.Certificate, t time.Time) bool {
	for _, c := range chain {
		if t.Before(c.NotBefore) || t.After(c.NotAfter) {
			return false
		}
	}
	return len(chain) > 0
}

// cachedMaterial is trusted material whose Fulcio CAs remember their chains.
type cachedMaterial struct {
	root.TrustedMaterial
	cas []root.CertificateAuthority
}

// FulcioCertificateAuthorities returns the CAs, each with its chain cache.
func (m *cachedMaterial) FulcioCertificateAuthorities() []root.CertificateAuthority { return m.cas }

// withChainCache wraps the Fulcio CAs of trusted in chain caches (CAs of other types are kept
// as they are).
func withChainCache(trusted root.TrustedMaterial) root.TrustedMaterial {
	if trusted == nil {
		return nil
	}
	m := &cachedMaterial{TrustedMaterial: trusted}
	for _, ca := range trusted.FulcioCertificateAuthorities() {
		if fca, ok := ca.(*root.FulcioCertificateAuthority); ok {
			ca = &chainCache{ca: fca, chains: map[[sha256.Size]byte][][]*x509.Certificate{}}
		}
		m.cas = append(m.cas, ca)
	}
	return m
}

// sctCache remembers the leaf certificates (with the issuers of their chains) whose SCTs
// verified.
type sctCache struct {
	mu       sync.Mutex
	verified map[[sha256.Size]byte]bool
}

// check verifies the SCTs embedded in the leaf of chains against the trusted CT logs (at least
// one log, as sigstore-go's WithSignedCertificateTimestamps(1)), once per leaf and issuers.
func (c *sctCache) check(chains [][]*x509.Certificate, trusted root.TrustedMaterial) error {
	h := sha256.New()
	for i, chain := range chains {
		if len(chain) == 0 {
			return fmt.Errorf("failed to verify signed certificate timestamp: empty certificate chain")
		}
		if i == 0 {
			h.Write(chain[0].Raw)
		}
		if len(chain) > 1 {
			sum := sha256.Sum256(chain[1].Raw)
			h.Write(sum[:])
		}
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	c.mu.Lock()
	done := c.verified[key]
	c.mu.Unlock()
	if done {
		return nil
	}
	if err := verify.VerifySignedCertificateTimestamp(chains, 1, trusted); err != nil {
		return fmt.Errorf("failed to verify signed certificate timestamp: %w", err)
	}
	c.mu.Lock()
	if len(c.verified) < maxCachedCertificates {
		c.verified[key] = true
	}
	c.mu.Unlock()
	return nil
}
