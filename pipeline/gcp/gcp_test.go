package gcp_test

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"

	"github.com/calimero-network/mero-release/pipeline/gcp"
	"github.com/calimero-network/mero-release/pipeline/gcp/gcptest"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
	"github.com/calimero-network/mero-release/pipeline/vm"
	"github.com/calimero-network/mero-release/pipeline/vm/vmsim"
)

const (
	project  = "mero-test"
	zone     = "us-central1-a"
	imageDir = "../../examples/node-image"
)

var created = time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC)

func authority(t *testing.T) *tdxsim.Authority {
	t.Helper()
	a, err := tdxsim.NewAuthority([]byte("gcp test authority"))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// resolve maps images named mero-tee-<anything>-<profile> to the example node image.
func resolve(image, profile string) (*tdxsim.Image, error) {
	if !strings.HasPrefix(gcptest.ImageName(image), "mero-tee-") {
		return nil, errors.New("unknown image " + image)
	}
	return vmsim.LoadImage(imageDir, profile)
}

// fixture is a fake GCE with the simulator boot agent and a provider pointed at it.
type fixture struct {
	srv  *gcptest.Server
	p    *gcp.Provider
	auth *tdxsim.Authority
}

func newFixture(t *testing.T, cfg gcp.Config) *fixture {
	t.Helper()
	srv := gcptest.NewServer()
	t.Cleanup(srv.Close)
	auth := authority(t)
	srv.SetAgent(gcptest.SimAgent(auth, resolve, 0))
	cfg.Project, cfg.Zone = project, zone
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Millisecond
	}
	if cfg.BootTimeout == 0 {
		cfg.BootTimeout = time.Minute
	}
	if cfg.QuoteTimeout == 0 {
		cfg.QuoteTimeout = time.Minute
	}
	cfg.Now = func() time.Time { return created }
	p, err := gcp.New(context.Background(), cfg, srv.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return &fixture{srv: srv, p: p, auth: auth}
}

// assertNoneLeft checks that every VM the fake created was deleted.
func (f *fixture) assertNoneLeft(t *testing.T) {
	t.Helper()
	c, d := f.srv.Counts()
	if c != d || len(f.srv.Live()) != 0 {
		t.Fatalf("fake saw %d creates and %d deletes, live %v: a VM was left behind", c, d, f.srv.Live())
	}
}

func testSpec(name string, prof release.Profile) vm.Spec {
	var nonce [64]byte
	copy(nonce[:], "nonce:"+name)
	return vm.Spec{Name: name, Image: "mero-tee-1-2-0-" + string(prof), Profile: prof, Nonce: nonce,
		Labels: map[string]string{vm.LabelRunID: "123456", vm.LabelTag: "mero-tee-v1.2.0-rc.1"}}
}

// measure runs the whole cycle (create, quote, verify, delete) and returns the quote.
func (f *fixture) measure(ctx context.Context, s vm.Spec) (*tdx.Quote, error) {
	var q *tdx.Quote
	err := vm.WithVM(ctx, f.p, s, func(ctx context.Context, inst vm.Instance) error {
		raw, err := inst.Quote(ctx)
		if err != nil {
			return err
		}
		if q, err = tdx.ParseQuote(raw); err != nil {
			return err
		}
		if err := q.Verify(tdx.VerifyOptions{TrustedRoots: f.auth.RootPool()}); err != nil {
			return err
		}
		return vm.CheckReportData(q.ReportData, s.Nonce)
	})
	return q, err
}

func TestCreateQuoteDelete(t *testing.T) {
	for _, parts := range []int{0, 1000} {
		f := newFixture(t, gcp.Config{})
		if parts > 0 {
			f.srv.SetAgent(gcptest.SimAgent(f.auth, resolve, parts))
		}
		s := testSpec("mero-measure-debug-0001", release.Debug)
		var inserted *computepb.Instance
		f.srv.OnRequest(func(r *http.Request) {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/getGuestAttributes") && inserted == nil {
				inserted = f.srv.Instance(s.Name)
			}
		})
		q, err := f.measure(context.Background(), s)
		if err != nil {
			t.Fatalf("parts %d: %v", parts, err)
		}
		img, _ := vmsim.LoadImage(imageDir, "debug")
		want, _, _ := tdxsim.Measure(img)
		if err := tdx.CheckMeasurements(q, want); err != nil {
			t.Fatal(err)
		}
		f.assertNoneLeft(t)

		// The insert request carried the VM shape, labels and metadata of the contract.
		checks := map[string][2]string{
			"machineType":              {inserted.GetMachineType(), "zones/us-central1-a/machineTypes/c3-standard-4"},
			"confidentialInstanceType": {inserted.GetConfidentialInstanceConfig().GetConfidentialInstanceType(), "TDX"},
			"onHostMaintenance":        {inserted.GetScheduling().GetOnHostMaintenance(), "TERMINATE"},
			"minCpuPlatform":           {inserted.GetMinCpuPlatform(), "Intel Sapphire Rapids"},
			"sourceImage":              {gcptest.SourceImage(inserted), "projects/mero-test/global/images/mero-tee-1-2-0-debug"},
			"diskType":                 {inserted.GetDisks()[0].GetInitializeParams().GetDiskType(), "zones/us-central1-a/diskTypes/pd-balanced"},
			"network":                  {inserted.GetNetworkInterfaces()[0].GetNetwork(), "global/networks/default"},
			"label mero-release":       {inserted.GetLabels()["mero-release"], "ephemeral"},
			"label profile":            {inserted.GetLabels()["profile"], "debug"},
			"label run-id":             {inserted.GetLabels()["run-id"], "123456"},
			"label tag":                {inserted.GetLabels()["tag"], "mero-tee-v1_2_0-rc_1"},
			"label created-at":         {inserted.GetLabels()["created-at"], "1795599000"},
		}
		for field, c := range checks {
			if c[0] != c[1] {
				t.Errorf("%s = %q, want %q", field, c[0], c[1])
			}
		}
		nonce, _ := gcptest.Metadata(inserted, gcp.MetadataNonce)
		ga, _ := gcptest.Metadata(inserted, gcp.MetadataGuestAttributes)
		if nonce != hex.EncodeToString(s.Nonce[:]) || ga != "TRUE" {
			t.Errorf("metadata nonce %q, enable-guest-attributes %q", nonce, ga)
		}
		if !inserted.GetDisks()[0].GetAutoDelete() || !inserted.GetDisks()[0].GetBoot() {
			t.Error("boot disk must be a boot disk deleted with the VM")
		}
	}
}

func TestFailuresAlwaysDelete(t *testing.T) {
	tests := []struct {
		name     string
		cfg      gcp.Config
		faults   gcptest.Faults
		agent    gcptest.Agent
		noAgent  bool
		want     string
		code     int
		creates  int
		verifyOK bool
	}{
		{name: "insert refused", faults: gcptest.Faults{InsertStatus: http.StatusForbidden}, want: "insert instance", code: outcome.General, creates: 0},
		{name: "insert response lost", faults: gcptest.Faults{DropInsertResponse: true}, want: "insert instance", code: outcome.General, creates: 1},
		{name: "operation error", faults: gcptest.Faults{InsertOpError: "Quota 'CPUS' exceeded"}, want: "QUOTA_EXCEEDED: Quota 'CPUS' exceeded", code: outcome.General, creates: 1},
		{name: "never RUNNING", cfg: gcp.Config{BootTimeout: 30 * time.Millisecond}, faults: gcptest.Faults{Statuses: []string{"PROVISIONING"}}, want: "not RUNNING within 30ms (status PROVISIONING)", code: outcome.General, creates: 1},
		{name: "terminated while booting", faults: gcptest.Faults{Statuses: []string{"STAGING", "TERMINATED"}}, want: "is TERMINATED, not RUNNING", code: outcome.General, creates: 1},
		{name: "guest attribute missing", cfg: gcp.Config{QuoteTimeout: 30 * time.Millisecond}, noAgent: true, want: "no TDX quote in guest attribute mero-tee/tdx-quote within 30ms", code: outcome.General, creates: 1},
		{name: "guest attributes refused", faults: gcptest.Faults{GuestAttributeStatus: http.StatusForbidden}, want: "get guest attributes", code: outcome.General, creates: 1},
		{name: "agent reports an error", agent: func(*computepb.Instance) map[string]string {
			return map[string]string{gcp.QuoteErrorKey: "configfs-tsm: no such device"}
		}, want: "boot agent reported mero-tee/tdx-quote-error: configfs-tsm: no such device", code: outcome.General, creates: 1},
		{name: "quote not base64", agent: func(*computepb.Instance) map[string]string {
			return map[string]string{gcp.QuoteKey: "not*base64"}
		}, want: "guest attribute mero-tee/tdx-quote: not standard base64", code: outcome.VerificationFailed, creates: 1},
		{name: "quote empty", agent: func(*computepb.Instance) map[string]string {
			return map[string]string{gcp.QuoteKey: ""}
		}, want: "empty quote", code: outcome.VerificationFailed, creates: 1},
		{name: "quote not a TDX quote", agent: func(*computepb.Instance) map[string]string {
			return map[string]string{gcp.QuoteKey: "aGVsbG8gd29ybGQ="}
		}, want: "parse TDX quote", code: outcome.VerificationFailed, creates: 1},
		{name: "bad part count", agent: func(*computepb.Instance) map[string]string {
			return map[string]string{gcp.QuotePartsKey: "many"}
		}, want: `"many" is not a part count`, code: outcome.VerificationFailed, creates: 1},
		{name: "parts never complete", cfg: gcp.Config{QuoteTimeout: 30 * time.Millisecond}, agent: func(*computepb.Instance) map[string]string {
			return map[string]string{gcp.QuotePartsKey: "2", "tdx-quote-0": "AAAA"}
		}, want: "quote part 1 of 2 not published yet", code: outcome.General, creates: 1},
		{name: "delete fails once then succeeds", faults: gcptest.Faults{DeleteFailures: 1}, creates: 1, verifyOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.cfg)
			f.srv.SetFaults(tt.faults)
			if tt.noAgent {
				f.srv.SetAgent(nil)
			} else if tt.agent != nil {
				f.srv.SetAgent(tt.agent)
			}
			_, err := f.measure(context.Background(), testSpec("vm-"+strings.ReplaceAll(strings.ToLower(tt.name), " ", "-"), release.Debug))
			if tt.verifyOK {
				if err != nil {
					t.Fatal(err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.want) || outcome.Code(err) != tt.code {
				t.Fatalf("err = %v (code %d), want %q (code %d)", err, outcome.Code(err), tt.want, tt.code)
			}
			if c, _ := f.srv.Counts(); c != tt.creates {
				t.Fatalf("creates = %d, want %d", c, tt.creates)
			}
			f.assertNoneLeft(t)
		})
	}
}

func TestDeleteRetriedAfterFailure(t *testing.T) {
	f := newFixture(t, gcp.Config{})
	f.srv.SetFaults(gcptest.Faults{DeleteFailures: 1})
	if _, err := f.measure(context.Background(), testSpec("vm-retry", release.Debug)); err != nil {
		t.Fatal(err)
	}
	var deletes int
	for _, r := range f.srv.Requests() {
		if strings.HasPrefix(r, "DELETE ") {
			deletes++
		}
	}
	if deletes != 2 {
		t.Fatalf("DELETE requests = %d, want 2 (one failure, one retry)", deletes)
	}
	f.assertNoneLeft(t)
}

func TestDeleteGivesUpAndSweepRemoves(t *testing.T) {
	f := newFixture(t, gcp.Config{DeleteAttempts: 2})
	f.srv.SetFaults(gcptest.Faults{DeleteFailures: 2})
	_, err := f.measure(context.Background(), testSpec("vm-stuck", release.Debug))
	if err == nil || !strings.Contains(err.Error(), "delete vm vm-stuck") || !strings.Contains(err.Error(), "gcp sweep") {
		t.Fatalf("err = %v", err)
	}
	if got := f.srv.Live(); !slices.Equal(got, []string{"vm-stuck"}) {
		t.Fatalf("live = %v", got)
	}
	// The sweeper removes it once it is old enough.
	rep, err := vm.Sweep(context.Background(), f.p, vm.SweepOptions{Now: time.Now().Add(25 * time.Hour)})
	if err != nil || len(rep.Deleted) != 1 || rep.Deleted[0].Name != "vm-stuck" {
		t.Fatalf("sweep: %v %+v", err, rep)
	}
	f.assertNoneLeft(t)
}

func TestCancelledContextStillDeletes(t *testing.T) {
	for _, at := range []string{"/instances/vm-cancel", "/getGuestAttributes"} {
		t.Run(at, func(t *testing.T) {
			f := newFixture(t, gcp.Config{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var once sync.Once
			f.srv.OnRequest(func(r *http.Request) {
				if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, at) {
					once.Do(cancel)
				}
			})
			_, err := f.measure(ctx, testSpec("vm-cancel", release.Debug))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			f.assertNoneLeft(t)
		})
	}
}

func TestSweepDeletesOldEphemeralVMs(t *testing.T) {
	f := newFixture(t, gcp.Config{})
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	add := func(name string, age time.Duration, labels map[string]string, ts bool) {
		inst := &computepb.Instance{Name: &name, Labels: labels, Status: ptr("RUNNING")}
		if ts {
			inst.CreationTimestamp = ptr(now.Add(-age).In(time.FixedZone("PST", -8*3600)).Format("2006-01-02T15:04:05.000-07:00"))
		}
		f.srv.AddInstance(inst)
	}
	eph := map[string]string{"mero-release": "ephemeral"}
	add("old", 30*time.Hour, eph, true)
	add("young", time.Hour, eph, true)
	add("old-by-label", 0, map[string]string{"mero-release": "ephemeral", "created-at": "1795500000"}, false) // 2026-11-24 04:00 UTC
	add("other-team", 100*time.Hour, map[string]string{"team": "x"}, true)
	add("kept-forever", 100*time.Hour, map[string]string{"mero-release": "kept"}, true)
	f.srv.SetFaults(gcptest.Faults{DeleteFailures: 1}) // the first delete is retried
	rep, err := vm.Sweep(context.Background(), f.p, vm.SweepOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var deleted, kept []string
	for _, d := range rep.Deleted {
		deleted = append(deleted, d.Name)
	}
	for _, k := range rep.Kept {
		kept = append(kept, k.Name)
	}
	if !slices.Equal(deleted, []string{"old", "old-by-label"}) || !slices.Equal(kept, []string{"young"}) {
		t.Fatalf("deleted %v, kept %v", deleted, kept)
	}
	if got := f.srv.Live(); !slices.Equal(got, []string{"kept-forever", "other-team", "young"}) {
		t.Fatalf("live after sweep: %v", got)
	}
	if want := now.Add(-30 * time.Hour); !rep.Deleted[0].Created.Equal(want) {
		t.Fatalf("created %s, want %s", rep.Deleted[0].Created, want)
	}
}

func TestListFilterAndSelectorValidation(t *testing.T) {
	f := newFixture(t, gcp.Config{})
	var filter string
	f.srv.OnRequest(func(r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/instances") {
			filter = r.URL.Query().Get("filter")
		}
	})
	if _, err := f.p.List(context.Background(), map[string]string{"tag": "v1", "mero-release": "ephemeral"}); err != nil {
		t.Fatal(err)
	}
	if want := `(labels.mero-release = "ephemeral") AND (labels.tag = "v1")`; filter != want {
		t.Fatalf("filter %q, want %q", filter, want)
	}
	for _, sel := range []map[string]string{{"Bad": "x"}, {"k": `x" OR name = "y`}} {
		if _, err := f.p.List(context.Background(), sel); outcome.Code(err) != outcome.Usage {
			t.Errorf("selector %v: err = %v, want a usage error", sel, err)
		}
	}
}

func TestConfigAndHelpers(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []gcp.Config{{Zone: zone}, {Project: project}, {Project: "a/b", Zone: zone}} {
		if _, err := gcp.New(ctx, cfg); outcome.Code(err) != outcome.Usage {
			t.Errorf("config %+v: err = %v, want usage error", cfg, err)
		}
	}
	f := newFixture(t, gcp.Config{})
	if c := f.p.Config(); c.MachineType != "c3-standard-4" || c.DiskType != "pd-balanced" || c.DeleteAttempts != 5 || f.p.MeasurementSource() != "gcp-tdx-vm" {
		t.Fatalf("defaults %+v", c)
	}
	for in, want := range map[string]string{
		"img-1":                             "projects/p/global/images/img-1",
		"global/images/img-1":               "projects/p/global/images/img-1",
		"projects/other/global/images/x":    "projects/other/global/images/x",
		"https://www.googleapis.com/x/y/z":  "https://www.googleapis.com/x/y/z",
		"Bad Name":                          "",
		"projects/other/global/images/x/..": "projects/other/global/images/x/..",
	} {
		got, err := gcp.ImagePath("p", in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("ImagePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"mero-tee-v1.2.0-rc.1":  "mero-tee-v1_2_0-rc_1",
		"UPPER space/é":         "upper_space__",
		strings.Repeat("a", 70): strings.Repeat("a", 63),
	} {
		if got := gcp.LabelValue(in); got != want {
			t.Errorf("LabelValue(%q) = %q, want %q", in, got, want)
		}
	}
	labels, err := gcp.Labels(map[string]string{"mero-release": "kept", "run-id": "7"}, release.LockedReadOnly, created)
	if err != nil || labels["mero-release"] != "ephemeral" || labels["run-id"] != "7" || labels["profile"] != "locked-read-only" {
		t.Fatalf("labels %v, %v: the ephemeral label must win", labels, err)
	}
	if _, err := gcp.Labels(map[string]string{"Run ID": "7"}, release.Debug, created); outcome.Code(err) != outcome.Usage {
		t.Fatalf("bad key: %v", err)
	}
	if _, err := f.p.Create(ctx, vm.Spec{Name: "x", Image: "Bad Name", Profile: release.Debug}); outcome.Code(err) != outcome.Usage {
		t.Fatalf("bad image: %v", err)
	}
	if _, err := f.p.Create(ctx, vm.Spec{Name: "ok", Image: "img", Profile: release.Debug, Labels: map[string]string{"BAD": "x"}}); outcome.Code(err) != outcome.Usage {
		t.Fatalf("bad label key: %v", err)
	}
	if c, _ := f.srv.Counts(); c != 0 {
		t.Fatalf("invalid specs created %d VMs", c)
	}
}

func TestCredentialsOption(t *testing.T) {
	good := `{"type":"service_account","project_id":"p","client_email":"ci@p.iam.gserviceaccount.com","private_key":"-----BEGIN PRIVATE KEY-----\nSECRETSECRET\n-----END PRIVATE KEY-----\n"}`
	if _, err := gcp.CredentialsOption([]byte(good)); err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]string{
		"not json":      "SECRETSECRET",
		"user creds":    `{"type":"authorized_user","client_secret":"SECRETSECRET"}`,
		"external acct": `{"type":"external_account","credential_source":{"file":"/etc/SECRETSECRET"}}`,
		"no email":      `{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----SECRETSECRET"}`,
		"no key":        `{"type":"service_account","client_email":"a@b"}`,
	} {
		_, err := gcp.CredentialsOption([]byte(key))
		if outcome.Code(err) != outcome.Usage || strings.Contains(err.Error(), "SECRETSECRET") {
			t.Errorf("%s: err = %v: want a usage error that does not echo the key", name, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }
