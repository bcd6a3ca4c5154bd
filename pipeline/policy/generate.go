package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// DefaultTCBStatus is the allowed_tcb_status of a generated policy when none is given.
func DefaultTCBStatus() []string { return []string{TCBUpToDate} }

// Generate builds the policy of one profile for a KMS release from the published-mrtds.json of
// node-image releases: each allowlist is the union of the profile's records across nodes, and
// node_versions names the releases that had a record for the profile. With no record for the
// profile the policy is policy_not_ready with empty allowlists. tcb defaults to
// DefaultTCBStatus(). A bad version, profile or TCB status is a usage error; a node file that is
// invalid or not a mero-tee release is a verification error.
func Generate(kmsVersion string, profile release.Profile, nodes []*measure.Published, tcb []string) (*Policy, error) {
	if _, err := release.ParseVersion(kmsVersion); err != nil {
		return nil, outcome.UsageErrorf("generate attestation policy: kms version: %w", err)
	}
	if _, err := release.ParseProfile(string(profile)); err != nil {
		return nil, outcome.UsageErrorf("generate attestation policy: %w", err)
	}
	if len(tcb) == 0 {
		tcb = DefaultTCBStatus()
	}
	if err := validateTCB(slices.Compact(slices.Sorted(slices.Values(tcb)))); err != nil {
		return nil, outcome.UsageErrorf("generate attestation policy: %w", err)
	}
	p := &Policy{SchemaVersion: SchemaVersion, KMSVersion: kmsVersion, Profile: profile, AllowedTCBStatus: slices.Clone(tcb)}
	for i, n := range nodes {
		if n == nil {
			return nil, outcome.VerificationErrorf("generate attestation policy: node measurements #%d: missing", i+1)
		}
		if n.Family != release.Node {
			return nil, outcome.VerificationErrorf("generate attestation policy: published-mrtds.json of %s %s: family: the allowlists are node measurements, want %s", n.Family, n.Version, release.Node)
		}
		if err := n.Validate(); err != nil {
			return nil, fmt.Errorf("generate attestation policy: published-mrtds.json of %s %s: %w", n.Family, n.Version, err)
		}
		rec, ok := n.Profiles[profile]
		if !ok {
			continue
		}
		fields := rec.Fields()
		for j, m := range p.measurements() {
			*m.values = append(*m.values, fields[j][1])
		}
		p.NodeVersions = append(p.NodeVersions, n.Version)
	}
	if len(p.AllowedMRTD) == 0 {
		p.Status = StatusNotReady
	}
	p = p.normalized()
	if err := Validate(p, ValidateOptions{}); err != nil {
		return nil, fmt.Errorf("generate attestation policy: %w", err)
	}
	return p, nil
}

// Promote turns a release-candidate policy into a final one (SPEC §5 promotion path): the
// allowlists are regenerated from the given verified node measurements (or, when nodes is nil,
// the policy's own lists are kept), the policy_not_ready status is removed, and the result must
// pass Validate with RequireReady: empty allowlists, placeholder values (one character
// repeated, e.g. all zeros; an all-zero RTMR3 is real on GCP) and non-hex values are refused.
// p is not modified.
func Promote(p *Policy, nodes []*measure.Published) (*Policy, error) {
	if p == nil {
		return nil, outcome.VerificationErrorf("promote attestation policy: missing")
	}
	if err := Validate(p, ValidateOptions{}); err != nil {
		return nil, fmt.Errorf("promote attestation policy: %w", err)
	}
	var out *Policy
	if nodes != nil {
		g, err := Generate(p.KMSVersion, p.Profile, nodes, p.AllowedTCBStatus)
		if err != nil {
			return nil, fmt.Errorf("promote attestation policy: %w", err)
		}
		if g.NotReady() {
			var versions []string
			for _, n := range nodes {
				versions = append(versions, n.Version)
			}
			return nil, outcome.VerificationErrorf("promote attestation policy (%s, kms %s): none of the node releases [%s] has measurements for profile %s",
				p.Profile, p.KMSVersion, strings.Join(versions, ", "), p.Profile)
		}
		out = g
	} else {
		out = p.normalized()
	}
	out.Status = ""
	for _, m := range out.measurements() {
		if len(*m.values) == 0 {
			return nil, outcome.VerificationErrorf("promote attestation policy (%s, kms %s): %s: empty; a final policy needs verified measurements (give the node releases' published-mrtds.json)",
				p.Profile, p.KMSVersion, m.field)
		}
	}
	if err := Validate(out, ValidateOptions{RequireReady: true}); err != nil {
		return nil, fmt.Errorf("promote attestation policy: %w", err)
	}
	return out, nil
}
