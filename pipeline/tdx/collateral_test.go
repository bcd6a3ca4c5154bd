package tdx_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/tdx"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

// recordedAt is a time at which the recorded collateral of testdata/collateral is current.
var recordedAt = time.Date(2023, time.July, 1, 1, 0, 0, 0, time.UTC)

const collateralDir = tdx.CollateralDir("testdata/collateral")

// intelPlatform is the platform of the recorded collateral (FMSPC 50806f000000, Intel's TD QE)
// with the given PCESVN: ≥ 11 is UpToDate in its TCB info, 5…10 OutOfDate.
func intelPlatform(t *testing.T, pceSVN int) tdxsim.Platform {
	t.Helper()
	p := tdxsim.Platform{FMSPC: [6]byte{0x50, 0x80, 0x6f}, CPUSVN: [16]byte{5, 5, 2, 2, 3, 1, 0, 3}, PCESVN: pceSVN, QESVN: 4}
	signer, err := hex.DecodeString("dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5")
	if err != nil {
		t.Fatal(err)
	}
	copy(p.QEMRSigner[:], signer)
	return p
}

// simQuote is a quote of the simulator certifying platform p, whose TDX module SVNs are the
// recorded TCB info's.
func simQuote(t *testing.T, p tdxsim.Platform) (*tdx.Quote, *tdxsim.Authority) {
	t.Helper()
	auth, err := tdxsim.NewPlatformAuthority([]byte("tcb test"), p)
	if err != nil {
		t.Fatal(err)
	}
	body := tdxsim.NewBody(tdx.Measurements{}, [64]byte{1})
	body.TEETCBSVN = [16]byte{3, 0, 5}
	raw, err := auth.SignQuote(body)
	if err != nil {
		t.Fatal(err)
	}
	q, err := tdx.ParseQuote(raw)
	if err != nil {
		t.Fatal(err)
	}
	return q, auth
}

// bothRoots trusts the simulator's root (the quote) and Intel's (the recorded collateral).
func bothRoots(t *testing.T, auth *tdxsim.Authority) tdx.TCBOptions {
	t.Helper()
	pool, err := tdx.RootPoolFromPEM(append(auth.RootPEM(), tdx.IntelRootPEM()...))
	if err != nil {
		t.Fatal(err)
	}
	return tdx.TCBOptions{TrustedRoots: pool, Collateral: collateralDir, Now: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), CollateralTime: recordedAt}
}

func TestEvaluateTCBRealQuoteRealCollateral(t *testing.T) {
	raw, err := os.ReadFile("testdata/intel-spr-e4-quote.dat")
	if err != nil {
		t.Fatal(err)
	}
	q, err := tdx.ParseQuote(raw)
	if err != nil {
		t.Fatal(err)
	}
	// Its PCK chain, the collateral's signatures and CRLs, the quote's and the QE report's
	// signatures all verify; then its TEE TCB SVN is below every level of the recorded TCB info
	// (go-tdx-guest's own tests zero the levels' SVNs to get past this): no supported level.
	_, err = q.EvaluateTCB(context.Background(), tdx.TCBOptions{Collateral: collateralDir, CheckRevocations: true, Now: recordedAt})
	if err == nil || outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), "failed TCB status check: no matching TCB level found") {
		t.Fatalf("real quote: %v, want its TCB level unsupported by the recorded TCB info", err)
	}
	// The same collateral after its nextUpdate is refused, not evaluated.
	_, err = q.EvaluateTCB(context.Background(), tdx.TCBOptions{Collateral: collateralDir, Now: recordedAt, CollateralTime: recordedAt.AddDate(0, 2, 0)})
	if err == nil || outcome.Code(err) != outcome.VerificationFailed {
		t.Errorf("expired collateral: %v, want a verification error", err)
	}
}

func TestEvaluateTCBOutOfDate(t *testing.T) {
	ctx := context.Background()
	q, auth := simQuote(t, intelPlatform(t, 7))
	r, err := q.EvaluateTCB(ctx, bothRoots(t, auth))
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "OutOfDate" || r.TCBDate != "2018-01-04T00:00:00Z" || !slices.Contains(r.AdvisoryIDs, "INTEL-SA-00106") {
		t.Errorf("PCESVN 7: %+v, want OutOfDate with the level's advisories", r)
	}
	q, auth = simQuote(t, intelPlatform(t, 11))
	if r, err := q.EvaluateTCB(ctx, bothRoots(t, auth)); err != nil || r.Status != "UpToDate" {
		t.Errorf("PCESVN 11: %+v, %v, want UpToDate", r, err)
	}
	// Below every level: no status, an error.
	q, auth = simQuote(t, intelPlatform(t, 4))
	if _, err := q.EvaluateTCB(ctx, bothRoots(t, auth)); err == nil || outcome.Code(err) != outcome.VerificationFailed {
		t.Errorf("PCESVN 4: %v, want a verification error", err)
	}
}

func TestEvaluateTCBRefusals(t *testing.T) {
	ctx := context.Background()
	// An OutOfDate platform whose QE is not Intel's: the status path still checks the QE identity.
	p := intelPlatform(t, 7)
	p.QEMRSigner[0] ^= 0xff
	q, auth := simQuote(t, p)
	if _, err := q.EvaluateTCB(ctx, bothRoots(t, auth)); err == nil || !strings.Contains(err.Error(), "MRSIGNER") {
		t.Errorf("foreign QE: %v, want an MRSIGNER mismatch", err)
	}
	// Another platform (FMSPC) has no TCB info in the directory.
	other := intelPlatform(t, 11)
	other.FMSPC[5] = 1
	q, auth = simQuote(t, other)
	if _, err := q.EvaluateTCB(ctx, bothRoots(t, auth)); err == nil || !strings.Contains(err.Error(), "tcbinfo-50806f000001.json") {
		t.Errorf("unknown FMSPC: %v, want the missing file named", err)
	}
	// Collateral whose status was edited no longer carries Intel's signature.
	dir := t.TempDir()
	entries, _ := os.ReadDir(string(collateralDir))
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(string(collateralDir), e.Name()))
		if e.Name() == "tcbinfo-50806f000000.json" {
			b = bytes.Replace(b, []byte(`"tcbStatus":"OutOfDate"`), []byte(`"tcbStatus":"UpToDate"`), 1)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	q, auth = simQuote(t, intelPlatform(t, 7))
	opts := bothRoots(t, auth)
	opts.Collateral = tdx.CollateralDir(dir)
	if _, err := q.EvaluateTCB(ctx, opts); err == nil || !strings.Contains(err.Error(), "tcbInfo response verification failed") {
		t.Errorf("edited TCB info: %v, want a signature failure", err)
	}
	// Collateral not rooted in a trusted root.
	q, auth = simQuote(t, intelPlatform(t, 11))
	opts = bothRoots(t, auth)
	opts.TrustedRoots = auth.RootPool()
	if _, err := q.EvaluateTCB(ctx, opts); err == nil || outcome.Code(err) != outcome.VerificationFailed {
		t.Errorf("collateral from an untrusted root: %v", err)
	}
}

func TestCollateralDir(t *testing.T) {
	if err := tdx.CheckCollateralDir(string(collateralDir)); err != nil {
		t.Fatal(err)
	}
	if err := tdx.CheckCollateralDir(t.TempDir()); err == nil || outcome.Code(err) != outcome.Usage {
		t.Errorf("empty directory: %v", err)
	}
	for _, u := range []string{"https://example.invalid/other", "https://x/tdx/certification/v4/tcb?fmspc=../../etc", "https://x/sgx/certification/v4/pckcrl?ca=../x"} {
		if _, _, err := collateralDir.Get(u); err == nil {
			t.Errorf("Get(%q) served something", u)
		}
	}
}
