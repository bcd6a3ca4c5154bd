package audit

import (
	"fmt"
	"strings"
)

// Markdown renders the report as a GitHub-flavoured Markdown summary, for $GITHUB_STEP_SUMMARY:
// a verdict, one table row per check, and every failure and warning.
func (r *Report) Markdown() string {
	var b strings.Builder
	verdict := "✅ passed"
	if !r.Passed {
		verdict = fmt.Sprintf("❌ failed (exit %d)", r.ExitCode)
	}
	fmt.Fprintf(&b, "## Release audit: `%s` — %s\n\n", r.Tag, verdict)
	kind := "published"
	if r.Draft {
		kind = "draft"
	}
	fmt.Fprintf(&b, "Family **%s**, class **%s**, %s. Expected signer: `%s`.\n\n", r.Family, r.Class, kind, mdCode(r.Signer))
	b.WriteString("| Check | Result | Passed | Failed | Warnings |\n|---|---|---:|---:|---:|\n")
	for _, c := range r.Checks {
		result := "✅"
		switch {
		case c.Skipped:
			result = "➖ not applicable"
		case c.Failed > 0:
			result = "❌"
		case c.Passed == 0:
			result = "➖ not run"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d |\n", c.Check.Title(), result, c.Passed, c.Failed, c.Warned)
	}
	var fails, warns []Finding
	for _, f := range r.Findings {
		switch f.Status {
		case Fail:
			fails = append(fails, f)
		case Warn:
			warns = append(warns, f)
		}
	}
	if len(fails) > 0 {
		b.WriteString("\n### Failures\n\n")
		for _, f := range fails {
			fmt.Fprintf(&b, "- **%s** `%s` (exit %d): %s\n", f.Check.Title(), mdCode(f.Subject), f.ExitCode, mdText(f.Message))
		}
	}
	if len(warns) > 0 {
		b.WriteString("\n### Warnings\n\n")
		for _, f := range warns {
			fmt.Fprintf(&b, "- **%s** `%s`: %s\n", f.Check.Title(), mdCode(f.Subject), mdText(f.Message))
		}
	}
	return b.String()
}

// mdCode makes s safe inside a `code span`.
func mdCode(s string) string { return strings.ReplaceAll(oneLine(s), "`", "'") }

// mdText makes s safe as inline Markdown text in a list item.
func mdText(s string) string {
	r := strings.NewReplacer("<", "&lt;", ">", "&gt;", "|", "\\|", "*", "\\*", "_", "\\_", "`", "\\`", "[", "\\[")
	return r.Replace(oneLine(s))
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
