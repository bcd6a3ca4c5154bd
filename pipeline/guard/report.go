package guard

import (
	"errors"
	"fmt"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// Status is the result of one check.
type Status string

// The statuses of a check. WARN is reported but does not block; SKIP says why a check did not
// apply.
const (
	Pass Status = "PASS"
	Fail Status = "FAIL"
	Warn Status = "WARN"
	Skip Status = "SKIP"
)

// Check is one named check of a guard and its result.
type Check struct {
	// Name identifies the check, e.g. "counterpart release", "catalog pair (debug)".
	Name string `json:"name"`
	// Status is PASS, FAIL, WARN or SKIP.
	Status Status `json:"status"`
	// Message says what was found.
	Message string `json:"message"`
}

// String formats the check as its log line: "[PASS] name: message".
func (c Check) String() string { return "[" + string(c.Status) + "] " + c.Name + ": " + c.Message }

// Log writes the check as one SPEC §9 line: PASS and FAIL as such, WARN as [WARN], SKIP as [INFO].
func (c Check) Log(l *outcome.Logger) {
	switch c.Status {
	case Pass:
		l.Passf("%s: %s", c.Name, c.Message)
	case Fail:
		l.Failf("%s: %s", c.Name, c.Message)
	case Warn:
		l.Warnf("%s: %s", c.Name, c.Message)
	default:
		l.Infof("%s: skipped: %s", c.Name, c.Message)
	}
}

// Report is the list of checks a guard ran, in order.
type Report struct {
	Checks []Check `json:"checks"`
}

func (r *Report) add(name string, s Status, format string, args ...any) {
	r.Checks = append(r.Checks, Check{Name: name, Status: s, Message: fmt.Sprintf(format, args...)})
}

// Log writes every check on l.
func (r Report) Log(l *outcome.Logger) {
	for _, c := range r.Checks {
		c.Log(l)
	}
}

// Failed returns the failed checks.
func (r Report) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Status == Fail {
			out = append(out, c)
		}
	}
	return out
}

// Passed reports whether no check failed.
func (r Report) Passed() bool { return len(r.Failed()) == 0 }

// verdict is the guard's error: nil when every check passed, else a verification error (exit 10)
// naming the failed checks, joined with extra (e.g. a missing-asset error, exit 11).
func (r Report) verdict(guard string, extra ...error) error {
	failed := r.Failed()
	errs := nonNil(extra)
	if len(failed) > 0 {
		var parts []string
		for _, c := range failed {
			parts = append(parts, c.Name+": "+c.Message)
		}
		errs = append([]error{outcome.VerificationErrorf("%s guard: %d check(s) failed: %s", guard, len(failed), strings.Join(parts, "; "))}, errs...)
	}
	return errors.Join(errs...)
}

// nonNil drops nil errors.
func nonNil(errs []error) []error {
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	return out
}
