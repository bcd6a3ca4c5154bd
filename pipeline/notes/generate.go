package notes

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/internal/lazyre"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// Input is everything the release notes of one release are made from.
type Input struct {
	// Tag is the release; Class its class (it decides the required sections).
	Tag   release.Tag
	Class release.Class
	// Previous is the previous tag of the same family the history starts from (nil: first release).
	Previous *release.Tag
	// Commits are the commits since Previous (History's order is kept).
	Commits []Commit
	// Author is the author-written notes file (zero value: none).
	Author AuthorNotes
	// Measurements are this release's published-mrtds.json; PreviousMeasurements the previous
	// release's, to compare against (nil: not compared, every register is "new").
	Measurements, PreviousMeasurements *measure.Published
	// Compatible are the counterpart family's versions the compatibility catalog pairs this
	// release with (X.Y.Z or X.Y.Z-rc.N).
	Compatible []string
	// FollowUp, when set, says which release must follow this one (a node image whose new
	// measurements no published KMS policy holds yet: the KMS release carrying the updated
	// policy); it is printed as the "Follow-up release" section.
	FollowUp string
	// Vulnerabilities, when set, is the body of the "Vulnerability scan" section: the gate's
	// summary of the release's SBOM scan (pipeline/vuln's Report.Markdown).
	Vulnerabilities string
	// RepoURL (e.g. https://github.com/calimero-network/mero-tee) turns pull-request references
	// and commit hashes into links; empty leaves them as text.
	RepoURL string
}

// VulnerabilitiesHeading is the heading of the vulnerability scan's section.
const VulnerabilitiesHeading = "Vulnerability scan"

// FollowUpHeading is the heading of the section that names the release that must follow.
const FollowUpHeading = "Follow-up release"

// Generate writes the release notes as Markdown. The sections the class requires
// (release.RulesFor(class).RequiredSections) come first in the class's order, then the other
// written or generated release sections, then the author's own sections. Generated sections:
// "Changelog" (from Commits, grouped by Conventional Commit type, with PR links and
// contributors; the author's text for the section comes first), "MRTD/RTMR changes" (from
// Measurements, a table per profile) and "Compatible versions" (from Compatible). A required
// section that is neither written nor generated is a verification error (exit 10) naming the
// section and the class; inconsistent input (a previous tag of another family or not older, a
// malformed compatible version, measurements of another release) is a usage error (exit 2).
// The output depends only on the input: the same input gives the same bytes.
func Generate(in Input) ([]byte, error) {
	if err := in.check(); err != nil {
		return nil, err
	}
	rules := release.RulesFor(in.Class)

	bodies := map[release.Section]string{}
	for _, s := range KnownSections() {
		body, _ := in.Author.Section(s)
		bodies[s] = body
	}
	if cl := changelog(in); cl != "" {
		bodies[release.SectionChangelog] = joinBlocks(bodies[release.SectionChangelog], cl)
	}
	if in.Measurements != nil {
		bodies[release.SectionMeasurements] = joinBlocks(bodies[release.SectionMeasurements], measurementChanges(in))
	}
	if len(in.Compatible) > 0 {
		bodies[release.SectionCompatibility] = joinBlocks(bodies[release.SectionCompatibility], compatibility(in))
	}

	var missing []error
	for _, s := range rules.RequiredSections {
		if bodies[s] == "" {
			missing = append(missing, outcome.VerificationErrorf("release notes of %s: section %q is required for a %s release but was neither written nor generated: %s",
				in.Tag, s, in.Class, hint(in, s)))
		}
	}
	if len(missing) > 0 {
		return nil, errors.Join(missing...)
	}

	order := slices.Clone(rules.RequiredSections)
	for _, s := range KnownSections() {
		if !slices.Contains(order, s) && bodies[s] != "" {
			order = append(order, s)
		}
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s %s\n\n", in.Tag.Family, "v"+in.Tag.Version.String())
	fmt.Fprintf(&b, "%s\n", summaryLine(in))
	if in.Author.Intro != "" {
		fmt.Fprintf(&b, "\n%s\n", in.Author.Intro)
	}
	for _, s := range order {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n", s, bodies[s])
	}
	if in.FollowUp != "" {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n", FollowUpHeading, in.FollowUp)
	}
	if v := strings.TrimSpace(in.Vulnerabilities); v != "" {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n", VulnerabilitiesHeading, v)
	}
	for _, extra := range in.Author.Extra() {
		if extra.Body == "" {
			continue
		}
		fmt.Fprintf(&b, "\n## %s\n\n%s\n", extra.Heading, extra.Body)
	}
	return b.Bytes(), nil
}

// check validates the input's consistency.
func (in Input) check() error {
	if _, err := release.ParseClass(string(in.Class)); err != nil {
		return fmt.Errorf("release notes of %s: %w", in.Tag, err)
	}
	if in.Class == release.RC && !in.Tag.Version.IsRC() {
		return outcome.UsageErrorf("release notes of %s: class rc needs an X.Y.Z-rc.N tag", in.Tag)
	}
	if in.Class != release.RC && in.Tag.Version.IsRC() {
		return outcome.UsageErrorf("release notes of %s: an X.Y.Z-rc.N tag is class rc, not %s", in.Tag, in.Class)
	}
	if p := in.Previous; p != nil {
		if p.Family != in.Tag.Family {
			return outcome.UsageErrorf("release notes of %s: previous tag %s is of family %s, not %s", in.Tag, *p, p.Family, in.Tag.Family)
		}
		if p.Version.Compare(in.Tag.Version) >= 0 {
			return outcome.UsageErrorf("release notes of %s: previous tag %s is not older", in.Tag, *p)
		}
	}
	check := func(what string, m *measure.Published, want *release.Tag) error {
		if m == nil {
			return nil
		}
		if err := m.Validate(); err != nil {
			return fmt.Errorf("release notes of %s: %s: %w", in.Tag, what, err)
		}
		if want != nil && (m.Family != want.Family || m.Version != want.Version.String()) {
			return outcome.UsageErrorf("release notes of %s: %s are of %s %s, want %s", in.Tag, what, m.Family, m.Version, *want)
		}
		return nil
	}
	if err := check("measurements", in.Measurements, &in.Tag); err != nil {
		return err
	}
	if in.PreviousMeasurements != nil && in.Measurements == nil {
		return outcome.UsageErrorf("release notes of %s: previous measurements given without this release's measurements", in.Tag)
	}
	if err := check("previous measurements", in.PreviousMeasurements, in.Previous); err != nil {
		return err
	}
	if in.PreviousMeasurements != nil && in.PreviousMeasurements.Family != in.Tag.Family {
		return outcome.UsageErrorf("release notes of %s: previous measurements are of family %s", in.Tag, in.PreviousMeasurements.Family)
	}
	for i, v := range in.Compatible {
		if _, err := release.ParseVersion(v); err != nil {
			return fmt.Errorf("release notes of %s: compatible version %d: %w", in.Tag, i+1, err)
		}
	}
	return nil
}

func hint(in Input, s release.Section) string {
	switch s {
	case release.SectionChangelog:
		from := "the start of the history"
		if in.Previous != nil {
			from = in.Previous.String()
		}
		return fmt.Sprintf("no commits since %s; write \"## %s\" in the author notes", from, s)
	case release.SectionMeasurements:
		return fmt.Sprintf("no measurements (published-mrtds.json) were given; pass them or write \"## %s\" in the author notes", s)
	case release.SectionCompatibility:
		return fmt.Sprintf("no compatible %s versions were given; pass them from the compatibility catalog or write \"## %s\" in the author notes", in.Tag.Family.Counterpart(), s)
	}
	return fmt.Sprintf("write \"## %s\" in the author notes", s)
}

func summaryLine(in Input) string {
	var s string
	switch in.Class {
	case release.RC:
		s = "Release candidate (prerelease)"
	case release.Hotfix:
		s = "Hotfix release"
	default:
		s = "Stable release"
	}
	s += " of the " + in.Tag.Family.Title() + " (`" + in.Tag.String() + "`)"
	if in.Previous != nil {
		return s + "; changes since `" + in.Previous.String() + "`."
	}
	return s + "; the first release of the family."
}

func joinBlocks(blocks ...string) string {
	var nonEmpty []string
	for _, b := range blocks {
		if b = strings.TrimSpace(b); b != "" {
			nonEmpty = append(nonEmpty, b)
		}
	}
	return strings.Join(nonEmpty, "\n\n")
}

// conventionalRE matches a Conventional Commits subject: type(scope)!: description.
var conventionalRE = lazyre.New(`^([A-Za-z]+)(?:\(([^)]*)\))?(!)?:\s*(.+)$`)

// changelog groups the non-merge commits; merge commits are counted but not listed (the commits
// they merge are). It returns "" when there is no commit to list.
func changelog(in Input) string {
	type group struct {
		title string
		lines []string
	}
	groups := []*group{{title: "Breaking changes"}, {title: "Features"}, {title: "Fixes"}, {title: "Security"}, {title: "Performance"}, {title: "Documentation"}, {title: "Other changes"}}
	byType := map[string]*group{"feat": groups[1], "fix": groups[2], "security": groups[3], "sec": groups[3], "perf": groups[4], "docs": groups[5], "doc": groups[5]}
	listed, merges := 0, 0
	var listedCommits []Commit
	for _, c := range in.Commits {
		if c.Merge {
			merges++
			continue
		}
		listed++
		listedCommits = append(listedCommits, c)
		text := prRefRE().ReplaceAllString(c.Subject, "")
		g := groups[len(groups)-1]
		if m := conventionalRE().FindStringSubmatch(text); m != nil {
			if bg, ok := byType[strings.ToLower(m[1])]; ok {
				g = bg
			}
			if m[3] == "!" || hasBreakingFooter(c.Body) {
				g = groups[0]
			}
			text = m[4]
			if m[2] != "" {
				text = "**" + escapeInline(m[2]) + ":** " + escapeInline(text)
			} else {
				text = escapeInline(text)
			}
		} else {
			if hasBreakingFooter(c.Body) {
				g = groups[0]
			}
			text = escapeInline(text)
		}
		text = strings.TrimSpace(text)
		var refs []string
		for _, pr := range c.PRs {
			refs = append(refs, in.link(fmt.Sprintf("#%d", pr), fmt.Sprintf("pull/%d", pr)))
		}
		refs = append(refs, in.link("`"+short(c.Hash)+"`", "commit/"+c.Hash))
		g.lines = append(g.lines, fmt.Sprintf("- %s (%s) by %s", text, strings.Join(refs, ", "), escapeInline(c.Author.Name)))
	}
	if listed == 0 {
		return ""
	}
	var b strings.Builder
	people := Contributors(listedCommits)
	fmt.Fprintf(&b, "%d %s by %d %s", listed, plural(listed, "commit", "commits"), len(people), plural(len(people), "contributor", "contributors"))
	if merges > 0 {
		fmt.Fprintf(&b, " (%d merge %s not listed)", merges, plural(merges, "commit", "commits"))
	}
	b.WriteString(".\n")
	for _, g := range groups {
		if len(g.lines) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n### %s\n\n%s\n", g.title, strings.Join(g.lines, "\n"))
	}
	b.WriteString("\n### Contributors\n\n")
	for _, p := range people {
		fmt.Fprintf(&b, "- %s\n", escapeInline(p.Name))
	}
	return strings.TrimSpace(b.String())
}

func hasBreakingFooter(body string) bool {
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "BREAKING CHANGE:") || strings.HasPrefix(line, "BREAKING-CHANGE:") {
			return true
		}
	}
	return false
}

func (in Input) link(text, path string) string {
	if in.RepoURL == "" {
		return text
	}
	return "[" + text + "](" + strings.TrimRight(in.RepoURL, "/") + "/" + path + ")"
}

func short(hash string) string {
	if len(hash) > 7 {
		return hash[:7]
	}
	return hash
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// inlineEscaper keeps commit text from turning into HTML or links in Markdown (read-only).
var inlineEscaper = strings.NewReplacer("<", "&lt;", ">", "&gt;", "[", `\[`, "]", `\]`)

func escapeInline(s string) string { return inlineEscaper.Replace(s) }

// measurementChanges renders the MRTD/RTMR table of every profile.
func measurementChanges(in Input) string {
	cur := in.Measurements
	prev := in.PreviousMeasurements
	profiles := profileOrder(cur, prev)
	prevName := "previous"
	if in.Previous != nil {
		prevName = in.Previous.String()
	}
	var b strings.Builder
	var changed []string
	for _, p := range profiles {
		var regs []string
		c, inCur := cur.Profiles[p]
		var pr measure.Record
		inPrev := false
		if prev != nil {
			pr, inPrev = prev.Profiles[p]
		}
		if !inPrev || !inCur {
			continue
		}
		pf := pr.Fields()
		for i, f := range c.Fields() {
			if f[1] != pf[i][1] {
				regs = append(regs, strings.ToUpper(f[0]))
			}
		}
		if len(regs) > 0 {
			changed = append(changed, fmt.Sprintf("`%s` (%s)", p, strings.Join(regs, ", ")))
		}
	}
	switch {
	case prev == nil:
		b.WriteString("No previous measurements were given: every register is listed as new.\n")
	case len(changed) == 0:
		fmt.Fprintf(&b, "No MRTD or RTMR changed since `%s`.\n", prevName)
	default:
		fmt.Fprintf(&b, "Changed since `%s`: %s. Attestation policies that pin the old values must be updated.\n", prevName, strings.Join(changed, "; "))
	}
	for _, p := range profiles {
		c, inCur := cur.Profiles[p]
		var pr measure.Record
		inPrev := false
		if prev != nil {
			pr, inPrev = prev.Profiles[p]
		}
		fmt.Fprintf(&b, "\n### Profile `%s`\n\n", p)
		switch {
		case !inCur:
			fmt.Fprintf(&b, "Not measured in this release (it was in `%s`).\n\n", prevName)
		default:
			fmt.Fprintf(&b, "Measured by `%s` at %s", c.Source, c.MeasuredAt)
			if c.QuoteSHA256 != "" {
				fmt.Fprintf(&b, " (quote SHA-256 `%s`)", c.QuoteSHA256)
			}
			b.WriteString(".\n\n")
		}
		fmt.Fprintf(&b, "| Register | %s | %s | Changed |\n|---|---|---|---|\n", prevName, in.Tag)
		var pf, cf [][2]string
		if inPrev {
			pf = pr.Fields()
		}
		if inCur {
			cf = c.Fields()
		}
		for i, name := range []string{"MRTD", "RTMR0", "RTMR1", "RTMR2", "RTMR3"} {
			oldV, newV, status := "—", "—", ""
			if inPrev {
				oldV = "`" + pf[i][1] + "`"
			}
			if inCur {
				newV = "`" + cf[i][1] + "`"
			}
			switch {
			case !inPrev:
				status = "new"
			case !inCur:
				status = "removed"
			case pf[i][1] != cf[i][1]:
				status = "**yes**"
			default:
				status = "no"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, oldV, newV, status)
		}
	}
	return strings.TrimSpace(b.String())
}

// profileOrder lists the profiles of both files: the known profiles in release order, then any
// other in name order.
func profileOrder(files ...*measure.Published) []release.Profile {
	seen := map[release.Profile]bool{}
	for _, f := range files {
		if f == nil {
			continue
		}
		for p := range f.Profiles {
			seen[p] = true
		}
	}
	var out []release.Profile
	for _, p := range release.Profiles() {
		if seen[p] {
			out = append(out, p)
			delete(seen, p)
		}
	}
	return append(out, slices.Sorted(maps.Keys(seen))...)
}

// compatibility lists the counterpart versions, newest first, once each.
func compatibility(in Input) string {
	var versions []release.Version
	for _, s := range in.Compatible {
		v, _ := release.ParseVersion(s) // checked in Input.check
		if !slices.Contains(versions, v) {
			versions = append(versions, v)
		}
	}
	slices.SortFunc(versions, func(a, b release.Version) int { return b.Compare(a) })
	other := in.Tag.Family.Counterpart()
	var b strings.Builder
	fmt.Fprintf(&b, "Tested with these %s releases (compatibility catalog):\n\n", other.Title())
	for _, v := range versions {
		fmt.Fprintf(&b, "- `%s`\n", release.Tag{Family: other, Version: v})
	}
	return strings.TrimSpace(b.String())
}
