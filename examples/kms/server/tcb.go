package server

import (
	"fmt"
	"slices"

	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/tdx"
)

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
