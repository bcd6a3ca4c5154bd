package release

import (
	"fmt"
	"strconv"

	"github.com/calimero-network/mero-release/pipeline/internal/lazyre"
	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// Version is X.Y.Z with an optional release-candidate number (X.Y.Z-rc.N).
type Version struct {
	Major, Minor, Patch int
	// RC is the release-candidate number; 0 means not a release candidate.
	RC int
}

var versionRE = lazyre.New(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:-rc\.([1-9][0-9]*))?$`)

// ParseVersion parses "X.Y.Z" or "X.Y.Z-rc.N" (no leading "v", no leading zeros, N ≥ 1).
// Any other shape is a usage error naming the rule.
func ParseVersion(s string) (Version, error) {
	m := versionRE().FindStringSubmatch(s)
	if m == nil {
		return Version{}, outcome.UsageErrorf("version %q: must be X.Y.Z or X.Y.Z-rc.N (digits without leading zeros, N >= 1, no leading v)", s)
	}
	var v Version
	var err error
	fields := []*int{&v.Major, &v.Minor, &v.Patch, &v.RC}
	for i, f := range fields {
		if m[i+1] == "" {
			continue
		}
		if *f, err = strconv.Atoi(m[i+1]); err != nil || *f > 1<<30 {
			return Version{}, outcome.UsageErrorf("version %q: component %q is too large", s, m[i+1])
		}
	}
	return v, nil
}

// MustParseVersion is ParseVersion for constants in tests and tables; it panics on error.
func MustParseVersion(s string) Version {
	v, err := ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

// IsRC reports whether v is a release candidate.
func (v Version) IsRC() bool { return v.RC > 0 }

// Base is the version without its rc suffix.
func (v Version) Base() Version { return Version{v.Major, v.Minor, v.Patch, 0} }

// String formats v as X.Y.Z or X.Y.Z-rc.N.
func (v Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if v.RC > 0 {
		s += fmt.Sprintf("-rc.%d", v.RC)
	}
	return s
}

// Compare orders versions by semantic-versioning precedence: -1, 0 or +1.
// X.Y.Z-rc.N sorts before X.Y.Z, and rc numbers compare numerically.
func (v Version) Compare(o Version) int {
	for _, d := range [][2]int{{v.Major, o.Major}, {v.Minor, o.Minor}, {v.Patch, o.Patch}} {
		if d[0] != d[1] {
			return cmpInt(d[0], d[1])
		}
	}
	switch {
	case v.RC == o.RC:
		return 0
	case v.RC == 0:
		return 1
	case o.RC == 0:
		return -1
	default:
		return cmpInt(v.RC, o.RC)
	}
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
