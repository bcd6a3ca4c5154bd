package sbom

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkGenerateOCIArchive measures a whole SBOM of a one-layer OCI archive: unpacking,
// syft's image catalogers, SPDX conversion and the deterministic encoding (twice, for the
// content-derived namespace).
func BenchmarkGenerateOCIArchive(b *testing.B) {
	t := b
	files := imageFiles()
	for i := range 200 {
		files[fmt.Sprintf("usr/share/mero/data/%03d.bin", i)] = make([]byte, 16<<10)
	}
	img := newImage(t, files)
	path := writeFile(t, filepath.Join(b.TempDir(), "image.tar"), tarFiles(t, img.ociLayout(t)))
	in := Input{Path: path, Kind: OCIArchive, Name: "mero-kms", Version: "1.3.0", Created: created}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Generate(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}
