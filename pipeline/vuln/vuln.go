// Package vuln is the vulnerability gate of a release: every SBOM the release produces is
// matched against a grype vulnerability database (grype as a library; the database is a local
// directory or built from a local advisory list, never fetched by a release), findings that an
// allow-list entry (with a reason and an expiry) accepts are marked, and the result is a JSON
// report (vulnerabilities.json), a release-notes section and a verdict: fixable findings at or
// above a severity threshold block, unless the caller reports only (release candidates).
package vuln

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/anchore/grype/grype"
	"github.com/anchore/grype/grype/match"
	"github.com/anchore/grype/grype/matcher"
	"github.com/anchore/grype/grype/matcher/golang"
	"github.com/anchore/grype/grype/matcher/stock"
	grypepkg "github.com/anchore/grype/grype/pkg"
	"github.com/anchore/grype/grype/vulnerability"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// Severity is a vulnerability severity, ordered: Negligible < Low < Medium < High < Critical.
type Severity int

// The severities (Unknown sorts lowest).
const (
	Unknown Severity = iota
	Negligible
	Low
	Medium
	High
	Critical
)

var severityNames = []string{"unknown", "negligible", "low", "medium", "high", "critical"}

// String is the lower-case name.
func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return "unknown"
	}
	return severityNames[s]
}

// DefaultFailOn is the default threshold of the gate.
const DefaultFailOn = High

// ParseSeverity parses a severity name (negligible, low, medium, high, critical).
func ParseSeverity(s string) (Severity, error) {
	i := slices.Index(severityNames, strings.ToLower(strings.TrimSpace(s)))
	if i <= 0 {
		return Unknown, outcome.UsageErrorf("severity %q: want one of negligible, low, medium, high, critical", s)
	}
	return Severity(i), nil
}

// Finding is one vulnerability matched on one package.
type Finding struct {
	// Package, Version and Type are the package as the SBOM records it (Type: syft's, e.g. go-module).
	Package string `json:"package"`
	Version string `json:"version"`
	Type    string `json:"type"`
	PURL    string `json:"purl,omitempty"`
	// Vulnerability is the DB's id; Aliases its related ids (e.g. the CVE of a GHSA).
	Vulnerability string   `json:"vulnerability"`
	Aliases       []string `json:"aliases,omitempty"`
	Severity      string   `json:"severity"`
	// FixState is fixed, not-fixed, wont-fix or unknown; FixVersions the fixing versions.
	FixState    string   `json:"fix_state"`
	FixVersions []string `json:"fix_versions,omitempty"`
	// SBOM is the SBOM file (asset name) the package is in.
	SBOM string `json:"sbom"`
	// Allowed is the allow-list entry that accepts the finding (nil: none).
	Allowed *AllowEntry `json:"allowed,omitempty"`
	// Blocking is true for a fixable finding at or above the threshold that nothing accepts.
	Blocking bool `json:"blocking"`
	severity Severity
}

// Fixable reports whether a fix version exists.
func (f Finding) Fixable() bool {
	return f.FixState == string(vulnerability.FixStateFixed) && len(f.FixVersions) > 0
}

// Report is vulnerabilities.json.
type Report struct {
	SchemaVersion string `json:"schema_version"`
	// Family and Version name the release (the auditor checks them, as for published-mrtds.json).
	Family  string `json:"family"`
	Version string `json:"version"`
	// Scanned is false when no database was configured (Reason says so); nothing was matched.
	Scanned bool   `json:"scanned"`
	Reason  string `json:"reason,omitempty"`
	// DB is the database used.
	DB *DBInfo `json:"db,omitempty"`
	// SBOMs are the scanned SBOM files (asset names).
	SBOMs []string `json:"sboms"`
	// FailOn is the gate's threshold.
	FailOn string `json:"fail_on"`
	// Counts are the findings by severity (allow-listed ones included).
	Counts map[string]int `json:"counts"`
	// Findings are sorted by severity (highest first), package and id.
	Findings []Finding `json:"findings"`
	// ExpiredAllowEntries are allow-list entries past their expiry: they accepted nothing.
	ExpiredAllowEntries []AllowEntry `json:"expired_allow_entries,omitempty"`
}

// Options configure a scan.
type Options struct {
	// DB is the open database.
	DB *DB
	// AllowList accepts findings (nil: none).
	AllowList *AllowList
	// FailOn is the gate's threshold (Unknown: DefaultFailOn).
	FailOn Severity
	// Now decides which allow-list entries have expired (default time.Now).
	Now func() time.Time
}

// SBOM is one SBOM file to scan and its name in the release.
type SBOM struct {
	Name, Path string
}

// NotScanned is the report of a release scanned with no database.
func NotScanned(reason string, failOn Severity, sboms []SBOM) *Report {
	r := &Report{SchemaVersion: "1", Reason: reason, FailOn: orDefault(failOn).String(), Counts: map[string]int{}, Findings: []Finding{}}
	for _, s := range sboms {
		r.SBOMs = append(r.SBOMs, s.Name)
	}
	return r
}

func orDefault(s Severity) Severity {
	if s == Unknown {
		return DefaultFailOn
	}
	return s
}

// matchers are grype's default matchers configured as the grype CLI configures them.
func matchers() []match.Matcher {
	return matcher.NewDefaultMatchers(matcher.Config{
		Golang: golang.MatcherConfig{AlwaysUseCPEForStdlib: true},
		Stock:  stock.MatcherConfig{UseCPEs: true},
	})
}

// Scan matches every SBOM against the database and applies the allow-list.
func Scan(ctx context.Context, sboms []SBOM, o Options) (*Report, error) {
	if o.DB == nil {
		return nil, outcome.UsageErrorf("vulnerability scan: no database")
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	failOn := orDefault(o.FailOn)
	info := o.DB.Info
	rep := &Report{SchemaVersion: "1", Scanned: true, DB: &info, FailOn: failOn.String(), Counts: map[string]int{}, Findings: []Finding{}}
	var live []AllowEntry
	if o.AllowList != nil {
		for _, e := range o.AllowList.Entries {
			if e.Expired(now()) {
				rep.ExpiredAllowEntries = append(rep.ExpiredAllowEntries, e)
			} else {
				live = append(live, e)
			}
		}
	}
	m := &grype.VulnerabilityMatcher{VulnerabilityProvider: o.DB.provider, Matchers: matchers(), NormalizeByCVE: false}
	for _, s := range sboms {
		rep.SBOMs = append(rep.SBOMs, s.Name)
		f, err := os.Open(s.Path)
		if err != nil {
			return nil, fmt.Errorf("vulnerability scan: %w", err)
		}
		pkgs, pctx, _, err := grypepkg.ProvideFromReader(f, grypepkg.ProviderConfig{})
		f.Close()
		if err != nil {
			return nil, outcome.VerificationErrorf("vulnerability scan: read SBOM %s: %v", s.Name, err)
		}
		matches, _, err := m.FindMatchesContext(ctx, pkgs, pctx)
		if err != nil {
			return nil, fmt.Errorf("vulnerability scan of %s: %w", s.Name, err)
		}
		for _, mt := range matches.Sorted() {
			rep.Findings = append(rep.Findings, finding(mt, s.Name, failOn, live))
		}
	}
	slices.SortStableFunc(rep.Findings, func(a, b Finding) int {
		if a.severity != b.severity {
			return int(b.severity - a.severity)
		}
		if c := strings.Compare(a.Package, b.Package); c != 0 {
			return c
		}
		return strings.Compare(a.Vulnerability, b.Vulnerability)
	})
	for _, f := range rep.Findings {
		rep.Counts[f.Severity]++
	}
	return rep, nil
}

// finding turns a grype match into a Finding, judged against the threshold and the live allow-list entries.
func finding(mt match.Match, sbom string, failOn Severity, allow []AllowEntry) Finding {
	v := mt.Vulnerability
	sevName := ""
	if v.Metadata != nil {
		sevName = v.Metadata.Severity
	}
	sev, err := ParseSeverity(sevName)
	if err != nil {
		sev = Unknown
	}
	f := Finding{
		Package: mt.Package.Name, Version: mt.Package.Version, Type: string(mt.Package.Type), PURL: mt.Package.PURL,
		Vulnerability: v.ID, Severity: sev.String(), FixState: string(v.Fix.State), FixVersions: v.Fix.Versions,
		SBOM: sbom, severity: sev,
	}
	if f.FixState == "" {
		f.FixState = string(vulnerability.FixStateUnknown)
	}
	ids := []string{v.ID}
	for _, r := range v.RelatedVulnerabilities {
		if r.ID != v.ID && !slices.Contains(f.Aliases, r.ID) {
			f.Aliases = append(f.Aliases, r.ID)
			ids = append(ids, r.ID)
		}
	}
	for _, e := range allow {
		if e.covers(ids, f.Package) {
			e := e
			f.Allowed = &e
			break
		}
	}
	f.Blocking = f.Fixable() && sev >= failOn && f.Allowed == nil
	return f
}

// Blocking are the findings that block a release.
func (r *Report) Blocking() []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Blocking {
			out = append(out, f)
		}
	}
	return out
}

// Err is the gate's verdict: a verification error (exit 10) naming every blocking finding, or nil.
func (r *Report) Err() error {
	b := r.Blocking()
	if len(b) == 0 {
		return nil
	}
	var lines []string
	for _, f := range b {
		lines = append(lines, fmt.Sprintf("%s %s in %s %s (fixed in %s)", f.Severity, f.Vulnerability, f.Package, f.Version, strings.Join(f.FixVersions, ", ")))
	}
	return outcome.VerificationErrorf("%d fixable vulnerabilit%s at or above %s: %s (upgrade, or accept each in the allow-list with a reason and an expiry date)",
		len(b), map[bool]string{true: "y", false: "ies"}[len(b) == 1], r.FailOn, strings.Join(lines, "; "))
}

// Marshal is vulnerabilities.json.
func (r *Report) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("vulnerabilities.json: %w", err)
	}
	return append(b, '\n'), nil
}

// Markdown is the release-notes section's body: counts by severity, the database, and the
// fixable findings at or above the threshold (allow-listed ones with their reason).
func (r *Report) Markdown() string {
	var b strings.Builder
	if !r.Scanned {
		fmt.Fprintf(&b, "Not scanned: %s.\n", r.Reason)
		return b.String()
	}
	fmt.Fprintf(&b, "SBOMs scanned with grype against the vulnerability database %s (schema %s, built %s).\n\n",
		r.DB.Source, r.DB.Schema, r.DB.Built.Format(time.RFC3339))
	if len(r.Findings) == 0 {
		b.WriteString("No known vulnerabilities.\n")
	} else {
		b.WriteString("| severity | findings |\n|---|---|\n")
		for s := Critical; s >= Unknown; s-- {
			if n := r.Counts[s.String()]; n > 0 {
				fmt.Fprintf(&b, "| %s | %d |\n", s, n)
			}
		}
	}
	threshold, _ := ParseSeverity(r.FailOn)
	var fixable []Finding
	for _, f := range r.Findings {
		if f.Fixable() && f.severity >= threshold {
			fixable = append(fixable, f)
		}
	}
	if len(fixable) > 0 {
		fmt.Fprintf(&b, "\nFixable at or above %s:\n\n", r.FailOn)
		for _, f := range fixable {
			fmt.Fprintf(&b, "- %s %s: %s %s, fixed in %s", f.Severity, f.Vulnerability, f.Package, f.Version, strings.Join(f.FixVersions, ", "))
			if f.Allowed != nil {
				fmt.Fprintf(&b, " — allow-listed until %s: %s", f.Allowed.Expires, f.Allowed.Reason)
			}
			b.WriteString("\n")
		}
	}
	for _, e := range r.ExpiredAllowEntries {
		fmt.Fprintf(&b, "\nAllow-list entry %s expired on %s (not applied).\n", e.ID, e.Expires)
	}
	return b.String()
}
