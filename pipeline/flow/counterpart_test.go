package flow_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// testTamperedCounterpart: a KMS release reads its counterpart's published-mrtds.json only after
// the bundle and checksums.sha256 verify; changed measurements, or a counterpart published
// without its bundle, stop the release before any policy is generated from them.
func testTamperedCounterpart(t *testing.T, f *fixture) {
	for name, tc := range map[string]struct {
		edit func(assets string)
		code int
		want string
	}{
		"measurements changed after signing": {code: outcome.VerificationFailed, want: "signature: artifact digest does not match", edit: func(assets string) {
			p := filepath.Join(assets, release.PublishedMRTDsFile)
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)/2] ^= 1
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		"bundle removed": {code: outcome.MissingAsset, want: release.BundleName(release.PublishedMRTDsFile), edit: func(assets string) {
			if err := os.Remove(filepath.Join(assets, release.BundleName(release.PublishedMRTDsFile))); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(name, func(t *testing.T) {
			w := f.world(t)
			const version = "1.3.0-rc.1"
			w.AddNode(t, version, nil)
			tc.edit(filepath.Join(w.StoreDir, release.Node.TagPrefix()+version, "assets"))
			rep, err := w.releaseKMS(release.KMS.TagPrefix()+version, counterpart(version))
			wantRefused(t, err, tc.code, "stage policies", "counterpart measurements", tc.want)
			if rep != nil && rep.Published {
				t.Fatal("the KMS release was published")
			}
		})
	}
}
