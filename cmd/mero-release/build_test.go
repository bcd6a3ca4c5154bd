package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/calimero-network/mero-release/pipeline/flow"
	"github.com/calimero-network/mero-release/pipeline/ociimage/ocitest"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

func TestBuildNodeImageSim(t *testing.T) {
	out := filepath.Join(t.TempDir(), "node")
	code, stdout, stderr := catalogCLI(t, nil, "--json", "build-node-image", "--tag", "mero-tee-v1.3.0", "--provider", "sim",
		"--source", "../../examples/node-image", "-o", out)
	catalogExpect(t, code, stderr, 0, "[PASS] locked-read-only: "+out)
	var res flow.NodeBuildResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	for _, p := range release.Profiles() {
		if res.Images[p] != out {
			t.Errorf("%s image %q", p, res.Images[p])
		}
		// the copy boots in the simulator to the same registers as the source
		a, err := tdxsim.LoadImage(out, string(p))
		if err != nil {
			t.Fatal(err)
		}
		b, err := tdxsim.LoadImage("../../examples/node-image", string(p))
		if err != nil {
			t.Fatal(err)
		}
		ma, _, errA := tdxsim.Measure(a)
		mb, _, errB := tdxsim.Measure(b)
		if errA != nil || errB != nil || ma != mb {
			t.Errorf("%s: the copy measures differently (%v, %v)", p, errA, errB)
		}
	}
	code, _, stderr = catalogCLI(t, nil, "build-node-image", "--tag", "mero-kms-v1.3.0", "-o", out)
	catalogExpect(t, code, stderr, 2, "not a mero-tee tag")
	code, _, stderr = catalogCLI(t, nil, "build-node-image", "--tag", "mero-tee-v1.3.0", "--source", t.TempDir(), "-o", out)
	catalogExpect(t, code, stderr, 2, "debug.json")
}

// TestBuildNodeImageGCP drives the gcp path with a stand-in packer (the real one needs its
// googlecompute plugin from the network): the service-account key reaches Packer as a private
// file, the pinned base image as variables, and Packer's manifest becomes the profile images.
func TestBuildNodeImageGCP(t *testing.T) {
	dir := t.TempDir()
	seen := filepath.Join(dir, "seen")
	bin := filepath.Join(dir, "packer")
	script := `#!/bin/sh
[ "$1" = build ] || exit 0
{ echo "$*"; cat "$GOOGLE_APPLICATION_CREDENTIALS"; stat -c %a "$GOOGLE_APPLICATION_CREDENTIALS"; } > ` + seen + `
cat > packer-manifest.json <<'JSON'
{"builds": [
 {"name": "debug", "builder_type": "googlecompute", "artifact_id": "mero-tee-1-3-0-debug", "custom_data": {"profile": "debug", "source_image": "ubuntu-2404-tdx-v20250101", "source_image_family": "ubuntu-2404-tdx", "source_image_project": "confidential-vm-images", "packages_file": "os-packages-debug.tsv", "identity_file": "image-identity-debug.env"}},
 {"name": "debug-read-only", "builder_type": "googlecompute", "artifact_id": "mero-tee-1-3-0-debug-read-only", "custom_data": {"profile": "debug-read-only", "source_image": "ubuntu-2404-tdx-v20250101", "source_image_family": "ubuntu-2404-tdx", "source_image_project": "confidential-vm-images", "packages_file": "os-packages-debug-read-only.tsv", "identity_file": "image-identity-debug-read-only.env"}},
 {"name": "locked-read-only", "builder_type": "googlecompute", "artifact_id": "mero-tee-1-3-0-locked-read-only", "custom_data": {"profile": "locked-read-only", "source_image": "ubuntu-2404-tdx-v20250101", "source_image_family": "ubuntu-2404-tdx", "source_image_project": "confidential-vm-images", "packages_file": "os-packages-locked-read-only.tsv", "identity_file": "image-identity-locked-read-only.env"}}
]}
JSON
for p in debug debug-read-only locked-read-only; do
  printf 'libc6\t2.39-0ubuntu8.3\tamd64\tglibc\n' > "os-packages-$p.tsv"
  printf 'os_id=ubuntu\nkernel_release=6.8.0-1015-gcp\nkernel_sha256=%064d\n' 0 > "image-identity-$p.env"
done
`
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	agent := filepath.Join(dir, "mero-tee-agent")
	if err := os.WriteFile(agent, []byte("\x7fELF stand-in"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "build")
	env := map[string]string{"GCP_SERVICE_ACCOUNT_KEY": `{"type": "service_account"}`, "GCP_PROJECT_ID": "mero-prod", "GCP_IMAGE_FAMILY": "mero-tee"}
	code, _, stderr := catalogCLI(t, env, "build-node-image", "--tag", "mero-tee-v1.3.0", "--provider", "gcp",
		"--source", "../../examples/node-image/packer", "--packer", bin, "--agent-binary", agent, "-o", out)
	catalogExpect(t, code, stderr, 0, "[PASS] locked-read-only: mero-tee-1-3-0-locked-read-only")
	data, err := os.ReadFile(seen)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-var project_id=mero-prod", "-var source_image=ubuntu-2404-tdx-v20250101", "-var image_family=mero-tee", `{"type": "service_account"}600`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("packer saw no %q:\n%s", want, data)
		}
	}
	// the manifest is what release-node-image takes
	product, err := nodeProduct(flow.Config{}, nil, "", "", filepath.Join(out, "packer-manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if product.Images[release.Debug] != "mero-tee-1-3-0-debug" || product.SBOMKind != "packer-manifest" || product.BaseImage != flow.DefaultBaseImage() {
		t.Errorf("product %+v", product)
	}
	if _, err := nodeProduct(flow.Config{}, []string{"debug=x"}, "", "", filepath.Join(out, "packer-manifest.json")); err == nil {
		t.Error("--image and --packer-manifest together were accepted")
	}
	// without credentials nothing runs
	delete(env, "GCP_SERVICE_ACCOUNT_KEY")
	code, _, stderr = catalogCLI(t, env, "build-node-image", "--tag", "mero-tee-v1.3.0", "--provider", "gcp", "--packer", bin, "-o", out)
	catalogExpect(t, code, stderr, 2, "no credentials")
}

func TestBuildKMSImage(t *testing.T) {
	host := ocitest.Registry(t)
	bin := filepath.Join(t.TempDir(), "mero-kms")
	if err := os.WriteFile(bin, []byte("a static KMS stand-in\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "images")
	env := map[string]string{"SOURCE_DATE_EPOCH": "1764547200"}
	code, stdout, stderr := catalogCLI(t, env, "--json", "build-kms-image", "--tag", "mero-kms-v1.3.0", "--kms-binary", bin, "--registry", host+"/calimero",
		"--repo", "../..", "-o", out)
	catalogExpect(t, code, stderr, 0, "[PASS] locked-read-only image "+host+"/calimero/mero-kms@sha256:", "[INFO] pushed "+host+"/calimero/mero-kms:1.3.0-debug")
	var m flow.KMSImageManifest
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	for _, p := range release.Profiles() {
		img := m.Profiles[p]
		if len(img.ComposeHash) != 64 {
			t.Errorf("%s compose hash %q", p, img.ComposeHash)
		}
		for _, f := range []string{"mero-kms-" + string(p) + ".oci.tar", "app-compose-" + string(p) + ".json"} {
			if _, err := os.Stat(filepath.Join(out, f)); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
		ref, _ := name.ParseReference(img.Image)
		desc, err := remote.Get(ref)
		if err != nil || desc.Digest.String() != img.Digest {
			t.Errorf("%s: registry has %v (%v), manifest says %s", p, desc, err, img.Digest)
		}
		// an explicit build-and-push precedes any release: nothing is signed
		sig, _ := name.ParseReference(ref.Context().Name() + ":" + strings.Replace(img.Digest, ":", "-", 1) + ".sig")
		if _, err := remote.Get(sig); err == nil {
			t.Errorf("%s: build-kms-image signed the image", p)
		}
	}
	if _, err := os.Stat(filepath.Join(out, release.KMSImageManifest)); err != nil {
		t.Error(err)
	}
	// the same binary and time give the same digests (reproducible images)
	code, stdout2, stderr := catalogCLI(t, env, "--json", "build-kms-image", "--tag", "mero-kms-v1.3.0", "--kms-binary", bin, "--repo", "../..", "-o", t.TempDir())
	catalogExpect(t, code, stderr, 0)
	var m2 flow.KMSImageManifest
	if err := json.Unmarshal([]byte(stdout2), &m2); err != nil {
		t.Fatal(err)
	}
	if m2.Profiles[release.Debug].Digest != m.Profiles[release.Debug].Digest {
		t.Errorf("rebuild gave %s, first build %s", m2.Profiles[release.Debug].Digest, m.Profiles[release.Debug].Digest)
	}
}
