// Package e2e is the post-release E2E stage (SPEC §7): the mero-tee node suite — deploy a VM
// from the released node image, boot verification, KMS attestation, key release, cleanup on
// every path — against KMS instances started with the released attestation policies, and the
// four guardrails, each a named check that can fail:
//
//	A cross-version          every catalog pair of the released versions works
//	B profile isolation      a debug node gets 403 PolicyViolation from a locked-read-only KMS
//	C stale policy           the new node is refused (measurement mismatch) by the previous KMS
//	                         policy and accepted after the policy update
//	D measurement consistency the MRTD/RTMR0–3 seen in E2E equal published-mrtds.json
//
// The result is a Report with [PASS]/[FAIL] lines (outcome.Logger) and a JSON form; any failed
// check blocks (Report.Err is a verification error, exit 10).
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/calimero-network/mero-release/pipeline/catalog"
	"github.com/calimero-network/mero-release/pipeline/kmsclient"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/store"
	"github.com/calimero-network/mero-release/pipeline/tdx"
	"github.com/calimero-network/mero-release/pipeline/verified"
	"github.com/calimero-network/mero-release/pipeline/vm"
)

// The steps of one node run, as named in failed cases.
const (
	StepPolicy      = "KMS policy"
	StepStartKMS    = "start KMS"
	StepDeploy      = "deploy"
	StepBoot        = "boot verification"
	StepAttest      = "KMS attestation"
	StepKeyRelease  = "key release"
	StepCleanup     = "cleanup"
	StepExpectation = "expectation"
)

// Options configure Run.
type Options struct {
	// Store holds both releases (and, for guardrails A and C, their counterparts).
	Store store.Store
	// KMSRelease and NodeRelease are the tags under test (mero-kms-vX.Y.Z, mero-tee-vX.Y.Z).
	KMSRelease, NodeRelease string
	// Catalog is the compatibility catalog for guardrail A; nil skips A.
	Catalog *catalog.Catalog
	// Provider deploys node VMs (vmsim locally, gcp in CI).
	Provider vm.Provider
	// Images says which image a node release boots per profile.
	Images ImageResolver
	// NodeRoots are the roots node quotes must chain to (the simulator's root, or Intel's).
	NodeRoots *x509.CertPool
	// KMS starts KMS instances; every one is closed before Run returns.
	KMS KMSLauncher
	// Profiles are the profiles of the node suite; empty means all three.
	Profiles []release.Profile
	// StaleProfile is the profile guardrail C runs under; empty means locked-read-only.
	StaleProfile release.Profile
	// CheckKMSMeasurements also compares the KMS's quote with the KMS release's
	// published-mrtds.json (in the KMS attestation step and in guardrail D).
	CheckKMSMeasurements bool
	// RunID labels the VMs (the CI run id); empty means a random id.
	RunID string
	// Log receives the [INFO]/[PASS]/[FAIL] lines.
	Log *outcome.Logger
	// Now is the clock for certificate validity; nil means time.Now.
	Now func() time.Time
	// Rand is the randomness for nonces, names and keys; nil means crypto/rand.
	Rand io.Reader
	// Trust, when set, is the expected signer of a release: every policy and published-mrtds.json
	// read from Store is verified first (bundle and checksums.sha256, pipeline/verified).
	Trust func(tag release.Tag) (verified.Trust, error)
}

// suite is one Run.
type suite struct {
	o       Options
	log     *outcome.Logger
	kmsTag  release.Tag
	nodeTag release.Tag
	runID   string
	seq     int
	memo    map[string]*pairResult
	// observed node measurements of the node suite, per profile, for guardrail D.
	observed    map[release.Profile]*pairResult
	kmsObserved map[release.Profile]tdx.Measurements
	// kmsPublished caches the KMS releases' published-mrtds.json by tag.
	kmsPublished map[string]publishedRead
}

// publishedRead is one read of a published-mrtds.json: the file or why it could not be read.
type publishedRead struct {
	pub *measure.Published
	err error
}

// Run runs the node suite and the guardrails and returns the report. The error is for what
// prevents running at all (bad options, a release missing from the store); check failures are
// in the report (Report.Err).
func Run(ctx context.Context, o Options) (*Report, error) {
	switch {
	case o.Store == nil:
		return nil, outcome.UsageErrorf("e2e: no release store")
	case o.Provider == nil:
		return nil, outcome.UsageErrorf("e2e: no VM provider")
	case o.Images == nil:
		return nil, outcome.UsageErrorf("e2e: no node image resolver")
	case o.NodeRoots == nil:
		return nil, outcome.UsageErrorf("e2e: no trusted root for node quotes")
	case o.KMS == nil:
		return nil, outcome.UsageErrorf("e2e: no KMS launcher")
	}
	kmsTag, err := release.ParseTag(o.KMSRelease)
	if err != nil {
		return nil, fmt.Errorf("--kms-release: %w", err)
	}
	nodeTag, err := release.ParseTag(o.NodeRelease)
	if err != nil {
		return nil, fmt.Errorf("--node-release: %w", err)
	}
	if kmsTag.Family != release.KMS {
		return nil, outcome.UsageErrorf("--kms-release %s: not a %s tag", kmsTag, release.KMS)
	}
	if nodeTag.Family != release.Node {
		return nil, outcome.UsageErrorf("--node-release %s: not a %s tag", nodeTag, release.Node)
	}
	for _, t := range []release.Tag{kmsTag, nodeTag} {
		if _, err := o.Store.Release(ctx, t.String()); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, outcome.UsageErrorf("release %s: not in the store", t)
			}
			return nil, fmt.Errorf("release %s: %w", t, err)
		}
	}
	if len(o.Profiles) == 0 {
		o.Profiles = release.Profiles()
	}
	if o.StaleProfile == "" {
		o.StaleProfile = release.LockedReadOnly
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	s := &suite{o: o, log: o.Log, kmsTag: kmsTag, nodeTag: nodeTag, memo: map[string]*pairResult{},
		observed: map[release.Profile]*pairResult{}, kmsObserved: map[release.Profile]tdx.Measurements{},
		kmsPublished: map[string]publishedRead{}}
	s.runID = o.RunID
	if s.runID == "" {
		b := make([]byte, 4)
		if _, err := io.ReadFull(o.Rand, b); err != nil {
			return nil, fmt.Errorf("e2e: run id: %w", err)
		}
		s.runID = hex.EncodeToString(b)
	}
	rep := &Report{KMSRelease: kmsTag.String(), NodeRelease: nodeTag.String()}
	s.log.Infof("E2E %s ↔ %s (run %s)", kmsTag, nodeTag, s.runID)
	for _, check := range []func(context.Context) Check{s.nodeSuite, s.crossVersion, s.isolation, s.stalePolicy, s.consistency} {
		rep.Checks = append(rep.Checks, check(ctx))
	}
	rep.Passed = len(rep.Failed()) == 0
	return rep, nil
}

func (s *suite) kmsVersion() string  { return s.kmsTag.Version.String() }
func (s *suite) nodeVersion() string { return s.nodeTag.Version.String() }

// caseName names a KMS/node/profile combination.
func caseName(kmsVersion, nodeVersion string, p release.Profile) string {
	return fmt.Sprintf("kms %s ↔ node image %s (%s)", kmsVersion, nodeVersion, p)
}

// loadPolicy reads attestation-policy-{profile}.json of a KMS release from the store, as the
// KMS would load it (policy.LoadForKMS: schema, version and profile checked).
func (s *suite) loadPolicy(ctx context.Context, kmsVersion string, p release.Profile) (*policy.Loaded, error) {
	tag := release.KMS.TagPrefix() + kmsVersion
	data, err := s.readAsset(ctx, tag, p.PolicyFile())
	if err != nil {
		return nil, err
	}
	return policy.LoadForKMS(data, tag+"/"+p.PolicyFile(), "", kmsVersion, string(p))
}

func (s *suite) readAsset(ctx context.Context, tag, name string) ([]byte, error) {
	if s.o.Trust != nil {
		t, err := release.ParseTag(tag)
		if err != nil {
			return nil, err
		}
		trust, err := s.o.Trust(t)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", tag, name, err)
		}
		v, err := verified.Fetch(ctx, s.o.Store, tag, name, trust)
		if err != nil {
			return nil, err
		}
		return v.Data, nil
	}
	rc, err := s.o.Store.OpenAsset(ctx, tag, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, outcome.MissingAssetErrorf("%s: %s: not found in the store", tag, name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", tag, name, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", tag, name, err)
	}
	return data, nil
}

func (s *suite) readPublished(ctx context.Context, tag string) (*measure.Published, error) {
	data, err := s.readAsset(ctx, tag, release.PublishedMRTDsFile)
	if err != nil {
		return nil, err
	}
	p, err := measure.ReadPublished(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tag, err)
	}
	return p, nil
}

// pairResult is one node run against one KMS: where it stopped, what was observed, and the
// outcome of the key request (judged by the caller: success is wanted by the node suite and
// guardrail A, a refusal by B and C).
type pairResult struct {
	step        string // failed step before key release, or ""
	err         error
	observed    *tdx.Measurements
	kmsObserved *tdx.Measurements
	keyErr      error
	key         []byte
}

// run deploys a node from nodeVersion/profile, starts a KMS with lp, and runs boot
// verification, KMS attestation and key release; the VM and the KMS are removed on every path.
// Results are memoised per KMS policy, node version and profile.
func (s *suite) run(ctx context.Context, lp *policy.Loaded, nodeVersion string, p release.Profile, kmsExpected *measure.Record) *pairResult {
	key := lp.SHA256 + "|" + nodeVersion + "|" + string(p)
	if r, ok := s.memo[key]; ok {
		return r
	}
	r := s.runOnce(ctx, lp, nodeVersion, p, kmsExpected)
	s.memo[key] = r
	return r
}

func (s *suite) runOnce(ctx context.Context, lp *policy.Loaded, nodeVersion string, p release.Profile, kmsExpected *measure.Record) (r *pairResult) {
	r = &pairResult{}
	fail := func(step string, err error) *pairResult {
		r.step, r.err = step, err
		return r
	}
	image, err := s.o.Images.Image(ctx, nodeVersion, p)
	if err != nil {
		return fail(StepDeploy, err)
	}
	kmsInst, err := s.o.KMS.Launch(ctx, lp, s.deployment(ctx, lp))
	if err != nil {
		return fail(StepStartKMS, err)
	}
	defer func() {
		if err := kmsInst.Close(); err != nil && r.err == nil {
			r.step, r.err = StepCleanup, fmt.Errorf("stop KMS: %w", err)
		}
	}()
	client, err := kmsclient.New(kmsInst.URL(), kmsclient.Options{TrustedRoots: kmsInst.TrustedRoots(), Rand: s.o.Rand, Now: s.o.Now})
	if err != nil {
		return fail(StepStartKMS, err)
	}
	s.seq++
	spec := vm.Spec{
		Name:    fmt.Sprintf("mero-e2e-%s-%d", strings.ToLower(s.runID), s.seq),
		Image:   image,
		Profile: p,
		Labels:  map[string]string{vm.LabelRunID: s.runID, vm.LabelTag: release.Node.TagPrefix() + nodeVersion},
	}
	if _, err := io.ReadFull(s.o.Rand, spec.Nonce[:]); err != nil {
		return fail(StepDeploy, err)
	}
	s.log.Infof("deploying %s: node image %s (%s) from %s; KMS %s (%s) at %s", spec.Name, nodeVersion, p, image, lp.Policy.KMSVersion, lp.Policy.Profile, kmsInst.URL())
	inner := false
	err = vm.WithVM(ctx, s.o.Provider, spec, func(ctx context.Context, inst vm.Instance) error {
		inner = true
		// Boot verification: the node produces a verifiable quote over the boot nonce.
		raw, err := inst.Quote(ctx)
		if err != nil {
			fail(StepBoot, fmt.Errorf("the node produced no quote: %w", err))
			return r.err
		}
		q, err := tdx.ParseQuote(raw)
		if err == nil {
			err = q.Verify(tdx.VerifyOptions{TrustedRoots: s.o.NodeRoots, Now: s.o.Now()})
		}
		if err == nil {
			err = vm.CheckReportData(q.ReportData, spec.Nonce)
		}
		if err != nil {
			fail(StepBoot, err)
			return r.err
		}
		m := q.Measurements()
		r.observed = &m
		// KMS attestation: the node verifies the KMS.
		att, err := client.Attest(ctx, kmsclient.AttestOptions{Expected: kmsExpected})
		if err != nil {
			fail(StepAttest, err)
			return r.err
		}
		km := att.Quote.Measurements()
		r.kmsObserved = &km
		// Key release, twice with fresh key pairs: the key must be the namespace's key.
		node := NodeQuoter(ctx, inst, s.o.Provider)
		peerID := "e2e-node-" + nodeVersion + "-" + string(p)
		first, err := s.requestKey(ctx, client, node, peerID)
		if err != nil {
			r.keyErr = err
			return nil
		}
		second, err := s.requestKey(ctx, client, node, peerID)
		switch {
		case err != nil:
			r.keyErr = fmt.Errorf("second key request: %w", err)
		case !bytes.Equal(first, second):
			r.keyErr = outcome.VerificationErrorf("two key releases to peer %s returned different keys: keys are not derived per namespace", peerID)
		case bytes.Equal(first, make([]byte, len(first))):
			r.keyErr = outcome.VerificationErrorf("the released key is all zero")
		default:
			r.key = first
		}
		return nil
	})
	if err != nil {
		switch {
		case !inner:
			return fail(StepDeploy, err)
		case r.err == nil: // the run succeeded: the error is the VM's deletion
			return fail(StepCleanup, err)
		default: // the step's error, possibly joined with a failed deletion
			r.err = err
		}
	}
	return r
}

func (s *suite) requestKey(ctx context.Context, c *kmsclient.Client, node kmsclient.Quoter, peerID string) ([]byte, error) {
	peer, err := kmsclient.NewPeer(peerID, s.o.Rand)
	if err != nil {
		return nil, err
	}
	kr, err := c.RequestKey(ctx, node, peer)
	if err != nil {
		return nil, err
	}
	return kr.Key, nil
}

// successCase turns a run that must release a key into a case.
func successCase(name, kmsVersion, nodeVersion string, p release.Profile, r *pairResult) Case {
	cs := Case{Name: name, KMS: kmsVersion, NodeImage: nodeVersion, Profile: p, Status: Pass, Observed: hexOf(r.observed)}
	switch {
	case r.err != nil:
		cs.Status, cs.Step, cs.Details = Fail, r.step, r.err.Error()
	case r.keyErr != nil:
		cs.Status, cs.Step, cs.Details = Fail, StepKeyRelease, r.keyErr.Error()
		if ae, ok := kmsclient.AsAPIError(r.keyErr); ok {
			cs.HTTPStatus, cs.ErrorCode = ae.Status, ae.Code
		}
	default:
		cs.Details = "deploy, boot verification, KMS attestation, key release, cleanup"
	}
	return cs
}

func hexOf(m *tdx.Measurements) *kmsclient.Measurements {
	if m == nil {
		return nil
	}
	h := m.Hex()
	return &kmsclient.Measurements{MRTD: h.MRTD, RTMR0: h.RTMR0, RTMR1: h.RTMR1, RTMR2: h.RTMR2, RTMR3: h.RTMR3}
}

// deployment returns what the KMS release of lp recorded for lp's profile (its app-compose
// hash), so that the launched KMS is the measured deployment; nothing when the release has no
// such record (a policy generated for guardrail C, a release without measurements).
func (s *suite) deployment(ctx context.Context, lp *policy.Loaded) KMSDeployment {
	pub, err := s.kmsPublishedOf(ctx, release.KMS.TagPrefix()+lp.Policy.KMSVersion)
	if err != nil {
		return KMSDeployment{}
	}
	rec := pub.Profiles[lp.Policy.Profile]
	return KMSDeployment{ComposeHash: rec.ComposeHash, Image: rec.Image}
}

// kmsPublishedOf reads a KMS release's published-mrtds.json once per run (the result, or the
// error, is kept for the later launches and checks).
func (s *suite) kmsPublishedOf(ctx context.Context, tag string) (*measure.Published, error) {
	if r, ok := s.kmsPublished[tag]; ok {
		return r.pub, r.err
	}
	pub, err := s.readPublished(ctx, tag)
	s.kmsPublished[tag] = publishedRead{pub, err}
	return pub, err
}

// kmsExpected returns the KMS release's published record of profile p when
// CheckKMSMeasurements is set.
func (s *suite) kmsExpected(ctx context.Context, kmsVersion string, p release.Profile) (*measure.Record, error) {
	if !s.o.CheckKMSMeasurements {
		return nil, nil
	}
	tag := release.KMS.TagPrefix() + kmsVersion
	pub, err := s.kmsPublishedOf(ctx, tag)
	if err != nil {
		return nil, err
	}
	rec, ok := pub.Profiles[p]
	if !ok {
		return nil, outcome.VerificationErrorf("%s: %s has no %s record", tag, release.PublishedMRTDsFile, p)
	}
	return &rec, nil
}

// nodeSuite runs deploy → boot verification → KMS attestation → key release → cleanup for
// every profile with the released pair.
func (s *suite) nodeSuite(ctx context.Context) Check {
	c := Check{ID: CheckNodeSuite, Name: "mero-tee node suite"}
	for _, p := range s.o.Profiles {
		name := caseName(s.kmsVersion(), s.nodeVersion(), p)
		r := s.pairRun(ctx, s.kmsVersion(), s.nodeVersion(), p)
		cs := successCase(name, s.kmsVersion(), s.nodeVersion(), p, r)
		s.observed[p] = r
		if r.kmsObserved != nil {
			s.kmsObserved[p] = *r.kmsObserved
		}
		c.Cases = append(c.Cases, cs)
		logCase(s.log, c, cs)
	}
	finish(s.log, &c)
	return c
}

// pairRun loads the KMS policy of kmsVersion/p and runs a node of nodeVersion/p against it.
func (s *suite) pairRun(ctx context.Context, kmsVersion, nodeVersion string, p release.Profile) *pairResult {
	lp, err := s.loadPolicy(ctx, kmsVersion, p)
	if err != nil {
		return &pairResult{step: StepPolicy, err: err}
	}
	exp, err := s.kmsExpected(ctx, kmsVersion, p)
	if err != nil {
		return &pairResult{step: StepAttest, err: err}
	}
	return s.run(ctx, lp, nodeVersion, p, exp)
}

// crossVersion is guardrail A: every catalog pair with the released KMS or node version, under
// every profile the entry lists, must release a key.
func (s *suite) crossVersion(ctx context.Context) Check {
	c := Check{ID: CheckCrossVer, Name: "cross-version"}
	if s.o.Catalog == nil {
		c.Status, c.Details = Skip, "no compatibility catalog given"
		finish(s.log, &c)
		return c
	}
	var entries []catalog.Entry
	seen := map[string]bool{}
	for _, e := range append(s.o.Catalog.Compatible(release.KMS, s.kmsVersion()), s.o.Catalog.Compatible(release.Node, s.nodeVersion())...) {
		if k := e.KMS + "|" + e.NodeImage; !seen[k] {
			seen[k] = true
			entries = append(entries, e)
		}
	}
	if len(entries) == 0 {
		c.Status, c.Details = Fail, fmt.Sprintf("the catalog lists no pair with kms %s or node image %s", s.kmsVersion(), s.nodeVersion())
		finish(s.log, &c)
		return c
	}
	for _, e := range entries {
		for _, p := range e.Profiles {
			name := caseName(e.KMS, e.NodeImage, p)
			cs := successCase(name, e.KMS, e.NodeImage, p, s.pairRun(ctx, e.KMS, e.NodeImage, p))
			if cs.Status == Fail {
				cs.Details = "the catalog pair does not work: " + cs.Details
			}
			c.Cases = append(c.Cases, cs)
			logCase(s.log, c, cs)
		}
	}
	finish(s.log, &c)
	return c
}

// isolation is guardrail B: a debug node against the locked-read-only policy must get exactly
// 403 PolicyViolation; a key, or any other answer, fails.
func (s *suite) isolation(ctx context.Context) Check {
	c := Check{ID: CheckIsolation, Name: "profile isolation"}
	name := fmt.Sprintf("debug node image %s ↔ kms %s (locked-read-only policy)", s.nodeVersion(), s.kmsVersion())
	cs := Case{Name: name, KMS: s.kmsVersion(), NodeImage: s.nodeVersion(), Profile: release.LockedReadOnly}
	lp, err := s.loadPolicy(ctx, s.kmsVersion(), release.LockedReadOnly)
	if err != nil {
		cs.Status, cs.Step, cs.Details = Fail, StepPolicy, err.Error()
	} else {
		r := s.run(ctx, lp, s.nodeVersion(), release.Debug, nil)
		cs.Observed = hexOf(r.observed)
		wantRefusal(&cs, r, "a debug node got a key from the locked-read-only KMS: the profiles are not isolated", nil)
	}
	c.Cases = append(c.Cases, cs)
	logCase(s.log, c, cs)
	finish(s.log, &c)
	return c
}

// wantRefusal judges a run that must end in 403 PolicyViolation; detailsOK, when set, must
// also accept the refusal's details.
func wantRefusal(cs *Case, r *pairResult, accepted string, detailsOK func(string) error) {
	switch {
	case r.err != nil:
		cs.Status, cs.Step, cs.Details = Fail, r.step, r.err.Error()
		return
	case r.keyErr == nil:
		cs.Status, cs.Step, cs.Details = Fail, StepExpectation, accepted
		return
	}
	ae, ok := kmsclient.AsAPIError(r.keyErr)
	if !ok {
		cs.Status, cs.Step, cs.Details = Fail, StepKeyRelease, "want 403 PolicyViolation, got: "+r.keyErr.Error()
		return
	}
	cs.HTTPStatus, cs.ErrorCode = ae.Status, ae.Code
	if ae.Status != 403 || ae.Code != kmsclient.CodePolicyViolation {
		cs.Status, cs.Step, cs.Details = Fail, StepExpectation, fmt.Sprintf("want 403 %s, got %d %s: %s", kmsclient.CodePolicyViolation, ae.Status, ae.Code, ae.Details)
		return
	}
	if detailsOK != nil {
		if err := detailsOK(ae.Details); err != nil {
			cs.Status, cs.Step, cs.Details = Fail, StepExpectation, err.Error()
			return
		}
	}
	cs.Status, cs.Details = Pass, fmt.Sprintf("refused with 403 %s: %s", ae.Code, ae.Details)
}

// stalePolicy is guardrail C: the new node against the previous KMS policy must be refused
// with a measurement mismatch; against the released (updated) policy it must get its key.
func (s *suite) stalePolicy(ctx context.Context) Check {
	c := Check{ID: CheckStalePolicy, Name: "stale policy"}
	p := s.o.StaleProfile
	stale, from, skip, err := s.stale(ctx, p)
	switch {
	case err != nil:
		cs := Case{Name: fmt.Sprintf("node image %s ↔ stale %s policy", s.nodeVersion(), p), NodeImage: s.nodeVersion(), Profile: p, Status: Fail, Step: StepPolicy, Details: err.Error()}
		c.Cases = append(c.Cases, cs)
		logCase(s.log, c, cs)
		finish(s.log, &c)
		return c
	case skip != "":
		c.Status, c.Details = Skip, skip
		finish(s.log, &c)
		return c
	}
	before := Case{Name: fmt.Sprintf("node image %s ↔ %s (%s)", s.nodeVersion(), from, p), KMS: stale.Policy.KMSVersion, NodeImage: s.nodeVersion(), Profile: p}
	r := s.run(ctx, stale, s.nodeVersion(), p, nil)
	before.Observed = hexOf(r.observed)
	wantRefusal(&before, r, fmt.Sprintf("the stale policy (%s) already accepts node image %s, which its node_versions do not list", from, s.nodeVersion()), measurementMismatch)
	c.Cases = append(c.Cases, before)
	logCase(s.log, c, before)

	after := successCase(fmt.Sprintf("node image %s ↔ updated policy of kms %s (%s)", s.nodeVersion(), s.kmsVersion(), p),
		s.kmsVersion(), s.nodeVersion(), p, s.pairRun(ctx, s.kmsVersion(), s.nodeVersion(), p))
	if after.Status == Fail {
		after.Details = "after the policy update: " + after.Details
	} else {
		after.Details = "accepted after the policy update"
	}
	c.Cases = append(c.Cases, after)
	logCase(s.log, c, after)
	finish(s.log, &c)
	return c
}

// measurementMismatch accepts a PolicyViolation that names a measurement register.
func measurementMismatch(details string) error {
	for _, reg := range tdx.RegisterNames() {
		if strings.HasPrefix(details, reg+":") {
			return nil
		}
	}
	return fmt.Errorf("refused, but not for a measurement mismatch (want an MRTD/RTMR mismatch): %s", details)
}

// stale finds the policy the node must be refused by: the previous KMS release's policy of
// profile p, or, with no earlier KMS release, one generated from the previous node release's
// published-mrtds.json. skip says why the check cannot run.
func (s *suite) stale(ctx context.Context, p release.Profile) (lp *policy.Loaded, from, skip string, err error) {
	names, err := s.o.Store.Tags(ctx)
	if err != nil {
		return nil, "", "", fmt.Errorf("list releases: %w", err)
	}
	tags := release.ParseTags(names)
	if prev, ok := release.Previous(s.kmsTag, tags, false); ok {
		lp, err := s.loadPolicy(ctx, prev.Version.String(), p)
		if err != nil {
			return nil, "", "", err
		}
		if slices.Contains(lp.Policy.NodeVersions, s.nodeVersion()) {
			return nil, "", fmt.Sprintf("the previous KMS policy (%s, %s) already lists node image %s in node_versions: the node is not new to it", prev, p, s.nodeVersion()), nil
		}
		return lp, "previous policy of " + prev.String(), "", nil
	}
	prevNode, ok := release.Previous(s.nodeTag, tags, false)
	if !ok {
		return nil, "", fmt.Sprintf("no KMS release before %s and no node release before %s to take a stale policy from", s.kmsTag, s.nodeTag), nil
	}
	pub, err := s.readPublished(ctx, prevNode.String())
	if err != nil {
		return nil, "", "", err
	}
	gen, err := policy.Generate(s.kmsVersion(), p, []*measure.Published{pub}, nil)
	if err != nil {
		return nil, "", "", err
	}
	if gen.NotReady() {
		return nil, "", fmt.Sprintf("%s has no %s measurements to build a stale policy from", prevNode, p), nil
	}
	data, err := gen.Marshal()
	if err != nil {
		return nil, "", "", err
	}
	lp, err = policy.LoadForKMS(data, "policy generated from "+prevNode.String(), "", s.kmsVersion(), string(p))
	if err != nil {
		return nil, "", "", err
	}
	return lp, "policy generated from " + prevNode.String(), "", nil
}

// consistency is guardrail D: the registers the node suite observed equal the node release's
// published-mrtds.json, profile by profile (and the KMS's, with CheckKMSMeasurements).
func (s *suite) consistency(ctx context.Context) Check {
	c := Check{ID: CheckConsistency, Name: "measurement consistency"}
	pub, err := s.readPublished(ctx, s.nodeTag.String())
	if err != nil {
		c.Status, c.Details = Fail, err.Error()
		finish(s.log, &c)
		return c
	}
	for _, p := range s.o.Profiles {
		cs := Case{Name: fmt.Sprintf("node image %s (%s) vs %s", s.nodeVersion(), p, release.PublishedMRTDsFile), NodeImage: s.nodeVersion(), Profile: p, Status: Pass}
		r := s.observed[p]
		rec, ok := pub.Profiles[p]
		switch {
		case r == nil || r.observed == nil:
			why := "the node suite did not run"
			if r != nil && r.err != nil {
				why = r.step + ": " + r.err.Error()
			}
			cs.Status, cs.Step, cs.Details = Fail, StepBoot, "no measurement observed: "+why
		case !ok:
			cs.Status, cs.Step, cs.Details, cs.Observed = Fail, StepExpectation, fmt.Sprintf("%s of %s has no %s record", release.PublishedMRTDsFile, s.nodeTag, p), hexOf(r.observed)
		default:
			compareCase(&cs, *r.observed, rec)
		}
		c.Cases = append(c.Cases, cs)
		logCase(s.log, c, cs)
	}
	if s.o.CheckKMSMeasurements {
		for _, p := range s.o.Profiles {
			cs := Case{Name: fmt.Sprintf("kms %s (%s) vs %s", s.kmsVersion(), p, release.PublishedMRTDsFile), KMS: s.kmsVersion(), Profile: p, Status: Pass}
			m, seen := s.kmsObserved[p]
			rec, err := s.kmsExpected(ctx, s.kmsVersion(), p)
			switch {
			case err != nil:
				cs.Status, cs.Step, cs.Details = Fail, StepExpectation, err.Error()
			case !seen:
				cs.Status, cs.Step, cs.Details = Fail, StepAttest, "no KMS measurement observed"
			default:
				compareCase(&cs, m, *rec)
			}
			c.Cases = append(c.Cases, cs)
			logCase(s.log, c, cs)
		}
	}
	finish(s.log, &c)
	return c
}

// compareCase judges a guardrail D case: the observed registers against the published record.
func compareCase(cs *Case, observed tdx.Measurements, published measure.Record) {
	cs.Observed = hexOf(&observed)
	if err := kmsclient.CompareRecord(observed, published); err != nil {
		cs.Status, cs.Step, cs.Details = Fail, StepExpectation, "observed ≠ published: "+err.Error()
		return
	}
	cs.Details = "MRTD and RTMR0–3 equal the published values"
}
