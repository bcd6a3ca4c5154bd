package packer

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// packerManifest is what Packer's manifest post-processor writes after two runs: only the
// builds of the last run are the node image being released.
var packerManifest = func() string {
	data, err := os.ReadFile("testdata/packer-manifest.json")
	if err != nil {
		panic(err)
	}
	return string(data)
}()

func TestReadManifest(t *testing.T) {
	builds, err := ReadManifest(strings.NewReader(packerManifest), "manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, b := range builds {
		ids = append(ids, b.ArtifactID)
	}
	if want := []string{"mero-tee-debug-1-3-0", "mero-tee-locked-read-only-1-3-0"}; !slices.Equal(ids, want) {
		t.Errorf("builds of the last run = %q, want %q", ids, want)
	}
	// without a matching run id, every build counts
	all, err := ReadManifest(strings.NewReader(strings.ReplaceAll(packerManifest, `"last_run_uuid": "22222222-new-run"`, `"last_run_uuid": "other"`)), "m.json")
	if err != nil || len(all) != 3 {
		t.Errorf("unmatched last_run_uuid: %d builds, %v", len(all), err)
	}
	bad := map[string]string{
		``:                                  "empty file",
		`{"builds": [`:                      "truncated",
		`{"builds": {}}`:                    "builds",
		`{"builds": [{"name": 1}]}`:         "builds.name",
		`{"builds": [{"name": "a"}]} trail`: "trailing data",
		`{"builds": [{"name": "a", "builder_type": "b", "artifact_id": "c", "custom_data": {"k": 1}}]}`: "custom_data",
		`{"builds": [{"name": "a", "builder_type": " ", "artifact_id": "c"}]}`:                          "builds[0].builder_type: empty",
	}
	for in, want := range bad {
		_, err := ReadManifest(strings.NewReader(in), "m.json")
		if outcome.Code(err) != outcome.Usage || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "m.json") {
			t.Errorf("ReadManifest(%q) = %v, want a usage error naming m.json and %q", in, err, want)
		}
	}
}

func FuzzReadManifest(f *testing.F) {
	f.Add([]byte(packerManifest))
	f.Add([]byte(`{"builds": [{"name": "a", "builder_type": "b", "artifact_id": "c"}]}`))
	f.Add([]byte(`{"builds": []}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		builds, err := ReadManifest(bytes.NewReader(data), "fuzz.json")
		if err != nil {
			if outcome.Code(err) != outcome.Usage {
				t.Fatalf("error of exit code %d, want usage: %v", outcome.Code(err), err)
			}
			return
		}
		if len(builds) == 0 {
			t.Fatal("no error and no builds")
		}
		for _, b := range builds {
			if strings.TrimSpace(b.ArtifactID) == "" || strings.TrimSpace(b.Name) == "" || strings.TrimSpace(b.BuilderType) == "" {
				t.Fatalf("accepted a build with an empty field: %+v", b)
			}
		}
	})
}
