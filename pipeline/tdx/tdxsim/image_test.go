package tdxsim

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/tdx"
)

var update = flag.Bool("update", false, "rewrite golden files")

// exampleDir is the committed example node image.
const exampleDir = "../../../examples/node-image"

func exampleProfiles() []string { return []string{"debug", "debug-read-only", "locked-read-only"} }

func loadExample(t testing.TB, profile string) *Image {
	t.Helper()
	img, err := LoadImage(exampleDir, profile)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestExampleImageGolden pins the measurements of the example node image's three profiles.
// Run with -update after changing examples/node-image on purpose.
func TestExampleImageGolden(t *testing.T) {
	got := map[string]tdx.HexMeasurements{}
	for _, p := range exampleProfiles() {
		m, _, err := Measure(loadExample(t, p))
		if err != nil {
			t.Fatal(err)
		}
		got[p] = m.Hex()
	}
	data, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, '\n')
	golden := filepath.Join("testdata", "example-node-image.golden.json")
	if *update {
		if err := os.WriteFile(golden, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(data) {
		t.Errorf("measurements of examples/node-image changed (run with -update if intended):\n%s", data)
	}
}

// TestExampleProfilesDiffer: the profiles share firmware, kernel and initrd, so MRTD, RTMR0 and
// RTMR1 agree, and their command lines differ, so RTMR2 is pairwise distinct (profile isolation).
func TestExampleProfilesDiffer(t *testing.T) {
	var ms []tdx.Measurements
	for _, p := range exampleProfiles() {
		img := loadExample(t, p)
		if img.Profile != p || !strings.Contains(img.Cmdline, "mero.profile="+p) {
			t.Errorf("%s: profile %q, cmdline %q", p, img.Profile, img.Cmdline)
		}
		if (p == "debug") == strings.Contains(" "+img.Cmdline+" ", " ro ") {
			t.Errorf("%s: read-only root is %v", p, p != "debug")
		}
		m, _, err := Measure(img)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	for i := 1; i < len(ms); i++ {
		if ms[i].MRTD != ms[0].MRTD || ms[i].RTMR[0] != ms[0].RTMR[0] || ms[i].RTMR[1] != ms[0].RTMR[1] {
			t.Errorf("profile %d: MRTD/RTMR0/RTMR1 differ from debug", i)
		}
		for j := range i {
			if ms[i].RTMR[2] == ms[j].RTMR[2] {
				t.Errorf("profiles %d and %d share RTMR2", i, j)
			}
		}
	}
}

// TestMeasurementSensitivity changes one artefact at a time and asserts exactly which
// registers move.
func TestMeasurementSensitivity(t *testing.T) {
	base := loadExample(t, "debug")
	baseM, _, err := Measure(base)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(img *Image)
		want []string // registers that change
	}{
		{"firmware", func(img *Image) { img.Firmware = append([]byte{1}, img.Firmware...) }, []string{"mrtd"}},
		{"vcpus", func(img *Image) { img.VCPUs = 8 }, []string{"rtmr0"}},
		{"memory", func(img *Image) { img.MemoryMB = 8192 }, []string{"rtmr0"}},
		{"kernel", func(img *Image) { k := append([]byte(nil), img.Kernel...); k[len(k)-1] ^= 1; img.Kernel = k }, []string{"rtmr1"}},
		{"cmdline", func(img *Image) { img.Cmdline += " quiet" }, []string{"rtmr2"}},
		{"initrd", func(img *Image) { img.Initrd = append(append([]byte(nil), img.Initrd...), 0) }, []string{"rtmr2"}},
		{"name only", func(img *Image) { img.Name = "renamed" }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := *base
			tc.edit(&img)
			m, _, err := Measure(&img)
			if err != nil {
				t.Fatal(err)
			}
			g, b := m.Hex().Fields(), baseM.Hex().Fields()
			var changed []string
			for i := range g {
				if g[i][1] != b[i][1] {
					changed = append(changed, g[i][0])
				}
			}
			if strings.Join(changed, ",") != strings.Join(tc.want, ",") {
				t.Errorf("changed %v, want %v", changed, tc.want)
			}
		})
	}
}

func TestMeasureEventLogReplays(t *testing.T) {
	img := loadExample(t, "locked-read-only")
	m, events, err := Measure(img)
	if err != nil {
		t.Fatal(err)
	}
	rtmrs, err := tdx.Replay(events)
	if err != nil {
		t.Fatal(err)
	}
	if rtmrs != m.RTMR || m.MRTD != tdx.Digest(img.Firmware) || m.RTMR[3] != [48]byte{} {
		t.Errorf("event log does not replay to the measurements")
	}
	// RTMR1 follows the real rule: extend(extend(0, SHA384(kernel)), SHA384("Exit Boot Services Invocation")).
	var zero [48]byte
	want := tdx.Extend(tdx.Extend(zero, tdx.Digest(img.Kernel)), tdx.Digest([]byte("Exit Boot Services Invocation")))
	if m.RTMR[1] != want {
		t.Errorf("rtmr1 = %x, want %x", m.RTMR[1], want)
	}
}

func writeManifest(t *testing.T, dir, profile string, edit func(m map[string]any)) {
	t.Helper()
	m := map[string]any{
		"schema_version": "1", "name": "img", "profile": profile, "firmware": "fw", "kernel": "k",
		"initrd": "i", "cmdline": "ro", "vcpus": 2, "memory_mb": 1024,
	}
	if edit != nil {
		edit(m)
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, profile+".json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadImageErrors(t *testing.T) {
	tests := []struct {
		name    string
		profile string
		setup   func(t *testing.T, dir string)
		want    string
	}{
		{"no manifest", "debug", func(t *testing.T, dir string) {}, "debug.json: no such file"},
		{"profile with slash", "../x", func(t *testing.T, dir string) {}, `profile "../x" is not a profile name`},
		{"empty profile", "", func(t *testing.T, dir string) {}, `profile "" is not`},
		{"not JSON", "debug", func(t *testing.T, dir string) { os.WriteFile(filepath.Join(dir, "debug.json"), []byte("{"), 0o644) }, "debug.json: unexpected EOF"},
		{"trailing data", "debug", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "debug.json"), []byte(`{"name":"x"} {}`), 0o644)
		}, "trailing data"},
		{"unknown field", "debug", func(t *testing.T, dir string) {
			writeManifest(t, dir, "debug", func(m map[string]any) { m["disk"] = "x" })
		}, `unknown field "disk"`},
		{"schema version", "debug", func(t *testing.T, dir string) {
			writeManifest(t, dir, "debug", func(m map[string]any) { m["schema_version"] = "2" })
		}, `schema_version: "2", want "1"`},
		{"no name", "debug", func(t *testing.T, dir string) {
			writeManifest(t, dir, "debug", func(m map[string]any) { delete(m, "name") })
		}, "name: empty"},
		{"no profile", "debug", func(t *testing.T, dir string) {
			writeManifest(t, dir, "debug", func(m map[string]any) { m["profile"] = "" })
		}, "profile: empty"},
		{"other profile", "debug", func(t *testing.T, dir string) {
			writeManifest(t, dir, "debug", func(m map[string]any) { m["profile"] = "locked-read-only" })
			writeFiles(t, dir)
		}, `profile is "locked-read-only", want "debug"`},
		{"no cmdline", "debug", func(t *testing.T, dir string) {
			writeManifest(t, dir, "debug", func(m map[string]any) { m["cmdline"] = "" })
		}, "cmdline: empty"},
		{"zero vcpus", "debug", func(t *testing.T, dir string) {
			writeManifest(t, dir, "debug", func(m map[string]any) { m["vcpus"] = 0 })
		}, "vcpus: 0"},
		{"negative memory", "debug", func(t *testing.T, dir string) {
			writeManifest(t, dir, "debug", func(m map[string]any) { m["memory_mb"] = -1 })
		}, "memory_mb: -1"},
		{"no firmware field", "debug", func(t *testing.T, dir string) {
			writeManifest(t, dir, "debug", func(m map[string]any) { m["firmware"] = "" })
		}, "firmware: empty"},
		{"missing kernel file", "debug", func(t *testing.T, dir string) {
			writeManifest(t, dir, "debug", nil)
			writeFiles(t, dir)
			os.Remove(filepath.Join(dir, "k"))
		}, "kernel: open"},
		{"empty initrd file", "debug", func(t *testing.T, dir string) {
			writeManifest(t, dir, "debug", nil)
			writeFiles(t, dir)
			os.WriteFile(filepath.Join(dir, "i"), nil, 0o644)
		}, "initrd: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			_, err := LoadImage(dir, tc.profile)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if outcome.Code(err) != outcome.Usage {
				t.Errorf("exit code %d, want 2", outcome.Code(err))
			}
		})
	}
}

func writeFiles(t *testing.T, dir string) {
	t.Helper()
	for _, f := range []string{"fw", "k", "i"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f+" bytes"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadImageAbsolutePaths(t *testing.T) {
	dir, files := t.TempDir(), t.TempDir()
	writeFiles(t, files)
	writeManifest(t, dir, "debug", func(m map[string]any) {
		m["firmware"], m["kernel"], m["initrd"] = filepath.Join(files, "fw"), filepath.Join(files, "k"), filepath.Join(files, "i")
	})
	img, err := LoadImage(dir, "debug")
	if err != nil {
		t.Fatal(err)
	}
	if string(img.Kernel) != "k bytes" || img.VCPUs != 2 || img.MemoryMB != 1024 || img.Cmdline != "ro" {
		t.Errorf("loaded %+v", img)
	}
}

func TestValidate(t *testing.T) {
	good := loadExample(t, "debug")
	tests := []struct {
		name string
		edit func(img *Image)
		want string
	}{
		{"name", func(img *Image) { img.Name = "" }, "name: empty"},
		{"profile", func(img *Image) { img.Profile = "" }, "profile: empty"},
		{"firmware", func(img *Image) { img.Firmware = nil }, "firmware: empty"},
		{"kernel", func(img *Image) { img.Kernel = nil }, "kernel: empty"},
		{"initrd", func(img *Image) { img.Initrd = nil }, "initrd: empty"},
		{"cmdline", func(img *Image) { img.Cmdline = "" }, "cmdline: empty"},
		{"vcpus", func(img *Image) { img.VCPUs = 0 }, "must be positive"},
	}
	for _, tc := range tests {
		img := *good
		tc.edit(&img)
		if _, _, err := Measure(&img); err == nil || !strings.Contains(err.Error(), tc.want) || outcome.Code(err) != outcome.Usage {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	var nilImg *Image
	if err := nilImg.Validate(); err == nil {
		t.Errorf("nil image valid")
	}
}
