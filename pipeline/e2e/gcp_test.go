package e2e_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"

	"github.com/calimero-network/mero-release/examples/kms/local/e2etest"
	"github.com/calimero-network/mero-release/pipeline/agent/agenttest"
	"github.com/calimero-network/mero-release/pipeline/e2e"
	"github.com/calimero-network/mero-release/pipeline/gcp"
	"github.com/calimero-network/mero-release/pipeline/gcp/gcptest"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/packer"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
	"github.com/calimero-network/mero-release/pipeline/vm"
)

// TestMain lets the test binary play mero-tee-agent inside the fake's VMs (agenttest).
func TestMain(m *testing.M) {
	agenttest.MaybeRunAgent()
	os.Exit(m.Run())
}

// gcpImages names the GCP image of a node version and profile as a Packer build would
// (mero-tee-1-2-0-debug: GCE image names take no dots).
type gcpImages struct{}

func (gcpImages) Image(_ context.Context, version string, p release.Profile) (string, error) {
	return gcpImageName(version, p), nil
}

func gcpImageName(version string, p release.Profile) string {
	return "mero-tee-" + strings.ReplaceAll(version, ".", "-") + "-" + string(p)
}

// gcpWorld is the E2E world on provider gcp: the compute fake, whose VMs each run a real
// mero-tee-agent process (the test binary re-executed) quoting with the simulator booted
// from the image the VM was created from.
type gcpWorld struct {
	*world
	fake     *gcptest.Server
	provider *gcp.Provider
	agents   *agenttest.Processes
}

func newGCPWorld(t *testing.T, faults gcptest.Faults, agentFault agenttest.Fault, quoteTimeout time.Duration) *gcpWorld {
	t.Helper()
	w := newWorld(t, worldOpts{})
	manifests := map[string]string{} // GCP image name → simulator manifest
	for _, v := range []string{"1.1.0", "1.2.0"} {
		for _, p := range release.Profiles() {
			manifests[gcpImageName(v, p)] = tdxsim.ManifestPath(filepath.Join(w.ImagesDir, v), string(p))
		}
	}
	fake := gcptest.NewServer()
	t.Cleanup(fake.Close)
	fake.SetFaults(faults)
	imageFor := func(source, _ string) (string, error) {
		m, ok := manifests[gcptest.ImageName(source)]
		if !ok {
			return "", fmt.Errorf("no image %s", source)
		}
		return m, nil
	}
	guest, agents := agenttest.Guest(t, tdxsim.DefaultSeed, imageFor, func(string) agenttest.Fault { return agentFault })
	fake.SetGuest(guest)
	p, err := gcp.New(context.Background(), gcp.Config{
		Project: "mero-test", Zone: "us-central1-a",
		PollInterval: 10 * time.Millisecond, BootTimeout: time.Minute, QuoteTimeout: quoteTimeout,
		OperationTimeout: time.Minute, DeleteAttempts: 4,
	}, fake.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return &gcpWorld{world: w, fake: fake, provider: p, agents: agents}
}

// runGCP runs the E2E on provider gcp and checks that nothing outlives it: deletes equal
// creates, no VM is left, every agent process was stopped.
func (g *gcpWorld) runGCP(t *testing.T, mutate func(*e2e.Options)) *e2e.Report {
	t.Helper()
	rep := g.run(t, func(o *e2e.Options) {
		o.Provider = g.provider
		o.Images = gcpImages{}
		if mutate != nil {
			mutate(o)
		}
	})
	creates, deletes := g.fake.Counts()
	if creates != deletes || len(g.fake.Live()) != 0 {
		t.Errorf("VMs: %d created, %d deleted, left %v", creates, deletes, g.fake.Live())
	}
	if started, stopped := g.agents.Counts(); started != stopped {
		t.Errorf("agent processes: %d started, %d stopped", started, stopped)
	}
	return rep
}

func TestGCPNodeSuiteAndGuardrails(t *testing.T) {
	g := newGCPWorld(t, gcptest.Faults{}, agenttest.NoFault, 2*time.Minute)
	rep := g.runGCP(t, nil)
	if !rep.Passed || rep.Err() != nil {
		t.Fatalf("report failed: %v\n%s", rep.Err(), g.log)
	}
	want := map[string]int{e2e.CheckNodeSuite: 3, e2e.CheckCrossVer: 6, e2e.CheckIsolation: 1, e2e.CheckStalePolicy: 2, e2e.CheckConsistency: 3}
	for id, n := range want {
		c := check(t, rep, id)
		if c.Status != e2e.Pass || len(c.Cases) != n {
			t.Errorf("check %s: %s with %d cases, want pass with %d", id, c.Status, len(c.Cases), n)
		}
	}
	creates, _ := g.fake.Counts()
	started, _ := g.agents.Counts()
	if creates == 0 || started != creates {
		t.Errorf("%d VMs created, %d agent processes started: every VM must run the agent", creates, started)
	}
	// Key release went through the agent: quote requests in the instance metadata.
	reqs := g.fake.Requests()
	if n := countSuffix(reqs, "/setMetadata"); n < 2*3 {
		t.Errorf("%d setMetadata requests; want at least two key releases per node-suite VM:\n%s", n, strings.Join(reqs, "\n"))
	}
	if !strings.Contains(g.log.String(), "[PASS]") {
		t.Errorf("no [PASS] line:\n%s", g.log)
	}
	t.Logf("provider gcp: %d VMs created and deleted, %d agent processes, %d compute API requests", creates, started, len(reqs))
}

func countSuffix(reqs []string, suffix string) int {
	n := 0
	for _, r := range reqs {
		if strings.HasSuffix(r, suffix) {
			n++
		}
	}
	return n
}

// TestGCPFaultsLeaveNothingBehind injects a failure at every step of a node run on provider
// gcp — the insert, the boot, the agent, the boot quote, the quote requests, the deletion —
// and checks the node suite fails at that step (or passes, for transient failures) while
// deletes equal creates and no agent process outlives its VM.
func TestGCPFaultsLeaveNothingBehind(t *testing.T) {
	tests := []struct {
		name    string
		faults  gcptest.Faults
		agent   agenttest.Fault
		timeout time.Duration
		step    string // "" = the node suite passes
		details string
	}{
		{name: "insert refused", faults: gcptest.Faults{InsertStatus: 403}, step: e2e.StepDeploy, details: "injected insert failure"},
		{name: "insert operation fails", faults: gcptest.Faults{InsertOpError: "quota exceeded"}, step: e2e.StepDeploy, details: "quota exceeded"},
		{name: "insert response lost", faults: gcptest.Faults{DropInsertResponse: true}, step: e2e.StepDeploy, details: "insert instance"},
		{name: "VM terminated while booting", faults: gcptest.Faults{Statuses: []string{"STAGING", "TERMINATED"}}, step: e2e.StepDeploy, details: "TERMINATED"},
		{name: "agent crashes at boot", agent: agenttest.ExitAtBoot, timeout: 3 * time.Second, step: e2e.StepBoot, details: "does the image run mero-tee-agent"},
		{name: "TSM fails the boot quote", agent: agenttest.TSMFailsAtBoot, step: e2e.StepBoot, details: "injected TSM failure"},
		{name: "guest attributes unreadable", faults: gcptest.Faults{GuestAttributeStatus: 500}, step: e2e.StepBoot, details: "get guest attributes"},
		{name: "quote request refused", faults: gcptest.Faults{SetMetadataStatus: 403}, step: e2e.StepKeyRelease, details: "send quote request"},
		{name: "TSM fails a quote request", agent: agenttest.TSMFailsOnRequest, step: e2e.StepKeyRelease, details: "injected TSM failure on a request"},
		{name: "agent dies on a quote request", agent: agenttest.SilentOnRequest, timeout: 3 * time.Second, step: e2e.StepKeyRelease, details: "no TDX quote in guest attribute"},
		{name: "deletes fail transiently", faults: gcptest.Faults{DeleteFailures: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 2 * time.Minute
			}
			g := newGCPWorld(t, tt.faults, tt.agent, timeout)
			rep := g.runGCP(t, func(o *e2e.Options) {
				o.Profiles = []release.Profile{release.Debug}
				o.Catalog = nil
			})
			c := check(t, rep, e2e.CheckNodeSuite)
			if tt.step == "" {
				if c.Status != e2e.Pass {
					t.Fatalf("node suite %+v\n%s", c, g.log)
				}
			} else if c.Status != e2e.Fail || c.Cases[0].Step != tt.step || !strings.Contains(c.Cases[0].Details, tt.details) {
				t.Fatalf("node suite: %s at %q: %s; want a failure at %q mentioning %q", c.Status, c.Cases[0].Step, c.Cases[0].Details, tt.step, tt.details)
			}
			creates, deletes := g.fake.Counts()
			t.Logf("%d VMs created, %d deleted", creates, deletes)
			if tt.faults.InsertStatus == 0 && creates == 0 {
				t.Errorf("no VM was created: the fault was not reached")
			}
		})
	}
}

// TestGCPAgentAnswersOnlyWellFormedRequests writes malformed quote requests into a VM's
// metadata: the agent answers each with an error under the request's id (or ignores one
// without a valid id) and never quotes; a good request afterwards is answered.
func TestGCPAgentAnswersOnlyWellFormedRequests(t *testing.T) {
	g := newGCPWorld(t, gcptest.Faults{}, agenttest.NoFault, 2*time.Minute)
	ctx := context.Background()
	var nonce [64]byte
	nonce[0] = 7
	inst, err := g.provider.Create(ctx, vmSpec("mero-agent-requests", gcpImageName("1.2.0", release.Debug), nonce))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := g.provider.Delete(ctx, inst.Name()); err != nil {
			t.Error(err)
		}
		if c, d := g.fake.Counts(); c != d {
			t.Errorf("%d created, %d deleted", c, d)
		}
	}()
	if _, err := inst.Quote(ctx); err != nil {
		t.Fatalf("boot quote: %v", err)
	}
	for _, bad := range []string{"bad1:zz", "bad2:" + strings.Repeat("AB", 64), "bad3:" + strings.Repeat("0", 130), "bad4"} {
		setRequest(t, g, inst.Name(), bad)
		id, _, _ := strings.Cut(bad, ":")
		waitAttr(t, g, inst.Name(), "mero-tee/quote-"+id+"-error")
		if _, ok := g.fake.GuestAttributes(inst.Name())["mero-tee/quote-"+id]; ok {
			t.Errorf("request %q was quoted", bad)
		}
	}
	var rd [64]byte
	rd[63] = 1
	raw, err := inst.(e2e.ReportDataQuoter).QuoteReportData(ctx, rd)
	if err != nil {
		t.Fatalf("a good request after bad ones: %v", err)
	}
	if len(raw) < 1000 {
		t.Errorf("quote of %d bytes", len(raw))
	}
	// Only the current answer is kept: the earlier errors were removed.
	for k := range g.fake.GuestAttributes(inst.Name()) {
		if strings.Contains(k, "bad") {
			t.Errorf("stale answer %s kept", k)
		}
	}
}

func setRequest(t *testing.T, g *gcpWorld, name, value string) {
	t.Helper()
	inst := g.fake.Instance(name)
	md := inst.GetMetadata()
	var items []*computepb.Items
	for _, it := range md.GetItems() {
		if it.GetKey() != gcp.MetadataQuoteRequest {
			items = append(items, it)
		}
	}
	items = append(items, &computepb.Items{Key: &[]string{gcp.MetadataQuoteRequest}[0], Value: &value})
	md.Items = items
	inst.Metadata = md
	g.fake.AddInstance(inst)
}

func waitAttr(t *testing.T, g *gcpWorld, name, key string) {
	t.Helper()
	for range 3000 {
		if _, ok := g.fake.GuestAttributes(name)[key]; ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("guest attribute %s never published; have %v", key, slices.Sorted(maps.Keys(g.fake.GuestAttributes(name))))
}

func vmSpec(name, image string, nonce [64]byte) vm.Spec {
	return vm.Spec{Name: name, Image: image, Profile: release.Debug, Nonce: nonce, Labels: map[string]string{vm.LabelRunID: "test"}}
}

// packerImages resolves node 1.2.0's images from a Packer manifest's builds and the other
// versions by name.
type packerImages map[release.Profile]string

func (m packerImages) Image(ctx context.Context, version string, p release.Profile) (string, error) {
	if version == "1.2.0" {
		return m[p], nil
	}
	return gcpImages{}.Image(ctx, version, p)
}

// TestGCPPackerMeasureE2E is the node release's GCP path end to end without a cloud: the
// images of a Packer manifest (as the manifest post-processor writes it) → measure-node on
// provider gcp (a real agent per VM) → measurements equal to the images' true ones → the E2E
// node suite and guardrails on the same images.
func TestGCPPackerMeasureE2E(t *testing.T) {
	g := newGCPWorld(t, gcptest.Faults{}, agenttest.NoFault, 2*time.Minute)
	var builds []string
	for _, p := range release.Profiles() {
		builds = append(builds, fmt.Sprintf(`{"name": %q, "builder_type": "googlecompute", "artifact_id": %q, "packer_run_uuid": "r1", "custom_data": {"profile": %q, "source_image": "ubuntu-2404-tdx-v20250101"}}`,
			p, gcpImageName("1.2.0", p), p))
	}
	manifest := `{"builds": [` + strings.Join(builds, ",") + `], "last_run_uuid": "r1"}`
	parsed, err := packer.ReadManifest(strings.NewReader(manifest), "packer-manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	images, err := packer.Images(parsed)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := measure.MeasureNode(context.Background(), g.provider, images, measure.NodeOptions{
		Version: "1.2.0", TrustedRoots: g.Authority.RootPool(), Tag: "mero-tee-v1.2.0", RunID: "test",
		VerifyAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatalf("measure on provider gcp: %v\n%s", err, g.agents.Logs())
	}
	truth := e2etest.Measured(t, "1.2.0")
	for _, p := range release.Profiles() {
		got, want := pub.Profiles[p], truth.Profiles[p]
		if got.MRTD != want.MRTD || got.RTMR0 != want.RTMR0 || got.RTMR1 != want.RTMR1 || got.RTMR2 != want.RTMR2 || got.RTMR3 != want.RTMR3 {
			t.Errorf("%s: measured %+v, want %+v", p, got, want)
		}
		if got.Source != gcp.Source {
			t.Errorf("%s: source %q", p, got.Source)
		}
	}
	rep := g.runGCP(t, func(o *e2e.Options) { o.Images = packerImages(images) })
	if !rep.Passed {
		t.Fatalf("E2E on the Packer images: %v\n%s", rep.Err(), g.log)
	}
}
