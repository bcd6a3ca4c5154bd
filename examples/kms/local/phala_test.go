package local_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calimero-network/mero-release/examples/kms"
	"github.com/calimero-network/mero-release/examples/kms/local"
	"github.com/calimero-network/mero-release/examples/kms/local/e2etest"
	"github.com/calimero-network/mero-release/examples/kms/server"
	"github.com/calimero-network/mero-release/pipeline/e2e"
	"github.com/calimero-network/mero-release/pipeline/kmsproc"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/phala"
	"github.com/calimero-network/mero-release/pipeline/phala/phalatest"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// policyHost serves policies at loopback URLs, standing in for the release's asset URLs a CVM
// fetches its policy from.
type policyHost struct {
	srv *httptest.Server
	mu  sync.Mutex
	by  map[string][]byte
}

func newPolicyHost(t *testing.T) *policyHost {
	h := &policyHost{by: map[string][]byte{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		data, ok := h.by[strings.TrimPrefix(r.URL.Path, "/")]
		h.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(data)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *policyHost) url(_ context.Context, p *policy.Loaded) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.by[p.SHA256] = p.Data
	return h.srv.URL + "/" + p.SHA256, nil
}

// kmsRunner deploys an app in the fake by starting the real KMS executable with the app's
// decrypted environment: the policy fetched from MERO_KMS_POLICY_URL and pinned by
// MERO_KMS_POLICY_SHA256, the simulated dstack extending the compose hash Phala computed.
func kmsRunner(launcher *kmsproc.Launcher) phalatest.Runner {
	return func(ctx context.Context, app phalatest.App) (string, func() error, error) {
		lp, err := server.FetchPolicy(ctx, nil, app.Env[policy.EnvPolicyURL], app.Env[policy.EnvPolicySHA256],
			app.Env[policy.EnvKMSVersion], app.Env[policy.EnvKMSProfile])
		if err != nil {
			return "", nil, err
		}
		inst, err := launcher.Launch(ctx, lp, e2e.KMSDeployment{ComposeHash: app.ComposeHash})
		if err != nil {
			return "", nil, err
		}
		return inst.URL(), inst.Close, nil
	}
}

// phalaWorld is a node and a KMS release 1.2.0 whose records name the image the compose runs,
// a Phala API fake deploying the real KMS executable, and the launcher under test.
func phalaWorld(t *testing.T) (*e2etest.World, *phalatest.Server, *e2e.PhalaKMS, *bytes.Buffer) {
	t.Helper()
	bin := buildKMS(t)
	w := e2etest.New(t)
	n := w.AddNode(t, "1.2.0", nil)
	w.AddKMS(t, "1.2.0", e2etest.Policies(t, "1.2.0", n), func(p *measure.Published) {
		for prof, r := range p.Profiles {
			r.Image = kms.LocalImage
			p.Profiles[prof] = r
		}
	})
	var logBuf bytes.Buffer
	log := outcome.NewLogger(&logBuf)
	fake := phalatest.New("test-api-key", kmsRunner(local.Process(bin, w.Authority, "", log)))
	t.Cleanup(fake.Close)
	client, err := phala.New(fake.URL(), "test-api-key", phala.Options{})
	if err != nil {
		t.Fatal(err)
	}
	launcher := &e2e.PhalaKMS{Client: client, AppCompose: kms.AppCompose, PolicyURL: newPolicyHost(t).url,
		TrustedRoots: w.Authority.RootPool(), RunID: "T1", PollInterval: 10 * time.Millisecond, Polls: 500, Log: log}
	return w, fake, launcher, &logBuf
}

// TestPhalaE2E deploys each profile's KMS as a CVM through the Phala API, probes it, checks its
// quote against the release's published measurements (guardrail D), runs the node suite
// against it, and deletes every CVM.
func TestPhalaE2E(t *testing.T) {
	w, fake, launcher, logBuf := phalaWorld(t)
	o := w.Options("1.2.0", "1.2.0", nil, outcome.NewLogger(logBuf))
	o.KMS, o.CheckKMSMeasurements = launcher, true
	rep, err := e2e.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Passed {
		t.Fatalf("E2E failed: %v\n%s", rep.Err(), logBuf.String())
	}
	var suite *e2e.Check
	for i := range rep.Checks {
		if rep.Checks[i].ID == e2e.CheckNodeSuite {
			suite = &rep.Checks[i]
		}
	}
	if suite == nil || suite.Status != e2e.Pass || len(suite.Cases) != 3 {
		t.Fatalf("node suite %+v, want three passing profiles", suite)
	}
	created, deleted, live := fake.Counts()
	t.Logf("Phala API fake: %d CVMs created, %d deleted, %d live; node suite: %d profiles passed", created, deleted, live, len(suite.Cases))
	if created < 3 || deleted != created || live != 0 {
		t.Errorf("CVMs: %d created, %d deleted, %d live; want every profile deployed and every CVM deleted", created, deleted, live)
	}
	if c, d := launcher.Counts(); c != created || d != deleted {
		t.Errorf("launcher counted %d/%d, the API %d/%d", c, d, created, deleted)
	}
	for _, want := range []string{"CVM mero-e2e-kms-t1-debug", "CVM mero-e2e-kms-t1-locked-read-only", "deleted"} {
		if !strings.Contains(logBuf.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// TestPhalaFaults injects API failures at every step: each deployment fails or succeeds, and
// every CVM that was created is deleted.
func TestPhalaFaults(t *testing.T) {
	faults := map[string]phalatest.Faults{
		"provision":      {Provision: 1},
		"create":         {Create: 1},
		"status poll":    {Get: 1},
		"boot stopped":   {BootStopped: true},
		"start":          {BootStopped: true, Start: 1},
		"delete retried": {Delete: 2},
		"delete fails":   {Delete: 10},
	}
	w, fake, launcher, logBuf := phalaWorld(t)
	lp := loadedPolicy(t, w)
	for name, f := range faults {
		t.Run(name, func(t *testing.T) {
			fake.SetFaults(f)
			inst, err := launcher.Launch(context.Background(), lp, e2e.KMSDeployment{Image: kms.LocalImage, ComposeHash: mustHash(t)})
			if err == nil {
				err = inst.Close()
			}
			fake.SetFaults(phalatest.Faults{})
			switch name {
			case "boot stopped", "delete retried":
				if err != nil {
					t.Errorf("want the fault absorbed, got %v", err)
				}
			case "delete fails":
				if err == nil || !strings.Contains(err.Error(), "delete CVM") {
					t.Errorf("want the failed deletion reported, got %v", err)
				}
			default:
				if err == nil {
					t.Errorf("want the injected failure reported")
				}
			}
		})
	}
	// The CVM whose deletion kept failing is a leftover; the sweeper deletes it once old enough.
	if _, _, live := fake.Counts(); live != 1 {
		t.Fatalf("%d CVMs live before the sweep, want the one whose deletion failed", live)
	}
	client, _ := phala.New(fake.URL(), "test-api-key", phala.Options{})
	fake.AddLeftover("someone-elses-cvm", time.Now().Add(-48*time.Hour))
	if ids, err := phala.Sweep(context.Background(), client, 0, time.Now().Add(time.Minute)); err != nil || len(ids) != 1 {
		t.Fatalf("sweep: %v, %v; want the one leftover of ours", ids, err)
	}
	created, deleted, live := fake.Counts()
	if deleted != created-1 || live != 1 { // only someone-elses-cvm is left
		t.Errorf("after the sweep: %d created, %d deleted, %d live:\n%s", created, deleted, live, logBuf.String())
	}
}

func mustHash(t *testing.T) string {
	t.Helper()
	h, err := kms.ComposeHash(kms.LocalImage)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// loadedPolicy is the world's KMS 1.2.0 debug policy as the KMS loads it.
func loadedPolicy(t *testing.T, w *e2etest.World) *policy.Loaded {
	t.Helper()
	rc, err := w.Store.OpenAsset(context.Background(), release.KMS.TagPrefix()+"1.2.0", release.Debug.PolicyFile())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := policy.LoadForKMS(data, "test", "", "1.2.0", string(release.Debug))
	if err != nil {
		t.Fatal(err)
	}
	return lp
}
