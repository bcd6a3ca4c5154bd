package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/calimero-network/mero-release/examples/kms"
	"github.com/calimero-network/mero-release/examples/kms/server"
	"github.com/calimero-network/mero-release/pipeline/dstack"
	"github.com/calimero-network/mero-release/pipeline/gcp"
	"github.com/calimero-network/mero-release/pipeline/gcp/gcptest"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
	"github.com/calimero-network/mero-release/pipeline/vm/vmsim"
)

const measureNodeImages = "../../examples/node-image"

func measureCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr, func(k string) string { return env[k] })
	return code, stdout.String(), stderr.String()
}

func measureExpect(t *testing.T, name string, code int, stderr string, wantCode int, want ...string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("%s: exit %d, want %d; stderr:\n%s", name, code, wantCode, stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("%s: stderr lacks %q:\n%s", name, w, stderr)
		}
	}
}

// measureKMSInputs writes, per profile, an OCI image layout and the sample KMS's app-compose
// running it; it returns the flags and the image references.
func measureKMSInputs(t *testing.T) ([]string, map[release.Profile]string) {
	t.Helper()
	dir := t.TempDir()
	var args []string
	refs := map[release.Profile]string{}
	for _, p := range release.Profiles() {
		img, err := mutate.AppendLayers(empty.Image, static.NewLayer([]byte("mero-kms "+string(p)), types.OCILayer))
		if err != nil {
			t.Fatal(err)
		}
		img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
		lp, err := layout.Write(filepath.Join(dir, string(p)), empty.Index)
		if err != nil {
			t.Fatal(err)
		}
		if err := lp.AppendImage(img); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		refs[p] = "ghcr.io/calimero-network/mero-kms-phala@" + d.String()
		app, err := kms.AppCompose(refs[p])
		if err != nil {
			t.Fatal(err)
		}
		compose := filepath.Join(dir, string(p)+"-app-compose.json")
		if err := os.WriteFile(compose, app, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--image", string(p)+"="+filepath.Join(dir, string(p)), "--compose", string(p)+"="+compose)
	}
	return args, refs
}

func TestMeasureKMSCommand(t *testing.T) {
	args, refs := measureKMSInputs(t)
	out := filepath.Join(t.TempDir(), "published-mrtds.json")
	code, _, stderr := measureCLI(t, map[string]string{"MERO_KMS_VERSION": "1.2.0"}, append([]string{"measure-kms", "-o", out}, args...)...)
	measureExpect(t, "measure-kms", code, stderr, 0, "[PASS] measure kms debug: image sha256:", "[PASS] wrote "+out)
	pub, err := measure.ReadPublishedFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if pub.Family != release.KMS || pub.Version != "1.2.0" || len(pub.Profiles) != 3 {
		t.Fatalf("published %+v", pub)
	}
	auth, err := tdxsim.NewAuthority([]byte(tdxsim.DefaultSeed))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range release.Profiles() {
		r := pub.Profiles[p]
		hash, _ := kms.ComposeHash(refs[p])
		if r.ComposeHash != hash || r.Image != refs[p] || !strings.HasSuffix(refs[p], r.ImageDigest) || r.Source != "image-inspection" {
			t.Fatalf("%s: %+v (compose hash want %s)", p, r, hash)
		}
		// The published registers are exactly those of the simulated dstack CVM the local
		// KMS runs in (E2E guardrail D compares them).
		booted, err := server.BootSimulatedDstack(context.Background(), auth, hash)
		if err != nil {
			t.Fatal(err)
		}
		h := booted.Measurements().Hex()
		booted.Shutdown()
		if r.MRTD != h.MRTD || r.RTMR0 != h.RTMR0 || r.RTMR1 != h.RTMR1 || r.RTMR2 != h.RTMR2 || r.RTMR3 != h.RTMR3 {
			t.Fatalf("%s: published %+v, simulated KMS CVM has %+v", p, r, h)
		}
	}

	// Without -o the file goes to stdout.
	code, stdout, stderr := measureCLI(t, nil, append([]string{"measure-kms", "--version", "1.2.0"}, args...)...)
	measureExpect(t, "stdout", code, stderr, 0)
	again, err := measure.ReadPublished(strings.NewReader(stdout))
	if err != nil || again.Profiles[release.Debug].RTMR3 != pub.Profiles[release.Debug].RTMR3 {
		t.Fatalf("stdout: %v\n%s", err, stdout)
	}
}

func TestMeasureKMSCommandErrors(t *testing.T) {
	args, _ := measureKMSInputs(t)
	dir := t.TempDir()
	other := filepath.Join(dir, "other.yaml")
	if err := os.WriteFile(other, []byte("services:\n  kms:\n    image: x@sha256:"+strings.Repeat("0", 64)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	debugImage := strings.TrimPrefix(args[1], "debug=")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no version", args, 2, "--version is required"},
		{"no image", []string{"--version", "1.2.0"}, 2, "at least one --image"},
		{"bad pair", []string{"--version", "1.2.0", "--image", "debug"}, 2, "want PROFILE=VALUE"},
		{"unknown profile", []string{"--version", "1.2.0", "--image", "prod=x", "--compose", "prod=y"}, 2, `profile "prod"`},
		{"twice", []string{"--version", "1.2.0", "--image", "debug=x", "--image", "debug=y"}, 2, "profile debug given twice"},
		{"image without compose", []string{"--version", "1.2.0", "--image", "debug=" + debugImage}, 2, "profile debug needs both --image and --compose"},
		{"compose runs another image", []string{"--version", "1.2.0", "--image", "debug=" + debugImage, "--compose", "debug=" + other}, 10, "does not reference image"},
		{"bad version", append([]string{"--version", "1.2"}, args...), 2, "version"},
		{"missing os image", append([]string{"--version", "1.2.0", "--os-image", filepath.Join(dir, "nope.json")}, args...), 2, "--os-image"},
		{"bad app id", append([]string{"--version", "1.2.0", "--app-id", "zz"}, args...), 2, "--app-id"},
		{"short app id", append([]string{"--version", "1.2.0", "--app-id", "abcd"}, args...), 2, "app id: 2 bytes, want 20"},
		{"bad key provider id", append([]string{"--version", "1.2.0", "--key-provider-id", "x"}, args...), 2, "--key-provider-id"},
		{"bad instance id", append([]string{"--version", "1.2.0", "--instance-id", "x"}, args...), 2, "--instance-id"},
	}
	for _, tt := range tests {
		code, _, stderr := measureCLI(t, nil, append([]string{"measure-kms"}, tt.args...)...)
		measureExpect(t, tt.name, code, stderr, tt.code, tt.want)
	}
	// A custom OS image and deployment inputs change the registers, not the digests.
	custom := *dstack.PinnedOSImage()
	custom.Name, custom.MRTD = "dstack-os-custom", strings.Repeat("ab", 48)
	customData, _ := json.Marshal(custom)
	customPath := filepath.Join(dir, "os-image.json")
	if err := os.WriteFile(customPath, customData, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := measureCLI(t, nil, append([]string{"measure-kms", "--version", "1.2.0", "--os-image", customPath,
		"--app-id", strings.Repeat("ab", 20), "--instance-id", "01", "--key-provider", "local", "--storage-fs", "zfs"}, args...)...)
	measureExpect(t, "custom", code, stderr, 0, "dstack OS image dstack-os-custom")
	customPub, err := measure.ReadPublished(strings.NewReader(stdout))
	if err != nil {
		t.Fatal(err)
	}
	if r := customPub.Profiles[release.Debug]; r.MRTD != custom.MRTD || !strings.Contains(r.RegisterSources.MRTD, "dstack-os-custom") {
		t.Errorf("custom OS image: %+v", r)
	}
}

func TestMeasureNodeCommandSimulator(t *testing.T) {
	var imgs []string
	for _, p := range release.Profiles() {
		imgs = append(imgs, "--image", string(p)+"="+measureNodeImages)
	}
	out := filepath.Join(t.TempDir(), "published-mrtds.json")
	code, _, stderr := measureCLI(t, map[string]string{"MERO_TEE_VERSION": "1.2.0", "GITHUB_RUN_ID": "77"}, append([]string{"measure-node", "--tag", "mero-tee-v1.2.0", "-o", out}, imgs...)...)
	measureExpect(t, "measure-node", code, stderr, 0, "[PASS] measure node locked-read-only: mrtd", "[PASS] wrote "+out)
	pub, err := measure.ReadPublishedFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range release.Profiles() {
		img, _ := vmsim.LoadImage(measureNodeImages, string(p))
		m, _, _ := tdxsim.Measure(img)
		if r := pub.Profiles[p]; r.MRTD != m.MRTDHex() || r.RTMR2 != m.RTMRHex(2) || r.Source != "tdx-simulator" {
			t.Fatalf("%s: %+v", p, r)
		}
	}

	intel := filepath.Join(t.TempDir(), "intel.pem")
	if err := os.WriteFile(intel, tdx.IntelRootPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"wrong root", append([]string{"--version", "1.2.0", "--trusted-root", intel}, imgs...), 10, "verify TDX quote"},
		{"missing root", append([]string{"--version", "1.2.0", "--trusted-root", "/nonexistent.pem"}, imgs...), 2, "--trusted-root"},
		{"bad provider", append([]string{"--version", "1.2.0", "--provider", "aws"}, imgs...), 2, `--provider "aws"`},
		{"no version", imgs, 2, "--version is required"},
		{"no image", []string{"--version", "1.2.0"}, 2, "at least one --image"},
		{"image missing", []string{"--version", "1.2.0", "--image", "debug=/nonexistent"}, 2, "/nonexistent"},
		{"bad version", append([]string{"--version", "v1"}, imgs...), 2, "version"},
	}
	for _, tt := range tests {
		code, _, stderr := measureCLI(t, nil, append([]string{"measure-node"}, tt.args...)...)
		measureExpect(t, tt.name, code, stderr, tt.code, tt.want)
	}
}

// measureGCPFake starts the fake Compute API with the simulator as boot agent and returns it,
// the common GCP flags and a --trusted-root file for its quotes.
func measureGCPFake(t *testing.T) (*gcptest.Server, []string, string) {
	t.Helper()
	srv := gcptest.NewServer()
	t.Cleanup(srv.Close)
	auth, err := tdxsim.NewAuthority([]byte("cli gcp authority"))
	if err != nil {
		t.Fatal(err)
	}
	srv.SetAgent(gcptest.SimAgent(auth, func(_, profile string) (*tdxsim.Image, error) {
		return vmsim.LoadImage(measureNodeImages, profile)
	}, 0))
	root := filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(root, auth.RootPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return srv, []string{"--gcp-endpoint", srv.URL, "--gcp-project", "mero-ci", "--gcp-zone", "us-central1-a", "--gcp-poll-interval", "1ms"}, root
}

func TestMeasureNodeCommandGCP(t *testing.T) {
	srv, gflags, root := measureGCPFake(t)
	var imgs []string
	for _, p := range release.Profiles() {
		imgs = append(imgs, "--image", string(p)+"=mero-tee-1-2-0-"+string(p))
	}
	args := append(append([]string{"measure-node", "--provider", "gcp", "--version", "1.2.0", "--trusted-root", root}, gflags...), imgs...)
	code, stdout, stderr := measureCLI(t, nil, args...)
	measureExpect(t, "gcp", code, stderr, 0, "[INFO] gcp: VM mero-measure-debug-", "is RUNNING", "[INFO] gcp: deleted VM")
	pub, err := measure.ReadPublished(strings.NewReader(stdout))
	if err != nil {
		t.Fatal(err)
	}
	if r := pub.Profiles[release.DebugReadOnly]; r.Source != "gcp-tdx-vm" || r.Image != "mero-tee-1-2-0-debug-read-only" {
		t.Fatalf("%+v", r)
	}
	if c, d := srv.Counts(); c != 3 || d != 3 {
		t.Fatalf("creates %d deletes %d", c, d)
	}

	// A boot agent publishing garbage fails the stage (exit 10) and still deletes every VM.
	srv.SetAgent(func(*computepb.Instance) map[string]string { return map[string]string{gcp.QuoteKey: "%%%"} })
	code, _, stderr = measureCLI(t, nil, args...)
	measureExpect(t, "garbage quote", code, stderr, 10, "[FAIL] measure node", "not standard base64")
	if c, d := srv.Counts(); c != d || len(srv.Live()) != 0 {
		t.Fatalf("creates %d deletes %d live %v", c, d, srv.Live())
	}

	// Configuration errors.
	key := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(key, []byte(`{"type":"authorized_user"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no project", []string{"--gcp-endpoint", srv.URL, "--gcp-zone", "z"}, nil, "project"},
		{"no zone", []string{"--gcp-endpoint", srv.URL, "--gcp-project", "p"}, nil, "zone"},
		{"missing key file", append([]string{"--gcp-credentials-file", "/nonexistent.json"}, gflags...), nil, "--gcp-credentials-file"},
		{"not a service account", append([]string{"--gcp-credentials-file", key}, gflags...), nil, `type is "authorized_user"`},
		{"secret not a key", gflags, map[string]string{"GCP_SERVICE_ACCOUNT_KEY": "hunter2"}, "not a JSON service-account key"},
	} {
		code, _, stderr := measureCLI(t, tt.env, append(append([]string{"measure-node", "--provider", "gcp", "--version", "1.2.0"}, tt.args...), imgs...)...)
		measureExpect(t, tt.name, code, stderr, outcome.Usage, tt.want)
		if strings.Contains(stderr, "hunter2") {
			t.Fatalf("%s: the secret was printed", tt.name)
		}
	}
}

func TestGCPSweepCommand(t *testing.T) {
	srv, gflags, _ := measureGCPFake(t)
	now := time.Now()
	for name, age := range map[string]time.Duration{"old-vm": 30 * time.Hour, "young-vm": time.Hour} {
		srv.AddInstance(&computepb.Instance{Name: &name, Labels: map[string]string{"mero-release": "ephemeral"},
			CreationTimestamp: ptrTo(now.Add(-age).Format(time.RFC3339))})
	}
	foreign := "team-vm"
	srv.AddInstance(&computepb.Instance{Name: &foreign, CreationTimestamp: ptrTo(now.Add(-100 * time.Hour).Format(time.RFC3339))})

	code, stdout, stderr := measureCLI(t, nil, append([]string{"gcp", "sweep", "--dry-run", "--json"}, gflags...)...)
	measureExpect(t, "dry run", code, stderr, 0, "would delete old-vm", "would delete 1 VM(s)")
	if len(srv.Live()) != 3 {
		t.Fatalf("dry run deleted: live %v", srv.Live())
	}
	var rep struct {
		Deleted []struct{ Name string } `json:"deleted"`
		DryRun  bool                    `json:"dry_run"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || len(rep.Deleted) != 1 || rep.Deleted[0].Name != "old-vm" || !rep.DryRun {
		t.Fatalf("report %s: %v", stdout, err)
	}

	code, _, stderr = measureCLI(t, nil, append([]string{"gcp", "sweep", "--older-than", "24h"}, gflags...)...)
	measureExpect(t, "sweep", code, stderr, 0, "[PASS] sweep: deleted old-vm", "deleted 1 VM(s)")
	if got := srv.Live(); len(got) != 2 || got[0] != "team-vm" || got[1] != "young-vm" {
		t.Fatalf("live after sweep: %v", got)
	}

	srv.SetFaults(gcptest.Faults{DeleteFailures: 100})
	code, _, stderr = measureCLI(t, nil, append([]string{"gcp", "sweep", "--older-than", "30m"}, gflags...)...)
	measureExpect(t, "delete fails", code, stderr, 1, "[FAIL] sweep: delete young-vm", "1 failed")
	if strings.Contains(stderr, "[ERROR]") {
		t.Fatalf("failure printed twice:\n%s", stderr)
	}

	code, _, stderr = measureCLI(t, nil, append([]string{"gcp", "sweep", "--older-than", "0s"}, gflags...)...)
	measureExpect(t, "zero age", code, stderr, 2, "--older-than")
	code, _, stderr = measureCLI(t, nil, "gcp")
	measureExpect(t, "no subcommand", code, stderr, 2, "subcommand is required")
}

func ptrTo[T any](v T) *T { return &v }
