package vuln_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/vuln"
)

// advisories are the fixture database: a fixable critical and a fixable low finding on
// golang.org/x/text, an unfixable critical on gopkg.in/yaml.v3, and one that the SBOM's
// golang.org/x/crypto (v0.58.0) is too new for.
func advisories() []vuln.Advisory {
	return []vuln.Advisory{
		{ID: "GHSA-test-crit-0001", Aliases: []string{"CVE-2099-0001"}, Ecosystem: "go-module", Package: "golang.org/x/text",
			Affected: "< 0.99.0", Fixed: "0.99.0", Severity: "critical", Description: "a critical fixable test vulnerability"},
		{ID: "GHSA-test-low-0002", Ecosystem: "go-module", Package: "golang.org/x/text",
			Affected: "< 0.98.0", Fixed: "0.98.0", Severity: "low"},
		{ID: "GHSA-test-nofix-0003", Ecosystem: "go-module", Package: "gopkg.in/yaml.v3",
			Affected: "<= 3.0.1", Severity: "critical"},
		{ID: "GHSA-test-old-0004", Ecosystem: "go-module", Package: "golang.org/x/crypto",
			Affected: "< 0.31.0", Fixed: "0.31.0", Severity: "critical"},
	}
}

// openFixture builds the fixture database with grype's DB writer and opens it.
func openFixture(t *testing.T) *vuln.DB {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "db")
	if err := vuln.BuildDB(context.Background(), dir, advisories()); err != nil {
		t.Fatal(err)
	}
	db, err := vuln.OpenDB(context.Background(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var now = func() time.Time { return time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC) }

func scan(t *testing.T, db *vuln.DB, allow string, failOn vuln.Severity) *vuln.Report {
	t.Helper()
	var al *vuln.AllowList
	if allow != "" {
		var err error
		if al, err = vuln.ParseAllowList([]byte(allow), "test"); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := vuln.Scan(context.Background(), []vuln.SBOM{{Name: "sbom.spdx.json", Path: filepath.Join("testdata", "sbom.spdx.json")}},
		vuln.Options{DB: db, AllowList: al, FailOn: failOn, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func byID(rep *vuln.Report) map[string]vuln.Finding {
	out := map[string]vuln.Finding{}
	for _, f := range rep.Findings {
		out[f.Vulnerability] = f
	}
	return out
}

func TestScanGate(t *testing.T) {
	db := openFixture(t)
	if db.Info.Schema == "" || !strings.HasPrefix(db.Info.Schema, "v6.") || db.Info.Built.IsZero() {
		t.Fatalf("DB info %+v: want a v6 schema and a build time", db.Info)
	}

	rep := scan(t, db, "", 0)
	got := byID(rep)
	if len(got) != 3 {
		t.Fatalf("findings %v, want the three on x/text and yaml.v3 (x/crypto v0.58.0 is fixed)", got)
	}
	crit := got["GHSA-test-crit-0001"]
	if !crit.Blocking || !crit.Fixable() || crit.Severity != "critical" || crit.Package != "golang.org/x/text" || crit.Version != "v0.20.0" ||
		strings.Join(crit.FixVersions, ",") != "0.99.0" || crit.FixState != "fixed" {
		t.Errorf("critical finding %+v: want blocking, fixable in 0.99.0", crit)
	}
	if f := got["GHSA-test-nofix-0003"]; f.Blocking || f.Fixable() || f.Severity != "critical" {
		t.Errorf("unfixable critical %+v: must not block", f)
	}
	if f := got["GHSA-test-low-0002"]; f.Blocking {
		t.Errorf("low finding %+v blocks at the default threshold (high)", f)
	}
	if rep.Counts["critical"] != 2 || rep.Counts["low"] != 1 {
		t.Errorf("counts %v", rep.Counts)
	}
	err := rep.Err()
	if outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), "GHSA-test-crit-0001") || strings.Contains(err.Error(), "GHSA-test-nofix-0003") {
		t.Errorf("gate: %v (code %d), want exit 10 naming only the fixable critical", err, outcome.Code(err))
	}

	// --fail-on low: the low one blocks too
	if rep := scan(t, db, "", vuln.Low); len(rep.Blocking()) != 2 {
		t.Errorf("fail-on low: blocking %v, want 2", rep.Blocking())
	}
	// --fail-on critical with the critical accepted: nothing blocks
	allow := "entries:\n  - id: CVE-2099-0001\n    package: golang.org/x/text\n    reason: not reachable from the KMS\n    expires: 2027-01-31\n"
	rep = scan(t, db, allow, 0)
	if err := rep.Err(); err != nil {
		t.Errorf("allow-listed by its CVE alias: %v", err)
	}
	if f := byID(rep)["GHSA-test-crit-0001"]; f.Allowed == nil || f.Allowed.Reason != "not reachable from the KMS" || f.Blocking {
		t.Errorf("allow-listed finding %+v", f)
	}
	md := rep.Markdown()
	for _, want := range []string{"| critical | 2 |", "GHSA-test-crit-0001", "allow-listed until 2027-01-31: not reachable from the KMS"} {
		if !strings.Contains(md, want) {
			t.Errorf("notes section lacks %q:\n%s", want, md)
		}
	}
	data, err := rep.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var decoded map[string]any
	if err := json.Unmarshal(data, &decoded); err != nil || decoded["db"] == nil || decoded["fail_on"] != "high" {
		t.Errorf("vulnerabilities.json %s: %v", data, err)
	}

	// an entry for another package, or expired (the day after its expiry), accepts nothing
	for name, allow := range map[string]string{
		"other package": "entries:\n  - id: GHSA-test-crit-0001\n    package: golang.org/x/net\n    reason: r\n    expires: 2027-01-31\n",
		"expired":       "entries:\n  - id: GHSA-test-crit-0001\n    reason: r\n    expires: 2026-11-01\n",
	} {
		rep := scan(t, db, allow, 0)
		if outcome.Code(rep.Err()) != outcome.VerificationFailed {
			t.Errorf("%s: the entry was applied: %v", name, rep.Err())
		}
		if name == "expired" && (len(rep.ExpiredAllowEntries) != 1 || !strings.Contains(rep.Markdown(), "expired on 2026-11-01")) {
			t.Errorf("expired entry not reported: %+v", rep.ExpiredAllowEntries)
		}
	}
	// an entry applies through its expiry day
	if rep := scan(t, db, "entries:\n  - id: GHSA-test-crit-0001\n    reason: r\n    expires: 2026-11-02\n", 0); rep.Err() != nil {
		t.Errorf("entry expiring today: %v", rep.Err())
	}
}

func TestAllowListRefusesIncompleteEntries(t *testing.T) {
	for name, doc := range map[string]string{
		"no reason":     "entries:\n  - id: CVE-1\n    expires: 2027-01-01\n",
		"no expiry":     "entries:\n  - id: CVE-1\n    reason: r\n",
		"bad date":      "entries:\n  - id: CVE-1\n    reason: r\n    expires: soon\n",
		"no id":         "entries:\n  - reason: r\n    expires: 2027-01-01\n",
		"unknown field": "entries:\n  - id: CVE-1\n    reason: r\n    expires: 2027-01-01\n    until: never\n",
	} {
		if _, err := vuln.ParseAllowList([]byte(doc), "x"); outcome.Code(err) != outcome.Usage {
			t.Errorf("%s: %v, want a usage error", name, err)
		}
	}
	if al, err := vuln.LoadAllowList(filepath.Join(t.TempDir(), "none.yaml"), true); err != nil || len(al.Entries) != 0 {
		t.Errorf("optional missing allow-list: %v", err)
	}
	if _, err := vuln.LoadAllowList(filepath.Join(t.TempDir(), "none.yaml"), false); outcome.Code(err) != outcome.Usage {
		t.Errorf("missing allow-list given explicitly: %v", err)
	}
}

func TestOpenDBRefusesWhatIsNotADatabase(t *testing.T) {
	if _, err := vuln.OpenDB(context.Background(), t.TempDir(), ""); outcome.Code(err) != outcome.Usage {
		t.Errorf("empty directory: %v", err)
	}
	if _, err := vuln.OpenDB(context.Background(), vuln.LocalPrefix+filepath.Join(t.TempDir(), "missing.json"), t.TempDir()); outcome.Code(err) != outcome.Usage {
		t.Errorf("missing advisory list: %v", err)
	}
	if _, err := vuln.ParseSeverity("severe"); outcome.Code(err) != outcome.Usage {
		t.Errorf("severity: %v", err)
	}
}

// The repository's local advisory list loads and builds (release-local's default database).
func TestRepositoryAdvisoryList(t *testing.T) {
	db, err := vuln.OpenDB(context.Background(), vuln.LocalPrefix+filepath.Join("..", "..", "vulndb", "advisories.json"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Info.Advisories == 0 {
		t.Error("no advisories")
	}
}
