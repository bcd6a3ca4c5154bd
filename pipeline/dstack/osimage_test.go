package dstack

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

func TestPinnedOSImage(t *testing.T) {
	img := PinnedOSImage()
	if img.PreferDev {
		t.Error("the pinned image is a dev build; Phala production runs the non-dev build")
	}
	m, err := img.Measurements()
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(m.MRTD[:]); got != img.MRTD {
		t.Errorf("MRTD = %s, want %s", got, img.MRTD)
	}
	if got := hex.EncodeToString(m.RTMR[2][:]); got != img.RTMR2 {
		t.Errorf("RTMR2 = %s, want %s", got, img.RTMR2)
	}
	if m.RTMR[3] != [48]byte{} {
		t.Error("RTMR3 of the OS image is not zero: app events belong to the deployment")
	}
	if !strings.Contains(img.Describe(), img.DstackVersion) || !strings.Contains(img.Describe(), "tdx.small") {
		t.Errorf("Describe() = %q names neither version nor shape", img.Describe())
	}
}

func TestParseOSImageRefusals(t *testing.T) {
	good := string(pinnedOSImage)
	cases := []struct{ name, from, to, want string }{
		{"schema", `"schema_version": "1"`, `"schema_version": "2"`, "schema_version"},
		{"no version", `"dstack_version": "meta-dstack@fbdf2e76fb6bd9142277fdd84809de87d86548ef"`, `"dstack_version": ""`, "dstack_version"},
		{"short mrtd", `"mrtd": "c6`, `"mrtd": "`, "mrtd"},
		{"upper-case rtmr1", `"rtmr1": "a707`, `"rtmr1": "A707`, "rtmr1"},
		{"zero vcpus", `"vcpus": 1`, `"vcpus": 0`, "vm_shape.vcpus"},
		{"instance type", `"tdx.small"`, `"small"`, "vm_shape.instance_type"},
		{"no source", `"source": "dstack-mr`, `"sourcex": "dstack-mr`, "unknown field"},
		{"trailing", "}\n", "} {}\n", "trailing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := strings.Replace(good, c.from, c.to, 1)
			if data == good {
				t.Fatalf("case %s changed nothing", c.name)
			}
			_, err := ParseOSImage([]byte(data), "x.json")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one naming %q", err, c.want)
			}
			if outcome.Code(err) != outcome.Usage {
				t.Errorf("exit code %d, want %d", outcome.Code(err), outcome.Usage)
			}
		})
	}
}

func TestLoadOSImage(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "os.json")
	if err := os.WriteFile(p, pinnedOSImage, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := LoadOSImage(p)
	if err != nil || img.MRTD != PinnedOSImage().MRTD {
		t.Fatalf("LoadOSImage = %v, %v", img, err)
	}
	_, err = LoadOSImage(filepath.Join(dir, "missing.json"))
	if err == nil || outcome.Code(err) != outcome.Usage || !errors.Is(err, os.ErrNotExist) && !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("missing file: %v", err)
	}
}
