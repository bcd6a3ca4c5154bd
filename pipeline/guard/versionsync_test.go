package guard

import (
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

func TestVersionSync(t *testing.T) {
	cases := []struct {
		tag, configured string
		code            int
		mention         []string
	}{
		{"mero-kms-v1.3.0", "1.3.0", outcome.OK, nil},
		{"mero-tee-v2.0.1", "2.0.1", outcome.OK, nil},
		{"mero-kms-v1.3.0-rc.2", "1.3.0-rc.2", outcome.OK, nil},
		{"mero-kms-v1.3.0-rc.2", "1.3.0", outcome.OK, nil},
		{"mero-kms-v1.3.0", "1.2.0", outcome.VerificationFailed, []string{"tag mero-kms-v1.3.0 has version 1.3.0 but MERO_KMS_VERSION=1.2.0"}},
		{"mero-tee-v1.3.0", "1.3.1", outcome.VerificationFailed, []string{"tag mero-tee-v1.3.0 has version 1.3.0 but MERO_TEE_VERSION=1.3.1"}},
		{"mero-kms-v1.3.0", "1.3.0-rc.1", outcome.VerificationFailed, []string{"MERO_KMS_VERSION=1.3.0-rc.1"}},
		{"mero-kms-v1.3.0-rc.2", "1.3.0-rc.1", outcome.VerificationFailed, []string{"has version 1.3.0-rc.2", "MERO_KMS_VERSION=1.3.0-rc.1", "want 1.3.0-rc.2 or 1.3.0"}},
		{"mero-kms-v1.3.0-rc.2", "1.2.0", outcome.VerificationFailed, []string{"MERO_KMS_VERSION=1.2.0"}},
		{"mero-kms-v1.3.0", "", outcome.Usage, []string{"MERO_KMS_VERSION is not set", "mero-kms-v1.3.0"}},
		{"mero-tee-v1.3.0", "", outcome.Usage, []string{"MERO_TEE_VERSION is not set"}},
		{"mero-kms-v1.3.0", "v1.3.0", outcome.Usage, []string{"MERO_KMS_VERSION=v1.3.0", "no leading v"}},
		{"mero-kms-v1.3.0", "1.3", outcome.Usage, []string{"MERO_KMS_VERSION=1.3"}},
		{"mero-kms-v1.3.0", " 1.3.0", outcome.Usage, []string{"MERO_KMS_VERSION= 1.3.0"}},
		{"mero-kms-v1.3.0", "1.3.0-rc", outcome.Usage, []string{"X.Y.Z-rc.N"}},
	}
	for _, c := range cases {
		err := VersionSync(release.MustParseTag(c.tag), c.configured)
		if got := outcome.Code(err); got != c.code {
			t.Errorf("VersionSync(%s, %q) = %v (code %d), want code %d", c.tag, c.configured, err, got, c.code)
			continue
		}
		for _, m := range c.mention {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("VersionSync(%s, %q) = %q, want it to mention %q", c.tag, c.configured, err, m)
			}
		}
	}
}
