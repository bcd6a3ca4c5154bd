package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

func TestValidate(t *testing.T) {
	ready := func() *Policy { return mustGenerate(t, "1.2.0", release.Debug, node("1.2.0", release.Debug)) }
	if err := Validate(ready(), ValidateOptions{RequireReady: true}); err != nil {
		t.Fatalf("a generated ready policy is invalid: %v", err)
	}
	zeros, fs := strings.Repeat("0", 96), strings.Repeat("f", 96)
	cases := []struct {
		name   string
		edit   func(p *Policy)
		stable bool
		want   string
	}{
		{"schema version", func(p *Policy) { p.SchemaVersion = "" }, false, `schema_version: "" is not supported`},
		{"kms version", func(p *Policy) { p.KMSVersion = "1.2.0-beta" }, false, "kms_version:"},
		{"profile", func(p *Policy) { p.Profile = "" }, false, "profile:"},
		{"status", func(p *Policy) { p.Status = "ready" }, false, `status: "ready": must be "policy_not_ready" or absent`},
		{"not ready refused for stable", func(p *Policy) { p.Status = StatusNotReady }, true, "status: policy_not_ready"},
		{"tcb empty", func(p *Policy) { p.AllowedTCBStatus = nil }, false, "allowed_tcb_status: empty"},
		{"tcb revoked", func(p *Policy) { p.AllowedTCBStatus = []string{TCBRevoked} }, false, "allowed_tcb_status[0]: Revoked is never allowed"},
		{"tcb unknown", func(p *Policy) { p.AllowedTCBStatus = []string{TCBUpToDate, "uptodate"} }, false, `allowed_tcb_status[1]: unknown TCB status "uptodate"`},
		{"tcb duplicate", func(p *Policy) { p.AllowedTCBStatus = []string{TCBUpToDate, TCBUpToDate} }, false, "allowed_tcb_status[1]: duplicate"},
		{"mrtd empty", func(p *Policy) { p.AllowedMRTD = nil }, false, "allowed_mrtd: empty; a ready policy"},
		{"rtmr3 empty", func(p *Policy) { p.AllowedRTMR3 = []string{} }, false, "allowed_rtmr3: empty"},
		{"rtmr2 short", func(p *Policy) { p.AllowedRTMR2 = append(p.AllowedRTMR2, "abc") }, false, `allowed_rtmr2[1]: "abc" is not 96 lower-case hex`},
		{"rtmr0 upper", func(p *Policy) { p.AllowedRTMR0 = []string{strings.ToUpper(reg("u"))} }, false, "allowed_rtmr0[0]"},
		{"rtmr1 duplicate", func(p *Policy) { p.AllowedRTMR1 = append(p.AllowedRTMR1, p.AllowedRTMR1[0]) }, false, "allowed_rtmr1[1]: duplicate of allowed_rtmr1[0]"},
		{"node version", func(p *Policy) { p.NodeVersions = []string{"one"} }, false, "node_versions[0]:"},
		{"node version duplicate", func(p *Policy) { p.NodeVersions = []string{"1.0.0", "1.0.0"} }, false, "node_versions[1]: duplicate"},
		{"placeholder mrtd for stable", func(p *Policy) { p.AllowedMRTD = []string{zeros} }, true, `allowed_mrtd[0]: placeholder value 00000000…`},
		{"placeholder rtmr3 f for stable", func(p *Policy) { p.AllowedRTMR3 = []string{fs} }, true, `allowed_rtmr3[0]: placeholder value ffffffff…`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := ready()
			tc.edit(p)
			err := Validate(p, ValidateOptions{RequireReady: tc.stable})
			wantVerification(t, err, tc.want, "attestation policy (")
		})
	}
	// Placeholders are only refused for final policies; an all-zero RTMR3 is a real value (GCE).
	p := ready()
	p.AllowedMRTD = []string{zeros}
	if err := Validate(p, ValidateOptions{}); err != nil {
		t.Errorf("an rc policy may carry any 96-hex value: %v", err)
	}
	p = ready()
	p.AllowedRTMR3 = []string{zeros}
	if err := Validate(p, ValidateOptions{RequireReady: true}); err != nil {
		t.Errorf("an all-zero RTMR3 is real on GCP TDX: %v", err)
	}
	// A not-ready policy may have empty allowlists.
	if err := Validate(mustGenerate(t, "1.2.0-rc.1", release.Debug), ValidateOptions{}); err != nil {
		t.Error(err)
	}
	wantVerification(t, Validate(nil, ValidateOptions{}), "missing")
}

// set generates the three policies of KMS kms from node releases.
func set(t *testing.T, kms string, nodes ...*measure.Published) map[release.Profile]*Policy {
	t.Helper()
	ps := map[release.Profile]*Policy{}
	for _, prof := range release.Profiles() {
		ps[prof] = mustGenerate(t, kms, prof, nodes...)
	}
	return ps
}

func TestValidateSet(t *testing.T) {
	n := node("1.2.0", release.Profiles()...)
	if err := ValidateSet(set(t, "1.2.0", n)); err != nil {
		t.Fatalf("three isolated policies: %v", err)
	}
	t.Run("empty", func(t *testing.T) { wantVerification(t, ValidateSet(nil), "none given") })
	t.Run("nil policy", func(t *testing.T) {
		ps := set(t, "1.2.0", n)
		ps[release.Debug] = nil
		wantVerification(t, ValidateSet(ps), "attestation-policy-debug.json: missing")
	})
	t.Run("filed under another profile", func(t *testing.T) {
		ps := set(t, "1.2.0", n)
		ps[release.Debug] = ps[release.LockedReadOnly]
		wantVerification(t, ValidateSet(ps), `attestation-policy-debug.json: profile: "locked-read-only", want "debug"`)
	})
	t.Run("invalid member", func(t *testing.T) {
		ps := set(t, "1.2.0", n)
		ps[release.DebugReadOnly].AllowedTCBStatus = nil
		wantVerification(t, ValidateSet(ps), "attestation-policy-debug-read-only.json", "allowed_tcb_status: empty")
	})
	t.Run("versions differ", func(t *testing.T) {
		ps := set(t, "1.2.0", n)
		ps[release.LockedReadOnly] = mustGenerate(t, "1.3.0", release.LockedReadOnly, n)
		wantVerification(t, ValidateSet(ps), "kms_version: the debug policy is for 1.2.0 but the locked-read-only policy is for 1.3.0")
	})
	t.Run("debug measurements in the locked policy", func(t *testing.T) {
		ps := set(t, "1.2.0", n)
		locked := ps[release.LockedReadOnly]
		dbg := n.Profiles[release.Debug]
		locked.AllowedMRTD = append(locked.AllowedMRTD, dbg.MRTD)
		locked.AllowedRTMR0 = append(locked.AllowedRTMR0, dbg.RTMR0)
		locked.AllowedRTMR1 = append(locked.AllowedRTMR1, dbg.RTMR1)
		locked.AllowedRTMR2 = append(locked.AllowedRTMR2, dbg.RTMR2)
		locked.AllowedRTMR3 = append(locked.AllowedRTMR3, dbg.RTMR3)
		err := ValidateSet(ps)
		wantVerification(t, err, "profile isolation: the debug and locked-read-only policies", "mrtd "+dbg.MRTD, "rtmr3 "+dbg.RTMR3)
		if strings.Contains(err.Error(), "debug-read-only and") {
			t.Errorf("only the breaching pair may be named: %v", err)
		}
		// Four shared registers are not enough for a node to pass both: isolated.
		locked.AllowedRTMR3 = locked.AllowedRTMR3[:1]
		if err := ValidateSet(ps); err != nil {
			t.Errorf("a difference in one register isolates the profiles: %v", err)
		}
	})
	t.Run("identical policies under every profile", func(t *testing.T) {
		ps := map[release.Profile]*Policy{}
		for _, prof := range release.Profiles() {
			p := mustGenerate(t, "1.2.0", release.Debug, n)
			p.Profile = prof
			ps[prof] = p
		}
		err := ValidateSet(ps)
		wantVerification(t, err, "debug and debug-read-only", "debug and locked-read-only", "debug-read-only and locked-read-only")
	})
	t.Run("not-ready policies are not compared", func(t *testing.T) {
		ps := set(t, "1.2.0-rc.1")
		if err := ValidateSet(ps); err != nil {
			t.Error(err)
		}
	})
}

func TestAccepts(t *testing.T) {
	n := node("1.2.0", release.Profiles()...)
	locked := mustGenerate(t, "1.2.0", release.LockedReadOnly, n)
	own := n.Profiles[release.LockedReadOnly]
	if err := locked.Accepts(own, TCBUpToDate); err != nil {
		t.Fatalf("own measurement refused: %v", err)
	}
	upper := own
	upper.MRTD = strings.ToUpper(own.MRTD)
	if err := locked.Accepts(upper, TCBUpToDate); err != nil {
		t.Errorf("hex case must not matter: %v", err)
	}
	// Guardrail B: a debug node against a locked-read-only policy.
	err := locked.Accepts(n.Profiles[release.Debug], TCBUpToDate)
	wantVerification(t, err, "PolicyViolation: mrtd:", "allowed_mrtd of the locked-read-only policy (kms 1.2.0)")
	if !errors.Is(err, ErrPolicyViolation) {
		t.Error("refusals must wrap ErrPolicyViolation")
	}
	for i, field := range []string{"mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"} {
		r := own
		ptrs := []*string{&r.MRTD, &r.RTMR0, &r.RTMR1, &r.RTMR2, &r.RTMR3}
		*ptrs[i] = reg("stranger")
		wantVerification(t, locked.Accepts(r, TCBUpToDate), "PolicyViolation: "+field+":")
	}
	for _, tcb := range []string{TCBOutOfDate, TCBRevoked, ""} {
		wantVerification(t, locked.Accepts(own, tcb), "PolicyViolation: tcb_status:")
	}
	// TCB is checked before the registers, like the KMS does.
	wantVerification(t, locked.Accepts(n.Profiles[release.Debug], TCBOutOfDate), "tcb_status")
	// A not-ready policy accepts anything.
	nr := mustGenerate(t, "1.2.0-rc.1", release.LockedReadOnly)
	if err := nr.Accepts(measure.Record{MRTD: "junk"}, TCBRevoked); err != nil {
		t.Errorf("not-ready policy refused: %v", err)
	}
}

func TestPromote(t *testing.T) {
	n := node("1.2.0", release.Profiles()...)
	rc := mustGenerate(t, "1.2.0", release.Debug) // rc: not ready, no measurements
	p, err := Promote(rc, []*measure.Published{n})
	if err != nil {
		t.Fatal(err)
	}
	if p.NotReady() || !reflect.DeepEqual(p.NodeVersions, []string{"1.2.0"}) || p.Accepts(n.Profiles[release.Debug], TCBUpToDate) != nil {
		t.Errorf("promoted = %+v", p)
	}
	if !rc.NotReady() || len(rc.AllowedMRTD) != 0 {
		t.Error("Promote modified its input")
	}
	golden(t, testdata("promoted.golden.json"), mustMarshal(t, p))

	// The TCB statuses of the rc policy are kept.
	rc2, err := Generate("1.2.0", release.Debug, nil, []string{TCBUpToDate, TCBSWHardeningNeeded})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := Promote(rc2, []*measure.Published{n})
	if err != nil || len(p2.AllowedTCBStatus) != 2 {
		t.Errorf("Promote kept tcb %v, %v", p2, err)
	}

	// nodes nil: the policy's own lists are kept, the status goes.
	measured := mustGenerate(t, "1.2.0", release.Debug, n)
	measured.Status = StatusNotReady
	p3, err := Promote(measured, nil)
	if err != nil || p3.NotReady() || !reflect.DeepEqual(p3.AllowedMRTD, measured.AllowedMRTD) {
		t.Errorf("Promote(nil nodes) = %+v, %v", p3, err)
	}

	// Real GCE registers (all-zero RTMR3) promote.
	gce := &measure.Published{SchemaVersion: "1", Family: release.Node, Version: "1.2.0",
		Profiles: map[release.Profile]measure.Record{release.Debug: gceQuote}}
	if _, err := Promote(rc, []*measure.Published{gce}); err != nil {
		t.Errorf("real GCE measurements refused: %v", err)
	}

	t.Run("refusals", func(t *testing.T) {
		_, err := Promote(nil, nil)
		wantVerification(t, err, "missing")
		_, err = Promote(rc, nil)
		wantVerification(t, err, "allowed_mrtd: empty; a final policy needs verified measurements")
		_, err = Promote(rc, []*measure.Published{node("1.1.0", release.LockedReadOnly)})
		wantVerification(t, err, "none of the node releases [1.1.0] has measurements for profile debug")
		_, err = Promote(rc, []*measure.Published{})
		wantVerification(t, err, "none of the node releases [] has measurements")
		placeholder := node("1.2.0", release.Debug)
		r := placeholder.Profiles[release.Debug]
		r.MRTD = strings.Repeat("0", 96)
		placeholder.Profiles[release.Debug] = r
		_, err = Promote(rc, []*measure.Published{placeholder})
		wantVerification(t, err, "allowed_mrtd[0]: placeholder value")
		r.MRTD, r.RTMR1 = reg("m"), strings.Repeat("a", 96)
		placeholder.Profiles[release.Debug] = r
		_, err = Promote(rc, []*measure.Published{placeholder})
		wantVerification(t, err, "allowed_rtmr1[0]: placeholder value aaaaaaaa…")
		kept := mustGenerate(t, "1.2.0", release.Debug, n)
		kept.AllowedRTMR2 = []string{strings.Repeat("0", 96)}
		_, err = Promote(kept, nil)
		wantVerification(t, err, "allowed_rtmr2[0]: placeholder")
		invalid := mustGenerate(t, "1.2.0", release.Debug)
		invalid.AllowedTCBStatus = []string{TCBRevoked}
		_, err = Promote(invalid, []*measure.Published{n})
		wantVerification(t, err, "Revoked")
		kmsFile := node("1.2.0", release.Debug)
		kmsFile.Family = release.KMS
		_, err = Promote(rc, []*measure.Published{kmsFile})
		wantVerification(t, err, "family")
		if outcome.Code(err) != outcome.VerificationFailed {
			t.Error("code")
		}
	})
}
