package release

import (
	"slices"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// Tag is a release tag: a family and a version, e.g. mero-kms-v1.3.0-rc.1.
type Tag struct {
	Family  Family
	Version Version
}

// ParseTag parses a tag of either family. A tag of neither family, a malformed version or an
// rc without its number is a usage error (exit 2) naming the rule.
func ParseTag(s string) (Tag, error) {
	for _, f := range Families() {
		if rest, ok := strings.CutPrefix(s, f.TagPrefix()); ok {
			v, err := ParseVersion(rest)
			if err != nil {
				return Tag{}, outcome.UsageErrorf("tag %q: %s tags are %sX.Y.Z or %sX.Y.Z-rc.N: %w", s, f, f.TagPrefix(), f.TagPrefix(), err)
			}
			return Tag{Family: f, Version: v}, nil
		}
	}
	return Tag{}, outcome.UsageErrorf("tag %q: must start with mero-kms-v or mero-tee-v followed by X.Y.Z or X.Y.Z-rc.N", s)
}

// MustParseTag is ParseTag for constants in tests and tables; it panics on error.
func MustParseTag(s string) Tag {
	t, err := ParseTag(s)
	if err != nil {
		panic(err)
	}
	return t
}

// String formats the tag.
func (t Tag) String() string { return t.Family.TagPrefix() + t.Version.String() }

// ParseTags parses every string that is a tag and skips the rest (other tags in a repository).
func ParseTags(names []string) []Tag {
	var tags []Tag
	for _, n := range names {
		if t, err := ParseTag(n); err == nil {
			tags = append(tags, t)
		}
	}
	return tags
}

// SortTags sorts tags by family, then version ascending.
func SortTags(tags []Tag) {
	slices.SortFunc(tags, func(a, b Tag) int {
		if c := strings.Compare(string(a.Family), string(b.Family)); c != 0 {
			return c
		}
		return a.Version.Compare(b.Version)
	})
}

// Previous returns the newest tag of the same family in published that is older than t.
// With stableOnly, release candidates are skipped. ok is false when there is none.
func Previous(t Tag, published []Tag, stableOnly bool) (prev Tag, ok bool) {
	for _, p := range published {
		if p.Family != t.Family || p.Version.Compare(t.Version) >= 0 || (stableOnly && p.Version.IsRC()) {
			continue
		}
		if !ok || p.Version.Compare(prev.Version) > 0 {
			prev, ok = p, true
		}
	}
	return prev, ok
}
