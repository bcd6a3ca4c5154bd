package guard

import (
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// VersionSync checks that the tag's version equals the family's version variable
// (MERO_KMS_VERSION for mero-kms, MERO_TEE_VERSION for mero-tee), whose value is configured.
//
// For a stable or hotfix tag the variable must equal the version exactly. For a release-candidate
// tag X.Y.Z-rc.N the variable may equal the full version (X.Y.Z-rc.N) or its base (X.Y.Z): the
// repository variable names the release being prepared, and every rc of it is built with it set.
//
// An unset variable or a malformed value is a usage error (exit 2); a mismatch is a verification
// error (exit 10) naming the tag, its version, the variable and its value, e.g.
// "tag mero-kms-v1.3.0 has version 1.3.0 but MERO_KMS_VERSION=1.2.0".
func VersionSync(tag release.Tag, configured string) error {
	variable := tag.Family.VersionVariable()
	if configured == "" {
		return outcome.UsageErrorf("%s is not set: it must equal the version of tag %s (%s)", variable, tag, tag.Version)
	}
	v, err := release.ParseVersion(configured)
	if err != nil {
		return outcome.UsageErrorf("%s=%s: %w", variable, configured, err)
	}
	if v == tag.Version {
		return nil
	}
	if tag.Version.IsRC() {
		if v == tag.Version.Base() {
			return nil
		}
		return outcome.VerificationErrorf("tag %s has version %s but %s=%s (want %s or %s)",
			tag, tag.Version, variable, configured, tag.Version, tag.Version.Base())
	}
	return outcome.VerificationErrorf("tag %s has version %s but %s=%s", tag, tag.Version, variable, configured)
}
