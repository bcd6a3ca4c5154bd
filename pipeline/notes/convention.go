package notes

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// ConventionDir is the folder of the repository where a release author writes the notes of a
// tag, one file per tag: release-notes/<tag>.md. The CLI, the Dagger functions and both
// release workflows read it by default.
const ConventionDir = "release-notes"

// ConventionFile returns the author notes file of tag in the repository at repoDir:
// repoDir/release-notes/<tag>.md.
func ConventionFile(repoDir string, tag release.Tag) string {
	return filepath.Join(repoDir, ConventionDir, tag.String()+".md")
}

// generated are the sections the pipeline writes itself (from git, the measurements and the
// catalog); an author may add to them but need not.
var generated = []release.Section{release.SectionChangelog, release.SectionMeasurements, release.SectionCompatibility}

// AuthorSections are the sections of a class that only the author can write: the required
// sections the pipeline does not generate.
func AuthorSections(c release.Class) []release.Section {
	var out []release.Section
	for _, s := range release.RulesFor(c).RequiredSections {
		if !slices.Contains(generated, s) {
			out = append(out, s)
		}
	}
	return out
}

// Skeleton is the notes file `mero-release notes init` writes for tag: one empty "## Section"
// for every section the class needs from the author. An empty section counts as not written,
// so a skeleton left unfilled still stops a stable or hotfix release.
func Skeleton(tag release.Tag, c release.Class) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<!-- Release notes of %s (%s). Write each section; an empty one counts as missing.\n", tag, c)
	b.WriteString("     Changelog, MRTD/RTMR changes and Compatible versions are generated; add to them under their own headings if needed. -->\n")
	for _, s := range AuthorSections(c) {
		fmt.Fprintf(&b, "\n## %s\n\n", s)
	}
	return b.Bytes()
}

// LoadAuthorFile reads the author notes at path. A missing file is fine when the class needs
// nothing from the author (a release candidate: the zero AuthorNotes); for a stable or hotfix
// release it is a verification error (exit 10) naming the file to write.
func LoadAuthorFile(path string, tag release.Tag, c release.Class) (AuthorNotes, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := RequireAuthorFile(path, tag, c); err != nil {
			return AuthorNotes{}, err
		}
		return AuthorNotes{}, nil
	case err != nil:
		return AuthorNotes{}, fmt.Errorf("author notes %s: %w", path, err)
	}
	n, err := Parse(bytes.NewReader(data))
	if err != nil {
		return AuthorNotes{}, fmt.Errorf("author notes %s: %w", path, err)
	}
	return n, nil
}

// RequireAuthorFile checks, before a release builds anything, that the author notes a class
// needs exist at path: exit 10 naming the file (and how to start it) when they do not.
func RequireAuthorFile(path string, tag release.Tag, c release.Class) error {
	need := AuthorSections(c)
	if len(need) == 0 {
		return nil
	}
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("author notes %s: %w", path, err)
	}
	return outcome.VerificationErrorf("%s is a %s release and needs the author's release notes: write %s (start it with `mero-release notes init --tag %s`; sections %s)",
		tag, c, path, tag, sectionList(need))
}

func sectionList(ss []release.Section) string {
	var b bytes.Buffer
	for i, s := range ss {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", string(s))
	}
	return b.String()
}
