package measure_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
	"github.com/calimero-network/mero-release/pipeline/vm/vmsim"
)

// BenchmarkInspectImageTar: digest and full blob verification of an OCI archive with a
// 64 MiB layer (the cost is hashing every byte once).
func BenchmarkInspectImageTar(b *testing.B) {
	layer := make([]byte, 64<<20)
	if _, err := rand.Read(layer); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	layoutDir, _ := writeLayout(b, filepath.Join(dir, "l"), ociImage(b, string(layer)), "x")
	archive := tarDir(b, layoutDir, filepath.Join(dir, "img.tar"), false)
	st, _ := os.Stat(archive)
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := measure.InspectImage(archive); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCanonicalJSON: normalising a docker compose file (YAML) for the compose hash.
func BenchmarkCanonicalJSON(b *testing.B) {
	data, err := os.ReadFile("testdata/canonical/compose.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := measure.CanonicalJSON("compose.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMeasureNodeSimulator: the whole node stage for three profiles on the simulator
// (boot, quote, verify, delete).
func BenchmarkMeasureNodeSimulator(b *testing.B) {
	auth, err := tdxsim.NewAuthority([]byte("bench"))
	if err != nil {
		b.Fatal(err)
	}
	p := vmsim.New(auth)
	images := map[release.Profile]string{}
	for _, prof := range release.Profiles() {
		images[prof] = nodeImages
	}
	opts := measure.NodeOptions{Version: "1.2.0", TrustedRoots: auth.RootPool()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := measure.MeasureNode(context.Background(), p, images, opts); err != nil {
			b.Fatal(err)
		}
	}
}
