package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/calimero-network/mero-release/examples/kms/local"
	"github.com/calimero-network/mero-release/examples/kms/server"
	"github.com/calimero-network/mero-release/pipeline/e2e"
	"github.com/calimero-network/mero-release/pipeline/flow"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/ociimage"
	"github.com/calimero-network/mero-release/pipeline/ociimage/ocitest"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/phala/phalatest"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

// cvmRunner "boots" a CVM of the Phala API fake the way dstack does: it pulls the image the
// app-compose pins, by digest, from the registry, and runs that image's entrypoint as a KMS
// process with the decrypted environment (the policy from MERO_KMS_POLICY_URL, pinned by
// MERO_KMS_POLICY_SHA256), its simulated dstack extending the compose hash Phala computed.
// pulled records the image references it ran.
type cvmRunner struct {
	dir  string
	auth *tdxsim.Authority
	log  *outcome.Logger

	mu     sync.Mutex
	pulled []string
}

func (c *cvmRunner) run(ctx context.Context, app phalatest.App) (string, func() error, error) {
	compose, err := measure.ParseCompose(app.Name, app.ComposeFile)
	if err != nil {
		return "", nil, err
	}
	var ref string
	for _, img := range compose.Images {
		ref = img
	}
	digestRef, err := name.NewDigest(ref)
	if err != nil {
		return "", nil, fmt.Errorf("the compose pins no image by digest: %q: %w", ref, err)
	}
	img, err := remote.Image(digestRef, remote.WithContext(ctx))
	if err != nil {
		return "", nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	c.mu.Lock()
	c.pulled = append(c.pulled, ref)
	n := len(c.pulled)
	c.mu.Unlock()
	archive := filepath.Join(c.dir, fmt.Sprintf("pulled-%d.oci.tar", n))
	if err := ociimage.WriteOCIArchive(img, "pulled:latest", archive); err != nil {
		return "", nil, err
	}
	bin := filepath.Join(c.dir, fmt.Sprintf("kms-%d", n))
	if _, err := ociimage.ExtractEntrypoint(archive, bin); err != nil {
		return "", nil, err
	}
	lp, err := server.FetchPolicy(ctx, nil, app.Env[policy.EnvPolicyURL], app.Env[policy.EnvPolicySHA256],
		app.Env[policy.EnvKMSVersion], app.Env[policy.EnvKMSProfile])
	if err != nil {
		return "", nil, err
	}
	inst, err := local.Process(bin, c.auth, "", c.log).Launch(ctx, lp, e2e.KMSDeployment{ComposeHash: app.ComposeHash})
	if err != nil {
		return "", nil, err
	}
	return inst.URL(), inst.Close, nil
}

// TestReleaseKMSPhala runs release-kms --kms-provider phala against the Phala API fake and a
// registry on 127.0.0.1: the audited images are pushed by digest before E2E, each profile's
// image is deployed as a CVM that pulls it, probed (/health, nonce-bound /attest checked
// against the release's published measurements: guardrail D), used by the node suite, and
// deleted. A second release under injected API failures deletes every CVM it created too.
func TestReleaseKMSPhala(t *testing.T) {
	root := t.TempDir()
	common := []string{"--store", "dir:" + filepath.Join(root, "releases"), "--work", filepath.Join(root, "work"), "--repo", filepath.Join("..", ".."),
		"--catalog", filepath.Join("..", "..", "compatibility-catalog.json")}
	env := map[string]string{"SOURCE_DATE_EPOCH": "1764547200"}
	code, _, stderr := catalogCLI(t, env, append([]string{"release-node-image", "--tag", "mero-tee-v1.3.0-rc.1", "--version", "1.3.0-rc.1",
		"--image", "debug=../../examples/node-image", "--image", "debug-read-only=../../examples/node-image", "--image", "locked-read-only=../../examples/node-image",
		"--sbom-input", "../../examples/node-image"}, common...)...)
	catalogExpect(t, code, stderr, 0, "[PASS] mero-tee-v1.3.0-rc.1: rc release done (published: true)")

	bin := filepath.Join(root, "mero-kms")
	if err := flow.BuildGoBinary(context.Background(), filepath.Join("..", ".."), "./examples/kms/cmd/mero-kms", bin); err != nil {
		t.Fatal(err)
	}
	auth, err := tdxsim.NewAuthority([]byte(tdxsim.DefaultSeed))
	if err != nil {
		t.Fatal(err)
	}
	quoteRoot := filepath.Join(root, "sim-root.pem")
	if err := os.WriteFile(quoteRoot, auth.RootPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	var cvmLog bytes.Buffer
	runner := &cvmRunner{dir: t.TempDir(), auth: auth, log: outcome.NewLogger(&cvmLog)}
	fake := phalatest.New("phala-test-key", runner.run)
	t.Cleanup(fake.Close)
	registry := ocitest.Registry(t) + "/calimero"
	env["PHALA_DSTACK_URL"], env["PHALA_API_KEY"] = fake.URL(), "phala-test-key"

	release := func(version string) (int, string) {
		args := append([]string{"release-kms", "--tag", "mero-kms-v" + version, "--version", version, "--counterpart", "1.3.0-rc.1",
			"--kms-binary", bin, "--registry", registry, "--kms-provider", "phala", "--kms-quote-root", quoteRoot, "--run-id", "t" + strings.ReplaceAll(version, ".", "")}, common...)
		code, _, stderr := catalogCLI(t, env, args...)
		return code, stderr
	}

	t.Run("deploy, probe, node suite, delete", func(t *testing.T) {
		code, stderr := release("1.3.0-rc.1")
		catalogExpect(t, code, stderr, 0,
			"by digest (untagged) for E2E to pull",
			"[PASS] stage push-digests",
			"CVM mero-e2e-kms-t130-rc1-debug",
			"CVM mero-e2e-kms-t130-rc1-locked-read-only",
			"[PASS] guardrail D (measurement consistency): kms 1.3.0-rc.1 (debug) vs published-mrtds.json",
			"[PASS] stage e2e",
			"[PASS] stage push-images",
			"[PASS] mero-kms-v1.3.0-rc.1: rc release done (published: true)")
		if strings.Contains(stderr, "[FAIL]") {
			t.Errorf("[FAIL] lines in a successful release:\n%s", stderr)
		}
		created, deleted, live := fake.Counts()
		t.Logf("Phala API fake: %d CVMs created, %d deleted, %d live; images pulled by the CVMs: %d", created, deleted, live, len(runner.pulled))
		if created < 3 || deleted != created || live != 0 {
			t.Errorf("CVMs: %d created, %d deleted, %d live; want one per profile at least, every one deleted", created, deleted, live)
		}
		for _, ref := range runner.pulled {
			if !strings.HasPrefix(ref, registry+"/mero-kms@sha256:") {
				t.Errorf("a CVM ran %s, not the release's image in %s", ref, registry)
			}
		}
	})

	t.Run("injected failures: deletes equal creates", func(t *testing.T) {
		before, _, _ := fake.Counts()
		// The first status poll fails (that profile's deployment fails after its CVM was
		// created), two deletions fail before they succeed.
		fake.SetFaults(phalatest.Faults{Get: 1, Delete: 2})
		code, stderr := release("1.3.0-rc.2")
		fake.SetFaults(phalatest.Faults{})
		created, deleted, live := fake.Counts()
		t.Logf("exit %d; Phala API fake: %d CVMs created (%d in this run), %d deleted, %d live", code, created, created-before, deleted, live)
		if created-before == 0 || deleted != created || live != 0 {
			t.Errorf("CVMs: %d created, %d deleted, %d live under injected failures; want every created CVM deleted:\n%s", created, deleted, live, stderr)
		}
		if !strings.Contains(stderr, "injected") {
			t.Errorf("the injected failure is not reported:\n%s", stderr)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for name, tc := range map[string]struct {
			args []string
			env  map[string]string
			want string
		}{
			"no API URL":  {[]string{"--registry", registry}, map[string]string{"PHALA_API_KEY": "k"}, "--kms-provider phala needs $PHALA_DSTACK_URL"},
			"no API key":  {[]string{"--registry", registry}, map[string]string{"PHALA_DSTACK_URL": fake.URL()}, "--kms-provider phala needs $PHALA_API_KEY"},
			"no registry": {nil, map[string]string{"PHALA_DSTACK_URL": fake.URL(), "PHALA_API_KEY": "k"}, "give the registry to push them to"},
			"unknown":     {[]string{"--kms-provider", "aws"}, nil, `--kms-provider "aws": want local or phala`},
		} {
			t.Run(name, func(t *testing.T) {
				args := append([]string{"release-kms", "--tag", "mero-kms-v1.3.0-rc.3", "--version", "1.3.0-rc.3", "--kms-binary", bin}, common...)
				if name != "unknown" {
					args = append(args, "--kms-provider", "phala")
				}
				code, _, stderr := catalogCLI(t, tc.env, append(args, tc.args...)...)
				catalogExpect(t, code, stderr, 2, tc.want)
			})
		}
	})
}

// TestPhalaSweepCommand: mero-release phala sweep deletes only this tool's CVMs older than the
// cut-off.
func TestPhalaSweepCommand(t *testing.T) {
	fake := phalatest.New("k", func(context.Context, phalatest.App) (string, func() error, error) {
		return "", nil, fmt.Errorf("not deployed in this test")
	})
	t.Cleanup(fake.Close)
	old := fake.AddLeftover("mero-e2e-kms-run1-debug", time.Now().Add(-48*time.Hour))
	fake.AddLeftover("mero-e2e-kms-run2-debug", time.Now().Add(-time.Hour))
	fake.AddLeftover("someone-elses-cvm", time.Now().Add(-72*time.Hour))
	env := map[string]string{"PHALA_DSTACK_URL": fake.URL(), "PHALA_API_KEY": "k"}
	code, stdout, stderr := catalogCLI(t, env, "--json", "phala", "sweep")
	catalogExpect(t, code, stderr, 0, "[PASS] phala sweep: deleted the CVM of app "+old, "deleted 1 CVM(s)")
	if !strings.Contains(stdout, old) {
		t.Errorf("--json: %s", stdout)
	}
	if _, deleted, live := fake.Counts(); deleted != 1 || live != 2 {
		t.Errorf("%d deleted, %d live; want only the old CVM of ours deleted", deleted, live)
	}
	code, _, stderr = catalogCLI(t, nil, "phala", "sweep")
	catalogExpect(t, code, stderr, 2, "needs $PHALA_DSTACK_URL and $PHALA_API_KEY")
	code, _, stderr = catalogCLI(t, env, "phala", "sweep", "--older-than", "0s")
	catalogExpect(t, code, stderr, 2, "want a positive duration")
}

// TestReleaseNodeImagePhalaFlags: release-node-image --kms-provider phala runs the KMS release's
// images, so a local KMS binary is refused with it, and the API's variables are required.
func TestReleaseNodeImagePhalaFlags(t *testing.T) {
	root := t.TempDir()
	common := []string{"release-node-image", "--tag", "mero-tee-v1.3.0-rc.1", "--version", "1.3.0-rc.1", "--store", "dir:" + filepath.Join(root, "releases"),
		"--work", filepath.Join(root, "work"), "--repo", filepath.Join("..", ".."), "--kms-provider", "phala"}
	code, _, stderr := catalogCLI(t, map[string]string{"PHALA_DSTACK_URL": "http://127.0.0.1:1/api/v1", "PHALA_API_KEY": "k"}, append(common, "--kms-binary", "/bin/true")...)
	catalogExpect(t, code, stderr, 2, "--kms-binary runs the KMS locally; --kms-provider phala runs the KMS release's images: give one")
	code, _, stderr = catalogCLI(t, nil, common...)
	catalogExpect(t, code, stderr, 2, "release-node-image: --kms-provider phala needs $PHALA_DSTACK_URL")
}
