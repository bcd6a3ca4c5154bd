package measure_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"

	"github.com/calimero-network/mero-release/pipeline/gcp"
	"github.com/calimero-network/mero-release/pipeline/gcp/gcptest"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
	"github.com/calimero-network/mero-release/pipeline/vm"
	"github.com/calimero-network/mero-release/pipeline/vm/vmsim"
)

const nodeImages = "../../examples/node-image"

func simImages() map[release.Profile]string {
	m := map[release.Profile]string{}
	for _, p := range release.Profiles() {
		m[p] = nodeImages
	}
	return m
}

// counting wraps a provider: it counts creates and deletes, tracks how many VMs are alive at
// once, and injects failures per profile.
type counting struct {
	inner vm.Provider
	auth  *tdxsim.Authority

	mu               sync.Mutex
	profiles         map[string]release.Profile
	live, maxLive    int
	creates, deletes int
	createErr        map[release.Profile]error
	quoteErr         map[release.Profile]error
	wrongNonce       map[release.Profile]bool
	debugTD          map[release.Profile]bool
}

func newCounting(t *testing.T) (*counting, *vmsim.Provider) {
	t.Helper()
	auth, err := tdxsim.NewAuthority([]byte("measure test authority"))
	if err != nil {
		t.Fatal(err)
	}
	sim := vmsim.New(auth)
	return &counting{inner: sim, auth: auth, profiles: map[string]release.Profile{}, createErr: map[release.Profile]error{},
		quoteErr: map[release.Profile]error{}, wrongNonce: map[release.Profile]bool{}, debugTD: map[release.Profile]bool{}}, sim
}

func (c *counting) MeasurementSource() string { return measure.SourceTDXSimulator }

func (c *counting) Create(ctx context.Context, s vm.Spec) (vm.Instance, error) {
	c.mu.Lock()
	err := c.createErr[s.Profile]
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	inst, err := c.inner.Create(ctx, s)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.creates++
	c.live++
	c.maxLive = max(c.maxLive, c.live)
	c.profiles[s.Name] = s.Profile
	return &countingInst{Instance: inst, c: c, spec: s}, nil
}

func (c *counting) Delete(ctx context.Context, name string) error {
	if err := c.inner.Delete(ctx, name); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.profiles[name]; ok {
		delete(c.profiles, name)
		c.deletes++
		c.live--
	}
	return nil
}

func (c *counting) List(ctx context.Context, sel map[string]string) ([]vm.Info, error) {
	return c.inner.List(ctx, sel)
}

type countingInst struct {
	vm.Instance
	c    *counting
	spec vm.Spec
}

func (i *countingInst) Quote(ctx context.Context) ([]byte, error) {
	i.c.mu.Lock()
	qerr, wrong, debug := i.c.quoteErr[i.spec.Profile], i.c.wrongNonce[i.spec.Profile], i.c.debugTD[i.spec.Profile]
	i.c.mu.Unlock()
	if qerr != nil {
		return nil, qerr
	}
	if !wrong && !debug {
		return i.Instance.Quote(ctx)
	}
	img, err := vmsim.LoadImage(nodeImages, string(i.spec.Profile))
	if err != nil {
		return nil, err
	}
	m, _, err := tdxsim.Measure(img)
	if err != nil {
		return nil, err
	}
	rd := vm.ReportDataFor(i.spec.Nonce)
	if wrong {
		rd[0] ^= 0xff // a replayed quote: some other nonce
	}
	body := tdxsim.NewBody(m, rd)
	if debug {
		body.TDAttributes[0] |= 1
	}
	return i.c.auth.SignQuote(body)
}

func (c *counting) assertNoneLeft(t *testing.T, sim *vmsim.Provider) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.creates != c.deletes || c.live != 0 || len(sim.Running()) != 0 {
		t.Fatalf("creates %d, deletes %d, running %v: a VM was left behind", c.creates, c.deletes, sim.Running())
	}
}

func nodeOpts(c *counting) measure.NodeOptions {
	return measure.NodeOptions{Version: "1.2.0", TrustedRoots: c.auth.RootPool(), Now: clock, RunID: "42", Tag: "mero-tee-v1.2.0"}
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestMeasureNodeSimulator(t *testing.T) {
	c, sim := newCounting(t)
	var log bytes.Buffer
	opts := nodeOpts(c)
	opts.Log = outcome.NewLogger(&log)
	pub, err := measure.MeasureNode(context.Background(), c, simImages(), opts)
	if err != nil {
		t.Fatal(err)
	}
	c.assertNoneLeft(t, sim)
	if c.creates != 3 || pub.Family != release.Node || pub.Version != "1.2.0" {
		t.Fatalf("creates %d, published %+v", c.creates, pub)
	}
	for _, prof := range release.Profiles() {
		img, _ := vmsim.LoadImage(nodeImages, string(prof))
		want, _, _ := tdxsim.Measure(img)
		w := want.Hex()
		r := pub.Profiles[prof]
		if r.MRTD != w.MRTD || r.RTMR0 != w.RTMR0 || r.RTMR1 != w.RTMR1 || r.RTMR2 != w.RTMR2 || r.RTMR3 != w.RTMR3 {
			t.Fatalf("%s: record %+v, want %+v", prof, r, w)
		}
		if r.Source != "tdx-simulator" || !hex64.MatchString(r.QuoteSHA256) || r.MeasuredAt != "2026-11-25T10:00:00Z" || r.Image != nodeImages {
			t.Fatalf("%s: record %+v", prof, r)
		}
	}
	for _, want := range []string{"[PASS] measure node debug: mrtd ", "[INFO] measure node locked-read-only: booting mero-measure-locked-read-only-"} {
		if !strings.Contains(log.String(), want) {
			t.Fatalf("log lacks %q:\n%s", want, log.String())
		}
	}
}

func TestMeasureNodeSameInputsSameFile(t *testing.T) {
	run := func(t *testing.T, seeded bool, now time.Time) []byte {
		c, sim := newCounting(t)
		opts := nodeOpts(c)
		opts.Now = func() time.Time { return now }
		if seeded {
			opts.Rand = rand.NewChaCha8([32]byte{1, 2, 3})
		}
		pub, err := measure.MeasureNode(context.Background(), c, simImages(), opts)
		if err != nil {
			t.Fatal(err)
		}
		c.assertNoneLeft(t, sim)
		p := filepath.Join(t.TempDir(), "published-mrtds.json")
		if err := pub.Write(p); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	// Fresh random nonces: the files differ only in measured_at and quote_sha256 (each quote
	// binds its own nonce).
	strip := regexp.MustCompile(`"(measured_at|quote_sha256)": "[^"]*"`)
	a, b := run(t, false, fixedNow), run(t, false, fixedNow.Add(time.Hour))
	if bytes.Equal(a, b) {
		t.Fatal("two runs with fresh nonces produced identical quotes")
	}
	if sa, sb := strip.ReplaceAll(a, nil), strip.ReplaceAll(b, nil); !bytes.Equal(sa, sb) {
		t.Fatalf("runs differ beyond timestamps and quote digests:\n%s\n%s", sa, sb)
	}
	// Same nonce source and clock: byte-identical files.
	if x, y := run(t, true, fixedNow), run(t, true, fixedNow); !bytes.Equal(x, y) {
		t.Fatalf("seeded runs differ:\n%s\n%s", x, y)
	}
}

func TestMeasureNodeFailuresDeleteEveryVM(t *testing.T) {
	boom := errors.New("vm exploded")
	tests := []struct {
		name   string
		setup  func(c *counting, o *measure.NodeOptions, images map[release.Profile]string)
		want   string
		code   int
		anyVMs bool
	}{
		{"quote fails", func(c *counting, _ *measure.NodeOptions, _ map[release.Profile]string) {
			c.quoteErr[release.LockedReadOnly] = boom
		}, "measure node locked-read-only (vm mero-measure-locked-read-only-", outcome.General, true},
		{"quote binds another nonce", func(c *counting, _ *measure.NodeOptions, _ map[release.Profile]string) {
			c.wrongNonce[release.DebugReadOnly] = true
		}, "does not bind the nonce", outcome.VerificationFailed, true},
		{"untrusted root", func(_ *counting, o *measure.NodeOptions, _ map[release.Profile]string) {
			o.TrustedRoots = nil // Intel's root: simulator quotes must not verify
		}, "verify TDX quote", outcome.VerificationFailed, true},
		{"debug TD", func(c *counting, _ *measure.NodeOptions, _ map[release.Profile]string) {
			c.debugTD[release.Debug] = true
		}, "debug mode", outcome.VerificationFailed, true},
		{"create fails", func(c *counting, _ *measure.NodeOptions, _ map[release.Profile]string) {
			c.createErr[release.DebugReadOnly] = errors.New("quota exceeded")
		}, "create vm mero-measure-debug-read-only-", outcome.General, true},
		{"image missing", func(_ *counting, _ *measure.NodeOptions, im map[release.Profile]string) {
			im[release.Debug] = "/nonexistent/node-image"
		}, "/nonexistent/node-image", outcome.Usage, true},
		{"image of another profile", func(_ *counting, _ *measure.NodeOptions, im map[release.Profile]string) {
			im[release.LockedReadOnly] = filepath.Join(nodeImages, "debug.json")
		}, "profile is \"debug\", want \"locked-read-only\"", outcome.Usage, true},
		{"bad version", func(_ *counting, o *measure.NodeOptions, _ map[release.Profile]string) { o.Version = "1.2" }, "version", outcome.Usage, false},
		{"unknown profile", func(_ *counting, _ *measure.NodeOptions, im map[release.Profile]string) { im["prod"] = nodeImages }, `profile "prod"`, outcome.Usage, false},
		{"empty image", func(_ *counting, _ *measure.NodeOptions, im map[release.Profile]string) { im[release.Debug] = "" }, "profile debug: empty image", outcome.Usage, false},
		{"rand fails", func(_ *counting, o *measure.NodeOptions, _ map[release.Profile]string) { o.Rand = bytes.NewReader(nil) }, "nonce", outcome.General, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, sim := newCounting(t)
			opts := nodeOpts(c)
			images := simImages()
			tt.setup(c, &opts, images)
			pub, err := measure.MeasureNode(context.Background(), c, images, opts)
			if pub != nil || err == nil || !strings.Contains(err.Error(), tt.want) || outcome.Code(err) != tt.code {
				t.Fatalf("err = %v (code %d), want %q (code %d)", err, outcome.Code(err), tt.want, tt.code)
			}
			if !tt.anyVMs && c.creates != 0 {
				t.Fatalf("invalid input still booted %d VMs", c.creates)
			}
			c.assertNoneLeft(t, sim)
		})
	}
}

func TestMeasureNodeIdenticalProfilesRejected(t *testing.T) {
	// Two profiles whose images measure the same: copy debug's manifest as locked-read-only.
	dir := t.TempDir()
	for _, f := range []string{"firmware.bin", "vmlinuz", "initrd.img"} {
		data, err := os.ReadFile(filepath.Join(nodeImages, f))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, f), string(data))
	}
	manifest, _ := os.ReadFile(filepath.Join(nodeImages, "debug.json"))
	writeFile(t, filepath.Join(dir, "debug.json"), string(manifest))
	writeFile(t, filepath.Join(dir, "locked-read-only.json"), strings.Replace(string(manifest), `"profile": "debug"`, `"profile": "locked-read-only"`, 1))
	c, sim := newCounting(t)
	_, err := measure.MeasureNode(context.Background(), c, map[release.Profile]string{release.Debug: dir, release.LockedReadOnly: dir}, nodeOpts(c))
	if outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), "debug and locked-read-only have identical MRTD and RTMR0–3") {
		t.Fatalf("err = %v", err)
	}
	c.assertNoneLeft(t, sim)
}

func TestMeasureNodeCancelledAndBounded(t *testing.T) {
	c, sim := newCounting(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := measure.MeasureNode(ctx, c, simImages(), nodeOpts(c)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	c.assertNoneLeft(t, sim)

	for _, limit := range []int{1, 2} {
		c, sim := newCounting(t)
		opts := nodeOpts(c)
		opts.Concurrency = limit
		if _, err := measure.MeasureNode(context.Background(), c, simImages(), opts); err != nil {
			t.Fatal(err)
		}
		if c.maxLive > limit {
			t.Fatalf("concurrency %d: %d VMs alive at once", limit, c.maxLive)
		}
		c.assertNoneLeft(t, sim)
	}
	if _, err := measure.MeasureNode(context.Background(), nil, simImages(), measure.NodeOptions{Version: "1.2.0"}); outcome.Code(err) != outcome.Usage {
		t.Fatalf("nil provider: %v", err)
	}
	anon := struct{ vm.Provider }{c}
	if _, err := measure.MeasureNode(context.Background(), anon, simImages(), measure.NodeOptions{Version: "1.2.0"}); err == nil || !strings.Contains(err.Error(), "NodeOptions.Source") {
		t.Fatalf("provider without a source: %v", err)
	}
}

func TestMeasureNodeProfile(t *testing.T) {
	c, sim := newCounting(t)
	opts := nodeOpts(c)
	opts.Source = "custom"
	rec, err := measure.MeasureNodeProfile(context.Background(), c, release.DebugReadOnly, nodeImages, opts)
	if err != nil || rec.Source != "custom" {
		t.Fatalf("%+v %v", rec, err)
	}
	c.assertNoneLeft(t, sim)
}

// TestMeasureNodeOnGCP runs the stage against the fake Compute API through the real client,
// with the simulator playing the image's boot agent.
func TestMeasureNodeOnGCP(t *testing.T) {
	srv := gcptest.NewServer()
	defer srv.Close()
	auth, err := tdxsim.NewAuthority([]byte("gcp node authority"))
	if err != nil {
		t.Fatal(err)
	}
	resolve := func(image, profile string) (*tdxsim.Image, error) { return vmsim.LoadImage(nodeImages, profile) }
	p, err := gcp.New(context.Background(), gcp.Config{Project: "p", Zone: "us-central1-a", PollInterval: time.Millisecond}, srv.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	images := map[release.Profile]string{}
	for _, prof := range release.Profiles() {
		images[prof] = "mero-tee-1-2-0-" + string(prof)
	}
	opts := measure.NodeOptions{Version: "1.2.0", TrustedRoots: auth.RootPool(), Now: clock, Tag: "mero-tee-v1.2.0"}

	srv.SetAgent(gcptest.SimAgent(auth, resolve, 0))
	pub, err := measure.MeasureNode(context.Background(), p, images, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, prof := range release.Profiles() {
		r := pub.Profiles[prof]
		if r.Source != "gcp-tdx-vm" || r.Image != images[prof] {
			t.Fatalf("%s: %+v", prof, r)
		}
	}
	if cr, del := srv.Counts(); cr != 3 || del != 3 || len(srv.Live()) != 0 {
		t.Fatalf("creates %d deletes %d live %v", cr, del, srv.Live())
	}

	// One profile's agent publishes garbage: the stage fails and every VM is still deleted.
	good := gcptest.SimAgent(auth, resolve, 0)
	srv.SetAgent(func(inst *computepb.Instance) map[string]string {
		if strings.HasSuffix(gcptest.SourceImage(inst), "locked-read-only") {
			return map[string]string{gcp.QuoteKey: "bm90IGEgcXVvdGU="}
		}
		return good(inst)
	})
	if _, err := measure.MeasureNode(context.Background(), p, images, opts); outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), "parse TDX quote") {
		t.Fatalf("err = %v", err)
	}
	if cr, del := srv.Counts(); cr != del || len(srv.Live()) != 0 {
		t.Fatalf("creates %d deletes %d live %v", cr, del, srv.Live())
	}
}
