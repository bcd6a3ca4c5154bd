package tdx

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// verifyAt is a time inside the validity of both sample quotes' PCK certificates, so the
// tests do not depend on the clock.
func verifyAt() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) }

func TestIntelRootIsIntelSGXRootCA(t *testing.T) {
	block, _ := pem.Decode(IntelRootPEM())
	if block == nil {
		t.Fatal("no PEM block")
	}
	sum := sha256.Sum256(block.Bytes)
	// Intel's published SHA-256 fingerprint of the "Intel SGX Root CA" certificate.
	const want = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"
	if got := hex.EncodeToString(sum[:]); got != want {
		t.Errorf("fingerprint %s, want %s", got, want)
	}
}

func TestVerifySampleQuotes(t *testing.T) {
	for _, file := range []string{intelQuoteFile, gceQuoteFile} {
		t.Run(file, func(t *testing.T) {
			raw := readFile(t, file)
			if err := VerifyQuote(raw, VerifyOptions{Now: verifyAt()}); err != nil {
				t.Fatalf("default (Intel) root: %v", err)
			}
			pool, err := IntelRootPool()
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyQuote(raw, VerifyOptions{TrustedRoots: pool, Now: verifyAt()}); err != nil {
				t.Fatalf("explicit Intel root: %v", err)
			}
		})
	}
}

func TestVerifyFailures(t *testing.T) {
	raw := readFile(t, intelQuoteFile)
	other := otherRootPool(t)
	tests := []struct {
		name string
		raw  []byte
		opts VerifyOptions
		want string
	}{
		{"untrusted root", raw, VerifyOptions{TrustedRoots: other, Now: verifyAt()}, "certificate signed by unknown authority"},
		{"before the PCK certificate", raw, VerifyOptions{Now: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)}, "expired or is not yet valid"},
		{"after the PCK certificate", raw, VerifyOptions{Now: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}, "expired or is not yet valid"},
		{"malformed", raw[:500], VerifyOptions{Now: verifyAt()}, "parse TDX quote"},
		{"report data changed", patched(raw, func(b []byte) { b[HeaderSize+offReportData] ^= 1 }), VerifyOptions{Now: verifyAt()}, "unable to verify message digest"},
		{"attestation key replaced", patched(raw, func(b []byte) { b[offSignedData+SignatureSize+5] ^= 1 }), VerifyOptions{Now: verifyAt()}, "attestation key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyQuote(tc.raw, tc.opts)
			if err == nil {
				t.Fatal("verified")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if outcome.Code(err) != outcome.VerificationFailed {
				t.Errorf("exit code %d, want 10", outcome.Code(err))
			}
		})
	}
}

// TestVerifyDetectsEveryByteChange flips one bit in every byte of the header, the TD report,
// the signature, the attestation key, the QE report, its signature and the QE auth data: each
// change must fail VerifyQuote (by parse or by signature).
func TestVerifyDetectsEveryByteChange(t *testing.T) {
	raw := readFile(t, intelQuoteFile)
	auth := offSignedData + SignatureSize + AttestationKeySize + 6 + QEReportSize + SignatureSize
	end := auth + 2 + int(binary.LittleEndian.Uint16(raw[auth:]))
	if testing.Short() {
		end = SignedRegionSize
	}
	b := append([]byte(nil), raw...)
	for i := range end {
		if i >= SignedRegionSize && i < offSignedData {
			continue // the signed-data size field: covered by TestParseQuoteMalformed
		}
		b[i] ^= 0x01
		if err := VerifyQuote(b, VerifyOptions{Now: verifyAt()}); err == nil {
			t.Errorf("quote verified with byte 0x%x changed", i)
		}
		b[i] ^= 0x01
	}
	if err := VerifyQuote(b, VerifyOptions{Now: verifyAt()}); err != nil {
		t.Fatalf("restored quote: %v", err)
	}
}

func otherRootPool(t *testing.T) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Intel SGX Root CA", Organization: []string{"someone else"}},
		NotBefore:             time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2090, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := RootPoolFromPEM(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

func TestRootPoolFromPEM(t *testing.T) {
	if _, err := RootPoolFromPEM(IntelRootPEM()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data string
		want string
	}{
		{"empty", "", "no PEM CERTIFICATE block"},
		{"not PEM", "hello", "no PEM CERTIFICATE block"},
		{"a key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})), `PEM block 1 is "PRIVATE KEY"`},
		{"garbage certificate", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}})), "certificate 1:"},
		{"second block bad", string(IntelRootPEM()) + "\n" + string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}})), "certificate 2:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := RootPoolFromPEM([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if outcome.Code(err) != outcome.Usage {
				t.Errorf("exit code %d, want 2", outcome.Code(err))
			}
		})
	}
}
