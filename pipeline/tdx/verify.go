package tdx

import (
	"crypto/x509"
	_ "embed" // the Intel SGX Root CA
	"encoding/pem"
	"fmt"
	"time"

	"github.com/google/go-tdx-guest/verify"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// intelRootPEM is Intel's SGX Root CA, the same certificate go-tdx-guest embeds as its default
// root (verify/trusted_root.pem; SHA-256 fingerprint 44a0196b…74d3). A string, so it cannot be
// modified.
//
//go:embed intel_sgx_root_ca.pem
var intelRootPEM string

// IntelRootPEM returns Intel's SGX Root CA certificate in PEM form, the default trust root of
// VerifyQuote.
func IntelRootPEM() []byte { return []byte(intelRootPEM) }

// IntelRootPool returns a certificate pool holding only Intel's SGX Root CA.
func IntelRootPool() (*x509.CertPool, error) {
	return RootPoolFromPEM(IntelRootPEM())
}

// RootPoolFromPEM builds a pool from PEM certificates (a --trusted-root file); it fails when
// the data holds no certificate or a block that is not a valid certificate.
func RootPoolFromPEM(data []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, outcome.UsageErrorf("trusted root: PEM block %d is %q, want CERTIFICATE", n+1, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, outcome.UsageErrorf("trusted root: certificate %d: %v", n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, outcome.UsageErrorf("trusted root: no PEM CERTIFICATE block found")
	}
	return pool, nil
}

// VerifyOptions are the options of VerifyQuote.
type VerifyOptions struct {
	// TrustedRoots are the roots the PCK certificate chain must lead to; nil means Intel's
	// SGX Root CA (IntelRootPEM).
	TrustedRoots *x509.CertPool
	// Now is the time at which certificate validity is checked; zero means the current time.
	Now time.Time
}

// VerifyQuote parses raw and verifies it offline with go-tdx-guest: the PCK certificate chain up
// to a trusted root, the QE report signature by the PCK key, the QE report data binding the
// attestation key, and the attestation key's signature over the header and TD report. No
// collateral is fetched (no network): TCB status is not evaluated here. Failures are
// verification errors (exit 10).
func VerifyQuote(raw []byte, opts VerifyOptions) error {
	q, err := ParseQuote(raw)
	if err != nil {
		return err
	}
	return q.Verify(opts)
}

// Verify verifies the parsed quote's signatures as VerifyQuote does.
func (q *Quote) Verify(opts VerifyOptions) error {
	roots := opts.TrustedRoots
	if roots == nil {
		// Always pass a pool: with a nil pool go-tdx-guest logs a warning on stdout.
		pool, err := IntelRootPool()
		if err != nil {
			return fmt.Errorf("load Intel SGX root: %w", err)
		}
		roots = pool
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	vopts := &verify.Options{
		TrustedRoots:     roots,
		GetCollateral:    false,
		CheckRevocations: false,
		Now:              &verify.TimeSet{PckCertChain: now, TcbInfo: now, QeIdentity: now, PckCrl: now, RootCaCrl: now},
	}
	if err := verifyProto(q, vopts); err != nil {
		return outcome.VerificationErrorf("verify TDX quote: %v", err)
	}
	return nil
}

// verifyProto runs go-tdx-guest's verifier, turning a panic on hostile input into an error.
func verifyProto(q *Quote, opts *verify.Options) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed quote: %v", r)
		}
	}()
	return verify.TdxQuote(q.proto, opts)
}
