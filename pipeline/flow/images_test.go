package flow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/calimero-network/mero-release/pipeline/flow"
	"github.com/calimero-network/mero-release/pipeline/imagesign"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/ociimage"
	"github.com/calimero-network/mero-release/pipeline/ociimage/ocitest"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
)

// prebuiltImages writes one OCI archive per profile as another builder (the Dagger module's
// Dockerfile build) would hand them over: the profile and version in the image's environment.
func prebuiltImages(t *testing.T, f *fixture, version string) map[release.Profile]string {
	t.Helper()
	dir := t.TempDir()
	bin, err := os.ReadFile(f.smallBinary)
	if err != nil {
		t.Fatal(err)
	}
	out := map[release.Profile]string{}
	for _, p := range release.Profiles() {
		img, err := ociimage.Build(ociimage.Spec{
			Files:      []ociimage.File{{Path: "/usr/local/bin/mero-kms", Content: bin, Mode: 0o755}},
			Entrypoint: []string{"/usr/local/bin/mero-kms"},
			Env:        []string{"MERO_KMS_LISTEN=0.0.0.0:8080", "MERO_KMS_PROFILE=" + string(p), "MERO_KMS_VERSION=" + version},
			Created:    f.created,
		})
		if err != nil {
			t.Fatal(err)
		}
		out[p] = filepath.Join(dir, string(p)+".oci.tar")
		if err := ociimage.WriteOCIArchive(img, "mero-kms:"+version+"-"+string(p), out[p]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// registryServer is an OCI registry on 127.0.0.1 whose repositories a test can list.
type registryServer struct {
	host string
}

func newRegistry(t *testing.T) *registryServer {
	t.Helper()
	return &registryServer{host: ocitest.Registry(t)}
}

// repositories lists the registry's repositories (GET /v2/_catalog).
func (r *registryServer) repositories(t *testing.T) []string {
	t.Helper()
	resp, err := http.Get("http://" + r.host + "/v2/_catalog")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cat struct {
		Repositories []string `json:"repositories"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&cat); err != nil {
		t.Fatal(err)
	}
	return cat.Repositories
}

// wantSignedImages checks that each profile image the release pushed carries, where cosign
// looks, a signature and the SBOM and provenance attestations made with the release's key.
func (w *world) wantSignedImages(t *testing.T, reg *registryServer, version string) {
	t.Helper()
	for _, p := range release.Profiles() {
		ref, err := name.ParseReference(fmt.Sprintf("%s/calimero/mero-kms:%s-%s", reg.host, version, p))
		if err != nil {
			t.Fatal(err)
		}
		res, err := imagesign.Verify(context.Background(), ref, imagesign.VerifyOptions{Verifier: sign.NewVerifier(nil), Policy: sign.Policy{PublicKey: w.f.publicKey}})
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if len(res.Checks) != 6 {
			t.Errorf("%s: %d checks %+v, want the signature and 2 attestations in 2 places", p, len(res.Checks), res.Checks)
		}
	}
	if !strings.Contains(w.log.String(), "locked-read-only: signed and attested "+reg.host+"/calimero/mero-kms@sha256:") {
		t.Error("no signing line in the log")
	}
}

func (w *world) releaseKMSWith(tag string, product flow.KMSProduct, mods ...func(*flow.Config)) (*flow.Report, error) {
	return flow.ReleaseKMS(w.f.ctx, w.config(tag, mods...), product)
}

// testPrebuiltImages releases a KMS rc from prebuilt profile images with a registry: the images
// are measured and recorded as they are, pushed only after audit and E2E, and the registry holds
// exactly the recorded digests; refused releases push nothing.
func testPrebuiltImages(t *testing.T, f *fixture) {
	const kmsTag = "mero-kms-v1.3.0-rc.1"
	t.Run("measured, recorded and pushed as they are", func(t *testing.T) {
		w := f.world(t)
		w.AddNode(t, "1.3.0-rc.1", nil)
		reg := newRegistry(t)
		images := prebuiltImages(t, f, "1.3.0-rc.1")
		product := w.kmsProduct()
		product.Binary, product.Images, product.Registry = "", images, reg.host+"/calimero"
		rep, err := w.releaseKMSWith(kmsTag, product, counterpart("1.3.0-rc.1"))
		if err != nil {
			t.Fatalf("release: %v", err)
		}
		st := stages(t, rep, kmsStages())
		wantStatus(t, st, flow.StatusPass, "", "build-images", "measure", "e2e", "push-images", "publish", "audit")
		w.wantPublished(t, kmsTag)
		var manifest flow.KMSImageManifest
		if err := json.Unmarshal(readAsset(t, w.Store, kmsTag, release.KMSImageManifest), &manifest); err != nil {
			t.Fatal(err)
		}
		pub, err := measure.ReadPublished(strings.NewReader(string(readAsset(t, w.Store, kmsTag, release.PublishedMRTDsFile))))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range release.Profiles() {
			info, err := measure.InspectImage(images[p])
			if err != nil {
				t.Fatal(err)
			}
			got := manifest.Profiles[p]
			want := reg.host + "/calimero/mero-kms@" + info.Digest
			if got.Digest != info.Digest || got.Image != want {
				t.Errorf("%s: recorded %s (%s), want the prebuilt archive's %s", p, got.Image, got.Digest, want)
			}
			if pub.Profiles[p].ImageDigest != info.Digest {
				t.Errorf("%s: published-mrtds.json records %+v, want the prebuilt digest %s", p, pub.Profiles[p], info.Digest)
			}
			ref, err := name.ParseReference(fmt.Sprintf("%s/calimero/mero-kms:1.3.0-rc.1-%s", reg.host, p))
			if err != nil {
				t.Fatal(err)
			}
			desc, err := remote.Get(ref)
			if err != nil {
				t.Fatalf("%s: not in the registry: %v", p, err)
			}
			if desc.Digest.String() != info.Digest {
				t.Errorf("%s: the registry holds %s, the release records %s", p, desc.Digest, info.Digest)
			}
		}
		if !strings.Contains(w.log.String(), "[INFO] pushed "+reg.host+"/calimero/mero-kms:1.3.0-rc.1-locked-read-only as ") {
			t.Errorf("no push line in the log")
		}
		w.wantSignedImages(t, reg, "1.3.0-rc.1")
	})
	t.Run("stable: pushed, signed and attested", func(t *testing.T) {
		w := f.world(t)
		w.AddNode(t, "1.3.0", nil)
		reg := newRegistry(t)
		product := w.kmsProduct()
		product.Registry = reg.host + "/calimero"
		rep, err := w.releaseKMSWith("mero-kms-v1.3.0", product, counterpart("1.3.0"), w.authorNotes(stableNotes))
		if err != nil {
			t.Fatalf("release: %v", err)
		}
		wantStatus(t, stages(t, rep, kmsStages()), flow.StatusPass, "", "e2e", "push-images", "publish", "audit")
		w.wantPublished(t, "mero-kms-v1.3.0")
		w.wantSignedImages(t, reg, "1.3.0")
	})
	t.Run("a refused release pushes nothing", func(t *testing.T) {
		w := f.world(t)
		reg := newRegistry(t)
		product := w.kmsProduct()
		product.Binary, product.Images, product.Registry = "", prebuiltImages(t, f, "1.3.0"), reg.host+"/calimero"
		_, err := w.releaseKMSWith("mero-kms-v1.3.0", product, w.authorNotes(stableNotes))
		wantRefused(t, err, outcome.VerificationFailed, "policy_not_ready")
		w.wantNoRelease(t, "mero-kms-v1.3.0")
		if repos := reg.repositories(t); len(repos) != 0 {
			t.Errorf("a refused release pushed %v", repos)
		}
	})
	t.Run("an image of another profile is refused", func(t *testing.T) {
		w := f.world(t)
		images := prebuiltImages(t, f, "1.3.0-rc.1")
		images[release.Debug], images[release.LockedReadOnly] = images[release.LockedReadOnly], images[release.Debug]
		product := w.kmsProduct()
		product.Binary, product.Images = "", images
		_, err := w.releaseKMSWith(kmsTag, product)
		wantRefused(t, err, outcome.VerificationFailed, "stage build-images", "MERO_KMS_PROFILE=", "another profile or version")
		w.wantNoRelease(t, kmsTag)
	})
	t.Run("a missing or broken archive is refused", func(t *testing.T) {
		w := f.world(t)
		images := prebuiltImages(t, f, "1.3.0-rc.1")
		if err := os.WriteFile(images[release.DebugReadOnly], []byte("not a tar"), 0o644); err != nil {
			t.Fatal(err)
		}
		product := w.kmsProduct()
		product.Binary, product.Images = "", images
		_, err := w.releaseKMSWith(kmsTag, product)
		if err == nil || !strings.Contains(err.Error(), "debug-read-only image") {
			t.Fatalf("broken archive: %v", err)
		}
		delete(images, release.DebugReadOnly)
		_, err = w.releaseKMSWith(kmsTag, product)
		wantRefused(t, err, outcome.Usage, "no image for profile debug-read-only")
		w.wantNoRelease(t, kmsTag)
	})
}
