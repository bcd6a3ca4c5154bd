package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// notesRepo writes a git repository (go-git, fixed clock) with the given commits; a commit
// subject starting with "tag:" tags HEAD instead.
func notesRepo(t *testing.T, steps ...string) string {
	t.Helper()
	dir := t.TempDir()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC)
	for i, s := range steps {
		when = when.Add(time.Hour)
		if name, ok := strings.CutPrefix(s, "tag:"); ok {
			head, err := repo.Head()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := repo.CreateTag(name, head.Hash(), nil); err != nil {
				t.Fatal(err)
			}
			continue
		}
		file := filepath.Join(dir, "f"+string(rune('a'+i%26))+".txt")
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Add(filepath.Base(file)); err != nil {
			t.Fatal(err)
		}
		sig := &object.Signature{Name: "Alice Liddell", Email: "alice@example.com", When: when}
		if _, err := wt.Commit(s, &git.CommitOptions{Author: sig, Committer: sig}); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func notesWrite(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func notesPublished(t *testing.T, version string, mrtd byte) string {
	t.Helper()
	p := &measure.Published{SchemaVersion: measure.PublishedSchemaVersion, Family: release.KMS, Version: version, Profiles: map[release.Profile]measure.Record{}}
	h := func(c byte) string { return strings.Repeat(string(c), 96) }
	for _, prof := range release.Profiles() {
		p.Profiles[prof] = measure.Record{MRTD: h(mrtd), RTMR0: h('1'), RTMR1: h('2'), RTMR2: h('3'), RTMR3: h('4'), Source: "image-inspection", MeasuredAt: "2026-11-20T10:00:00Z"}
	}
	data, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return notesWrite(t, "published-mrtds-"+version+".json", string(data))
}

const notesStableAuthor = `## Breaking changes

None.

## Upgrade path

Roll the KMS, then the nodes.
`

const notesHotfixAuthor = `## CVE or incident

INC-42: replayed challenges.

## Exact change

Consume the challenge first.

## Rollback

Redeploy mero-kms-v1.3.0.

## Why a patch release

Exploitable now.
`

func TestNotesCommandStable(t *testing.T) {
	repo := notesRepo(t, "Initial import", "tag:mero-kms-v1.3.0", "feat: binding in /attest (#40)", "tag:mero-kms-v1.4.0-rc.1", "fix: zeroize keys (#41)")
	author := notesWrite(t, "notes.md", notesStableAuthor)
	out := filepath.Join(t.TempDir(), "release-notes.md")
	env := map[string]string{"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "calimero-network/mero-tee"}
	code, stdout, stderr := artifactCLI(t, env, "notes", "--tag", "mero-kms-v1.4.0", "--repo", repo, "--author-notes", author,
		"--measurements", notesPublished(t, "1.4.0", 'b'), "--previous-measurements", notesPublished(t, "1.3.0", 'a'),
		"--compatible", "1.4.0,1.3.0", "-o", out, "--json")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	for _, want := range []string{
		"[INFO] mero-kms-v1.4.0 is a stable release (classified from the tags in " + repo + ")",
		"[INFO] 2 commits from mero-kms-v1.3.0 to HEAD",
		"[PASS] wrote " + out + ": stable release notes of mero-kms-v1.4.0, 2 commits since mero-kms-v1.3.0",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || res["class"] != "stable" || res["commits"] != 2.0 {
		t.Errorf("--json: %q, %v", stdout, err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for _, want := range []string{
		"# mero-kms v1.4.0",
		"- binding in /attest ([#40](https://github.com/calimero-network/mero-tee/pull/40)",
		"- zeroize keys ([#41](https://github.com/calimero-network/mero-tee/pull/41)",
		"## Upgrade path\n\nRoll the KMS, then the nodes.",
		"Changed since `mero-kms-v1.3.0`: `debug` (MRTD)",
		"- `mero-tee-v1.4.0`\n- `mero-tee-v1.3.0`",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("notes lack %q:\n%s", want, s)
		}
	}

	// the compatible versions from a catalog's tested pairs instead of --compatible
	cat := filepath.Join(t.TempDir(), "catalog.json")
	if err := os.WriteFile(cat, []byte(`{"schema_version": "1", "entries": [
  {"kms": "1.4.0", "node_image": "1.4.0", "profiles": ["debug"], "tested": true},
  {"kms": "1.4.0", "node_image": "1.3.0", "profiles": ["debug"], "tested": true},
  {"kms": "1.4.0", "node_image": "1.2.0", "profiles": ["debug"], "tested": false}
]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = artifactCLI(t, env, "notes", "--tag", "mero-kms-v1.4.0", "--repo", repo, "--author-notes", author,
		"--measurements", notesPublished(t, "1.4.0", 'b'), "--previous-measurements", notesPublished(t, "1.3.0", 'a'), "--catalog", cat)
	if code != 0 || stdout != s {
		t.Errorf("--catalog run: exit %d, same notes %v; stderr:\n%s", code, stdout == s, stderr)
	}

	// the same notes to stdout, with the class, previous tag and ref given explicitly
	code, stdout, stderr = artifactCLI(t, env, "notes", "--tag", "mero-kms-v1.4.0", "--repo", repo, "--author-notes", author,
		"--measurements", notesPublished(t, "1.4.0", 'b'), "--previous-measurements", notesPublished(t, "1.3.0", 'a'),
		"--compatible", "1.4.0", "--compatible", "1.3.0", "--class", "stable", "--previous", "mero-kms-v1.3.0", "--ref", "HEAD")
	if code != 0 || stdout != s {
		t.Errorf("stdout run: exit %d, same notes %v; stderr:\n%s", code, stdout == s, stderr)
	}
}

func TestNotesCommandClasses(t *testing.T) {
	repo := notesRepo(t, "Initial import", "tag:mero-kms-v1.3.0", "feat: binding (#40)", "tag:mero-kms-v1.4.0-rc.1", "fix: replay (#41)", "tag:mero-kms-v1.4.0-rc.2")

	// rc: abbreviated notes, history from the previous rc to the tag itself
	code, stdout, stderr := artifactCLI(t, nil, "notes", "--tag", "mero-kms-v1.4.0-rc.2", "--repo", repo)
	if code != 0 || !strings.Contains(stderr, "is a rc release") || !strings.Contains(stderr, "1 commits from mero-kms-v1.4.0-rc.1 to mero-kms-v1.4.0-rc.2") ||
		!strings.Contains(stdout, "## Changelog") || strings.Contains(stdout, "binding") {
		t.Errorf("rc: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	// hotfix: classified from the published 1.3.0; history since 1.3.0 (rc tags skipped)
	author := notesWrite(t, "hotfix.md", notesHotfixAuthor)
	code, stdout, stderr = artifactCLI(t, nil, "notes", "--tag", "mero-kms-v1.3.1", "--repo", repo, "--author-notes", author)
	if code != 0 || !strings.Contains(stderr, "is a hotfix release") || !strings.Contains(stdout, "## CVE or incident\n\nINC-42") {
		t.Errorf("hotfix: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

func TestNotesCommandMissingSection(t *testing.T) {
	repo := notesRepo(t, "Initial import", "tag:mero-kms-v1.3.0", "fix: replay (#41)")
	out := filepath.Join(t.TempDir(), "release-notes.md")

	// a hotfix without its incident reference: exit 10, one [FAIL] line per missing section
	author := notesWrite(t, "hotfix.md", strings.Replace(notesHotfixAuthor, "## CVE or incident\n\nINC-42: replayed challenges.\n", "", 1))
	code, stdout, stderr := artifactCLI(t, nil, "notes", "--tag", "mero-kms-v1.3.1", "--repo", repo, "--author-notes", author, "-o", out)
	if code != 10 || stdout != "" {
		t.Errorf("exit %d (want 10), stdout %q", code, stdout)
	}
	if !strings.Contains(stderr, `[FAIL] release notes of mero-kms-v1.3.1: section "CVE or incident" is required for a hotfix release`) || strings.Contains(stderr, "[ERROR]") {
		t.Errorf("stderr:\n%s", stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("notes were written although a required section is missing")
	}

	// a stable release without an upgrade path, measurements or compatible versions
	code, _, stderr = artifactCLI(t, nil, "notes", "--tag", "mero-kms-v1.4.0", "--repo", repo)
	if code != 10 || strings.Count(stderr, "[FAIL]") != 4 || !strings.Contains(stderr, `"Upgrade path" is required for a stable release`) {
		t.Errorf("stable: exit %d, stderr:\n%s", code, stderr)
	}
}

func TestNotesCommandErrors(t *testing.T) {
	repo := notesRepo(t, "Initial import", "tag:mero-kms-v1.3.0", "fix: replay (#41)")
	badNotes := notesWrite(t, "dup.md", "## Rollback\na\n## rollback\nb\n")
	badMRTDs := notesWrite(t, "published-mrtds.json", `{"schema_version": "1"}`)
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no tag", []string{"--repo", repo}, 2, "--tag is required"},
		{"bad tag", []string{"--tag", "v1.4.0", "--repo", repo}, 2, `tag "v1.4.0"`},
		{"not a repository", []string{"--tag", "mero-kms-v1.4.0", "--repo", t.TempDir()}, 2, "repository"},
		{"bad class", []string{"--tag", "mero-kms-v1.4.0", "--repo", repo, "--class", "beta"}, 2, `class "beta"`},
		{"bad previous", []string{"--tag", "mero-kms-v1.4.0", "--repo", repo, "--previous", "1.3.0"}, 2, "--previous"},
		{"unknown previous", []string{"--tag", "mero-kms-v1.4.0", "--repo", repo, "--previous", "mero-kms-v1.2.0"}, 2, `revision "mero-kms-v1.2.0"`},
		{"unknown ref", []string{"--tag", "mero-kms-v1.4.0", "--repo", repo, "--ref", "release/1.4"}, 2, `revision "release/1.4"`},
		{"missing author notes", []string{"--tag", "mero-kms-v1.4.0", "--repo", repo, "--author-notes", "/nonexistent/notes.md"}, 2, "--author-notes"},
		{"duplicate section", []string{"--tag", "mero-kms-v1.4.0", "--repo", repo, "--author-notes", badNotes}, 2, badNotes + `: notes line 3: section "rollback" appears twice`},
		{"previous measurements alone", []string{"--tag", "mero-kms-v1.4.0", "--repo", repo, "--previous-measurements", badMRTDs}, 2, "--previous-measurements needs --measurements"},
		{"invalid measurements", []string{"--tag", "mero-kms-v1.4.0", "--repo", repo, "--measurements", badMRTDs}, 10, "--measurements " + badMRTDs},
		{"measurements of another release", []string{"--tag", "mero-kms-v1.4.0", "--repo", repo, "--measurements", notesPublished(t, "1.3.0", 'a')}, 2, "measurements are of mero-kms 1.3.0"},
		{"bad compatible version", []string{"--tag", "mero-kms-v1.4.0", "--repo", repo, "--compatible", "1.4"}, 2, `version "1.4"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := artifactCLI(t, nil, append([]string{"notes"}, c.args...)...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d (want %d), stderr lacks %q:\n%s", code, c.code, c.want, stderr)
			}
		})
	}
}
