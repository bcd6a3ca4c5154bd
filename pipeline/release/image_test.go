package release

import "testing"

func TestPullableImage(t *testing.T) {
	const d = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	for ref, want := range map[string]bool{
		"ghcr.io/calimero/mero-kms@" + d:  true,
		"127.0.0.1:5000/c/mero-kms@" + d:  true,
		LocalImageRef("mero-kms", d):      false,
		"ghcr.io/calimero/mero-kms:1.3.0": false,
		"mero-kms@" + d:                   false,
		"":                                false,
	} {
		if got := PullableImage(ref); got != want {
			t.Errorf("PullableImage(%q) = %v, want %v", ref, got, want)
		}
	}
}
