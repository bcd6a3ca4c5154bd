package tdxsim

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/google/go-tdx-guest/abi"
	"github.com/google/go-tdx-guest/pcs"
	"github.com/google/go-tdx-guest/validate"
	"github.com/google/go-tdx-guest/verify"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/tdx"
)

func newAuthority(t testing.TB, seed string) *Authority {
	t.Helper()
	a, err := NewAuthority([]byte(seed))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func sampleBody() Body {
	var m tdx.Measurements
	for i := range m.MRTD {
		m.MRTD[i] = byte(i)
		for r := range m.RTMR {
			m.RTMR[r][i] = byte(0x40*r + i)
		}
	}
	var rd [64]byte
	copy(rd[:], "nonce-and-binding")
	return NewBody(m, rd)
}

func TestNewAuthorityIsDeterministic(t *testing.T) {
	a, b := newAuthority(t, "seed-1"), newAuthority(t, "seed-1")
	if !bytes.Equal(a.RootPEM(), b.RootPEM()) {
		t.Errorf("same seed, different root certificates")
	}
	qa, err := a.SignQuote(sampleBody())
	if err != nil {
		t.Fatal(err)
	}
	qb, err := b.SignQuote(sampleBody())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(qa, qb) {
		t.Errorf("same seed and body, different quotes")
	}
	c := newAuthority(t, "seed-2")
	if bytes.Equal(a.RootPEM(), c.RootPEM()) {
		t.Errorf("different seeds, same root certificate")
	}
	if _, err := NewAuthority(nil); err == nil {
		t.Errorf("empty seed accepted")
	}
	if !strings.HasPrefix(string(a.RootPEM()), "-----BEGIN CERTIFICATE-----\n") {
		t.Errorf("RootPEM is not PEM")
	}
}

// TestCertificatesCarryWhatTheVerifierReads checks the chain against go-tdx-guest's own
// readers: the subject names, and the SGX extension parsed by pcs.PckCertificateExtensions.
func TestCertificatesCarryWhatTheVerifierReads(t *testing.T) {
	a := newAuthority(t, DefaultSeed)
	if a.Root().Subject.CommonName != "Intel SGX Root CA" || a.PCKCertificate().Subject.CommonName != "Intel SGX PCK Certificate" ||
		a.PCKCertificate().Issuer.CommonName != "Intel SGX PCK Platform CA" {
		t.Errorf("subject names: root %q, pck %q issued by %q", a.Root().Subject, a.PCKCertificate().Subject, a.PCKCertificate().Issuer)
	}
	for _, org := range [][]string{a.Root().Subject.Organization, a.PCKCertificate().Subject.Organization} {
		if len(org) != 1 || !strings.Contains(org[0], "NOT Intel") {
			t.Errorf("organisation %q does not say it is not Intel", org)
		}
	}
	ext, err := pcs.PckCertificateExtensions(a.PCKCertificate())
	if err != nil {
		t.Fatalf("go-tdx-guest cannot read the PCK extensions: %v", err)
	}
	if ext.FMSPC != "00806f050000" || ext.PCEID != "0000" || ext.TCB.PCESvn != uint16(DefaultPlatform().PCESVN) || len(ext.PPID) != 32 ||
		!bytes.Equal(ext.TCB.CPUSvn, ext.TCB.CPUSvnComponents) {
		t.Errorf("PCK extensions: %+v", ext)
	}
	if err := a.PCKCertificate().CheckSignatureFrom(a.platformCA); err != nil {
		t.Errorf("PCK not signed by the platform CA: %v", err)
	}
}

func TestSignedQuoteRoundTrip(t *testing.T) {
	a := newAuthority(t, DefaultSeed)
	body := sampleBody()
	raw, err := a.SignQuote(body)
	if err != nil {
		t.Fatal(err)
	}
	q, err := tdx.ParseQuote(raw)
	if err != nil {
		t.Fatal(err)
	}
	if q.Measurements() != body.Measurements || q.ReportData != body.ReportData || q.MRSeam != body.MRSeam ||
		q.TEETCBSVN != body.TEETCBSVN || q.TDAttributes != body.TDAttributes || q.XFAM != body.XFAM || q.Debug() {
		t.Errorf("parsed quote differs from the body: %+v", q.Summary())
	}
	if q.Version != 4 || int(q.QESVN) != DefaultPlatform().QESVN || int(q.PCESVN) != DefaultPlatform().PCESVN {
		t.Errorf("header: %+v", q.Summary())
	}
	if err := tdx.VerifyQuote(raw, tdx.VerifyOptions{TrustedRoots: a.RootPool()}); err != nil {
		t.Fatalf("simulator quote does not verify against its root: %v", err)
	}
	pool, err := tdx.RootPoolFromPEM(a.RootPEM())
	if err != nil {
		t.Fatal(err)
	}
	if err := tdx.VerifyQuote(raw, tdx.VerifyOptions{TrustedRoots: pool}); err != nil {
		t.Fatalf("simulator quote does not verify against its PEM root: %v", err)
	}
	// go-tdx-guest's validate package accepts it with the expected values and rejects a wrong MRTD.
	opts := &validate.Options{TdQuoteBodyOptions: validate.TdQuoteBodyOptions{
		MrTd:       body.Measurements.MRTD[:],
		Rtmrs:      [][]byte{body.Measurements.RTMR[0][:], body.Measurements.RTMR[1][:], body.Measurements.RTMR[2][:], body.Measurements.RTMR[3][:]},
		ReportData: body.ReportData[:],
	}}
	if err := validate.TdxQuote(q.Proto(), opts); err != nil {
		t.Errorf("validate.TdxQuote: %v", err)
	}
	opts.TdQuoteBodyOptions.MrTd = make([]byte, 48)
	if err := validate.TdxQuote(q.Proto(), opts); err == nil {
		t.Errorf("validate.TdxQuote accepted a wrong MRTD")
	}
}

// TestQuoteIsGoTDXGuestLayout checks the quote against go-tdx-guest alone: its parser and
// serialiser reproduce the bytes exactly, and its verifier accepts it with the authority's root.
func TestQuoteIsGoTDXGuestLayout(t *testing.T) {
	a := newAuthority(t, DefaultSeed)
	raw, err := a.SignQuote(sampleBody())
	if err != nil {
		t.Fatal(err)
	}
	p, err := abi.QuoteToProto(raw)
	if err != nil {
		t.Fatal(err)
	}
	back, err := abi.QuoteToAbiBytes(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, raw) {
		t.Errorf("go-tdx-guest does not reproduce the simulator's bytes")
	}
	if err := verify.RawTdxQuote(raw, &verify.Options{TrustedRoots: a.RootPool(), GetCollateral: false, CheckRevocations: false}); err != nil {
		t.Errorf("verify.RawTdxQuote: %v", err)
	}
}

func TestQuoteRejectedByOtherRoots(t *testing.T) {
	a, b := newAuthority(t, DefaultSeed), newAuthority(t, "another platform")
	raw, err := b.SignQuote(sampleBody())
	if err != nil {
		t.Fatal(err)
	}
	if err := tdx.VerifyQuote(raw, tdx.VerifyOptions{TrustedRoots: b.RootPool()}); err != nil {
		t.Fatalf("own root: %v", err)
	}
	for name, opts := range map[string]tdx.VerifyOptions{
		"another authority's root": {TrustedRoots: a.RootPool()},
		"Intel's root (default)":   {},
	} {
		err := tdx.VerifyQuote(raw, opts)
		if err == nil || !strings.Contains(err.Error(), "unknown authority") || outcome.Code(err) != outcome.VerificationFailed {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestQuoteDetectsEveryByteChange flips one bit in every byte of the header, TD report,
// signature, attestation key, QE report, QE report signature and QE auth data.
func TestQuoteDetectsEveryByteChange(t *testing.T) {
	a := newAuthority(t, DefaultSeed)
	raw, err := a.SignQuote(sampleBody())
	if err != nil {
		t.Fatal(err)
	}
	opts := tdx.VerifyOptions{TrustedRoots: a.RootPool()}
	signedData := tdx.SignedRegionSize + 4
	auth := signedData + tdx.SignatureSize + tdx.AttestationKeySize + 6 + tdx.QEReportSize + tdx.SignatureSize
	end := auth + 2 + int(binary.LittleEndian.Uint16(raw[auth:]))
	if testing.Short() {
		end = tdx.SignedRegionSize
	}
	for i := range end {
		if i >= tdx.SignedRegionSize && i < signedData {
			continue // the signed-data size field, a parse error covered in package tdx
		}
		raw[i] ^= 0x80
		if err := tdx.VerifyQuote(raw, opts); err == nil {
			t.Errorf("quote verified with byte 0x%x changed", i)
		}
		raw[i] ^= 0x80
	}
	if err := tdx.VerifyQuote(raw, opts); err != nil {
		t.Fatalf("restored quote: %v", err)
	}
}

func TestDebugTDAttribute(t *testing.T) {
	a := newAuthority(t, DefaultSeed)
	body := sampleBody()
	body.TDAttributes[0] |= 1
	raw, err := a.SignQuote(body)
	if err != nil {
		t.Fatal(err)
	}
	q, err := tdx.ParseQuote(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !q.Debug() {
		t.Errorf("debug attribute lost")
	}
}
