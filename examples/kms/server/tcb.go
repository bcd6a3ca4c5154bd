package server

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/tdx"
)

// TCBEvaluator gives the TCB status of a node quote whose signatures verified; an error
// means the status could not be established (the quote is refused as invalid).
type TCBEvaluator interface {
	Evaluate(ctx context.Context, q *tdx.Quote, now time.Time) (string, error)
}

// CollateralTCB evaluates TCB status from Intel's collateral (TCB info, QE identity, and CRLs
// when CheckRevocations is set) with go-tdx-guest: from a local collateral directory offline
// (tdx.CollateralDir) or from Intel PCS online (a nil Collateral).
type CollateralTCB struct {
	Options tdx.TCBOptions
}

// Evaluate implements TCBEvaluator.
func (c CollateralTCB) Evaluate(ctx context.Context, q *tdx.Quote, now time.Time) (string, error) {
	opts := c.Options
	if opts.Now.IsZero() {
		opts.Now = now
	}
	r, err := q.EvaluateTCB(ctx, opts)
	if err != nil {
		return "", err
	}
	return r.Status, nil
}

// TCBLevel is one level of a TCB info (Intel's tcbLevels, TDX part): a quote whose TEE TCB SVN
// is component-wise at least TEETCBSVN has Status, unless an earlier level matched.
type TCBLevel struct {
	TEETCBSVN [16]byte
	Status    string
}

// TCBInfo evaluates the TCB status of a verified quote offline, the way Intel's TCB info does:
// levels are tried in order (highest first) and the first one the quote's TEE TCB SVN reaches
// gives the status; a quote below every level is Revoked (unsupported).
type TCBInfo struct {
	Levels []TCBLevel
}

// SimulatorTCBInfo is the TCB info of the TDX simulator's platform (tdxsim.NewBody): TEE TCB SVN
// 03.01.02 and above is UpToDate, anything lower OutOfDate.
func SimulatorTCBInfo() TCBInfo {
	return TCBInfo{Levels: []TCBLevel{
		{TEETCBSVN: [16]byte{3, 1, 2}, Status: policy.TCBUpToDate},
		{TEETCBSVN: [16]byte{}, Status: policy.TCBOutOfDate},
	}}
}

// Validate checks that every level has a known status.
func (t TCBInfo) Validate() error {
	if len(t.Levels) == 0 {
		return fmt.Errorf("TCB info: no levels")
	}
	for i, l := range t.Levels {
		if !slices.Contains(policy.TCBStatuses(), l.Status) {
			return fmt.Errorf("TCB info: levels[%d]: unknown status %q", i, l.Status)
		}
	}
	return nil
}

// Evaluate implements TCBEvaluator with the fixed levels.
func (t TCBInfo) Evaluate(_ context.Context, q *tdx.Quote, _ time.Time) (string, error) {
	return t.Status(q), nil
}

// Status returns the TCB status of q.
func (t TCBInfo) Status(q *tdx.Quote) string {
	for _, l := range t.Levels {
		if reaches(q.TEETCBSVN, l.TEETCBSVN) {
			return l.Status
		}
	}
	return policy.TCBRevoked
}

func reaches(svn, level [16]byte) bool {
	for i := range svn {
		if svn[i] < level[i] {
			return false
		}
	}
	return true
}
