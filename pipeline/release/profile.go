package release

import (
	"strings"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// Profile is a node/KMS profile; each has its own image, measurements and attestation policy.
type Profile string

// The three profiles (SPEC §5).
const (
	Debug          Profile = "debug"
	DebugReadOnly  Profile = "debug-read-only"
	LockedReadOnly Profile = "locked-read-only"
)

// Profiles lists every profile in a stable order.
func Profiles() []Profile { return []Profile{Debug, DebugReadOnly, LockedReadOnly} }

// ParseProfile accepts one of the three profile names.
func ParseProfile(s string) (Profile, error) {
	for _, p := range Profiles() {
		if string(p) == s {
			return p, nil
		}
	}
	return "", outcome.UsageErrorf("profile %q: must be one of %s", s, strings.Join(ProfileNames(), ", "))
}

// ProfileNames returns the profile names as strings.
func ProfileNames() []string {
	var names []string
	for _, p := range Profiles() {
		names = append(names, string(p))
	}
	return names
}

// PolicyFile is the attestation policy file name of the profile.
func (p Profile) PolicyFile() string { return "attestation-policy-" + string(p) + ".json" }
