package migrate

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/calimero-network/mero-release/pipeline/e2e"
	"github.com/calimero-network/mero-release/pipeline/kmsclient"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/store"
	"github.com/calimero-network/mero-release/pipeline/tdx"
	"github.com/calimero-network/mero-release/pipeline/vm"
)

// The steps of the post-migration check, in order.
const (
	StepHealth     = "health"
	StepAttest     = "KMS attestation"
	StepDeploy     = "deploy"
	StepBoot       = "boot verification"
	StepKeyRelease = "key release"
	StepCleanup    = "cleanup"
)

// Status is the result of a step.
type Status string

// The step statuses. A skipped step could not run because an earlier one failed.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Warn Status = "warn"
	Skip Status = "skip"
)

// CheckOptions configure Check.
type CheckOptions struct {
	// KMSURL is the migrated KMS (http:// or https://).
	KMSURL string
	// Profile is the profile the KMS runs as and the node boots.
	Profile release.Profile
	// NodeRelease is the node-image release (mero-tee-vX.Y.Z) whose image the node boots.
	NodeRelease string
	// Store holds the node release.
	Store store.Store
	// Images resolves the node release's image (default: its node-image-manifest.json).
	Images e2e.ImageResolver
	// Provider boots the node (the TDX simulator locally).
	Provider vm.Provider
	// NodeRoots verify the node's boot quote (the provider's root).
	NodeRoots *x509.CertPool
	// KMSRoots verify the KMS's quote; nil means Intel's SGX root.
	KMSRoots *x509.CertPool
	// KMSVersion, PolicySHA256 and ExpectedKMS, when set, are what the KMS must report: the
	// migrated version, the policy pin, the KMS release's published measurements of the profile.
	KMSVersion   string
	PolicySHA256 string
	ExpectedKMS  *measure.Record
	// HTTPClient talks to the KMS (nil: a client with a 30 s timeout).
	HTTPClient *http.Client
	// RunID labels the node VM (empty: random).
	RunID string
	// Rand is the randomness of nonces and keys (nil: crypto/rand); Now the clock of
	// certificate validity (nil: time.Now).
	Rand io.Reader
	Now  func() time.Time
	// Log receives a [PASS]/[FAIL]/[WARN] line per step.
	Log *outcome.Logger
}

// Step is one step of the check.
type Step struct {
	Name    string `json:"name"`
	Status  Status `json:"status"`
	Details string `json:"details"`
}

// CheckReport is the result of Check.
type CheckReport struct {
	KMSURL      string          `json:"kms_url"`
	Profile     release.Profile `json:"profile"`
	NodeRelease string          `json:"node_release"`
	Passed      bool            `json:"passed"`
	Steps       []Step          `json:"steps"`
	// KMS are the KMS's registers from its verified quote; Node the node's from its boot quote.
	KMS  *kmsclient.Measurements `json:"kms_measurements,omitempty"`
	Node *kmsclient.Measurements `json:"node_measurements,omitempty"`
}

// Err is nil when the check passed, else a verification error (exit 10) naming each failed step.
func (r *CheckReport) Err() error {
	var failed []string
	for _, s := range r.Steps {
		if s.Status == Fail {
			failed = append(failed, s.Name+": "+s.Details)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return outcome.VerificationErrorf("post-migration check of %s failed: %s", r.KMSURL, strings.Join(failed, "; "))
}

// Check is the post-migration check (SPEC §10): GET /health reports the expected version, profile
// and a ready policy; POST /attest returns a quote that verifies against KMSRoots and binds a fresh
// nonce (and the expected measurements and policy digest); a node booted from the node release's
// image of the profile proves its boot quote and gets a key through challenge/get-key. The node VM
// is deleted on every path. The error is for what prevents the check from running (bad options, the
// node release missing from the store: exit 2 or 11); failed steps are in the report (Err).
func Check(ctx context.Context, o CheckOptions) (*CheckReport, error) {
	switch {
	case o.KMSURL == "":
		return nil, outcome.UsageErrorf("--kms-url is required")
	case o.Store == nil:
		return nil, outcome.UsageErrorf("no release store")
	case o.Provider == nil:
		return nil, outcome.UsageErrorf("no VM provider")
	case o.NodeRoots == nil:
		return nil, outcome.UsageErrorf("no trusted root for node quotes")
	}
	if _, err := release.ParseProfile(string(o.Profile)); err != nil {
		return nil, fmt.Errorf("--profile: %w", err)
	}
	tag, err := release.ParseTag(o.NodeRelease)
	if err != nil {
		return nil, fmt.Errorf("--node-release: %w", err)
	}
	if tag.Family != release.Node {
		return nil, outcome.UsageErrorf("--node-release %s: not a %s tag", tag, release.Node)
	}
	if o.KMSVersion != "" {
		if _, err := release.ParseVersion(o.KMSVersion); err != nil {
			return nil, fmt.Errorf("--kms-version: %w", err)
		}
	}
	if _, err := o.Store.Release(ctx, tag.String()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, outcome.MissingAssetErrorf("release %s: not found in the store", tag)
		}
		return nil, fmt.Errorf("release %s: %w", tag, err)
	}
	if o.Images == nil {
		o.Images = e2e.ManifestImages{Store: o.Store}
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	image, err := o.Images.Image(ctx, tag.Version.String(), o.Profile)
	if err != nil {
		return nil, err
	}
	client, err := kmsclient.New(o.KMSURL, kmsclient.Options{HTTPClient: o.HTTPClient, TrustedRoots: o.KMSRoots, Rand: o.Rand, Now: o.Now})
	if err != nil {
		return nil, outcome.UsageErrorf("--kms-url %q: %v", o.KMSURL, err)
	}
	c := &checker{o: o, rep: &CheckReport{KMSURL: o.KMSURL, Profile: o.Profile, NodeRelease: tag.String()}, client: client}
	c.health(ctx)
	attested := c.attest(ctx)
	c.node(ctx, tag, image, attested)
	c.rep.Passed = c.rep.Err() == nil
	return c.rep, nil
}

type checker struct {
	o      CheckOptions
	rep    *CheckReport
	client *kmsclient.Client
}

func (c *checker) step(name string, s Status, format string, args ...any) {
	st := Step{Name: name, Status: s, Details: fmt.Sprintf(format, args...)}
	c.rep.Steps = append(c.rep.Steps, st)
	line := st.Name + ": " + st.Details
	switch s {
	case Pass:
		c.o.Log.Passf("%s", line)
	case Fail:
		c.o.Log.Failf("%s", line)
	default:
		c.o.Log.Warnf("%s", line)
	}
}

// expectations compares what the KMS reports with the expected version, profile and pin.
func (c *checker) expectations(version, profile, sha string) []string {
	var bad []string
	if profile != string(c.o.Profile) {
		bad = append(bad, fmt.Sprintf("profile is %q, want %q", profile, c.o.Profile))
	}
	if c.o.KMSVersion != "" && version != c.o.KMSVersion {
		bad = append(bad, fmt.Sprintf("version is %q, want %q", version, c.o.KMSVersion))
	}
	if c.o.PolicySHA256 != "" && sha != "" && !strings.EqualFold(sha, c.o.PolicySHA256) {
		bad = append(bad, fmt.Sprintf("policy SHA-256 is %s, want %s", sha, c.o.PolicySHA256))
	}
	return bad
}

func (c *checker) health(ctx context.Context) {
	h, err := c.client.Health(ctx)
	if err != nil {
		c.step(StepHealth, Fail, "GET /health: %v", err)
		return
	}
	if h.Status != "ok" {
		c.step(StepHealth, Fail, "GET /health: status %q", h.Status)
		return
	}
	if bad := c.expectations(h.KMSVersion, h.Profile, ""); len(bad) > 0 {
		c.step(StepHealth, Fail, "GET /health: %s", strings.Join(bad, "; "))
		return
	}
	if h.PolicyStatus == policy.StatusNotReady {
		c.step(StepHealth, Warn, "kms %s (%s) runs a %s policy: it releases keys to any node", h.KMSVersion, h.Profile, policy.StatusNotReady)
		return
	}
	c.step(StepHealth, Pass, "kms %s (%s), policy %s", h.KMSVersion, h.Profile, h.PolicyStatus)
}

// attest runs POST /attest and reports whether the KMS was verified.
func (c *checker) attest(ctx context.Context) bool {
	att, err := c.client.Attest(ctx, kmsclient.AttestOptions{Expected: c.o.ExpectedKMS})
	if err != nil {
		c.step(StepAttest, Fail, "POST /attest: %v", err)
		return false
	}
	c.rep.KMS = hexOf(att.Quote.Measurements())
	r := att.Response
	if r.PolicySHA256 == "" && c.o.PolicySHA256 != "" {
		c.step(StepAttest, Fail, "POST /attest: the KMS does not report its policy SHA-256 (want %s)", c.o.PolicySHA256)
		return false
	}
	if bad := c.expectations(r.KMSVersion, r.Profile, r.PolicySHA256); len(bad) > 0 {
		c.step(StepAttest, Fail, "POST /attest: %s", strings.Join(bad, "; "))
		return false
	}
	extra := ""
	if c.o.ExpectedKMS != nil {
		extra = ", measurements equal the published ones"
	}
	c.step(StepAttest, Pass, "quote verified, report data binds our nonce%s (MRTD %s…, policy %s)", extra, c.rep.KMS.MRTD[:16], shortHash(r.PolicySHA256))
	return true
}

// node deploys the node, verifies its boot quote and, when the KMS was verified, requests a key.
func (c *checker) node(ctx context.Context, tag release.Tag, image string, attested bool) {
	runID := c.o.RunID
	if runID == "" {
		b := make([]byte, 4)
		if _, err := io.ReadFull(c.o.Rand, b); err != nil {
			c.step(StepDeploy, Fail, "run id: %v", err)
			return
		}
		runID = hex.EncodeToString(b)
	}
	spec := vm.Spec{
		Name:    "mero-migrate-" + strings.ToLower(runID),
		Image:   image,
		Profile: c.o.Profile,
		Labels:  map[string]string{vm.LabelRunID: runID, vm.LabelTag: tag.String()},
	}
	if _, err := io.ReadFull(c.o.Rand, spec.Nonce[:]); err != nil {
		c.step(StepDeploy, Fail, "nonce: %v", err)
		return
	}
	entered := false
	var fnErr error
	err := vm.WithVM(ctx, c.o.Provider, spec, func(ctx context.Context, inst vm.Instance) error {
		entered = true
		fnErr = c.onNode(ctx, inst, spec, tag, image, attested, runID)
		return fnErr
	})
	switch {
	case !entered:
		c.step(StepDeploy, Fail, "%v", err)
	case err != nil && err != fnErr: // not the same error: WithVM joined a failed deletion
		c.step(StepCleanup, Fail, "%v", err)
	default:
		c.step(StepCleanup, Pass, "node %s deleted", spec.Name)
	}
}

// onNode runs boot verification and key release on the booted node.
func (c *checker) onNode(ctx context.Context, inst vm.Instance, spec vm.Spec, tag release.Tag, image string, attested bool, runID string) error {
	c.step(StepDeploy, Pass, "node %s booted from %s (%s)", spec.Name, tag, image)
	raw, err := inst.Quote(ctx)
	var q *tdx.Quote
	if err == nil {
		q, err = tdx.ParseQuote(raw)
	}
	if err == nil {
		err = q.Verify(tdx.VerifyOptions{TrustedRoots: c.o.NodeRoots, Now: c.o.Now()})
	}
	if err == nil {
		err = vm.CheckReportData(q.ReportData, spec.Nonce)
	}
	if err != nil {
		c.step(StepBoot, Fail, "%v", err)
		return err
	}
	c.rep.Node = hexOf(q.Measurements())
	c.step(StepBoot, Pass, "the node's quote verifies and binds the boot nonce (MRTD %s…)", c.rep.Node.MRTD[:16])
	if !attested {
		c.step(StepKeyRelease, Skip, "not attempted: the KMS was not verified")
		return nil
	}
	peer, err := kmsclient.NewPeer("migrate-check-"+string(c.o.Profile)+"-"+strings.ToLower(runID), c.o.Rand)
	if err != nil {
		c.step(StepKeyRelease, Fail, "%v", err)
		return err
	}
	kr, err := c.client.RequestKey(ctx, e2e.NodeQuoter(ctx, inst, c.o.Provider), peer)
	switch {
	case err != nil:
		c.step(StepKeyRelease, Fail, "%v", err)
		return err
	case len(kr.Key) != kmsclient.KeySize || bytes.Equal(kr.Key, make([]byte, len(kr.Key))):
		c.step(StepKeyRelease, Fail, "the KMS released a %d-byte key that is all zero or not %d bytes", len(kr.Key), kmsclient.KeySize)
		return outcome.VerificationErrorf("bad key")
	}
	c.step(StepKeyRelease, Pass, "challenge %s answered: a %d-byte key released to peer %s", kr.ChallengeID, len(kr.Key), peer.ID)
	return nil
}

func hexOf(m tdx.Measurements) *kmsclient.Measurements {
	h := m.Hex()
	return &kmsclient.Measurements{MRTD: h.MRTD, RTMR0: h.RTMR0, RTMR1: h.RTMR1, RTMR2: h.RTMR2, RTMR3: h.RTMR3}
}

func shortHash(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	if h == "" {
		return "digest not reported"
	}
	return h
}
