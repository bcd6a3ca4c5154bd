package guard

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/catalog"
	"github.com/calimero-network/mero-release/pipeline/internal/lazyre"
)

// PRDocsInput is what the PR doc guard looks at.
type PRDocsInput struct {
	// Changed are the paths the PR changes (git diff --name-only BASE..HEAD), added, modified or
	// deleted, relative to the repository root.
	Changed []string
	// CatalogBefore and CatalogAfter are compatibility-catalog.json at the PR's base and head.
	// CatalogAfter nil means "not given": the notes are not checked against the catalog.
	// CatalogBefore nil with CatalogAfter set means the catalog is new: every entry is new.
	CatalogBefore, CatalogAfter *catalog.Catalog
	// NotesText is the PR body and/or the changed release notes: it must mention every new or
	// changed catalog pair.
	NotesText string
}

// Check names of the PR doc guard.
const (
	CheckReleaseFiles  = "release files"
	CheckDocumentation = "documentation"
	CheckCatalogNotes  = "catalog notes"
)

// IsReleasePath reports whether a changed path is a release file that requires documentation:
// attestation-policy-*.json, published-mrtds.json or compatibility-catalog.json anywhere in the
// tree, or a scripts/release-*.sh script (in any scripts directory).
func IsReleasePath(p string) bool {
	p = cleanPath(p)
	base := path.Base(p)
	if m, _ := path.Match("attestation-policy-*.json", base); m {
		return true
	}
	if base == "published-mrtds.json" || base == catalog.DefaultFile {
		return true
	}
	if m, _ := path.Match("release-*.sh", base); m {
		return path.Base(path.Dir(p)) == "scripts"
	}
	return false
}

// IsDocPath reports whether a changed path is documentation: any *.md file, anything under a
// docs/ directory, or a README* or CHANGELOG* file.
func IsDocPath(p string) bool {
	p = cleanPath(p)
	base := path.Base(p)
	upper := strings.ToUpper(base)
	switch {
	case strings.EqualFold(path.Ext(base), ".md"):
		return true
	case strings.HasPrefix(upper, "README"), strings.HasPrefix(upper, "CHANGELOG"):
		return true
	}
	dir := path.Dir(p)
	return dir == "docs" || strings.HasPrefix(dir, "docs/") || strings.Contains("/"+dir+"/", "/docs/")
}

// cleanPath normalises a changed path: forward slashes, no leading "./".
func cleanPath(p string) string {
	p = strings.TrimSpace(strings.ReplaceAll(p, `\`, "/"))
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

// PRDocs is the PR doc guard (SPEC §4.1). A PR that changes a release file (IsReleasePath) must
// also change documentation (IsDocPath). When CatalogAfter is given, every pair that is new or
// changed between the catalogs (catalog.Diff) must be mentioned in NotesText: one line that names
// both versions, e.g. "KMS 1.3.0 / node 1.3.0" (versions match whole, with or without a leading
// v, so 1.3.0 is not found in 1.3.0-rc.1 or 11.3.0; when both versions are equal the line must
// name it twice). Each missing pair is its own failed check.
//
// The report lists every check; the error is a verification error (exit 10) when the PR is
// blocked.
func PRDocs(in PRDocsInput) (Report, error) {
	var r Report
	var release, docs []string
	catalogChanged := false
	for _, c := range in.Changed {
		if strings.TrimSpace(c) == "" {
			continue
		}
		p := cleanPath(c)
		if IsReleasePath(p) {
			release = append(release, p)
			if path.Base(p) == catalog.DefaultFile {
				catalogChanged = true
			}
		}
		if IsDocPath(p) {
			docs = append(docs, p)
		}
	}
	slices.Sort(release)
	release = slices.Compact(release)
	slices.Sort(docs)
	docs = slices.Compact(docs)

	switch {
	case len(release) == 0:
		r.add(CheckReleaseFiles, Pass, "no release file changed (attestation-policy-*.json, published-mrtds.json, compatibility-catalog.json, scripts/release-*.sh)")
		r.add(CheckDocumentation, Skip, "no release file changed")
	case len(docs) == 0:
		r.add(CheckReleaseFiles, Pass, "changed: %s", strings.Join(release, ", "))
		r.add(CheckDocumentation, Fail, "%s changed but no documentation did: also change a *.md file, docs/**, README* or CHANGELOG*", strings.Join(release, ", "))
	default:
		r.add(CheckReleaseFiles, Pass, "changed: %s", strings.Join(release, ", "))
		r.add(CheckDocumentation, Pass, "documented in %s", strings.Join(docs, ", "))
	}

	switch {
	case in.CatalogAfter == nil && catalogChanged:
		r.add(CheckCatalogNotes, Warn, "%s changed but the base and head catalogs were not given: the release notes were not checked for its new entries", catalog.DefaultFile)
	case in.CatalogAfter == nil:
		// nothing to compare
	default:
		diff := catalog.Diff(in.CatalogBefore, in.CatalogAfter)
		if len(diff) == 0 {
			r.add(CheckCatalogNotes, Pass, "no new or changed compatibility pair")
		}
		lines := strings.Split(in.NotesText, "\n")
		for _, e := range diff {
			name := fmt.Sprintf("%s (kms %s, node image %s)", CheckCatalogNotes, e.KMS, e.NodeImage)
			if n := mentionLine(lines, e.KMS, e.NodeImage); n > 0 {
				r.add(name, Pass, "mentioned on line %d of the notes", n)
			} else {
				r.add(name, Fail, "new catalog pair kms %s / node image %s (profiles %s) is not mentioned in the release notes: add a line naming both versions, e.g. \"KMS %s / node %s\"",
					e.KMS, e.NodeImage, profileList(e), e.KMS, e.NodeImage)
			}
		}
	}
	return r, r.verdict("PR doc")
}

func profileList(e catalog.Entry) string {
	var s []string
	for _, p := range e.Profiles {
		s = append(s, string(p))
	}
	return strings.Join(s, ", ")
}

// versionTokenRE finds version-like tokens; versionsOn checks their boundaries.
var versionTokenRE = lazyre.New(`[0-9]+\.[0-9]+\.[0-9]+(?:-rc\.[0-9]+)?`)

// versionsOn returns the whole version tokens of a line: "1.3.0", "v1.3.0" and
// "mero-kms-v1.3.0-rc.1" count; "11.3.0" does not give 1.3.0, nor "1.3.0.4" or "1.3.0-beta".
func versionsOn(line string) []string {
	var out []string
	for _, m := range versionTokenRE().FindAllStringIndex(line, -1) {
		start, end := m[0], m[1]
		if start > 0 {
			prev := line[start-1]
			if prev == 'v' || prev == 'V' {
				if start > 1 && isAlnum(line[start-2]) {
					continue // "dev1.3.0"
				}
			} else if isAlnum(prev) || prev == '.' || prev == '-' || prev == '_' {
				continue
			}
		}
		if end < len(line) {
			next := line[end]
			if isAlnum(next) || next == '_' {
				continue
			}
			if (next == '.' || next == '-' || next == '+') && end+1 < len(line) && isAlnum(line[end+1]) {
				continue // "1.3.0.4", "1.3.0-beta", "1.3.0+build"
			}
		}
		out = append(out, line[start:end])
	}
	return out
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// mentionLine returns the 1-based number of the first line naming both versions (twice when they
// are equal), or 0.
func mentionLine(lines []string, kms, node string) int {
	for i, l := range lines {
		tokens := versionsOn(l)
		k, n := countOf(tokens, kms), countOf(tokens, node)
		if kms == node {
			if k >= 2 {
				return i + 1
			}
		} else if k > 0 && n > 0 {
			return i + 1
		}
	}
	return 0
}

func countOf(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}
