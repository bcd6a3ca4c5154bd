package lifecycle

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

// TestHotfixImageInTheRepository: examples/node-image-hotfix is HotfixImage of
// examples/node-image (regenerate it with -update), and every profile measures differently
// from the example in RTMR2 only.
func TestHotfixImageInTheRepository(t *testing.T) {
	root := filepath.Join("..", "..")
	src, committed := filepath.Join(root, "examples", "node-image"), filepath.Join(root, HotfixImageDir)
	out := t.TempDir()
	if err := HotfixImage(src, out); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := HotfixImage(src, committed); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		want, _ := os.ReadFile(filepath.Join(out, e.Name()))
		got, err := os.ReadFile(filepath.Join(committed, e.Name()))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s/%s is not what HotfixImage writes (go test ./pipeline/lifecycle -update): %v", HotfixImageDir, e.Name(), err)
		}
	}
	for _, p := range release.Profiles() {
		a, err := tdxsim.LoadImage(src, string(p))
		if err != nil {
			t.Fatal(err)
		}
		b, err := tdxsim.LoadImage(committed, string(p))
		if err != nil {
			t.Fatal(err)
		}
		ma, _, err := tdxsim.Measure(a)
		if err != nil {
			t.Fatal(err)
		}
		mb, _, err := tdxsim.Measure(b)
		if err != nil {
			t.Fatal(err)
		}
		if ma.MRTD != mb.MRTD || ma.RTMR[0] != mb.RTMR[0] || ma.RTMR[1] != mb.RTMR[1] || ma.RTMR[2] == mb.RTMR[2] {
			t.Errorf("%s: the hotfix must change RTMR2 only", p)
		}
	}
}
