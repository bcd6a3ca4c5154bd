package measure_test

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/calimero-network/mero-release/pipeline/dstack"
	"github.com/calimero-network/mero-release/pipeline/release"
)

var fixedNow = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func clock() time.Time { return fixedNow }

const kmsRepo = "ghcr.io/calimero-network/mero-kms-phala"

// ociImage builds a deterministic OCI image whose only layer holds content.
func ociImage(t testing.TB, content string) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer([]byte(content), types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	return mutate.ConfigMediaType(img, types.OCIConfigJSON)
}

// writeLayout writes img as an OCI image layout directory (go-containerregistry) and returns
// the directory and the image digest.
func writeLayout(t testing.TB, dir string, img v1.Image, ref string) (string, string) {
	t.Helper()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref})); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return dir, d.String()
}

// tarDir writes dir as a tar archive (gzipped when gz) with sorted entries and no "./" entry.
func tarDir(t testing.TB, dir, out string, gz bool) string {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var w io.Writer = f
	var gzw *gzip.Writer
	if gz {
		gzw = gzip.NewWriter(f)
		w = gzw
	}
	tw := tar.NewWriter(w)
	var files []string
	if err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		if err := tw.WriteHeader(&tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if gzw != nil {
		if err := gzw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// composeYAML is a docker compose file running the KMS image pinned to digest.
func composeYAML(digest string, prof release.Profile) string {
	return fmt.Sprintf(`services:
  kms:
    image: %s@%s
    environment:
      MERO_KMS_PROFILE: %s
      MERO_KMS_VERSION: "1.2.0"
    ports:
      - "8080:8080"
    volumes:
      - /var/run/dstack.sock:/var/run/dstack.sock
`, kmsRepo, digest, prof)
}

// kmsFixture writes, per profile, an OCI archive and a compose file into dir.
type kmsFixture struct {
	dir      string
	images   map[release.Profile]string // archive paths
	composes map[release.Profile]string
	digests  map[release.Profile]string
}

func newKMSFixture(t testing.TB) *kmsFixture {
	t.Helper()
	dir := t.TempDir()
	f := &kmsFixture{dir: dir, images: map[release.Profile]string{}, composes: map[release.Profile]string{}, digests: map[release.Profile]string{}}
	for _, prof := range release.Profiles() {
		layoutDir, digest := writeLayout(t, filepath.Join(dir, "layout-"+string(prof)), ociImage(t, "mero-kms-phala 1.2.0 built for "+string(prof)), kmsRepo+":1.2.0-"+string(prof))
		f.images[prof] = tarDir(t, layoutDir, filepath.Join(dir, "kms-"+string(prof)+".oci.tar"), false)
		f.digests[prof] = digest
		f.composes[prof] = writeFile(t, filepath.Join(dir, "compose-"+string(prof)+".yaml"), composeYAML(digest, prof))
	}
	return f
}

func writeFile(t testing.TB, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// dstackOS is the dstack OS image the KMS tests measure against: the pinned one.
func dstackOS() *dstack.OSImage { return dstack.PinnedOSImage() }

func contains(s, sub string) bool { return strings.Contains(s, sub) }
