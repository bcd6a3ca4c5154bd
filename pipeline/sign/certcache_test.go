package sign

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
)

// testCA makes a root CA valid over [notBefore, notAfter] and a code-signing leaf it issues,
// valid over [leafFrom, leafTo].
func testCA(t *testing.T, notBefore, notAfter, leafFrom, leafTo time.Time) (*x509.Certificate, *x509.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test fulcio"},
		NotBefore: notBefore, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: leafFrom, NotAfter: leafTo,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		t.Fatal(err)
	}
	return ca, leaf
}

// TestChainCacheAnswersOnlyWhatVerifyWould: a remembered chain is reused only at times when
// the CA's Verify would accept it; outside them, and for certificates x509 would refuse, the
// cache asks the CA again.
func TestChainCacheAnswersOnlyWhatVerifyWould(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	caRoot, leaf := testCA(t, t0.Add(-time.Hour), t0.Add(24*time.Hour), t0, t0.Add(10*time.Minute))
	fca := &root.FulcioCertificateAuthority{Root: caRoot, ValidityPeriodStart: t0.Add(-time.Hour), ValidityPeriodEnd: t0.Add(5 * time.Minute)}
	cache := &chainCache{ca: fca, chains: map[[sha256.Size]byte][][]*x509.Certificate{}}

	chains, err := cache.Verify(leaf, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(cache.chains) != 1 || len(chains) != 1 || len(chains[0]) != 2 {
		t.Fatalf("first verification: %d remembered, chains %v", len(cache.chains), chains)
	}

	// The same certificate, parsed again (as every bundle parses it), within every window:
	// answered from the cache, with the caller's certificate as the leaf.
	again, err := x509.ParseCertificate(leaf.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := cache.lookup(sha256.Sum256(again.Raw), again, t0.Add(2*time.Minute)); len(got) != 1 || got[0][0] != again || got[0][1] != caRoot {
		t.Fatalf("lookup within the windows = %v", got)
	}
	if _, err := cache.Verify(again, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}

	refused := []struct {
		name string
		cert *x509.Certificate
		at   time.Time
	}{
		{"before the leaf is valid", again, t0.Add(-time.Minute)},
		{"after the CA's validity period", again, t0.Add(6 * time.Minute)},
		{"after the leaf expired", again, t0.Add(11 * time.Minute)},
	}
	for _, tt := range refused {
		if got := cache.lookup(sha256.Sum256(tt.cert.Raw), tt.cert, tt.at); got != nil {
			t.Errorf("%s: answered from the cache: %v", tt.name, got)
		}
		if _, err := cache.Verify(tt.cert, tt.at); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}

	// A certificate whose critical extension x509 does not handle is refused by x509, even
	// after its chain was remembered.
	critical, err := x509.ParseCertificate(leaf.Raw)
	if err != nil {
		t.Fatal(err)
	}
	critical.UnhandledCriticalExtensions = []asn1.ObjectIdentifier{{1, 2, 3, 4}}
	if got := cache.lookup(sha256.Sum256(critical.Raw), critical, t0.Add(2*time.Minute)); got != nil {
		t.Fatalf("unhandled critical extension answered from the cache")
	}
	if _, err := cache.Verify(critical, t0.Add(2*time.Minute)); err == nil {
		t.Fatal("unhandled critical extension accepted")
	}

	// Another CA's leaf is not in the cache and does not chain.
	_, stranger := testCA(t, t0.Add(-time.Hour), t0.Add(24*time.Hour), t0, t0.Add(10*time.Minute))
	if _, err := cache.Verify(stranger, t0.Add(time.Minute)); err == nil {
		t.Fatal("a leaf of another CA verified")
	}
	if len(cache.chains) != 1 {
		t.Fatalf("%d certificates remembered, want 1 (failures are not)", len(cache.chains))
	}
}

// TestWithChainCacheWrapsFulcioCAs: the trusted material keeps its logs and wraps each Fulcio CA.
func TestWithChainCacheWrapsFulcioCAs(t *testing.T) {
	t0 := time.Now()
	caRoot, _ := testCA(t, t0.Add(-time.Hour), t0.Add(time.Hour), t0, t0.Add(time.Minute))
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{&root.FulcioCertificateAuthority{Root: caRoot}}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := withChainCache(tr)
	cas := m.FulcioCertificateAuthorities()
	if len(cas) != 1 {
		t.Fatalf("%d CAs", len(cas))
	}
	if c, ok := cas[0].(*chainCache); !ok || c.ca.Root != caRoot {
		t.Fatalf("CA not wrapped: %T", cas[0])
	}
	if withChainCache(nil) != nil {
		t.Fatal("nil material wrapped")
	}
}
