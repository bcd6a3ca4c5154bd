package policy

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/internal/lazyre"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// The TDX TCB statuses a quote verification can report (Intel's names).
const (
	TCBUpToDate                          = "UpToDate"
	TCBSWHardeningNeeded                 = "SWHardeningNeeded"
	TCBConfigurationNeeded               = "ConfigurationNeeded"
	TCBConfigurationAndSWHardeningNeeded = "ConfigurationAndSWHardeningNeeded"
	TCBOutOfDate                         = "OutOfDate"
	TCBOutOfDateConfigurationNeeded      = "OutOfDateConfigurationNeeded"
	// TCBRevoked is known but never allowed in a policy.
	TCBRevoked = "Revoked"
)

// TCBStatuses lists every known TCB status, Revoked included, from best to worst.
func TCBStatuses() []string {
	return []string{TCBUpToDate, TCBSWHardeningNeeded, TCBConfigurationNeeded, TCBConfigurationAndSWHardeningNeeded,
		TCBOutOfDate, TCBOutOfDateConfigurationNeeded, TCBRevoked}
}

// ErrPolicyViolation is wrapped by every Accepts refusal: the KMS answers it with
// 403 PolicyViolation (SPEC §8).
var ErrPolicyViolation = errors.New("PolicyViolation")

var hex96 = lazyre.New(`^[0-9a-f]{96}$`)

// ValidateOptions tunes Validate.
type ValidateOptions struct {
	// RequireReady refuses a policy_not_ready policy and placeholder register values (what a
	// stable or hotfix release, and the auditor, demand).
	RequireReady bool
}

// Validate checks a policy's rules: schema version, a valid kms_version and profile, status
// absent or policy_not_ready, a non-empty allowed_tcb_status of known statuses without Revoked,
// every register value 96 lower-case hex characters and listed once, non-empty allowlists when
// the policy is ready, valid node_versions, and conformance to the JSON Schema. With
// RequireReady, a not-ready policy and placeholder values are refused too. Errors are
// verification errors naming the field.
func Validate(p *Policy, opts ValidateOptions) error {
	if p == nil {
		return outcome.VerificationErrorf("attestation policy: missing")
	}
	if err := validateFields(p, opts); err != nil {
		return outcome.VerificationErrorf("attestation policy (%s, kms %s): %w", p.Profile, p.KMSVersion, err)
	}
	// The published schema is the contract other implementations read: a policy that passes
	// the rules above must also pass it.
	data, err := p.Marshal()
	if err != nil {
		return err
	}
	if err := validateSchema(data); err != nil {
		return outcome.VerificationErrorf("attestation policy (%s, kms %s): %w", p.Profile, p.KMSVersion, err)
	}
	return nil
}

func validateFields(p *Policy, opts ValidateOptions) error {
	if p.SchemaVersion != SchemaVersion {
		return fmt.Errorf("schema_version: %q is not supported (want %q)", p.SchemaVersion, SchemaVersion)
	}
	if _, err := release.ParseVersion(p.KMSVersion); err != nil {
		return fmt.Errorf("kms_version: %w", err)
	}
	if _, err := release.ParseProfile(string(p.Profile)); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	switch {
	case p.Status != "" && p.Status != StatusNotReady:
		return fmt.Errorf("status: %q: must be %q or absent", p.Status, StatusNotReady)
	case opts.RequireReady && p.NotReady():
		return fmt.Errorf("status: %s: a stable or hotfix release needs a final policy with verified measurements", StatusNotReady)
	}
	if err := validateTCB(p.AllowedTCBStatus); err != nil {
		return err
	}
	for _, m := range p.measurements() {
		vals := *m.values
		if len(vals) == 0 && !p.NotReady() {
			return fmt.Errorf("%s: empty; a ready policy (no \"status\": %q) must allow at least one value", m.field, StatusNotReady)
		}
		for i, v := range vals {
			if !hex96().MatchString(v) {
				return fmt.Errorf("%s[%d]: %q is not 96 lower-case hex characters (a SHA-384 register value)", m.field, i, v)
			}
			if j := slices.Index(vals[:i], v); j >= 0 {
				return fmt.Errorf("%s[%d]: duplicate of %s[%d]", m.field, i, m.field, j)
			}
			if opts.RequireReady {
				if err := placeholder(m.register, v); err != nil {
					return fmt.Errorf("%s[%d]: %w", m.field, i, err)
				}
			}
		}
	}
	for i, v := range p.NodeVersions {
		if _, err := release.ParseVersion(v); err != nil {
			return fmt.Errorf("node_versions[%d]: %w", i, err)
		}
		if j := slices.Index(p.NodeVersions[:i], v); j >= 0 {
			return fmt.Errorf("node_versions[%d]: duplicate of node_versions[%d]", i, j)
		}
	}
	return nil
}

// validateTCB checks an allowed_tcb_status list.
func validateTCB(list []string) error {
	if len(list) == 0 {
		return errors.New("allowed_tcb_status: empty (list at least one accepted TCB status, e.g. UpToDate)")
	}
	for i, s := range list {
		switch {
		case s == TCBRevoked:
			return fmt.Errorf("allowed_tcb_status[%d]: %s is never allowed", i, TCBRevoked)
		case !slices.Contains(TCBStatuses(), s):
			return fmt.Errorf("allowed_tcb_status[%d]: unknown TCB status %q (known: %s)", i, s, strings.Join(TCBStatuses()[:6], ", "))
		case slices.Contains(list[:i], s):
			return fmt.Errorf("allowed_tcb_status[%d]: duplicate %q", i, s)
		}
	}
	return nil
}

// placeholder refuses a register value that cannot be a real measurement: one character
// repeated (all zeros, all f, …). The exception is an all-zero RTMR3: RTMR3 is the runtime
// register nothing extends on a GCP TDX node, so a real quote reports zeros there (see the GCE
// quote in go-tdx-guest's testdata).
func placeholder(register, v string) error {
	if strings.Count(v, v[:1]) != len(v) {
		return nil
	}
	if register == "rtmr3" && v[0] == '0' {
		return nil
	}
	return fmt.Errorf("placeholder value %s…: %q repeated is not a real measurement", v[:8], v[:1])
}

// ValidateSet checks the policies of one KMS release together: each valid and filed under its
// own profile, all of the same kms_version, and the profiles isolated — no two ready policies
// may both accept one node, i.e. share a value in every one of allowed_mrtd and allowed_rtmr0..3
// (a debug node must never get a key from a locked-read-only KMS). Every isolation breach is
// reported, naming the profiles and the shared values.
func ValidateSet(ps map[release.Profile]*Policy) error {
	if len(ps) == 0 {
		return outcome.VerificationErrorf("attestation policies: none given")
	}
	profiles := slices.Sorted(maps.Keys(ps))
	slices.SortFunc(profiles, func(a, b release.Profile) int {
		return slices.Index(release.Profiles(), a) - slices.Index(release.Profiles(), b)
	})
	for _, prof := range profiles {
		p := ps[prof]
		if p == nil {
			return outcome.VerificationErrorf("attestation policies: %s: missing", prof.PolicyFile())
		}
		if p.Profile != prof {
			return outcome.VerificationErrorf("attestation policies: %s: profile: %q, want %q", prof.PolicyFile(), p.Profile, prof)
		}
		if err := Validate(p, ValidateOptions{}); err != nil {
			return fmt.Errorf("attestation policies: %s: %w", prof.PolicyFile(), err)
		}
	}
	first := ps[profiles[0]]
	for _, prof := range profiles[1:] {
		if v := ps[prof].KMSVersion; v != first.KMSVersion {
			return outcome.VerificationErrorf("attestation policies: kms_version: the %s policy is for %s but the %s policy is for %s (one KMS release, one version)",
				first.Profile, first.KMSVersion, prof, v)
		}
	}
	var breaches []error
	for i, a := range profiles {
		for _, b := range profiles[i+1:] {
			if err := isolated(ps[a], ps[b]); err != nil {
				breaches = append(breaches, err)
			}
		}
	}
	return errors.Join(breaches...)
}

// isolated fails when a node measured with some value of every register would be accepted by
// both ready policies.
func isolated(a, b *Policy) error {
	if a.NotReady() || b.NotReady() {
		return nil // a not-ready policy accepts anything; the class rules decide if that may ship
	}
	var shared []string
	am, bm := a.measurements(), b.measurements()
	for i := range am {
		var common []string
		for _, v := range *am[i].values {
			if slices.Contains(*bm[i].values, v) {
				common = append(common, v)
			}
		}
		if len(common) == 0 {
			return nil
		}
		shared = append(shared, fmt.Sprintf("%s %s", am[i].register, strings.Join(common, ",")))
	}
	return outcome.VerificationErrorf("profile isolation: the %s and %s policies accept the same node measurements (%s): a %s node would get keys from a %s KMS",
		a.Profile, b.Profile, strings.Join(shared, "; "), a.Profile, b.Profile)
}

// Accepts decides whether a node with measurement r and TCB status tcbStatus may get a key, in
// the KMS's order (SPEC §8): TCB status, then MRTD, RTMR0 … RTMR3. It returns nil or a
// verification error wrapping ErrPolicyViolation that names the first mismatching field
// (tcb_status, mrtd, rtmr0 …). A policy_not_ready policy accepts every measurement and status
// (the KMS warns instead).
func (p *Policy) Accepts(r measure.Record, tcbStatus string) error {
	if p.NotReady() {
		return nil
	}
	if tcbStatus == TCBRevoked || !slices.Contains(p.AllowedTCBStatus, tcbStatus) {
		return outcome.VerificationErrorf("%w: tcb_status: %q is not in allowed_tcb_status %v of the %s policy (kms %s)",
			ErrPolicyViolation, tcbStatus, p.AllowedTCBStatus, p.Profile, p.KMSVersion)
	}
	values := r.Fields()
	for i, m := range p.measurements() {
		v := strings.ToLower(values[i][1])
		if !slices.Contains(*m.values, v) {
			return outcome.VerificationErrorf("%w: %s: %q is not in %s of the %s policy (kms %s)",
				ErrPolicyViolation, m.register, values[i][1], m.field, p.Profile, p.KMSVersion)
		}
	}
	return nil
}
