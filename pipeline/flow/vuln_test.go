package flow_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/flow"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/vuln"
)

// gateAdvisories are a vulnerability database for the real KMS binary's SBOM: a fixable
// critical on golang.org/x/text and an unfixable critical on gopkg.in/yaml.v3, both modules
// of the binary built from examples/kms.
func gateAdvisories() []vuln.Advisory {
	return []vuln.Advisory{
		{ID: "GHSA-test-crit-0001", Aliases: []string{"CVE-2099-0001"}, Ecosystem: "go-module", Package: "golang.org/x/text",
			Affected: "< 99.0.0", Fixed: "99.0.0", Severity: "critical", Description: "a fixable critical (test fixture)"},
		{ID: "GHSA-test-nofix-0002", Ecosystem: "go-module", Package: "gopkg.in/yaml.v3",
			Affected: "< 99.0.0", Severity: "critical", Description: "an unfixable critical (test fixture)"},
	}
}

// testVulnGate: a stable KMS release whose SBOM has a fixable critical vulnerability is refused
// right after the SBOM (exit 10, nothing staged or published, the store unchanged); an expired
// allow-list entry does not help; a current one with a reason lets it publish, with the finding
// in vulnerabilities.json and the notes. An rc with the same finding publishes with a warning.
// The unfixable critical never blocks. A stable release with no database is refused (exit 2).
func testVulnGate(t *testing.T, f *fixture) {
	db := filepath.Join(t.TempDir(), "gate-db")
	if err := vuln.BuildDB(context.Background(), db, gateAdvisories()); err != nil {
		t.Fatal(err)
	}
	gate := func(allow string) func(*flow.Config) {
		return func(c *flow.Config) { c.Vuln = flow.VulnConfig{DB: db, AllowList: allow} }
	}
	allowList := func(w *world, body string) string {
		p := filepath.Join(w.Root, "allow-"+strings.Fields(body)[len(strings.Fields(body))-1]+".yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("stable", func(t *testing.T) {
		t.Parallel()
		w := f.world(t)
		w.kmsBinary = f.kmsBinary // the real KMS: its SBOM lists the Go modules of the binary
		w.AddNode(t, "1.3.0", nil)
		const tag = "mero-kms-v1.3.0"
		before, err := w.Store.Tags(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		notes := w.authorNotes(stableNotes)
		refused := func(name string, mod func(*flow.Config), contains ...string) {
			t.Helper()
			rep, err := w.releaseKMS(tag, counterpart("1.3.0"), notes, mod)
			wantRefused(t, err, outcome.VerificationFailed, append([]string{"stage vulnerabilities", "GHSA-test-crit-0001", "golang.org/x/text"}, contains...)...)
			if strings.Contains(err.Error(), "GHSA-test-nofix-0002") {
				t.Errorf("%s: the unfixable finding blocks: %v", name, err)
			}
			st := stages(t, rep, kmsStages())
			wantStatus(t, st, flow.StatusFail, "", "vulnerabilities")
			wantStatus(t, st, flow.StatusNotRun, "", "release-notes", "sign", "stage", "audit-staged", "e2e", "publish", "catalog")
			w.wantNoRelease(t, tag)
			after, err := w.Store.Tags(context.Background())
			if err != nil || !slices.Equal(before, after) {
				t.Errorf("%s: store tags %v, before %v (%v)", name, after, before, err)
			}
			if entries, _ := os.ReadDir(filepath.Join(w.work, tag, "staging")); len(entries) != 0 {
				t.Errorf("%s: something was staged: %v", name, entries)
			}
			var rep2 vuln.Report
			data, err := os.ReadFile(filepath.Join(w.work, tag, "vulnerabilities.json"))
			if err != nil || json.Unmarshal(data, &rep2) != nil || len(rep2.Blocking()) != 1 {
				t.Errorf("%s: the run's vulnerabilities.json: %v %s", name, err, data)
			}
		}
		refused("no allow-list", gate(""))
		refused("expired entry", gate(allowList(w, "entries:\n  - id: CVE-2099-0001\n    reason: accepted last month\n    expires: 2026-10-31\n")))
		if !strings.Contains(w.log.String(), "allow-list entry CVE-2099-0001 expired on 2026-10-31") {
			t.Error("the expired entry is not reported")
		}

		accepted := allowList(w, "entries:\n  - id: GHSA-test-crit-0001\n    package: golang.org/x/text\n    reason: the vulnerable code is not reachable from the KMS\n    expires: 2027-06-30\n")
		rep, err := w.releaseKMS(tag, counterpart("1.3.0"), notes, gate(accepted))
		if err != nil {
			t.Fatalf("allow-listed: %v", err)
		}
		st := stages(t, rep, kmsStages())
		wantStatus(t, st, flow.StatusPass, "", "vulnerabilities", "publish", "audit")
		w.wantPublished(t, tag)
		var pub vuln.Report
		if err := json.Unmarshal(readAsset(t, w.Store, tag, release.VulnerabilitiesFile), &pub); err != nil {
			t.Fatal(err)
		}
		if !pub.Scanned || pub.DB == nil || pub.DB.Schema == "" || pub.Version != "1.3.0" || len(pub.Findings) != 2 || len(pub.Blocking()) != 0 {
			t.Fatalf("published vulnerabilities.json: %+v", pub)
		}
		for _, fd := range pub.Findings {
			if fd.Vulnerability == "GHSA-test-crit-0001" && (fd.Allowed == nil || fd.Allowed.Reason == "" || fd.Allowed.Expires != "2027-06-30") {
				t.Errorf("allow-listed finding %+v lacks its entry", fd)
			}
		}
		md := string(readAsset(t, w.Store, tag, release.NotesFile))
		for _, want := range []string{"## Vulnerability scan", "| critical | 2 |", "GHSA-test-crit-0001", "allow-listed until 2027-06-30"} {
			if !strings.Contains(md, want) {
				t.Errorf("release notes lack %q", want)
			}
		}
	})

	t.Run("rc reports only", func(t *testing.T) {
		t.Parallel()
		w := f.world(t)
		w.kmsBinary = f.kmsBinary
		const tag = "mero-kms-v1.3.0-rc.1"
		rep, err := w.releaseKMS(tag, gate(""))
		if err != nil {
			t.Fatalf("rc: %v", err)
		}
		wantStatus(t, stages(t, rep, kmsStages()), flow.StatusPass, "", "vulnerabilities", "publish")
		w.wantPublished(t, tag)
		if !strings.Contains(w.log.String(), "[WARN] advisory: vulnerabilities (advisory for a rc release)") || strings.Contains(w.log.String(), "[FAIL]") {
			t.Errorf("want a [WARN] advisory line and no [FAIL]:\n%s", w.log.String())
		}
		var pub vuln.Report
		if err := json.Unmarshal(readAsset(t, w.Store, tag, release.VulnerabilitiesFile), &pub); err != nil || len(pub.Blocking()) != 1 {
			t.Errorf("published vulnerabilities.json: %+v %v", pub, err)
		}
	})

	t.Run("stable without a database", func(t *testing.T) {
		t.Parallel()
		w := f.world(t)
		w.AddNode(t, "1.3.0", nil)
		_, err := w.releaseKMS("mero-kms-v1.3.0", counterpart("1.3.0"), w.authorNotes(stableNotes), func(c *flow.Config) { c.Vuln = flow.VulnConfig{} })
		wantRefused(t, err, outcome.Usage, "--vuln-db", "no database is configured")
		w.wantNoRelease(t, "mero-kms-v1.3.0")
	})

	t.Run("malformed allow-list", func(t *testing.T) {
		t.Parallel()
		w := f.world(t)
		bad := allowList(w, "entries:\n  - id: CVE-2099-0001\n    expires: 2027-01-01\n")
		_, err := w.releaseKMS("mero-kms-v1.3.0-rc.1", gate(bad))
		wantRefused(t, err, outcome.Usage, "no reason")
		w.wantNoRelease(t, "mero-kms-v1.3.0-rc.1")
	})
}
