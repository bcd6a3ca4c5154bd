package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/catalog"
	"github.com/calimero-network/mero-release/pipeline/catalogpr"
	"github.com/calimero-network/mero-release/pipeline/lifecycle"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/store"
	"github.com/calimero-network/mero-release/pipeline/store/dir"
)

// assetOf reads an asset of a release in st.
func assetOf(t *testing.T, st store.Store, tag, name string) []byte {
	t.Helper()
	rc, err := st.OpenAsset(context.Background(), tag, name)
	if err != nil {
		t.Fatalf("%s/%s: %v", tag, name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReleaseLocalLifecycle is README's real release cycle: release-local --lifecycle on the
// embedded defaults publishes the stable and hotfix releases of both families into one store,
// each passing the auditor with the work key; the catalog lists the tested pairs (not the
// node hotfix with the published KMS policy, which refuses it), the node hotfix names the KMS
// release that must follow, and every catalog pull request passes guard pr-docs as CI runs it,
// while a body that leaves out a pair fails it.
func TestReleaseLocalLifecycle(t *testing.T) {
	root := t.TempDir()
	storeDir, work := filepath.Join(root, "releases"), filepath.Join(root, "work")
	env := map[string]string{"SOURCE_DATE_EPOCH": "1764547200"}
	code, _, stderr := catalogCLI(t, env, "release-local", "--lifecycle", "--store", "dir:"+storeDir, "--work", work, "--repo", filepath.Join("..", ".."))
	catalogExpect(t, code, stderr, 0,
		"[PASS] mero-tee-v1.3.0: stable release done (published: true)",
		"[PASS] mero-kms-v1.3.0: stable release done (published: true)",
		"[PASS] mero-tee-v1.3.1 is built from a branch of mero-tee-v1.3.0",
		"[PASS] mero-kms-v1.3.1 is built from a branch of mero-kms-v1.3.0",
		"[PASS] mero-tee-v1.3.1: hotfix release done (published: true)",
		"[PASS] mero-kms-v1.3.1: hotfix release done (published: true)",
		"[PASS] lifecycle mero-tee-v1.3.0-rc.1 → mero-kms-v1.3.0-rc.1 → mero-tee-v1.3.0 → mero-kms-v1.3.0 → mero-tee-v1.3.1 → mero-kms-v1.3.1 done")
	if t.Failed() {
		return
	}
	st, err := dir.New(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(work, "keys", "cosign.pub")
	for _, tag := range []string{"mero-tee-v1.3.0", "mero-kms-v1.3.0", "mero-tee-v1.3.1", "mero-kms-v1.3.1"} {
		rel, err := st.Release(context.Background(), tag)
		if err != nil {
			t.Fatalf("%s: %v", tag, err)
		}
		if rel.Draft || rel.Prerelease {
			t.Errorf("%s: draft %v, prerelease %v", tag, rel.Draft, rel.Prerelease)
		}
		code, _, stderr := catalogCLI(t, nil, "audit", "--tag", tag, "--store", "dir:"+storeDir, "--key", key)
		catalogExpect(t, code, stderr, 0)
		// scanned offline against the repository's advisory list (the default database)
		var vulns struct {
			Scanned bool
			DB      struct{ Source string }
		}
		if err := json.Unmarshal(assetOf(t, st, tag, release.VulnerabilitiesFile), &vulns); err != nil || !vulns.Scanned ||
			!strings.HasSuffix(vulns.DB.Source, filepath.Join("vulndb", "advisories.json")) {
			t.Errorf("%s: vulnerabilities.json %+v (%v): want a scan against the local advisory list", tag, vulns, err)
		}
	}

	cat, err := catalog.LoadFile(filepath.Join(work, catalog.DefaultFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]string{{"1.2.0", "1.2.0"}, {"1.3.0-rc.1", "1.3.0-rc.1"}, {"1.3.0-rc.1", "1.3.0"}, {"1.3.0", "1.3.0"}, {"1.3.1", "1.3.1"}} {
		if e, ok := cat.Pair(pair[0], pair[1]); !ok || !e.Tested {
			t.Errorf("the catalog does not list kms %s / node %s as tested", pair[0], pair[1])
		}
	}
	if _, ok := cat.Pair("1.3.0", "1.3.1"); ok {
		t.Error("the catalog lists kms 1.3.0 / node 1.3.1, which the published 1.3.0 policy refuses")
	}

	var report struct {
		Class    string `json:"class"`
		FollowUp string `json:"follow_up"`
	}
	data, err := os.ReadFile(filepath.Join(work, "mero-tee-v1.3.1", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &report); err != nil || report.Class != "hotfix" || !strings.Contains(report.FollowUp, "mero-kms-v1.3.1") {
		t.Errorf("node hotfix report: %+v (%v)", report, err)
	}

	// every catalog pull request passes the PR doc guard with its body, as pr-guards.yaml runs it
	prs, err := os.ReadDir(filepath.Join(work, "lifecycle", "catalog-pr"))
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, pr := range prs {
		tags = append(tags, pr.Name())
		d := filepath.Join(work, "lifecycle", "catalog-pr", pr.Name())
		changed := filepath.Join(d, "changed.txt")
		if err := os.WriteFile(changed, []byte(catalog.DefaultFile+"\n"+catalog.DocsFile+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"guard", "pr-docs", "--changed", changed, "--base-catalog", filepath.Join(d, catalogpr.BaseCatalogFile),
			"--head-catalog", filepath.Join(d, catalog.DefaultFile)}
		code, _, stderr := catalogCLI(t, nil, append(args, "--notes", filepath.Join(d, catalogpr.PullRequestFile))...)
		catalogExpect(t, code, stderr, 0, "[PASS] catalog notes")
		if pr.Name() != "mero-kms-v1.3.0" {
			continue
		}
		body, err := os.ReadFile(filepath.Join(d, catalogpr.PullRequestFile))
		if err != nil {
			t.Fatal(err)
		}
		unnamed := filepath.Join(d, "unnamed.md")
		if err := os.WriteFile(unnamed, []byte(strings.ReplaceAll(string(body), "kms 1.3.0 ↔ node image 1.3.0", "")), 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, stderr = catalogCLI(t, nil, append(args, "--notes", unnamed)...)
		catalogExpect(t, code, stderr, 10, "new catalog pair kms 1.3.0 / node image 1.3.0")
	}
	if want := []string{"mero-kms-v1.3.0", "mero-kms-v1.3.0-rc.1", "mero-kms-v1.3.1", "mero-tee-v1.3.0"}; !slices.Equal(tags, want) {
		t.Errorf("catalog pull requests %v, want %v", tags, want)
	}
}

// TestStableWithoutNotesFile: a stable tag whose release-notes/<tag>.md is missing stops at
// once with exit 10 naming the file and how to start it.
func TestStableWithoutNotesFile(t *testing.T) {
	root := t.TempDir()
	history := filepath.Join(root, "history")
	if err := lifecycle.Prepare(history, lifecycle.Steps("1.3")[0], 0); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := catalogCLI(t, nil, "release-node-image", "--tag", "mero-tee-v1.3.0", "--version", "1.3.0", "--store", "dir:"+filepath.Join(root, "releases"),
		"--work", filepath.Join(root, "work"), "--repo", filepath.Join("..", ".."), "--history", history)
	catalogExpect(t, code, stderr, 10, filepath.Join(history, "release-notes", "mero-tee-v1.3.0.md"), "notes init --tag mero-tee-v1.3.0")
}

// TestNotesInit: notes init writes the skeleton of the class's author sections at the
// convention's path; the unfilled skeleton still fails notes (exit 10), a filled one passes,
// and an existing file is never overwritten.
func TestNotesInit(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	if err := lifecycle.Prepare(repo, lifecycle.Steps("1.3")[0], 0); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := catalogCLI(t, nil, "notes", "init", "--tag", "mero-kms-v1.3.0", "--repo", repo)
	catalogExpect(t, code, stderr, 0, "fill in Breaking changes, Upgrade path (a stable release)")
	file := filepath.Join(repo, "release-notes", "mero-kms-v1.3.0.md")
	skeleton, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(skeleton), "\n## Breaking changes\n") || !strings.Contains(string(skeleton), "\n## Upgrade path\n") {
		t.Errorf("skeleton:\n%s", skeleton)
	}
	code, _, stderr = catalogCLI(t, nil, "notes", "--tag", "mero-kms-v1.3.0", "--repo", repo)
	catalogExpect(t, code, stderr, 10, `section "Breaking changes" is required`)
	filled := strings.Replace(strings.Replace(string(skeleton), "## Breaking changes\n", "## Breaking changes\n\nNone.\n", 1), "## Upgrade path\n", "## Upgrade path\n\nRoll the KMS first.\n", 1) +
		"\n## MRTD/RTMR changes\n\nNone: the KMS runs on the same dstack OS.\n"
	if err := os.WriteFile(file, []byte(filled), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := catalogCLI(t, nil, "notes", "--tag", "mero-kms-v1.3.0", "--repo", repo, "--compatible", "1.3.0")
	catalogExpect(t, code, stderr, 0)
	if !strings.Contains(stdout, "Roll the KMS first.") {
		t.Errorf("notes do not carry the file's sections:\n%s", stdout)
	}
	code, _, stderr = catalogCLI(t, nil, "notes", "init", "--tag", "mero-kms-v1.3.0", "--repo", repo)
	catalogExpect(t, code, stderr, 2, "exists")
	code, _, stderr = catalogCLI(t, nil, "notes", "--tag", "mero-tee-v1.3.0", "--repo", repo)
	catalogExpect(t, code, stderr, 10, filepath.Join(repo, "release-notes", "mero-tee-v1.3.0.md"))
}
