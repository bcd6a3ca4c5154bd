package catalog

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// FuzzLoad: Load never panics, every refusal is a verification error, and whatever loads
// re-marshals to a canonical file that loads back to the same catalog and marshals identically.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"seed.golden.json", "unsorted.json", "unsorted.golden.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"schema_version":"1","entries":[]}`))
	f.Add([]byte(`{"schema_version":"1","entries":[{"kms":"1.0.0-rc.1","node_image":"0.0.1","profiles":["debug"],"tested":false,"notes":"\u2028<>&"}]}`))
	f.Add([]byte(`{"schema_version":"1","entries":[{"kms":"1.0.0","kms":"1.0.0"}]}`))
	f.Add([]byte(`{"a":{"b":[1,{"c":[]}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Load(bytes.NewReader(data))
		if err != nil {
			if outcome.Code(err) != outcome.VerificationFailed {
				t.Fatalf("refusal with exit code %d, want %d: %v", outcome.Code(err), outcome.VerificationFailed, err)
			}
			return
		}
		first, err := c.Marshal()
		if err != nil {
			t.Fatalf("a loaded catalog does not marshal: %v", err)
		}
		again, err := Load(bytes.NewReader(first))
		if err != nil {
			t.Fatalf("the marshalled catalog does not load: %v\n%s", err, first)
		}
		if !reflect.DeepEqual(sorted(c.Entries), again.Entries) {
			t.Fatalf("reload changed the catalog:\n%+v\n%+v", sorted(c.Entries), again.Entries)
		}
		second, err := again.Marshal()
		if err != nil || !bytes.Equal(first, second) {
			t.Fatalf("marshal is not stable (%v):\n%s\n%s", err, first, second)
		}
	})
}
