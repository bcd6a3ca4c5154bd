package ociimage

import (
	"strings"
	"testing"
)

// A layer built once and shared gives each image exactly the digest building from the files
// gives, and the images that share it differ only in their configuration.
func TestSharedLayer(t *testing.T) {
	files := []File{{Path: "/usr/local/bin/mero-kms", Content: []byte("\x7fELF fake kms binary"), Mode: 0o755}}
	layer, err := NewLayer(files, epoch)
	if err != nil {
		t.Fatal(err)
	}
	want, err := layer.Digest()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range []string{"debug", "debug-read-only", "locked-read-only"} {
		fromFiles := Spec{Files: files, Entrypoint: []string{"/usr/local/bin/mero-kms"}, Env: []string{"MERO_KMS_PROFILE=" + p}, Created: epoch}
		shared := fromFiles
		shared.Files, shared.Layer = nil, layer
		d := digestOf(t, shared)
		if d != digestOf(t, fromFiles) {
			t.Errorf("%s: the shared layer gives another image digest than the files", p)
		}
		if seen[d] {
			t.Errorf("%s: same image digest as another profile", p)
		}
		seen[d] = true
		img, err := Build(shared)
		if err != nil {
			t.Fatal(err)
		}
		layers, err := img.Layers()
		if err != nil || len(layers) != 1 {
			t.Fatalf("%s: layers %v, %v", p, layers, err)
		}
		if got, _ := layers[0].Digest(); got != want {
			t.Errorf("%s: layer %s, want the shared %s", p, got, want)
		}
	}
	if _, err := Build(Spec{Files: files, Layer: layer, Created: epoch}); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("files and layer: %v", err)
	}
	if _, err := NewLayer(nil, epoch); err == nil {
		t.Error("a layer of no files")
	}
}
