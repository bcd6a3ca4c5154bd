package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/examples/kms/local/e2etest"
	"github.com/calimero-network/mero-release/pipeline/catalog"
	"github.com/calimero-network/mero-release/pipeline/e2e"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
	"github.com/calimero-network/mero-release/pipeline/vm"
)

// world is the good pair: node 1.1.0 and 1.2.0, KMS 1.1.0 (accepting node 1.1.0) and KMS
// 1.2.0 (accepting both), and a catalog listing kms 1.2.0 with both node versions.
type world struct {
	*e2etest.World
	catalog *catalog.Catalog
	log     *bytes.Buffer
}

type worldOpts struct {
	// kms120 edits the KMS 1.2.0 policies before publishing.
	kms120 func(map[release.Profile]*policy.Policy)
	// kms110 edits the KMS 1.1.0 policies before publishing.
	kms110 func(map[release.Profile]*policy.Policy)
	// node120 edits node 1.2.0's published-mrtds.json before publishing.
	node120  func(*measure.Published)
	noKMS110 bool
}

func newWorld(t *testing.T, o worldOpts) *world {
	t.Helper()
	w := &world{World: e2etest.New(t), log: &bytes.Buffer{}}
	n110 := w.AddNode(t, "1.1.0", nil)
	w.AddNode(t, "1.2.0", o.node120)
	n120 := e2etest.Measured(t, "1.2.0")
	if !o.noKMS110 {
		p110 := e2etest.Policies(t, "1.1.0", n110)
		if o.kms110 != nil {
			o.kms110(p110)
		}
		w.AddKMS(t, "1.1.0", p110)
	}
	p120 := e2etest.Policies(t, "1.2.0", n110, n120)
	if o.kms120 != nil {
		o.kms120(p120)
	}
	w.AddKMS(t, "1.2.0", p120)
	w.catalog = e2etest.Catalog(t, [2]string{"1.2.0", "1.2.0"}, [2]string{"1.2.0", "1.1.0"})
	return w
}

func (w *world) run(t *testing.T, mutate func(*e2e.Options)) *e2e.Report {
	t.Helper()
	o := w.Options("1.2.0", "1.2.0", w.catalog, outcome.NewLogger(w.log))
	if mutate != nil {
		mutate(&o)
	}
	rep, err := e2e.Run(context.Background(), o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Cleanup always: no VM and no KMS outlives the run.
	if left := w.Provider.Running(); len(left) != 0 {
		t.Errorf("VMs left running: %v", left)
	}
	if n := w.KMS.Open(); n != 0 {
		t.Errorf("%d KMS instances left running", n)
	}
	return rep
}

func check(t *testing.T, rep *e2e.Report, id string) e2e.Check {
	t.Helper()
	for _, c := range rep.Checks {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no check %s in %+v", id, rep)
	return e2e.Check{}
}

// wantOnlyFailure asserts that exactly check id failed, with a failed case whose step and
// details match.
func wantOnlyFailure(t *testing.T, rep *e2e.Report, id, step, details string) e2e.Case {
	t.Helper()
	if rep.Passed {
		t.Fatalf("the report passed; want check %s to fail", id)
	}
	var found *e2e.Case
	for _, c := range rep.Checks {
		if c.ID != id && c.Status == e2e.Fail {
			t.Errorf("check %s (%s) failed too: %+v", c.ID, c.Name, c.Cases)
		}
		if c.ID == id {
			if c.Status != e2e.Fail {
				t.Fatalf("check %s: %s, want fail", id, c.Status)
			}
			for i := range c.Cases {
				if c.Cases[i].Status == e2e.Fail && found == nil {
					found = &c.Cases[i]
				}
			}
		}
	}
	if found == nil {
		t.Fatalf("check %s failed without a failed case", id)
	}
	if found.Step != step || !strings.Contains(found.Details, details) {
		t.Fatalf("failed case %q: step %q, details %q; want step %q mentioning %q", found.Name, found.Step, found.Details, step, details)
	}
	err := rep.Err()
	if outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), "guardrail "+id) && id != e2e.CheckNodeSuite {
		t.Errorf("Err() = %v (exit %d)", err, outcome.Code(err))
	}
	return *found
}

func TestAllGuardrailsPassOnAGoodPair(t *testing.T) {
	w := newWorld(t, worldOpts{})
	rep := w.run(t, nil)
	if !rep.Passed || rep.Err() != nil {
		t.Fatalf("report failed: %v\n%s", rep.Err(), w.log)
	}
	want := map[string]int{e2e.CheckNodeSuite: 3, e2e.CheckCrossVer: 6, e2e.CheckIsolation: 1, e2e.CheckStalePolicy: 2, e2e.CheckConsistency: 3}
	for id, n := range want {
		c := check(t, rep, id)
		if c.Status != e2e.Pass || len(c.Cases) != n {
			t.Errorf("check %s: %s with %d cases, want pass with %d", id, c.Status, len(c.Cases), n)
		}
	}
	b := check(t, rep, e2e.CheckIsolation).Cases[0]
	if b.HTTPStatus != 403 || b.ErrorCode != "PolicyViolation" || !strings.Contains(b.Details, "rtmr2") {
		t.Errorf("isolation case %+v", b)
	}
	c := check(t, rep, e2e.CheckStalePolicy).Cases[0]
	if !strings.Contains(c.Details, "mrtd:") || !strings.Contains(c.Name, "previous policy of mero-kms-v1.1.0") {
		t.Errorf("stale case %+v: want a refusal on MRTD by the 1.1.0 policy", c)
	}
	log := w.log.String()
	for _, line := range []string{
		"[PASS] node suite: kms 1.2.0 ↔ node image 1.2.0 (debug): deploy, boot verification, KMS attestation, key release, cleanup",
		"[PASS] guardrail A (cross-version): kms 1.2.0 ↔ node image 1.1.0 (locked-read-only)",
		"[PASS] guardrail B (profile isolation): debug node image 1.2.0 ↔ kms 1.2.0 (locked-read-only policy): refused with 403 PolicyViolation",
		"[PASS] guardrail C (stale policy): 2 case(s) passed",
		"[PASS] guardrail D (measurement consistency): 3 case(s) passed",
	} {
		if !strings.Contains(log, line) {
			t.Errorf("log lacks %q:\n%s", line, log)
		}
	}
	if strings.Contains(log, "[FAIL]") {
		t.Errorf("a good pair logged a failure:\n%s", log)
	}
	// The JSON report round-trips.
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back e2e.Report
	if err := json.Unmarshal(data, &back); err != nil || !back.Passed || len(back.Checks) != 5 {
		t.Errorf("JSON report: %v %s", err, data)
	}
}

func TestIsolationBrokenByAPolicyThatAcceptsDebug(t *testing.T) {
	w := newWorld(t, worldOpts{kms120: func(ps map[release.Profile]*policy.Policy) {
		locked := ps[release.LockedReadOnly]
		for _, v := range []string{"1.1.0", "1.2.0"} {
			locked.AllowedRTMR2 = append(locked.AllowedRTMR2, e2etest.Record(t, e2etest.NodeImage(v, release.Debug)).RTMR2)
		}
	}})
	rep := w.run(t, nil)
	cs := wantOnlyFailure(t, rep, e2e.CheckIsolation, e2e.StepExpectation, "not isolated")
	if cs.HTTPStatus != 0 {
		t.Errorf("a key was released, yet the case carries HTTP %d", cs.HTTPStatus)
	}
	if !strings.Contains(w.log.String(), "[FAIL] guardrail B (profile isolation): debug node image 1.2.0 ↔ kms 1.2.0 (locked-read-only policy): expectation: a debug node got a key") {
		t.Errorf("log:\n%s", w.log)
	}
}

func TestIsolationFailsWhenTheDebugNodeCannotRun(t *testing.T) {
	// A debug node that cannot be deployed proves nothing: B fails at the deploy step.
	w := newWorld(t, worldOpts{})
	w.catalog = nil
	rep := w.run(t, func(o *e2e.Options) {
		o.Images = imagesWithout{o.Images, release.Debug}
		o.Profiles = []release.Profile{release.LockedReadOnly}
	})
	wantOnlyFailure(t, rep, e2e.CheckIsolation, e2e.StepDeploy, "no debug image")
}

func TestStalePolicyThatAlreadyAccepts(t *testing.T) {
	w := newWorld(t, worldOpts{kms110: func(ps map[release.Profile]*policy.Policy) {
		// The 1.1.0 policy was (wrongly) widened to the new node's values without listing it.
		n120 := e2etest.Measured(t, "1.2.0")
		n110 := e2etest.Measured(t, "1.1.0")
		p, err := policy.Generate("1.1.0", release.LockedReadOnly, []*measure.Published{n110, n120}, nil)
		if err != nil {
			t.Fatal(err)
		}
		p.NodeVersions = []string{"1.1.0"}
		ps[release.LockedReadOnly] = p
	}})
	rep := w.run(t, nil)
	wantOnlyFailure(t, rep, e2e.CheckStalePolicy, e2e.StepExpectation, "already accepts node image 1.2.0")
}

func TestStalePolicyRefusingForTheWrongReason(t *testing.T) {
	w := newWorld(t, worldOpts{kms110: func(ps map[release.Profile]*policy.Policy) {
		n120 := e2etest.Measured(t, "1.2.0")
		p, err := policy.Generate("1.1.0", release.LockedReadOnly, []*measure.Published{n120}, []string{policy.TCBOutOfDate})
		if err != nil {
			t.Fatal(err)
		}
		p.NodeVersions = []string{"1.1.0"}
		ps[release.LockedReadOnly] = p
	}})
	rep := w.run(t, nil)
	wantOnlyFailure(t, rep, e2e.CheckStalePolicy, e2e.StepExpectation, "not for a measurement mismatch")
}

func TestStalePolicyNotUpdated(t *testing.T) {
	// The released KMS policy does not accept the new node: C fails after the "update" (and
	// so do the node suite and A, which need the same acceptance).
	w := newWorld(t, worldOpts{kms120: func(ps map[release.Profile]*policy.Policy) {
		ps[release.LockedReadOnly] = e2etest.Policies(t, "1.2.0", e2etest.Measured(t, "1.1.0"))[release.LockedReadOnly]
	}})
	rep := w.run(t, nil)
	c := check(t, rep, e2e.CheckStalePolicy)
	if c.Status != e2e.Fail || c.Cases[0].Status != e2e.Pass || c.Cases[1].Status != e2e.Fail ||
		!strings.Contains(c.Cases[1].Details, "after the policy update") || c.Cases[1].ErrorCode != "PolicyViolation" {
		t.Errorf("stale policy check %+v", c)
	}
	if check(t, rep, e2e.CheckNodeSuite).Status != e2e.Fail {
		t.Error("the node suite passed with a policy that refuses the node")
	}
}

func TestStalePolicyFromThePreviousNodeRelease(t *testing.T) {
	w := newWorld(t, worldOpts{noKMS110: true})
	rep := w.run(t, nil)
	if !rep.Passed {
		t.Fatalf("%v\n%s", rep.Err(), w.log)
	}
	c := check(t, rep, e2e.CheckStalePolicy)
	if !strings.Contains(c.Cases[0].Name, "policy generated from mero-tee-v1.1.0") {
		t.Errorf("stale case %+v", c.Cases[0])
	}
}

func TestStalePolicySkips(t *testing.T) {
	w := &world{World: e2etest.New(t), log: &bytes.Buffer{}}
	n := w.AddNode(t, "1.0.0", nil)
	w.AddKMS(t, "1.0.0", e2etest.Policies(t, "1.0.0", n))
	w.catalog = e2etest.Catalog(t, [2]string{"1.0.0", "1.0.0"})
	o := w.Options("1.0.0", "1.0.0", w.catalog, outcome.NewLogger(w.log))
	rep, err := e2e.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	c := check(t, rep, e2e.CheckStalePolicy)
	if c.Status != e2e.Skip || !strings.Contains(c.Details, "no KMS release before") || !rep.Passed {
		t.Errorf("first release: %+v, passed %v", c, rep.Passed)
	}
	if !strings.Contains(w.log.String(), "[WARN] guardrail C (stale policy): skipped") {
		t.Errorf("log:\n%s", w.log)
	}
	// A previous KMS policy that lists the node already is not stale for it.
	w2 := newWorld(t, worldOpts{kms110: func(ps map[release.Profile]*policy.Policy) {
		ps[release.LockedReadOnly].NodeVersions = append(ps[release.LockedReadOnly].NodeVersions, "1.2.0")
	}})
	rep = w2.run(t, nil)
	if c := check(t, rep, e2e.CheckStalePolicy); c.Status != e2e.Skip || !strings.Contains(c.Details, "already lists node image 1.2.0") {
		t.Errorf("%+v", c)
	}
}

func TestChangedPublishedMRTDs(t *testing.T) {
	w := newWorld(t, worldOpts{node120: func(p *measure.Published) {
		r := p.Profiles[release.DebugReadOnly]
		r.RTMR1 = strings.Repeat("ab", 48)
		p.Profiles[release.DebugReadOnly] = r
	}})
	rep := w.run(t, nil)
	cs := wantOnlyFailure(t, rep, e2e.CheckConsistency, e2e.StepExpectation, "rtmr1 observed")
	if cs.Profile != release.DebugReadOnly || !strings.Contains(cs.Details, "published "+strings.Repeat("ab", 48)) {
		t.Errorf("case %+v", cs)
	}
	if !strings.Contains(w.log.String(), "[FAIL] guardrail D (measurement consistency): node image 1.2.0 (debug-read-only) vs published-mrtds.json: expectation: observed ≠ published: rtmr1") {
		t.Errorf("log:\n%s", w.log)
	}
}

func TestCatalogPairThatDoesNotWork(t *testing.T) {
	w := newWorld(t, worldOpts{})
	w.AddNode(t, "1.0.0", nil) // no KMS policy accepts node 1.0.0
	w.catalog = e2etest.Catalog(t, [2]string{"1.2.0", "1.2.0"}, [2]string{"1.2.0", "1.0.0"})
	rep := w.run(t, nil)
	cs := wantOnlyFailure(t, rep, e2e.CheckCrossVer, e2e.StepKeyRelease, "the catalog pair does not work")
	if cs.Name != "kms 1.2.0 ↔ node image 1.0.0 (debug)" || cs.ErrorCode != "PolicyViolation" || cs.HTTPStatus != 403 {
		t.Errorf("case %+v", cs)
	}
	if !strings.Contains(rep.Err().Error(), "kms 1.2.0 ↔ node image 1.0.0") {
		t.Errorf("Err() does not name the pair: %v", rep.Err())
	}
	if !strings.Contains(w.log.String(), "[FAIL] guardrail A (cross-version): kms 1.2.0 ↔ node image 1.0.0 (debug): key release: the catalog pair does not work") {
		t.Errorf("log:\n%s", w.log)
	}
}

func TestCatalogPairWithAMissingRelease(t *testing.T) {
	w := newWorld(t, worldOpts{})
	w.catalog = e2etest.Catalog(t, [2]string{"1.2.0", "1.2.0"}, [2]string{"1.3.0", "1.2.0"})
	rep := w.run(t, nil)
	cs := wantOnlyFailure(t, rep, e2e.CheckCrossVer, e2e.StepPolicy, "mero-kms-v1.3.0: attestation-policy-debug.json: not found")
	if cs.KMS != "1.3.0" {
		t.Errorf("case %+v", cs)
	}
}

func TestCrossVersionWithoutCatalog(t *testing.T) {
	w := newWorld(t, worldOpts{})
	w.catalog = nil
	rep := w.run(t, nil)
	if c := check(t, rep, e2e.CheckCrossVer); c.Status != e2e.Skip || !rep.Passed {
		t.Errorf("no catalog: %+v", c)
	}
	w.catalog = e2etest.Catalog(t, [2]string{"1.1.0", "1.1.0"})
	rep = w.run(t, nil)
	if c := check(t, rep, e2e.CheckCrossVer); c.Status != e2e.Fail || !strings.Contains(c.Details, "lists no pair") {
		t.Errorf("catalog without the released versions: %+v", c)
	}
}

func TestBootVerificationFailure(t *testing.T) {
	w := newWorld(t, worldOpts{})
	rogue, err := tdxsim.NewAuthority([]byte("not the node platform"))
	if err != nil {
		t.Fatal(err)
	}
	rep := w.run(t, func(o *e2e.Options) { o.NodeRoots = rogue.RootPool() })
	c := check(t, rep, e2e.CheckNodeSuite)
	if c.Status != e2e.Fail || c.Cases[0].Step != e2e.StepBoot || !strings.Contains(c.Cases[0].Details, "verify TDX quote") {
		t.Errorf("node suite %+v", c)
	}
	if d := check(t, rep, e2e.CheckConsistency); d.Status != e2e.Fail || !strings.Contains(d.Cases[0].Details, "no measurement observed") {
		t.Errorf("consistency without observations %+v", d)
	}
}

// hiddenSim hides vmsim's Booted method: a provider whose instances only quote their boot nonce.
type hiddenSim struct{ vm.Provider }

func TestProviderWithoutReportDataQuotes(t *testing.T) {
	w := newWorld(t, worldOpts{})
	rep := w.run(t, func(o *e2e.Options) {
		o.Provider = hiddenSim{o.Provider}
		o.Profiles = []release.Profile{release.Debug}
	})
	c := check(t, rep, e2e.CheckNodeSuite)
	if c.Status != e2e.Fail || c.Cases[0].Step != e2e.StepKeyRelease || !strings.Contains(c.Cases[0].Details, "caller-chosen report data") {
		t.Errorf("node suite %+v", c)
	}
}

func TestKMSMeasurements(t *testing.T) {
	w := newWorld(t, worldOpts{})
	rep := w.run(t, func(o *e2e.Options) { o.CheckKMSMeasurements = true })
	if d := check(t, rep, e2e.CheckConsistency); !rep.Passed || len(d.Cases) != 6 {
		t.Fatalf("with KMS measurements: %v, %d D cases\n%s", rep.Err(), len(d.Cases), w.log)
	}
	// A KMS release whose published RTMR3 is not what its recorded deployment boots to:
	// attestation fails.
	w2 := &world{World: e2etest.New(t), log: &bytes.Buffer{}}
	n := w2.AddNode(t, "1.0.0", nil)
	w2.AddKMS(t, "1.0.0", e2etest.Policies(t, "1.0.0", n), func(p *measure.Published) {
		for prof, r := range p.Profiles {
			r.RTMR3 = strings.Repeat("ee", 48)
			p.Profiles[prof] = r
		}
	})
	o := w2.Options("1.0.0", "1.0.0", nil, outcome.NewLogger(w2.log))
	o.CheckKMSMeasurements = true
	rep, err := e2e.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	c := check(t, rep, e2e.CheckNodeSuite)
	if c.Status != e2e.Fail || c.Cases[0].Step != e2e.StepAttest || !strings.Contains(c.Cases[0].Details, "rtmr3 observed") {
		t.Errorf("node suite %+v", c)
	}
}

func TestRunRefusesBadOptions(t *testing.T) {
	w := newWorld(t, worldOpts{})
	good := w.Options("1.2.0", "1.2.0", nil, nil)
	cases := map[string]struct {
		mutate func(*e2e.Options)
		want   string
	}{
		"store":        {func(o *e2e.Options) { o.Store = nil }, "store"},
		"provider":     {func(o *e2e.Options) { o.Provider = nil }, "provider"},
		"images":       {func(o *e2e.Options) { o.Images = nil }, "image"},
		"roots":        {func(o *e2e.Options) { o.NodeRoots = nil }, "root"},
		"kms":          {func(o *e2e.Options) { o.KMS = nil }, "KMS"},
		"bad tag":      {func(o *e2e.Options) { o.KMSRelease = "mero-kms-1.2" }, "--kms-release"},
		"family":       {func(o *e2e.Options) { o.KMSRelease = "mero-tee-v1.2.0" }, "not a mero-kms tag"},
		"node family":  {func(o *e2e.Options) { o.NodeRelease = "mero-kms-v1.2.0" }, "not a mero-tee tag"},
		"missing kms":  {func(o *e2e.Options) { o.KMSRelease = "mero-kms-v9.0.0" }, "mero-kms-v9.0.0: not in the store"},
		"missing node": {func(o *e2e.Options) { o.NodeRelease = "mero-tee-v9.0.0" }, "mero-tee-v9.0.0: not in the store"},
	}
	for name, c := range cases {
		o := good
		c.mutate(&o)
		_, err := e2e.Run(context.Background(), o)
		if err == nil || outcome.Code(err) != outcome.Usage || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v (exit %d), want a usage error mentioning %q", name, err, outcome.Code(err), c.want)
		}
	}
}

// imagesWithout resolves like inner except for one profile.
type imagesWithout struct {
	inner e2e.ImageResolver
	p     release.Profile
}

func (i imagesWithout) Image(ctx context.Context, v string, p release.Profile) (string, error) {
	if p == i.p {
		return "", outcome.VerificationErrorf("node image %s: no %s image", v, p)
	}
	return i.inner.Image(ctx, v, p)
}

func TestImageResolvers(t *testing.T) {
	ctx := context.Background()
	got, err := e2e.TemplateImages("imgs/{version}/{profile}.json").Image(ctx, "1.2.0", release.Debug)
	if err != nil || got != "imgs/1.2.0/debug.json" {
		t.Errorf("template: %q %v", got, err)
	}
	if _, err := e2e.TemplateImages("").Image(ctx, "1", release.Debug); outcome.Code(err) != outcome.Usage {
		t.Errorf("empty template: %v", err)
	}
	w := newWorld(t, worldOpts{})
	m := e2e.ManifestImages{Store: w.Store}
	if img, err := m.Image(ctx, "1.2.0", release.Debug); err != nil || !strings.HasSuffix(img, "1.2.0/debug.json") {
		t.Errorf("manifest: %q %v", img, err)
	}
	if _, err := m.Image(ctx, "7.0.0", release.Debug); outcome.Code(err) != outcome.MissingAsset {
		t.Errorf("missing release: %v (exit %d)", err, outcome.Code(err))
	}
	w.AddKMS(t, "2.0.0", nil)
	if _, err := (e2e.ManifestImages{Store: w.Store}).Image(ctx, "2.0.0", release.Debug); outcome.Code(err) != outcome.MissingAsset {
		t.Errorf("a tag without the manifest: %v", err)
	}
}
