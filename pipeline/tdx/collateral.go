package tdx

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-tdx-guest/pcs"
	"github.com/google/go-tdx-guest/verify"
	"github.com/google/go-tdx-guest/verify/trust"

	"github.com/calimero-network/mero-release/pipeline/internal/lazyre"
	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// CollateralDir serves Intel PCS collateral from a local directory, offline: it implements
// go-tdx-guest's trust.HTTPSGetter for the URLs its verifier asks for, mapped to files:
//
//	…/tdx/certification/v4/tcb?fmspc=F                  tcbinfo-F.json       (+ .issuer-chain.pem)
//	…/tdx/certification/v4/qe/identity                  qe-identity.json     (+ .issuer-chain.pem)
//	…/sgx/certification/v4/pckcrl?ca=C&encoding=der     pckcrl-C.der         (+ .issuer-chain.pem)
//	the Intel SGX Root CA CRL                           rootcrl.der
//
// Each *.issuer-chain.pem holds the PEM chain Intel sends in the response's issuer-chain
// header. The files are the PCS responses as recorded (e.g. with curl -D), byte for byte:
// their signatures are verified like fetched ones.
type CollateralDir string

var (
	fmspcRE = lazyre.New(`^[0-9a-fA-F]{12}$`)
	caRE    = lazyre.New(`^(platform|processor)$`)
)

// Get implements trust.HTTPSGetter.
func (d CollateralDir) Get(rawURL string) (map[string][]string, []byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("collateral %s: %w", rawURL, err)
	}
	var file, header string
	switch {
	case strings.HasSuffix(u.Path, "/tdx/certification/v4/tcb"):
		fmspc := u.Query().Get("fmspc")
		if !fmspcRE().MatchString(fmspc) {
			return nil, nil, fmt.Errorf("collateral %s: fmspc %q is not 12 hex characters", rawURL, fmspc)
		}
		file, header = "tcbinfo-"+strings.ToLower(fmspc)+".json", pcs.TcbInfoIssuerChainPhrase
	case strings.HasSuffix(u.Path, "/tdx/certification/v4/qe/identity"):
		file, header = "qe-identity.json", pcs.SgxQeIdentityIssuerChainPhrase
	case strings.HasSuffix(u.Path, "/sgx/certification/v4/pckcrl"):
		ca := u.Query().Get("ca")
		if !caRE().MatchString(ca) {
			return nil, nil, fmt.Errorf("collateral %s: ca %q is not platform or processor", rawURL, ca)
		}
		file, header = "pckcrl-"+ca+".der", pcs.SgxPckCrlIssuerChainPhrase
	case strings.HasSuffix(u.Path, "/IntelSGXRootCA.der"):
		file = "rootcrl.der"
	default:
		return nil, nil, fmt.Errorf("collateral %s: not a PCS collateral URL this directory serves", rawURL)
	}
	body, err := os.ReadFile(filepath.Join(string(d), file))
	if err != nil {
		return nil, nil, fmt.Errorf("collateral directory %s: %w", d, err)
	}
	headers := map[string][]string{}
	if header != "" {
		chainFile := strings.TrimSuffix(strings.TrimSuffix(file, ".json"), ".der") + ".issuer-chain.pem"
		chain, err := os.ReadFile(filepath.Join(string(d), chainFile))
		if err != nil {
			return nil, nil, fmt.Errorf("collateral directory %s: %w", d, err)
		}
		headers[header] = []string{url.QueryEscape(string(chain))}
	}
	return headers, body, nil
}

// CheckCollateralDir checks that dir exists and holds at least a TCB info and a QE identity,
// so that a misconfigured KMS fails at start-up rather than on its first key request.
func CheckCollateralDir(dir string) error {
	if _, err := os.ReadFile(filepath.Join(dir, "qe-identity.json")); err != nil {
		return outcome.UsageErrorf("collateral directory: %v", err)
	}
	m, err := filepath.Glob(filepath.Join(dir, "tcbinfo-*.json"))
	if err != nil || len(m) == 0 {
		return outcome.UsageErrorf("collateral directory %s: no tcbinfo-FMSPC.json", dir)
	}
	return nil
}

// TCBOptions configure EvaluateTCB.
type TCBOptions struct {
	// TrustedRoots are the roots the quote's PCK chain and the collateral's issuer chains must
	// lead to; nil means Intel's SGX Root CA.
	TrustedRoots *x509.CertPool
	// Collateral serves the PCS collateral: a CollateralDir offline; nil fetches it from Intel
	// PCS (online).
	Collateral trust.HTTPSGetter
	// CheckRevocations also fetches and checks the PCK and root CRLs.
	CheckRevocations bool
	// Now is when the PCK chain is checked; zero means the current time.
	Now time.Time
	// CollateralTime is when the collateral must be current (TCB info, QE identity, CRLs); zero
	// means Now. Only evaluating recorded collateral in tests needs another time.
	CollateralTime time.Time
}

// TCBResult is the TCB evaluation of a quote.
type TCBResult struct {
	// Status is the TDX TCB status of the matching TCB level of the TCB info (UpToDate,
	// OutOfDate, SWHardeningNeeded, ConfigurationNeeded, …), or the QE identity's status when
	// the QE is worse than UpToDate and the platform is not.
	Status string
	// TCBDate and AdvisoryIDs are the matching level's.
	TCBDate     string
	AdvisoryIDs []string
	// QEStatus is the quoting enclave's TCB status from the QE identity.
	QEStatus string
}

// statusFailures are the messages go-tdx-guest's verifier ends with when everything but the
// TCB status check passed (verifyTdQuoteBody, verifyQeReport wrap them with %v, not %w).
var statusFailures = []string{
	verify.ErrTdxTcbStatus.Error(), verify.ErrEnclaveTcbStatus.Error(),
	"TDX TCB Status is not", "QE TCB Status is not",
}

// EvaluateTCB verifies q with its collateral and returns its TCB status: go-tdx-guest checks
// the PCK chain, the collateral's signatures and validity, the quote's signatures, the TD
// report against the TCB info (FMSPC, PCE id, TDX module) and the QE report against the QE
// identity, then the matching TCB levels give the status. A quote whose only fault is a TCB
// status other than UpToDate is not an error: the status is returned for the policy to judge.
// Every other failure is a verification error (exit 10).
func (q *Quote) EvaluateTCB(ctx context.Context, opts TCBOptions) (TCBResult, error) {
	roots := opts.TrustedRoots
	if roots == nil {
		pool, err := IntelRootPool()
		if err != nil {
			return TCBResult{}, fmt.Errorf("load Intel SGX root: %w", err)
		}
		roots = pool
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	ct := opts.CollateralTime
	if ct.IsZero() {
		ct = now
	}
	getter := opts.Collateral
	if getter == nil {
		getter = trust.DefaultHTTPSGetter()
	}
	vopts := &verify.Options{
		TrustedRoots:     roots,
		GetCollateral:    true,
		CheckRevocations: opts.CheckRevocations,
		Getter:           getter,
		Now:              &verify.TimeSet{PckCertChain: now, TcbInfo: ct, QeIdentity: ct, PckCrl: ct, RootCaCrl: ct},
	}
	err := verifyContext(ctx, q, vopts)
	if err != nil && !isStatusFailure(err) {
		return TCBResult{}, outcome.VerificationErrorf("verify TDX quote with collateral: %v", err)
	}
	tdxLevel, qeLevel, lerr := levels(q, vopts)
	if lerr != nil {
		return TCBResult{}, outcome.VerificationErrorf("TCB evaluation: %v", errors.Join(err, lerr))
	}
	r := TCBResult{Status: string(tdxLevel.TcbStatus), TCBDate: tdxLevel.TcbDate, AdvisoryIDs: tdxLevel.AdvisoryIDs, QEStatus: string(qeLevel.TcbStatus)}
	if r.Status == string(pcs.TcbComponentStatusUpToDate) && r.QEStatus != r.Status {
		r.Status = r.QEStatus
	}
	if err != nil {
		if r.Status == string(pcs.TcbComponentStatusUpToDate) {
			// The verifier refused a status the levels call UpToDate: not a status question.
			return TCBResult{}, outcome.VerificationErrorf("verify TDX quote with collateral: %v", err)
		}
		if qerr := checkQEIdentity(ctx, q, getter); qerr != nil {
			return TCBResult{}, outcome.VerificationErrorf("verify TDX quote with collateral: %v", qerr)
		}
	}
	return r, nil
}

func isStatusFailure(err error) bool {
	msg := err.Error()
	for _, s := range statusFailures {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// verifyContext runs go-tdx-guest's verifier with collateral, turning a panic on hostile
// input into an error.
func verifyContext(ctx context.Context, q *Quote, opts *verify.Options) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed quote: %v", r)
		}
	}()
	return verify.TdxQuoteContext(ctx, q.proto, opts)
}

// levels reads the matching TCB info and QE identity levels from the collateral the verifier
// obtained and checked.
func levels(q *Quote, opts *verify.Options) (tdxLevel, qeLevel pcs.TcbLevel, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed quote: %v", r)
		}
	}()
	return verify.SupportedTcbLevelsFromCollateral(q.proto, opts)
}

// checkQEIdentity matches the QE report against the QE identity (MISCSELECT, ATTRIBUTES under
// their masks, MRSIGNER, ISVPRODID), as go-tdx-guest does after the TD report's TCB status
// check: when that check refused the status, this one has not run yet. The QE identity's
// signature was verified before (verifyQeIdentity precedes the quote checks).
func checkQEIdentity(ctx context.Context, q *Quote, getter trust.HTTPSGetter) error {
	_, body, err := trust.GetWith(ctx, getter, pcs.QeIdentityURL())
	if err != nil {
		return fmt.Errorf("QE identity: %w", err)
	}
	var qi pcs.QeIdentity
	if err := json.Unmarshal(body, &qi); err != nil {
		return fmt.Errorf("QE identity: %w", err)
	}
	id := qi.EnclaveIdentity
	rep := q.proto.GetSignedData().GetCertificationData().GetQeReportCertificationData().GetQeReport()
	if len(id.Miscselect.Bytes) != 4 || len(id.MiscselectMask.Bytes) != 4 {
		return errors.New("QE identity: miscselect and miscselectMask must be 4 bytes")
	}
	if rep.GetMiscSelect()&binary.LittleEndian.Uint32(id.MiscselectMask.Bytes) != binary.LittleEndian.Uint32(id.Miscselect.Bytes) {
		return errors.New("QE report MISCSELECT does not match the QE identity")
	}
	attrs := rep.GetAttributes()
	if len(attrs) != len(id.AttributesMask.Bytes) || len(attrs) != len(id.Attributes.Bytes) {
		return errors.New("QE report ATTRIBUTES size differs from the QE identity's")
	}
	for i := range attrs {
		if attrs[i]&id.AttributesMask.Bytes[i] != id.Attributes.Bytes[i] {
			return errors.New("QE report ATTRIBUTES do not match the QE identity")
		}
	}
	if !bytes.Equal(rep.GetMrSigner(), id.Mrsigner.Bytes) {
		return fmt.Errorf("QE report MRSIGNER %x is not the QE identity's %x", rep.GetMrSigner(), id.Mrsigner.Bytes)
	}
	if rep.GetIsvProdId() != uint32(id.IsvProdID) {
		return fmt.Errorf("QE report ISVPRODID %d is not the QE identity's %d", rep.GetIsvProdId(), id.IsvProdID)
	}
	return nil
}
