package flow_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/calimero-network/mero-release/examples/kms"
	"github.com/calimero-network/mero-release/pipeline/flow"
	"github.com/calimero-network/mero-release/pipeline/ociimage"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// The three profile images share one layer holding the KMS binary (same layer digest) and are
// three distinct images.
func TestKMSProfileImagesShareTheBinaryLayer(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "mero-kms")
	if err := os.WriteFile(bin, []byte("\x7fELF not really a kms"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "images")
	m, err := flow.BuildKMSImages(context.Background(), flow.KMSProduct{Binary: bin, AppCompose: kms.AppCompose},
		release.MustParseTag("mero-kms-v1.3.0"), time.Unix(1764547200, 0), out, outcome.NewLogger(os.Stderr))
	if err != nil {
		t.Fatal(err)
	}
	layers := map[string]bool{}
	images := map[string]bool{}
	for _, p := range release.Profiles() {
		img, err := ociimage.ReadOCIArchive(filepath.Join(out, "mero-kms-"+string(p)+".oci.tar"))
		if err != nil {
			t.Fatal(err)
		}
		ls, err := img.Layers()
		if err != nil || len(ls) != 1 {
			t.Fatalf("%s: %d layers, %v", p, len(ls), err)
		}
		d, err := ls[0].Digest()
		if err != nil {
			t.Fatal(err)
		}
		layers[d.String()] = true
		images[m.Profiles[p].Digest] = true
	}
	if len(layers) != 1 {
		t.Errorf("the profile images hold %d different binary layers, want one shared", len(layers))
	}
	if len(images) != len(release.Profiles()) {
		t.Errorf("%d distinct image digests, want one per profile", len(images))
	}
}
