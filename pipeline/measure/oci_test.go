package measure_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
)

func TestInspectImageForms(t *testing.T) {
	dir := t.TempDir()
	img := ociImage(t, "kms binary")
	layoutDir, digest := writeLayout(t, filepath.Join(dir, "layout"), img, kmsRepo+":1.2.0")
	forms := map[string]string{
		"directory": layoutDir,
		"tar":       tarDir(t, layoutDir, filepath.Join(dir, "img.tar"), false),
		"tar.gz":    tarDir(t, layoutDir, filepath.Join(dir, "img.tar.gz"), true),
	}
	for name, p := range forms {
		info, err := measure.InspectImage(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if info.Digest != digest || info.RefName != kmsRepo+":1.2.0" || info.MediaType != "application/vnd.oci.image.manifest.v1+json" || info.Blobs != 3 {
			t.Fatalf("%s: %+v, want digest %s and 3 blobs", name, info, digest)
		}
	}
}

func TestInspectImageEnv(t *testing.T) {
	// The environment of a single image's config comes back with it; an index has none.
	img, err := mutate.Config(ociImage(t, "kms binary"), v1.Config{Env: []string{"MERO_KMS_PROFILE=debug", "MERO_KMS_VERSION=1.2.0"}})
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := writeLayout(t, filepath.Join(t.TempDir(), "layout"), img, "x")
	info, err := measure.InspectImage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.Env, []string{"MERO_KMS_PROFILE=debug", "MERO_KMS_VERSION=1.2.0"}) {
		t.Fatalf("env %q", info.Env)
	}
}

func TestInspectImageIndex(t *testing.T) {
	// A multi-platform image: index.json names an image index; its digest is the image digest
	// and both child manifests are verified.
	dir := t.TempDir()
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: ociImage(t, "amd64")},
		mutate.IndexAddendum{Add: ociImage(t, "arm64")})
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	info, err := measure.InspectImage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Digest != d.String() || info.Blobs != 7 {
		t.Fatalf("%+v, want %s with 7 blobs", info, d)
	}
}

// corrupt applies fn to a fresh layout directory and returns it.
func corrupt(t *testing.T, fn func(dir string, blobs []string)) string {
	t.Helper()
	dir, _ := writeLayout(t, filepath.Join(t.TempDir(), "layout"), ociImage(t, "layer bytes"), "x")
	blobs, _ := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*"))
	fn(dir, blobs)
	return dir
}

func TestInspectImageRejects(t *testing.T) {
	layerOf := func(dir string) string {
		var idx struct {
			Manifests []struct{ Digest string }
		}
		data, _ := os.ReadFile(filepath.Join(dir, "index.json"))
		_ = json.Unmarshal(data, &idx)
		m, _ := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(idx.Manifests[0].Digest, "sha256:")))
		var man struct {
			Layers []struct{ Digest string }
		}
		_ = json.Unmarshal(m, &man)
		return filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(man.Layers[0].Digest, "sha256:"))
	}
	tests := []struct {
		name string
		dir  func() string
		want string
		code int
	}{
		{"missing path", func() string { return filepath.Join(t.TempDir(), "nope") }, "no such file", outcome.Usage},
		{"no oci-layout", func() string {
			return corrupt(t, func(dir string, _ []string) { os.Remove(filepath.Join(dir, "oci-layout")) })
		}, "not an OCI image layout: no oci-layout", outcome.Usage},
		{"bad oci-layout", func() string {
			return corrupt(t, func(dir string, _ []string) {
				writeFile(t, filepath.Join(dir, "oci-layout"), `{"imageLayoutVersion":"2"}`)
			})
		}, "imageLayoutVersion", outcome.Usage},
		{"docker save", func() string {
			d := t.TempDir()
			writeFile(t, filepath.Join(d, "manifest.json"), `[{"Config":"c.json","RepoTags":["x:1"],"Layers":[]}]`)
			return d
		}, "a docker-save archive", outcome.Usage},
		{"no index", func() string {
			return corrupt(t, func(dir string, _ []string) { os.Remove(filepath.Join(dir, "index.json")) })
		}, "no index.json", outcome.Usage},
		{"index not json", func() string {
			return corrupt(t, func(dir string, _ []string) { writeFile(t, filepath.Join(dir, "index.json"), "{") })
		}, "index.json", outcome.VerificationFailed},
		{"two manifests", func() string {
			dir, _ := writeLayout(t, filepath.Join(t.TempDir(), "l"), ociImage(t, "a"), "a")
			p, _ := layout.FromPath(dir)
			if err := p.AppendImage(ociImage(t, "b")); err != nil {
				t.Fatal(err)
			}
			return dir
		}, "names 2 manifests", outcome.Usage},
		{"layer missing", func() string {
			return corrupt(t, func(dir string, _ []string) { os.Remove(layerOf(dir)) })
		}, "layers[0]: blob sha256:", outcome.VerificationFailed},
		{"layer tampered", func() string {
			return corrupt(t, func(dir string, _ []string) { writeFile(t, layerOf(dir), "LAYER BYTES") })
		}, "content hashes to sha256:", outcome.VerificationFailed},
		{"layer truncated", func() string {
			return corrupt(t, func(dir string, _ []string) { writeFile(t, layerOf(dir), "layer") })
		}, "descriptor says", outcome.VerificationFailed},
		{"unsupported media type", func() string {
			return corrupt(t, func(dir string, _ []string) {
				data, _ := os.ReadFile(filepath.Join(dir, "index.json"))
				writeFile(t, filepath.Join(dir, "index.json"), strings.Replace(string(data), "application/vnd.oci.image.manifest.v1+json", "text/plain", 1))
			})
		}, `media type "text/plain"`, outcome.Usage},
		{"bad digest", func() string {
			return corrupt(t, func(dir string, _ []string) {
				data, _ := os.ReadFile(filepath.Join(dir, "index.json"))
				writeFile(t, filepath.Join(dir, "index.json"), strings.Replace(string(data), `"sha256:`, `"sha512:`, 1))
			})
		}, "want sha256:", outcome.VerificationFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := measure.InspectImage(tt.dir())
			if err == nil || !strings.Contains(err.Error(), tt.want) || outcome.Code(err) != tt.code {
				t.Fatalf("err = %v (code %d), want %q (code %d)", err, outcome.Code(err), tt.want, tt.code)
			}
		})
	}
}

func TestInspectImageArchiveRejects(t *testing.T) {
	dir := t.TempDir()
	if _, err := measure.InspectImage(writeFile(t, filepath.Join(dir, "garbage.tar"), strings.Repeat("x", 2000))); outcome.Code(err) != outcome.Usage || !strings.Contains(err.Error(), "not a tar archive") {
		t.Fatalf("garbage: %v", err)
	}
	if _, err := measure.InspectImage(writeFile(t, filepath.Join(dir, "empty.tar"), strings.Repeat("\x00", 1024))); outcome.Code(err) != outcome.Usage {
		t.Fatalf("empty: %v", err)
	}
	if _, err := measure.InspectImage(writeFile(t, filepath.Join(dir, "bad.gz"), "\x1f\x8bnot gzip")); outcome.Code(err) != outcome.Usage || !strings.Contains(err.Error(), "gzip") {
		t.Fatalf("bad gzip: %v", err)
	}
	// A tar whose blob was altered after the index was written.
	layoutDir := corrupt(t, func(d string, blobs []string) {
		for _, b := range blobs {
			if st, _ := os.Stat(b); st.Size() == int64(len("layer bytes")) {
				writeFile(t, b, "LAYER BYTES")
			}
		}
	})
	if _, err := measure.InspectImage(tarDir(t, layoutDir, filepath.Join(dir, "t.tar"), false)); outcome.Code(err) != outcome.VerificationFailed {
		t.Fatalf("tampered tar: %v", err)
	}
}

func TestFindImageArchive(t *testing.T) {
	dir := t.TempDir()
	archives := filepath.Join(dir, "images")
	if err := os.MkdirAll(archives, 0o755); err != nil {
		t.Fatal(err)
	}
	digests := map[string]string{}
	for _, p := range []string{"debug", "locked-read-only"} {
		layoutDir, d := writeLayout(t, filepath.Join(dir, p), ociImage(t, "kms "+p), kmsRepo+":1.3.0-"+p)
		digests[p] = d
		tarDir(t, layoutDir, filepath.Join(archives, "mero-kms-"+p+".oci.tar"), false)
	}
	// not an image at all, and an image under another suffix: both passed over
	if err := os.WriteFile(filepath.Join(archives, "broken.oci.tar"), []byte("not a tar"), 0o644); err != nil {
		t.Fatal(err)
	}
	other, otherDigest := writeLayout(t, filepath.Join(dir, "other"), ociImage(t, "other"), kmsRepo+":x")
	tarDir(t, other, filepath.Join(archives, "other.tar"), false)

	for p, d := range digests {
		got, err := measure.FindImageArchive(archives, d)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(archives, "mero-kms-"+p+".oci.tar"); got != want {
			t.Errorf("%s: found %q, want %s", p, got, want)
		}
	}
	for name, c := range map[string]struct{ dir, digest string }{
		"a digest no archive has":    {archives, otherDigest},
		"a folder that is not there": {filepath.Join(dir, "none"), digests["debug"]},
	} {
		got, err := measure.FindImageArchive(c.dir, c.digest)
		if err != nil || got != "" {
			t.Errorf("%s: found %q, %v; want none", name, got, err)
		}
	}
	if _, err := measure.FindImageArchive(archives, "latest"); outcome.Code(err) != outcome.Usage {
		t.Errorf("a tag instead of a digest: %v, want a usage error", err)
	}
}
