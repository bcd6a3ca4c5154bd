package e2e

import (
	"strings"

	"github.com/calimero-network/mero-release/pipeline/kmsclient"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// Status is the result of a check or a case.
type Status string

// The statuses. A skipped check could not run (e.g. no earlier release to take a stale policy
// from) and does not block; every failure blocks.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip"
)

// The check IDs of the report, in the order they run.
const (
	CheckNodeSuite   = "node-suite"
	CheckCrossVer    = "A"
	CheckIsolation   = "B"
	CheckStalePolicy = "C"
	CheckConsistency = "D"
)

// Report is the result of the E2E suite: the node suite and the four guardrails.
type Report struct {
	KMSRelease  string  `json:"kms_release"`
	NodeRelease string  `json:"node_release"`
	Passed      bool    `json:"passed"`
	Checks      []Check `json:"checks"`
}

// Check is the node suite or one guardrail with its cases.
type Check struct {
	// ID is CheckNodeSuite or the guardrail letter.
	ID string `json:"id"`
	// Name is the human name ("cross-version", "profile isolation", …).
	Name    string `json:"name"`
	Status  Status `json:"status"`
	Details string `json:"details,omitempty"`
	Cases   []Case `json:"cases,omitempty"`
}

// Case is one KMS/node combination a check ran, or one comparison.
type Case struct {
	// Name names the pair and profile, e.g. "kms 1.2.0 ↔ node image 1.1.0 (locked-read-only)".
	Name      string          `json:"name"`
	KMS       string          `json:"kms,omitempty"`
	NodeImage string          `json:"node_image,omitempty"`
	Profile   release.Profile `json:"profile,omitempty"`
	Status    Status          `json:"status"`
	// Step is the step that failed (deploy, boot verification, KMS attestation, key release,
	// cleanup, expectation) when Status is fail.
	Step    string `json:"step,omitempty"`
	Details string `json:"details,omitempty"`
	// HTTPStatus and ErrorCode are the KMS's answer to the key request, when it refused.
	HTTPStatus int    `json:"http_status,omitempty"`
	ErrorCode  string `json:"error_code,omitempty"`
	// Observed are the node's registers seen in its quote.
	Observed *kmsclient.Measurements `json:"observed,omitempty"`
}

// Failed returns the failed checks.
func (r *Report) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Status == Fail {
			out = append(out, c)
		}
	}
	return out
}

// Err is nil when the report passed, else a verification error (exit 10) naming every failed
// check and its first failed case.
func (r *Report) Err() error {
	failed := r.Failed()
	if len(failed) == 0 {
		return nil
	}
	var parts []string
	for _, c := range failed {
		msg := label(c)
		for _, cs := range c.Cases {
			if cs.Status == Fail {
				msg += ": " + cs.Name + ": " + cs.Details
				break
			}
		}
		if c.Details != "" && !strings.Contains(msg, ": ") {
			msg += ": " + c.Details
		}
		parts = append(parts, msg)
	}
	return outcome.VerificationErrorf("E2E %s ↔ %s: %d blocking failure(s): %s", r.KMSRelease, r.NodeRelease, len(failed), strings.Join(parts, "; "))
}

// label names a check in log lines: "node suite" or "guardrail A (cross-version)".
func label(c Check) string {
	if c.ID == CheckNodeSuite {
		return "node suite"
	}
	return "guardrail " + c.ID + " (" + c.Name + ")"
}

// finish sets the check's status from its cases (any failure fails it; no case and no failure
// keeps a preset skip) and logs it.
func finish(log *outcome.Logger, c *Check) {
	if c.Status == "" {
		c.Status = Pass
		for _, cs := range c.Cases {
			if cs.Status == Fail {
				c.Status = Fail
			}
		}
		if len(c.Cases) == 0 {
			c.Status = Skip
		}
	}
	switch c.Status {
	case Pass:
		log.Passf("%s: %d case(s) passed", label(*c), len(c.Cases))
	case Fail:
		n := 0
		for _, cs := range c.Cases {
			if cs.Status == Fail {
				n++
			}
		}
		if n == 0 {
			log.Failf("%s: %s", label(*c), c.Details)
		} else {
			log.Failf("%s: %d of %d case(s) failed", label(*c), n, len(c.Cases))
		}
	case Skip:
		log.Warnf("%s: skipped: %s", label(*c), c.Details)
	}
}

// logCase logs one case as a [PASS] or [FAIL] line.
func logCase(log *outcome.Logger, c Check, cs Case) {
	switch cs.Status {
	case Pass:
		if cs.Details != "" {
			log.Passf("%s: %s: %s", label(c), cs.Name, cs.Details)
		} else {
			log.Passf("%s: %s", label(c), cs.Name)
		}
	case Fail:
		log.Failf("%s: %s: %s: %s", label(c), cs.Name, cs.Step, cs.Details)
	case Skip:
		log.Warnf("%s: %s: skipped: %s", label(c), cs.Name, cs.Details)
	}
}
