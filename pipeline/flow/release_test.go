package flow_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anchore/syft/syft"
	"github.com/anchore/syft/syft/cataloging"
	kms "github.com/calimero-network/mero-release/examples/kms"
	"github.com/calimero-network/mero-release/examples/kms/local/e2etest"
	"github.com/calimero-network/mero-release/pipeline/audit"
	"github.com/calimero-network/mero-release/pipeline/catalog"
	"github.com/calimero-network/mero-release/pipeline/dstack"
	"github.com/calimero-network/mero-release/pipeline/e2e"
	"github.com/calimero-network/mero-release/pipeline/flow"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/store"
	"github.com/calimero-network/mero-release/pipeline/vuln"
)

// nodeStages are the stages of the node-image pipeline, in order.
func nodeStages() []string {
	return []string{"version-sync", "draft", "counterpart", "image-manifest", "measure", "candidate-policy", "sbom", "vulnerabilities", "release-notes", "provenance", "checksums",
		"sign", "stage", "audit-staged", "e2e", "dependency-guard", "publish", "audit", "catalog"}
}

// kmsStages are the stages of the KMS pipeline, in order.
func kmsStages() []string {
	return []string{"version-sync", "draft", "counterpart", "build-images", "policies", "measure", "sbom", "vulnerabilities",
		"release-notes", "provenance", "checksums", "sign", "stage", "audit-staged", "push-digests", "e2e", "dependency-guard", "push-images", "publish", "audit", "catalog"}
}

// fixture is what every pipeline run of this file shares, made once per test binary run of
// TestPipelines: the KMS binary, the signing key, the example node image and the catalog.
type fixture struct {
	// ctx carries one syft license scanner for every SBOM of the suite, configured as syft's
	// default (what pipeline/sbom uses): building it is most of an SBOM's cost.
	ctx context.Context
	// kmsBinary is ./examples/kms/cmd/mero-kms built by flow.BuildGoBinary; smallBinary is a
	// small static file for the runs that are not about the image (the image builder does not
	// execute it, and compressing three 10 MB layers per run is the next biggest cost).
	kmsBinary, smallBinary string
	signer                 *sign.KeySigner
	publicKey              crypto.PublicKey
	nodeImage              string
	// vulnDB is a grype database built from the repository's advisory list (what the CLI's
	// default builds for release-local): every release of the suite is scanned against it.
	vulnDB  string
	catalog []byte
	created time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{nodeImage: filepath.Join(root, "examples", "node-image"), created: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)}
	bin := t.TempDir()
	f.kmsBinary = filepath.Join(bin, "built", "mero-kms")
	if err := flow.BuildGoBinary(context.Background(), root, "./examples/kms/cmd/mero-kms", f.kmsBinary); err != nil {
		t.Fatal(err)
	}
	f.smallBinary = filepath.Join(bin, "mero-kms-small")
	if err := os.WriteFile(f.smallBinary, []byte("#!/bin/false\nnot the KMS: a stand-in for image tests\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if f.ctx, err = syft.SetContextLicenseScanner(context.Background(), cataloging.DefaultLicenseConfig()); err != nil {
		t.Fatal(err)
	}
	password := []byte("flow-test")
	privPEM, pubPEM, err := sign.GenerateKeyPair(password) // cosign format, scrypt-encrypted
	if err != nil {
		t.Fatal(err)
	}
	priv, err := sign.LoadPrivateKey(privPEM, password)
	if err != nil {
		t.Fatal(err)
	}
	if f.signer, err = sign.NewKeySigner(priv, sign.KeySignerOptions{}); err != nil {
		t.Fatal(err)
	}
	if f.publicKey, err = sign.LoadPublicKey(pubPEM); err != nil {
		t.Fatal(err)
	}
	if f.catalog, err = os.ReadFile(filepath.Join(root, "compatibility-catalog.json")); err != nil {
		t.Fatal(err)
	}
	advisories, err := vuln.LoadAdvisories(filepath.Join(root, "vulndb", "advisories.json"))
	if err != nil {
		t.Fatal(err)
	}
	f.vulnDB = filepath.Join(bin, "vulndb")
	if err := vuln.BuildDB(context.Background(), f.vulnDB, advisories); err != nil {
		t.Fatal(err)
	}
	return f
}

// world is one release store with its simulated TDX platform, in-process KMS launcher, work
// directory, git repository (for the notes) and a copy of the repository's catalog.
type world struct {
	*e2etest.World
	f          *fixture
	t          *testing.T
	kmsBinary  string // the KMS binary of the product (default the fixture's small one)
	work       string
	repo       string
	catalog    string
	catalogOut string
	log        bytes.Buffer // written only through one outcome.Logger (its mutex)
	logger     *outcome.Logger
}

func (f *fixture) world(t *testing.T) *world {
	t.Helper()
	w := &world{World: e2etest.New(t), f: f, t: t, kmsBinary: f.smallBinary}
	w.World.Signer = f.signer // counterparts are read only after their bundles verify
	w.work = filepath.Join(w.Root, "work")
	w.repo = gitRepo(t, filepath.Join(w.Root, "repo"),
		commit{"feat(kms): key rotation (#12)", f.created.Add(-2 * time.Hour)},
		commit{"fix: refuse stale challenges (#13)", f.created.Add(-time.Hour)})
	w.catalog = filepath.Join(w.Root, "compatibility-catalog.json")
	if err := os.WriteFile(w.catalog, f.catalog, 0o644); err != nil {
		t.Fatal(err)
	}
	w.catalogOut = filepath.Join(w.work, "compatibility-catalog.json")
	w.logger = outcome.NewLogger(&w.log)
	w.KMS.Log = w.logger
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pipeline log:\n%s", w.log.String())
		}
		if n := w.KMS.Open(); n != 0 {
			t.Errorf("%d in-process KMS instances still open", n)
		}
		if vms := w.Provider.Running(); len(vms) != 0 {
			t.Errorf("VMs still running: %v", vms)
		}
	})
	return w
}

// config is the local configuration the CLI builds (releaseConfig), for tag.
func (w *world) config(tag string, mods ...func(*flow.Config)) flow.Config {
	tg := release.MustParseTag(tag)
	measuredAt := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	cfg := flow.Config{
		Tag: tg, ConfiguredVersion: tg.Version.String(), Store: w.Store, WorkDir: w.work, RepoDir: w.repo,
		CatalogPath: w.catalog, CatalogOut: w.catalogOut,
		Signer: w.f.signer, Audit: audit.Config{PublicKey: w.f.publicKey},
		Provider: w.Provider, NodeRoots: w.Provider.RootPool(), Authority: w.Authority, KMSLauncher: w.KMS,
		Created: w.f.created, Now: func() time.Time { return measuredAt }, RunID: "flow-test", Log: w.logger,
		Vuln: flow.VulnConfig{DB: w.f.vulnDB},
	}
	for _, m := range mods {
		m(&cfg)
	}
	return cfg
}

func (f *fixture) nodeProduct() flow.NodeProduct {
	images := map[release.Profile]string{}
	for _, p := range release.Profiles() {
		images[p] = f.nodeImage
	}
	return flow.NodeProduct{Images: images, SBOMPath: f.nodeImage, SBOMKind: "dir"}
}

func (w *world) kmsProduct() flow.KMSProduct {
	return flow.KMSProduct{Binary: w.kmsBinary, AppCompose: kms.AppCompose, OSImage: dstack.PinnedOSImage()}
}

func (w *world) releaseNode(tag string, mods ...func(*flow.Config)) (*flow.Report, error) {
	return flow.ReleaseNode(w.f.ctx, w.config(tag, mods...), w.f.nodeProduct())
}

func (w *world) releaseKMS(tag string, mods ...func(*flow.Config)) (*flow.Report, error) {
	return flow.ReleaseKMS(w.f.ctx, w.config(tag, mods...), w.kmsProduct())
}

func counterpart(v string) func(*flow.Config) { return func(c *flow.Config) { c.Counterpart = v } }

// authorNotes writes an author notes file and configures it.
func (w *world) authorNotes(body string) func(*flow.Config) {
	f, err := os.CreateTemp(w.Root, "notes-*.md")
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := f.WriteString(body); err != nil {
		w.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		w.t.Fatal(err)
	}
	return func(c *flow.Config) { c.AuthorNotes = f.Name() }
}

// stableNotes are author notes with every section a stable release needs that is not generated.
const stableNotes = `The 1.3 line.

## Breaking changes

None.

## Upgrade path

Roll the KMS first, then the nodes.
`

// stages returns the report's stage statuses by name, and checks the order of the names.
func stages(t *testing.T, rep *flow.Report, want []string) map[string]flow.StageResult {
	t.Helper()
	var names []string
	out := map[string]flow.StageResult{}
	for _, s := range rep.Stages {
		names = append(names, s.Name)
		out[s.Name] = s
	}
	if !slices.Equal(names, want) {
		t.Errorf("stages %v, want %v", names, want)
	}
	return out
}

// wantStatus checks the status of each named stage and that its detail contains detail.
func wantStatus(t *testing.T, got map[string]flow.StageResult, status flow.Status, detail string, names ...string) {
	t.Helper()
	for _, n := range names {
		s, ok := got[n]
		if !ok {
			t.Errorf("stage %s: not in the report", n)
			continue
		}
		if s.Status != status {
			t.Errorf("stage %s: status %s (%s), want %s", n, s.Status, s.Detail, status)
		}
		if !strings.Contains(s.Detail, detail) {
			t.Errorf("stage %s: detail %q does not contain %q", n, s.Detail, detail)
		}
	}
}

// except returns all but the given names.
func except(all []string, but ...string) []string {
	return slices.DeleteFunc(slices.Clone(all), func(s string) bool { return slices.Contains(but, s) })
}

// wantReportFile checks that WORK/<tag>/report.json holds the returned report.
func (w *world) wantReportFile(t *testing.T, rep *flow.Report) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(w.work, rep.Tag, "report.json"))
	if err != nil {
		t.Fatalf("report.json: %v", err)
	}
	var got flow.Report
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("report.json: %v", err)
	}
	if !reflect.DeepEqual(&got, rep) {
		t.Errorf("report.json\n%s\ndiffers from the returned report %+v", data, *rep)
	}
}

// wantPublished checks that tag is published in the world's store with exactly the family's
// assets, with the class's prerelease flag, and that the auditor passes it.
func (w *world) wantPublished(t *testing.T, tag string) *store.Release {
	t.Helper()
	ctx := context.Background()
	tg := release.MustParseTag(tag)
	rel, err := w.Store.Release(ctx, tag)
	if err != nil {
		t.Fatalf("%s: %v", tag, err)
	}
	if rel.Draft {
		t.Errorf("%s is a draft", tag)
	}
	if rel.Prerelease != tg.Version.IsRC() {
		t.Errorf("%s: prerelease %v", tag, rel.Prerelease)
	}
	if rel.Latest && tg.Version.IsRC() {
		t.Errorf("%s: a release candidate is marked latest", tag)
	}
	var names []string
	for _, a := range rel.Assets {
		names = append(names, a.Name)
	}
	slices.Sort(names)
	if want := release.ExpectedAssets(tg.Family).All(); !slices.Equal(names, want) {
		t.Errorf("%s assets %v, want %v", tag, names, want)
	}
	tags, err := w.Store.Tags(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(tags, tag) {
		t.Errorf("%s is not among the published tags %v", tag, tags)
	}
	rep, err := audit.Audit(ctx, w.Store, tg, audit.Config{PublicKey: w.f.publicKey})
	if err != nil {
		t.Fatalf("audit %s: %v", tag, err)
	}
	if err := rep.Err(); err != nil || !rep.Passed {
		t.Errorf("audit %s: passed %v: %v", tag, rep.Passed, err)
	}
	return rel
}

// wantNoRelease checks that the store has no release for tag at all, not even a draft.
func (w *world) wantNoRelease(t *testing.T, tag string) {
	t.Helper()
	rel, err := w.Store.Release(context.Background(), tag)
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("%s: the store holds %+v (err %v), want no release at all", tag, rel, err)
	}
}

// wantRefused checks a pipeline error's exit code and message.
func wantRefused(t *testing.T, err error, code int, contains ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("the release succeeded, want exit %d", code)
	}
	if got := outcome.Code(err); got != code {
		t.Errorf("exit code %d, want %d: %v", got, code, err)
	}
	for _, s := range contains {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

func readAsset(t *testing.T, st store.Store, tag, name string) []byte {
	t.Helper()
	rc, err := st.OpenAsset(context.Background(), tag, name)
	if err != nil {
		t.Fatalf("%s/%s: %v", tag, name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tamper is a mutation of a node release's published-mrtds.json that no image boots to.
func tamper(p *measure.Published) {
	for prof, r := range p.Profiles {
		r.RTMR1 = strings.Repeat("ab", 48)
		p.Profiles[prof] = r
	}
}

// failingLauncher is a KMS launcher whose KMS never starts.
type failingLauncher struct {
	mu    sync.Mutex
	calls int
}

func (l *failingLauncher) Launch(context.Context, *policy.Loaded, e2e.KMSDeployment) (e2e.KMSInstance, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	return nil, errors.New("KMS VM did not boot")
}

func (l *failingLauncher) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls
}

// TestPipelines runs the release pipelines end to end on the local defaults (directory store,
// key signing, TDX simulator, in-process KMS). The KMS binary and the key pair are made once.
func TestPipelines(t *testing.T) {
	f := newFixture(t)
	t.Run("local rc and re-run", func(t *testing.T) { t.Parallel(); testLocalRC(t, f) })
	t.Run("refusals", func(t *testing.T) { t.Parallel(); testRefusals(t, f) })
	t.Run("e2e blocking and advisory", func(t *testing.T) { t.Parallel(); testE2EClasses(t, f) })
	t.Run("publish failure and resume", func(t *testing.T) { t.Parallel(); testPublishFailure(t, f) })
	t.Run("prebuilt images and registry push", func(t *testing.T) { t.Parallel(); testPrebuiltImages(t, f) })
	t.Run("hotfix", func(t *testing.T) { t.Parallel(); testHotfix(t, f) })
	t.Run("node hotfix with changed measurements", func(t *testing.T) { t.Parallel(); testNodeHotfixCandidate(t, f) })
	t.Run("tampered counterpart", func(t *testing.T) { t.Parallel(); testTamperedCounterpart(t, f) })
	t.Run("vulnerability gate", func(t *testing.T) { t.Parallel(); testVulnGate(t, f) })
}

// testLocalRC is release-local: a node-image rc, then a KMS rc paired with it; then both again.
func testLocalRC(t *testing.T, f *fixture) {
	w := f.world(t)
	w.kmsBinary = f.kmsBinary // the real thing: the KMS built from examples/kms
	const nodeTag, kmsTag = "mero-tee-v1.3.0-rc.1", "mero-kms-v1.3.0-rc.1"

	nrep, err := w.releaseNode(nodeTag)
	if err != nil {
		t.Fatalf("release %s: %v", nodeTag, err)
	}
	if !nrep.Published || nrep.Class != "rc" || nrep.Tag != nodeTag {
		t.Errorf("node report: published %v, class %q, tag %q", nrep.Published, nrep.Class, nrep.Tag)
	}
	ns := stages(t, nrep, nodeStages())
	wantStatus(t, ns, flow.StatusPass, "", except(nodeStages(), "candidate-policy", "e2e", "dependency-guard", "catalog")...)
	wantStatus(t, ns, flow.StatusSkip, "no counterpart", "candidate-policy", "dependency-guard")
	wantStatus(t, ns, flow.StatusSkip, "no counterpart release to test against", "e2e")
	wantStatus(t, ns, flow.StatusSkip, "E2E did not pass", "catalog")
	w.wantReportFile(t, nrep)
	w.wantPublished(t, nodeTag)
	// the node's published measurements are what the example image boots to
	nodePub, err := measure.ReadPublished(bytes.NewReader(readAsset(t, w.Store, nodeTag, release.PublishedMRTDsFile)))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range release.Profiles() {
		if r := nodePub.Profiles[p]; r.Source != "tdx-simulator" || r.MeasuredAt != "2026-11-02T08:00:00Z" || r.QuoteSHA256 == "" {
			t.Errorf("node %s record %+v", p, r)
		}
	}

	krep, err := w.releaseKMS(kmsTag, counterpart("1.3.0-rc.1"))
	if err != nil {
		t.Fatalf("release %s: %v", kmsTag, err)
	}
	if !krep.Published || krep.Class != "rc" {
		t.Errorf("kms report: published %v, class %q", krep.Published, krep.Class)
	}
	ks := stages(t, krep, kmsStages())
	wantStatus(t, ks, flow.StatusPass, "", except(kmsStages(), "push-images", "push-digests")...)
	wantStatus(t, ks, flow.StatusSkip, "no registry configured", "push-images")
	wantStatus(t, ks, flow.StatusSkip, "E2E runs the KMS locally", "push-digests")
	// the pair reaches the catalog only after publishing: the guard accepts the pair its E2E proved
	if !strings.Contains(w.log.String(), "[PASS] catalog pair: kms 1.3.0-rc.1 with node image 1.3.0-rc.1 is proven in this run") {
		t.Errorf("the dependency guard does not say the pair is proven in this run:\n%s", w.log.String())
	}
	w.wantReportFile(t, krep)
	w.wantPublished(t, kmsTag)
	// the SBOM describes the built KMS in the production image, stamped with the fixed time
	var doc struct {
		CreationInfo struct {
			Created string `json:"created"`
		} `json:"creationInfo"`
		Packages []struct {
			Name string `json:"name"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(readAsset(t, w.Store, kmsTag, release.SBOMFile), &doc); err != nil {
		t.Fatal(err)
	}
	var pkgs []string
	for _, p := range doc.Packages {
		pkgs = append(pkgs, p.Name)
	}
	if doc.CreationInfo.Created != "2026-11-01T10:00:00Z" || !slices.Contains(pkgs, "github.com/calimero-network/mero-release") || !slices.Contains(pkgs, "stdlib") {
		t.Errorf("KMS SBOM: created %s, packages %v", doc.CreationInfo.Created, pkgs)
	}
	// with a counterpart the policies are ready and accept exactly the node's measurements
	for _, p := range release.Profiles() {
		pol, err := policy.Load(bytes.NewReader(readAsset(t, w.Store, kmsTag, p.PolicyFile())))
		if err != nil {
			t.Fatal(err)
		}
		if pol.NotReady() || !slices.Equal(pol.AllowedMRTD, []string{nodePub.Profiles[p].MRTD}) || !slices.Contains(pol.NodeVersions, "1.3.0-rc.1") {
			t.Errorf("%s: not ready %v, mrtd %v, node versions %v", p.PolicyFile(), pol.NotReady(), pol.AllowedMRTD, pol.NodeVersions)
		}
	}
	// the catalog written after E2E gained the pair and kept the repository's entries
	out, err := catalog.LoadFile(w.catalogOut)
	if err != nil {
		t.Fatalf("catalog out: %v", err)
	}
	e, ok := out.Pair("1.3.0-rc.1", "1.3.0-rc.1")
	if !ok || !e.Tested || !slices.Equal(e.Profiles, release.Profiles()) {
		t.Errorf("catalog pair: %+v, listed %v", e, ok)
	}
	for _, old := range [][2]string{{"1.2.0", "1.2.0"}, {"1.2.0", "1.1.0"}} {
		if _, ok := out.Pair(old[0], old[1]); !ok {
			t.Errorf("catalog lost the pair %v", old)
		}
	}
	if src, _ := os.ReadFile(w.catalog); !bytes.Equal(src, f.catalog) {
		t.Errorf("the input catalog was modified; only the catalog out file may change")
	}
	if len(w.Provider.Running()) != 0 || w.KMS.Open() != 0 {
		t.Errorf("left running: VMs %v, KMS %d", w.Provider.Running(), w.KMS.Open())
	}

	// re-run: nothing is rebuilt, the published releases are only re-audited
	before := map[string]*store.Release{}
	for _, tag := range []string{nodeTag, kmsTag} {
		rel, err := w.Store.Release(context.Background(), tag)
		if err != nil {
			t.Fatal(err)
		}
		before[tag] = rel
	}
	catalogBefore, err := os.ReadFile(w.catalogOut)
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range []struct {
		tag    string
		stages []string
		run    func() (*flow.Report, error)
	}{
		{nodeTag, nodeStages(), func() (*flow.Report, error) { return w.releaseNode(nodeTag) }},
		{kmsTag, kmsStages(), func() (*flow.Report, error) { return w.releaseKMS(kmsTag, counterpart("1.3.0-rc.1")) }},
	} {
		rep, err := run.run()
		if err != nil {
			t.Fatalf("re-run %s: %v", run.tag, err)
		}
		if rep.Published {
			t.Errorf("re-run %s: the report says it published again", run.tag)
		}
		st := stages(t, rep, run.stages)
		wantStatus(t, st, flow.StatusPass, "", "version-sync", "audit")
		wantStatus(t, st, flow.StatusSkip, "already published", except(run.stages, "version-sync", "audit")...)
		w.wantReportFile(t, rep)
		after := w.wantPublished(t, run.tag)
		if !reflect.DeepEqual(after, before[run.tag]) {
			t.Errorf("re-run changed %s:\nbefore %+v\nafter  %+v", run.tag, before[run.tag], after)
		}
	}
	if got, _ := os.ReadFile(w.catalogOut); !bytes.Equal(got, catalogBefore) {
		t.Errorf("re-run changed the catalog")
	}
	if !strings.Contains(w.log.String(), "[PASS] "+kmsTag+": rc release done (published: true)") {
		t.Errorf("the re-run's last line does not say the release is published")
	}
}
