package migrate_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/examples/kms"
	"github.com/calimero-network/mero-release/examples/kms/local/e2etest"
	"github.com/calimero-network/mero-release/examples/kms/server"
	"github.com/calimero-network/mero-release/pipeline/migrate"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
	"github.com/calimero-network/mero-release/pipeline/vm"
	"github.com/calimero-network/mero-release/pipeline/vm/vmsim"
)

// startKMS starts the sample KMS on 127.0.0.1 from the environment a migration prints, as an
// operator's rolling restart does (the policy fetched from MERO_KMS_POLICY_URL, pinned by
// MERO_KMS_POLICY_SHA256), and stops it when the test ends.
func startKMS(t *testing.T, env migrate.Environment) *server.Running {
	t.Helper()
	cfg, err := server.ConfigFromEnv(env.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = "127.0.0.1:0"
	hash, err := kms.ComposeHash(kms.LocalImage)
	if err != nil {
		t.Fatal(err)
	}
	r, err := server.Start(context.Background(), cfg, hash, nil)
	if err != nil {
		t.Fatalf("the KMS refused the migrated environment %+v: %v", env, err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// migrated publishes KMS 1.3.0 (policies accepting node policyNode), migrates to profile p and
// starts the KMS with the result.
func (w *world) migrated(t *testing.T, p release.Profile) (*migrate.PolicyResult, *server.Running) {
	t.Helper()
	w.publishKMS(t, "1.3.0", w.kmsFiles(t, "1.3.0", w.node), nil)
	res, err := migrate.MigratePolicy(context.Background(), w.policyOptions(p, e2etest.Catalog(t, [2]string{"1.3.0", "1.3.0"})))
	if err != nil {
		t.Fatal(err)
	}
	return res, startKMS(t, res.Environment)
}

func (w *world) checkOptions(url string, p release.Profile) migrate.CheckOptions {
	return migrate.CheckOptions{
		KMSURL: url, Profile: p, NodeRelease: "mero-tee-v1.3.0", Store: w.Store,
		Provider: w.Provider, NodeRoots: w.Authority.RootPool(), KMSRoots: w.Authority.RootPool(),
	}
}

// TestMigrationEndToEnd is SPEC §10 on one machine: migrate-policy's environment starts the KMS,
// and the post-migration check attests it and gets a key for a node of the node release.
func TestMigrationEndToEnd(t *testing.T) {
	for _, p := range release.Profiles() {
		t.Run(string(p), func(t *testing.T) {
			w := newWorld(t)
			res, kmsRun := w.migrated(t, p)
			log, buf := logger()
			o := w.checkOptions(kmsRun.URL(), p)
			rec := w.KMSRecord(t)
			o.KMSVersion, o.PolicySHA256, o.ExpectedKMS, o.Log = "1.3.0", res.PolicySHA256, &rec, log
			rep, err := migrate.Check(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if err := rep.Err(); err != nil || !rep.Passed {
				t.Fatalf("%v\n%s", err, buf)
			}
			var names []string
			for _, s := range rep.Steps {
				names = append(names, s.Name+"="+string(s.Status))
			}
			if got, want := strings.Join(names, ","), "health=pass,KMS attestation=pass,deploy=pass,boot verification=pass,key release=pass,cleanup=pass"; got != want {
				t.Fatalf("steps %s, want %s", got, want)
			}
			if rep.KMS == nil || rep.KMS.MRTD != rec.MRTD || rep.Node == nil || rep.Node.MRTD != w.node.Profiles[p].MRTD {
				t.Fatalf("measurements kms %+v node %+v", rep.KMS, rep.Node)
			}
			if running := w.Provider.Running(); len(running) != 0 {
				t.Fatalf("VMs left running: %v", running)
			}
			if !strings.Contains(buf.String(), "[PASS] key release: challenge") {
				t.Fatalf("log:\n%s", buf)
			}
		})
	}
}

func TestCheckFailures(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	res, kmsRun := w.migrated(t, release.Debug)
	// A KMS whose debug policy knows only node 1.2.0: the new node is refused (stale policy).
	stale := newWorld(t)
	stale.publishKMS(t, "1.3.0", stale.kmsFiles(t, "1.3.0", e2etest.Measured(t, "1.2.0")), nil)
	staleEnv := res.Environment
	staleEnv.PolicyURL = "file://" + stale.assetPath("mero-kms-v1.3.0", release.Debug.PolicyFile())
	staleEnv.PolicySHA256 = ""
	staleKMS := startKMS(t, staleEnv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	other := w.KMSRecord(t)
	other.RTMR3 = strings.Repeat("ab", 48)

	for _, tc := range []struct {
		name  string
		edit  func(o *migrate.CheckOptions)
		steps string
		want  []string
	}{
		{"KMS runs another profile", func(o *migrate.CheckOptions) { o.Profile = release.LockedReadOnly },
			"health=fail,KMS attestation=fail,deploy=pass,boot verification=pass,key release=skip,cleanup=pass", []string{`profile is "debug", want "locked-read-only"`}},
		{"KMS runs another version", func(o *migrate.CheckOptions) { o.KMSVersion = "1.2.0" },
			"health=fail,KMS attestation=fail,deploy=pass,boot verification=pass,key release=skip,cleanup=pass", []string{`version is "1.3.0", want "1.2.0"`}},
		{"KMS runs another policy", func(o *migrate.CheckOptions) { o.PolicySHA256 = strings.Repeat("f", 64) },
			"health=pass,KMS attestation=fail,deploy=pass,boot verification=pass,key release=skip,cleanup=pass", []string{"policy SHA-256 is " + res.PolicySHA256}},
		{"KMS measurements differ", func(o *migrate.CheckOptions) { o.ExpectedKMS = &other },
			"health=pass,KMS attestation=fail,deploy=pass,boot verification=pass,key release=skip,cleanup=pass", []string{"rtmr3 observed"}},
		{"KMS quote not from the trusted root", func(o *migrate.CheckOptions) { o.KMSRoots = nil },
			"health=pass,KMS attestation=fail,deploy=pass,boot verification=pass,key release=skip,cleanup=pass", []string{"KMS quote"}},
		{"node quote not from the trusted root", func(o *migrate.CheckOptions) { o.NodeRoots = vmsim.New(otherAuthority(t)).RootPool() },
			"health=pass,KMS attestation=pass,deploy=pass,boot verification=fail,cleanup=pass", []string{"boot verification"}},
		{"stale policy refuses the node", func(o *migrate.CheckOptions) { o.KMSURL, o.PolicySHA256 = staleKMS.URL(), "" },
			"health=pass,KMS attestation=pass,deploy=pass,boot verification=pass,key release=fail,cleanup=pass", []string{"403", "PolicyViolation"}},
		{"KMS unreachable", func(o *migrate.CheckOptions) { o.KMSURL = closed },
			"health=fail,KMS attestation=fail,deploy=pass,boot verification=pass,key release=skip,cleanup=pass", []string{"GET /health", "POST /attest"}},
		{"node cannot be deployed", func(o *migrate.CheckOptions) { o.Images = badImage{} },
			"health=pass,KMS attestation=pass,deploy=fail", []string{"deploy"}},
		{"node VM cannot be deleted", func(o *migrate.CheckOptions) { o.Provider = undeletable{w.Provider} },
			"health=pass,KMS attestation=pass,deploy=pass,boot verification=pass,key release=pass,cleanup=fail", []string{"cleanup", "delete vm"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := w.checkOptions(kmsRun.URL(), release.Debug)
			o.KMSVersion, o.PolicySHA256 = "1.3.0", res.PolicySHA256
			tc.edit(&o)
			rep, err := migrate.Check(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range rep.Steps {
				names = append(names, s.Name+"="+string(s.Status))
			}
			if got := strings.Join(names, ","); got != tc.steps {
				t.Fatalf("steps %s\nwant  %s\n%+v", got, tc.steps, rep.Steps)
			}
			err = rep.Err()
			wantCode(t, err, outcome.VerificationFailed, tc.want...)
			if rep.Passed {
				t.Fatal("report passed")
			}
		})
	}
	running := w.Provider.Running()
	if len(running) != 1 { // only the undeletable one
		t.Fatalf("VMs left running: %v", running)
	}
	_ = w.Provider.Delete(ctx, running[0])
}

// otherAuthority is a simulated platform the world does not trust.
func otherAuthority(t *testing.T) *tdxsim.Authority {
	t.Helper()
	a, err := tdxsim.NewAuthority([]byte("another platform"))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestCheckBadOptions(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		edit func(o *migrate.CheckOptions)
		code int
		want string
	}{
		{"no KMS URL", func(o *migrate.CheckOptions) { o.KMSURL = "" }, outcome.Usage, "--kms-url"},
		{"bad KMS URL", func(o *migrate.CheckOptions) { o.KMSURL = "ftp://kms" }, outcome.Usage, "--kms-url"},
		{"bad profile", func(o *migrate.CheckOptions) { o.Profile = "prod" }, outcome.Usage, "--profile"},
		{"KMS tag as node release", func(o *migrate.CheckOptions) { o.NodeRelease = "mero-kms-v1.3.0" }, outcome.Usage, "not a mero-tee tag"},
		{"malformed node release", func(o *migrate.CheckOptions) { o.NodeRelease = "v1.3.0" }, outcome.Usage, "--node-release"},
		{"bad KMS version", func(o *migrate.CheckOptions) { o.KMSVersion = "1" }, outcome.Usage, "--kms-version"},
		{"node release not in the store", func(o *migrate.CheckOptions) { o.NodeRelease = "mero-tee-v9.9.9" }, outcome.MissingAsset, "mero-tee-v9.9.9: not found"},
		{"no store", func(o *migrate.CheckOptions) { o.Store = nil }, outcome.Usage, "store"},
		{"no provider", func(o *migrate.CheckOptions) { o.Provider = nil }, outcome.Usage, "provider"},
		{"no node roots", func(o *migrate.CheckOptions) { o.NodeRoots = nil }, outcome.Usage, "node quotes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := w.checkOptions("http://127.0.0.1:1", release.Debug)
			tc.edit(&o)
			_, err := migrate.Check(ctx, o)
			wantCode(t, err, tc.code, tc.want)
		})
	}
}

// badImage resolves to an image the simulator cannot load.
type badImage struct{}

func (badImage) Image(context.Context, string, release.Profile) (string, error) {
	return "/nonexistent/image.json", nil
}

// undeletable is a provider whose Delete always fails.
type undeletable struct{ *vmsim.Provider }

func (undeletable) Delete(context.Context, string) error { return errors.New("the cloud said no") }

var _ vm.Provider = undeletable{}
