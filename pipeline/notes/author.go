package notes

import (
	"bufio"
	"io"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// maxNotesLine bounds one line of an author-written notes file.
const maxNotesLine = 1 << 20

// AuthorNotes is an author-written notes file: Markdown whose "## Heading" lines open sections.
type AuthorNotes struct {
	// Intro is the text before the first "##" heading (a summary), trimmed.
	Intro string
	// Sections are the "##" sections in file order.
	Sections []AuthorSection
}

// AuthorSection is one "## Heading" section of an author-written notes file.
type AuthorSection struct {
	// Heading is the heading text as written (without "## ").
	Heading string
	// Section is the release section the heading names (case-insensitive), or "" for a
	// section of the author's own (e.g. "Highlights"), which is kept as written.
	Section release.Section
	// Body is the Markdown under the heading, trimmed; "###" and deeper headings stay in it.
	Body string
	// Line is the 1-based line of the heading.
	Line int
}

// KnownSections lists every release-notes section in the order the notes print them when the
// class does not fix the order.
func KnownSections() []release.Section {
	return []release.Section{
		release.SectionChangelog,
		release.SectionIncident,
		release.SectionChangeDetail,
		release.SectionWhyPatch,
		release.SectionRollback,
		release.SectionBreakingChanges,
		release.SectionUpgradePath,
		release.SectionMeasurements,
		release.SectionCompatibility,
	}
}

// SectionFor returns the release section a heading names, case-insensitively and ignoring
// surrounding spaces; ok is false for any other heading.
func SectionFor(heading string) (release.Section, bool) {
	h := strings.Join(strings.Fields(heading), " ")
	for _, s := range KnownSections() {
		if strings.EqualFold(h, string(s)) {
			return s, true
		}
	}
	return "", false
}

// Parse reads an author-written notes file. "## Heading" lines (outside fenced code blocks)
// open sections; a heading that names a release section (case-insensitively) fills that
// section, any other heading is kept as an extra section. An empty heading or a heading that
// appears twice is a usage error naming the line.
func Parse(r io.Reader) (AuthorNotes, error) {
	var (
		notes   AuthorNotes
		cur     *AuthorSection
		buf     []string
		fence   string
		lineNo  int
		seen    = map[string]int{}
		flushTo = func() {
			text := strings.TrimSpace(strings.Join(buf, "\n"))
			if cur == nil {
				notes.Intro = text
			} else {
				cur.Body = text
				notes.Sections = append(notes.Sections, *cur)
			}
			buf = buf[:0]
		}
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), maxNotesLine)
	for sc.Scan() {
		lineNo++
		line := strings.TrimRight(sc.Text(), " \t\r")
		if f := fenceMarker(line); f != "" {
			switch {
			case fence == "":
				fence = f
			case strings.HasPrefix(f, fence) && strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(line), f[:1])) == "":
				fence = ""
			}
		}
		heading, isHeading := h2(line)
		if fence != "" || !isHeading {
			buf = append(buf, line)
			continue
		}
		if heading == "" {
			return AuthorNotes{}, outcome.UsageErrorf("notes line %d: empty \"##\" heading", lineNo)
		}
		key := strings.ToLower(strings.Join(strings.Fields(heading), " "))
		if prev, dup := seen[key]; dup {
			return AuthorNotes{}, outcome.UsageErrorf("notes line %d: section %q appears twice (first on line %d)", lineNo, heading, prev)
		}
		seen[key] = lineNo
		flushTo()
		sec, _ := SectionFor(heading)
		cur = &AuthorSection{Heading: heading, Section: sec, Line: lineNo}
	}
	if err := sc.Err(); err != nil {
		return AuthorNotes{}, outcome.UsageErrorf("notes line %d: %v", lineNo+1, err)
	}
	flushTo()
	return notes, nil
}

// Section returns the author's body of a release section, and whether the author wrote it
// with some content.
func (n AuthorNotes) Section(s release.Section) (string, bool) {
	for _, sec := range n.Sections {
		if sec.Section == s {
			return sec.Body, sec.Body != ""
		}
	}
	return "", false
}

// Extra returns the sections whose headings name no release section, in file order.
func (n AuthorNotes) Extra() []AuthorSection {
	var out []AuthorSection
	for _, sec := range n.Sections {
		if sec.Section == "" {
			out = append(out, sec)
		}
	}
	return out
}

// h2 reports whether line is an ATX level-2 heading ("## Text", up to three leading spaces,
// optional closing "#"s) and returns its text.
func h2(line string) (string, bool) {
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 || !strings.HasPrefix(t, "##") {
		return "", false
	}
	rest := t[2:]
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return "", false // "###" or "##text"
	}
	rest = strings.TrimSpace(rest)
	if trimmed := strings.TrimRight(rest, "#"); trimmed != rest && (trimmed == "" || strings.HasSuffix(trimmed, " ") || strings.HasSuffix(trimmed, "\t")) {
		rest = strings.TrimSpace(trimmed)
	}
	return rest, true
}

// fenceMarker returns the fence ("```" or "~~~", possibly longer) a line opens or closes, or "".
func fenceMarker(line string) string {
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 {
		return ""
	}
	for _, ch := range []string{"`", "~"} {
		n := 0
		for n < len(t) && t[n] == ch[0] {
			n++
		}
		if n >= 3 {
			return t[:n]
		}
	}
	return ""
}
