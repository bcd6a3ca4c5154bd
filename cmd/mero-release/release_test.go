package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calimero-network/mero-release/pipeline/dstack"
	"github.com/calimero-network/mero-release/pipeline/flow"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/ociimage"
	"github.com/calimero-network/mero-release/pipeline/ociimage/ocitest"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
)

// kmsImages builds the sample KMS and wraps it in one OCI archive per profile, as the Dagger
// module's Dockerfile build hands them to release-kms --image.
func kmsImages(t *testing.T, version string) []string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "mero-kms")
	if err := flow.BuildGoBinary(context.Background(), filepath.Join("..", ".."), "./examples/kms/cmd/mero-kms", bin); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var flags []string
	for _, p := range release.Profiles() {
		img, err := ociimage.Build(ociimage.Spec{
			Files:      []ociimage.File{{Path: "/usr/local/bin/mero-kms", Content: data, Mode: 0o755}},
			Entrypoint: []string{"/usr/local/bin/mero-kms"},
			Env:        []string{"MERO_KMS_PROFILE=" + string(p), "MERO_KMS_VERSION=" + version},
			Created:    time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		})
		if err != nil {
			t.Fatal(err)
		}
		archive := filepath.Join(dir, string(p)+".oci.tar")
		if err := ociimage.WriteOCIArchive(img, "mero-kms:"+version+"-"+string(p), archive); err != nil {
			t.Fatal(err)
		}
		flags = append(flags, "--image", string(p)+"="+archive)
	}
	return flags
}

// TestReleaseKMSFromPrebuiltImages runs release-node-image, then release-kms with prebuilt
// images: E2E runs the KMS binary taken from the locked-read-only image as processes, and the
// KMS's quotes match the measurements the release publishes.
func TestReleaseKMSFromPrebuiltImages(t *testing.T) {
	root := t.TempDir()
	common := []string{"--store", "dir:" + filepath.Join(root, "releases"), "--work", filepath.Join(root, "work"), "--repo", filepath.Join("..", ".."),
		"--catalog", filepath.Join("..", "..", "compatibility-catalog.json")}
	env := map[string]string{"SOURCE_DATE_EPOCH": "1764547200"}
	code, _, stderr := catalogCLI(t, env, append([]string{"release-node-image", "--tag", "mero-tee-v1.3.0-rc.1", "--version", "1.3.0-rc.1",
		"--image", "debug=../../examples/node-image", "--image", "debug-read-only=../../examples/node-image", "--image", "locked-read-only=../../examples/node-image",
		"--sbom-input", "../../examples/node-image"}, common...)...)
	catalogExpect(t, code, stderr, 0, "[PASS] mero-tee-v1.3.0-rc.1: rc release done (published: true)")
	images := kmsImages(t, "1.3.0-rc.1")
	host := ocitest.Registry(t)
	args := append([]string{"release-kms", "--tag", "mero-kms-v1.3.0-rc.1", "--version", "1.3.0-rc.1", "--counterpart", "1.3.0-rc.1",
		"--registry", host + "/calimero"}, images...)
	code, _, stderr = catalogCLI(t, env, append(args, common...)...)
	catalogExpect(t, code, stderr, 0,
		"[INFO] E2E runs /usr/local/bin/mero-kms of the locked-read-only image",
		"[INFO] KMS 1.3.0-rc.1 (locked-read-only): process ",
		"[PASS] guardrail D (measurement consistency): kms 1.3.0-rc.1 (debug) vs published-mrtds.json",
		"[PASS] stage e2e",
		"[PASS] mero-kms-v1.3.0-rc.1: rc release done (published: true)")
	// The dependency guard runs after E2E and accepts the pair this run's E2E proved (it reaches
	// the catalog after publishing): no [FAIL] line in a release that succeeds.
	if strings.Contains(stderr, "[FAIL]") {
		t.Errorf("[FAIL] lines in a successful rc release:\n%s", stderr)
	}
	if !strings.Contains(stderr, "[PASS] catalog pair: kms 1.3.0-rc.1 with node image 1.3.0-rc.1 is proven in this run") {
		t.Errorf("the dependency guard does not accept the pair this run proved:\n%s", stderr)
	}
	// On the embedded defaults the release publishes the pinned dstack OS's MRTD and RTMR0–2,
	// naming that file as their source, and RTMR3 as computed from the compose.
	pub, err := measure.ReadPublishedFile(filepath.Join(root, "releases", "mero-kms-v1.3.0-rc.1", "assets", release.PublishedMRTDsFile))
	if err != nil {
		t.Fatal(err)
	}
	osImg := dstack.PinnedOSImage()
	for p, r := range pub.Profiles {
		if r.MRTD != osImg.MRTD || r.RTMR0 != osImg.RTMR0 || r.RTMR1 != osImg.RTMR1 || r.RTMR2 != osImg.RTMR2 {
			t.Errorf("%s: published MRTD/RTMR0–2 are not the pinned dstack OS file's: %+v", p, r)
		}
		if want := measure.KMSRegisterSources(osImg, r.ComposeHash); r.RegisterSources != want {
			t.Errorf("%s: register_sources %+v, want %+v", p, r.RegisterSources, want)
		}
	}

	// Each pushed image is signed and attested: verify-image accepts it with the release's key
	// and refuses another key (10) and a call without a signer policy (2).
	work := filepath.Join(root, "work")
	key := filepath.Join(work, "keys", "cosign.pub")
	for _, p := range release.Profiles() {
		ref := host + "/calimero/mero-kms:1.3.0-rc.1-" + string(p)
		code, stdout, stderr := catalogCLI(t, nil, "--json", "verify-image", "--key", key, ref)
		catalogExpect(t, code, stderr, 0, "https://spdx.dev/Document (referrer) signed by key", "https://slsa.dev/provenance/v1 (tag) signed by key",
			"signature, SBOM and provenance attestations verified")
		if !strings.Contains(stdout, `"predicate_type": "https://sigstore.dev/cosign/sign/v1"`) {
			t.Errorf("verify-image --json: %s", stdout)
		}
	}
	otherPub := filepath.Join(t.TempDir(), "other.pub")
	if _, pub, err := sign.GenerateKeyPair(nil); err != nil || os.WriteFile(otherPub, pub, 0o644) != nil {
		t.Fatal(err)
	}
	code, _, stderr = catalogCLI(t, nil, "verify-image", "--key", otherPub, host+"/calimero/mero-kms:1.3.0-rc.1-debug")
	catalogExpect(t, code, stderr, 10, "no valid signature (referrer)", "does not verify with the given public key")
	code, _, stderr = catalogCLI(t, nil, "verify-image", host+"/calimero/mero-kms:1.3.0-rc.1-debug")
	catalogExpect(t, code, stderr, 2, "give --key, or --certificate-identity")

	// migrate-policy --work finds the archive the run kept of the released image, by digest
	code, stdout, stderr := catalogCLI(t, nil, "--json", "migrate-policy", "--kms-version", "1.3.0-rc.1", "--node-version", "1.3.0-rc.1",
		"--profile", "locked-read-only", "--store", "dir:"+filepath.Join(root, "releases"), "--key", filepath.Join(work, "keys", "cosign.pub"),
		"--catalog", filepath.Join(work, "compatibility-catalog.json"), "--allow-not-ready", "--work", work)
	var res struct {
		KMSImage  string `json:"kms_image"`
		KeptImage string `json:"kept_image"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); code != 0 || err != nil {
		t.Fatalf("migrate-policy --work: exit %d, %v\n%s", code, err, stderr)
	}
	kept := filepath.Join(flow.ImagesDir(work, "mero-kms-v1.3.0-rc.1"), "mero-kms-locked-read-only.oci.tar")
	info, err := measure.InspectImage(kept)
	if err != nil {
		t.Fatal(err)
	}
	if res.KeptImage != kept || !strings.HasSuffix(res.KMSImage, "@"+info.Digest) {
		t.Errorf("kept image %q (released %s), want %s (%s)", res.KeptImage, res.KMSImage, kept, info.Digest)
	}
}

func TestReleaseKMSImageFlags(t *testing.T) {
	root := t.TempDir()
	common := []string{"--tag", "mero-kms-v1.3.0-rc.1", "--version", "1.3.0-rc.1", "--store", "dir:" + filepath.Join(root, "releases"),
		"--work", filepath.Join(root, "work"), "--repo", filepath.Join("..", "..")}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"one profile only":    {[]string{"--image", "debug=" + filepath.Join(root, "d.tar")}, "no image for profile debug-read-only"},
		"not PROFILE=ARCHIVE": {[]string{"--image", "debug"}, "want PROFILE=VALUE"},
		"unknown profile":     {[]string{"--image", "prod=x.tar"}, "prod"},
		"binary and images": {[]string{"--kms-binary", "x", "--image", "debug=a", "--image", "debug-read-only=b", "--image", "locked-read-only=c"},
			"--kms-binary and --image: give one"},
	} {
		t.Run(name, func(t *testing.T) {
			code, _, stderr := catalogCLI(t, nil, append(append([]string{"release-kms"}, common...), tc.args...)...)
			catalogExpect(t, code, stderr, 2, tc.want)
		})
	}
}
