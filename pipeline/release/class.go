package release

import (
	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// Class is one of the three release classes of SPEC §1.
type Class string

// The release classes.
const (
	Stable Class = "stable"
	RC     Class = "rc"
	Hotfix Class = "hotfix"
)

// Classify decides the class of t given the tags already published (of any family), per
// SPEC §1: an rc version is RC; X.Y.Z with Z ≥ 1 whose base X.Y.(Z-1) is a published stable tag
// is a Hotfix (a patch bump built from a branch of the base); every other X.Y.Z is Stable.
// Use Progression to refuse versions that go backwards.
func Classify(t Tag, published []Tag) Class {
	if t.Version.IsRC() {
		return RC
	}
	if base, err := HotfixBase(t); err == nil && contains(published, base) {
		return Hotfix
	}
	return Stable
}

// HotfixBase returns the stable tag a hotfix patches (X.Y.(Z-1)).
func HotfixBase(t Tag) (Tag, error) {
	if t.Version.IsRC() || t.Version.Patch == 0 {
		return Tag{}, outcome.UsageErrorf("tag %s: a hotfix is a patch bump X.Y.Z with Z >= 1 and no rc suffix", t)
	}
	return Tag{Family: t.Family, Version: Version{t.Version.Major, t.Version.Minor, t.Version.Patch - 1, 0}}, nil
}

// ParseClass parses "stable", "rc" or "hotfix".
func ParseClass(s string) (Class, error) {
	switch c := Class(s); c {
	case Stable, RC, Hotfix:
		return c, nil
	}
	return "", outcome.UsageErrorf("class %q: must be stable, rc or hotfix", s)
}

// Progression refuses a version that goes backwards (exit 2): t must not be older than, or equal
// to, a published version of its family unless it is that very tag (a re-run), and an rc must
// precede its stable version (X.Y.Z-rc.N after X.Y.Z is published is backwards). A hotfix may be
// older than the newest line, but must be the next patch on its own line.
func Progression(t Tag, published []Tag) error {
	var newest, newestOnLine *Tag
	for i := range published {
		p := published[i]
		if p.Family != t.Family {
			continue
		}
		if p == t {
			return nil // re-running a release that exists: idempotence is the store's concern
		}
		if newest == nil || p.Version.Compare(newest.Version) > 0 {
			newest = &published[i]
		}
		if p.Version.Major == t.Version.Major && p.Version.Minor == t.Version.Minor &&
			(newestOnLine == nil || p.Version.Compare(newestOnLine.Version) > 0) {
			newestOnLine = &published[i]
		}
	}
	if newest == nil || t.Version.Compare(newest.Version) > 0 {
		return nil
	}
	if Classify(t, published) == Hotfix && newestOnLine != nil && t.Version.Compare(newestOnLine.Version) > 0 {
		return nil
	}
	return outcome.UsageErrorf("tag %s goes backwards: %s is already published (versions must increase; a hotfix must be the next patch of a published stable)", t, *newest)
}

func contains(tags []Tag, t Tag) bool {
	for _, p := range tags {
		if p == t {
			return true
		}
	}
	return false
}

// String implements fmt.Stringer.
func (c Class) String() string { return string(c) }
