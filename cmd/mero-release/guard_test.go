package main

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/catalog"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/store"
	"github.com/calimero-network/mero-release/pipeline/store/dir"
)

// guardCLI runs the CLI with the environment env and stdin, returning exit code, stdout, stderr.
func guardCLI(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr, func(k string) string { return env[k] })
	return code, stdout.String(), stderr.String()
}

func guardExpect(t *testing.T, name string, code int, stderr string, wantCode int, want ...string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("%s: exit code %d, want %d; stderr:\n%s", name, code, wantCode, stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("%s: stderr does not contain %q:\n%s", name, w, stderr)
		}
	}
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGuardVersionSyncCommand(t *testing.T) {
	kms := func(v string) map[string]string { return map[string]string{"MERO_KMS_VERSION": v} }
	cases := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want []string
	}{
		{"mismatch", kms("1.2.0"), []string{"--tag", "mero-kms-v1.3.0"}, 10,
			[]string{"[FAIL] tag mero-kms-v1.3.0 has version 1.3.0 but MERO_KMS_VERSION=1.2.0"}},
		{"match", kms("1.3.0"), []string{"--tag", "mero-kms-v1.3.0"}, 0, []string{"[PASS] tag mero-kms-v1.3.0 has version 1.3.0 and MERO_KMS_VERSION=1.3.0"}},
		{"rc with base", kms("1.3.0"), []string{"--tag", "mero-kms-v1.3.0-rc.1"}, 0, []string{"[PASS]"}},
		{"node family reads MERO_TEE_VERSION", map[string]string{"MERO_TEE_VERSION": "2.0.0", "MERO_KMS_VERSION": "1.0.0"}, []string{"--tag", "mero-tee-v2.0.0"}, 0, []string{"MERO_TEE_VERSION=2.0.0"}},
		{"flag overrides env", kms("1.2.0"), []string{"--tag", "mero-kms-v1.3.0", "--version", "1.3.0"}, 0, []string{"[PASS]"}},
		{"explicit empty flag", kms("1.3.0"), []string{"--tag", "mero-kms-v1.3.0", "--version", ""}, 2, []string{"[ERROR] MERO_KMS_VERSION is not set"}},
		{"malformed tag", kms("1.3.0"), []string{"--tag", "mero-kms-1.3"}, 2, []string{"[ERROR]", "must start with"}},
		{"unset variable", nil, []string{"--tag", "mero-kms-v1.3.0"}, 2, []string{"MERO_KMS_VERSION is not set"}},
		{"malformed variable", kms("v1.3.0"), []string{"--tag", "mero-kms-v1.3.0"}, 2, []string{"no leading v"}},
		{"no tag", kms("1.3.0"), nil, 2, []string{"--tag is required"}},
		{"stray argument", kms("1.3.0"), []string{"--tag", "mero-kms-v1.3.0", "extra"}, 2, nil},
		{"unknown flag", kms("1.3.0"), []string{"--tag", "mero-kms-v1.3.0", "--nope"}, 2, nil},
	}
	for _, c := range cases {
		code, stdout, stderr := guardCLI(t, c.env, "", append([]string{"guard", "version-sync"}, c.args...)...)
		guardExpect(t, c.name, code, stderr, c.code, c.want...)
		if stdout != "" {
			t.Errorf("%s: stdout %q without --json", c.name, stdout)
		}
		if strings.Count(stderr, "MERO_KMS_VERSION=1.2.0") > 1 {
			t.Errorf("%s: failure printed twice:\n%s", c.name, stderr)
		}
	}
	code, stdout, _ := guardCLI(t, kms("1.2.0"), "", "guard", "version-sync", "--tag", "mero-kms-v1.3.0", "--json")
	var res map[string]any
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != 10 || res["ok"] != false || res["value"] != "1.2.0" || res["variable"] != "MERO_KMS_VERSION" {
		t.Errorf("--json: %d %q %v", code, stdout, err)
	}
	if code, _, stderr := guardCLI(t, nil, "", "guard"); code != 2 || !strings.Contains(stderr, "subcommand is required") {
		t.Errorf("bare guard: %d %s", code, stderr)
	}
}

func TestGuardAllowedEnvCommand(t *testing.T) {
	dirty := filepath.Join("..", "..", "pipeline", "guard", "testdata", "workflows", "dirty")
	clean := filepath.Join("..", "..", "pipeline", "guard", "testdata", "workflows", "clean")
	code, stdout, stderr := guardCLI(t, nil, "", "guard", "allowed-env", "--workflows", dirty)
	guardExpect(t, "dirty", code, stderr, 10,
		"[FAIL] "+filepath.Join(dirty, "levels.yml")+":12: ALLOWED_MRTD set in workflow env",
		"[FAIL] "+filepath.Join(dirty, "run-bash.yaml")+":10: ALLOWED_MRTD set in job measure step 1 (Exports) run export",
		"run writes $GITHUB_ENV", "ALLOWED_* setting(s) in")
	if n := strings.Count(stderr, "[FAIL] "+dirty); n < 60 {
		t.Errorf("only %d finding lines", n)
	}
	if stdout != "" {
		t.Errorf("stdout without --json: %q", stdout)
	}

	code, _, stderr = guardCLI(t, nil, "", "guard", "allowed-env", "--workflows", clean)
	guardExpect(t, "clean", code, stderr, 0, "[PASS] no workflow under "+clean+" sets an ALLOWED_* variable")

	code, stdout, _ = guardCLI(t, nil, "", "guard", "allowed-env", "--workflows", dirty, "--json")
	var res struct {
		Findings []map[string]any `json:"findings"`
		OK       bool             `json:"ok"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != 10 || res.OK || len(res.Findings) < 60 || res.Findings[0]["line"] == nil {
		t.Errorf("--json dirty: %d %v %+v", code, err, res)
	}
	code, stdout, _ = guardCLI(t, nil, "", "guard", "allowed-env", "--workflows", clean, "--json")
	if code != 0 || !strings.Contains(stdout, `"findings": []`) || !strings.Contains(stdout, `"ok": true`) {
		t.Errorf("--json clean: %d %s", code, stdout)
	}

	code, _, stderr = guardCLI(t, nil, "", "guard", "allowed-env", "--workflows", filepath.Join(t.TempDir(), "nope"))
	guardExpect(t, "missing dir", code, stderr, 2, "[ERROR] workflows directory")

	broken := t.TempDir()
	os.WriteFile(filepath.Join(broken, "bad.yml"), []byte("jobs:\n  a: b\n c: d\n"), 0o644)
	os.WriteFile(filepath.Join(broken, "dirty.yaml"), []byte("env:\n  ALLOWED_TCB_STATUS: UpToDate\n"), 0o644)
	code, _, stderr = guardCLI(t, nil, "", "guard", "allowed-env", "--workflows", broken)
	guardExpect(t, "broken and dirty", code, stderr, 10, "[ERROR] "+filepath.Join(broken, "bad.yml")+":2: invalid YAML",
		"[FAIL] "+filepath.Join(broken, "dirty.yaml")+":2: ALLOWED_TCB_STATUS set in workflow env")
	os.Remove(filepath.Join(broken, "dirty.yaml"))
	code, _, stderr = guardCLI(t, nil, "", "guard", "allowed-env", "--workflows", broken)
	guardExpect(t, "broken only", code, stderr, 2, "[ERROR] "+filepath.Join(broken, "bad.yml")+":2: invalid YAML")

	// the default directory is .github/workflows under the working directory
	repo := t.TempDir()
	os.MkdirAll(filepath.Join(repo, ".github", "workflows"), 0o755)
	os.WriteFile(filepath.Join(repo, ".github", "workflows", "r.yml"), []byte("jobs:\n  j:\n    steps:\n      - run: |\n          echo hi\n          export ALLOWED_MRTD=x\n"), 0o644)
	t.Chdir(repo)
	code, _, stderr = guardCLI(t, nil, "", "guard", "allowed-env")
	guardExpect(t, "default dir", code, stderr, 10, "[FAIL] "+filepath.Join(".github", "workflows", "r.yml")+":6: ALLOWED_MRTD set in job j step 1 run export")
}

func catalogFile(t *testing.T, pairs ...string) string {
	t.Helper()
	c := catalog.New()
	for _, p := range pairs {
		kms, node, _ := strings.Cut(p, "/")
		if _, err := c.Add(catalog.Entry{KMS: kms, NodeImage: node, Profiles: release.Profiles(), Tested: true}); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), catalog.DefaultFile)
	if err := c.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestGuardPRDocsCommand(t *testing.T) {
	base, head := catalogFile(t, "1.2.0/1.2.0"), catalogFile(t, "1.2.0/1.2.0", "1.3.0/1.3.0")
	policyOnly := writeTemp(t, "changed.txt", "policies/attestation-policy-debug.json\n\ngo.sum\n")
	withDocs := writeTemp(t, "changed.txt", "policies/attestation-policy-debug.json\ndocs/policies.md\n")
	catalogChange := writeTemp(t, "changed.txt", "compatibility-catalog.json\nCHANGELOG.md\n")
	goodNotes := writeTemp(t, "notes.md", "## Compatibility\nKMS 1.3.0 / node 1.3.0\n")
	badNotes := writeTemp(t, "notes.md", "nothing about versions\n")
	cases := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  []string
	}{
		{"release file without docs", "", []string{"--changed", policyOnly}, 10,
			[]string{"[FAIL] documentation: policies/attestation-policy-debug.json changed but no documentation did"}},
		{"release file with docs", "", []string{"--changed", withDocs}, 0, []string{"[PASS] documentation: documented in docs/policies.md"}},
		{"stdin", "scripts/release-kms.sh\n", []string{"--changed", "-"}, 10, []string{"scripts/release-kms.sh changed"}},
		{"catalog with notes", "", []string{"--changed", catalogChange, "--base-catalog", base, "--head-catalog", head, "--notes", goodNotes}, 0,
			[]string{"[PASS] catalog notes (kms 1.3.0, node image 1.3.0): mentioned on line 2"}},
		{"catalog, notes from stdin", "KMS 1.3.0 / node 1.3.0", []string{"--changed", catalogChange, "--base-catalog", base, "--head-catalog", head, "--notes", "-"}, 0, nil},
		{"catalog, notes lack the pair", "", []string{"--changed", catalogChange, "--base-catalog", base, "--head-catalog", head, "--notes", badNotes}, 10,
			[]string{"[FAIL] catalog notes (kms 1.3.0, node image 1.3.0): new catalog pair kms 1.3.0 / node image 1.3.0"}},
		{"catalog without catalogs", "", []string{"--changed", catalogChange}, 0, []string{"[WARN] catalog notes"}},
		{"no input", "", nil, 2, []string{"exactly one of --changed"}},
		{"both inputs", "", []string{"--changed", policyOnly, "--git-range", "a..b"}, 2, []string{"exactly one of"}},
		{"base without head", "", []string{"--changed", policyOnly, "--base-catalog", base}, 2, []string{"--base-catalog needs --head-catalog"}},
		{"missing changed file", "", []string{"--changed", "/nonexistent/changed.txt"}, 2, []string{"--changed /nonexistent/changed.txt: file does not exist"}},
		{"missing notes file", "", []string{"--changed", policyOnly, "--notes", "/nonexistent/notes.md"}, 2, []string{"--notes /nonexistent/notes.md"}},
		{"missing catalog", "", []string{"--changed", policyOnly, "--head-catalog", "/nonexistent/c.json"}, 2, []string{"--head-catalog"}},
		{"invalid catalog", "", []string{"--changed", policyOnly, "--head-catalog", writeTemp(t, "c.json", `{"schema_version":"2","entries":[]}`)}, 10, []string{"[FAIL]", "schema_version"}},
		{"bad range", "", []string{"--git-range", "main"}, 2, []string{"want BASE..HEAD"}},
	}
	for _, c := range cases {
		code, _, stderr := guardCLI(t, nil, c.stdin, append([]string{"guard", "pr-docs"}, c.args...)...)
		guardExpect(t, c.name, code, stderr, c.code, c.want...)
	}
	code, stdout, _ := guardCLI(t, nil, "", "guard", "pr-docs", "--changed", policyOnly, "--json")
	var res struct {
		Changed []string         `json:"changed"`
		Checks  []map[string]any `json:"checks"`
		OK      bool             `json:"ok"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != 10 || res.OK || len(res.Changed) != 2 || res.Checks[1]["status"] != "FAIL" {
		t.Errorf("--json: %d %v %+v", code, err, res)
	}
}

func gitRun(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func TestGuardPRDocsGitRange(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	repo := t.TempDir()
	gitRun(t, repo, "init", "-q", "-b", "main")
	copyFile := func(src, dst string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(filepath.Join(repo, dst)), 0o755)
		if err := os.WriteFile(filepath.Join(repo, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(catalogFile(t, "1.2.0/1.2.0"), catalog.DefaultFile)
	gitRun(t, repo, "add", ".")
	gitRun(t, repo, "commit", "-q", "-m", "base")
	gitRun(t, repo, "tag", "base")
	copyFile(catalogFile(t, "1.2.0/1.2.0", "1.3.0/1.2.0"), catalog.DefaultFile)
	gitRun(t, repo, "commit", "-q", "-am", "catalog: kms 1.3.0")
	t.Chdir(repo)

	code, _, stderr := guardCLI(t, nil, "", "guard", "pr-docs", "--git-range", "base..HEAD")
	guardExpect(t, "catalog only", code, stderr, 10, "[INFO] 1 changed path(s)", "read from git at base and HEAD",
		"[FAIL] documentation: compatibility-catalog.json changed", "[FAIL] catalog notes (kms 1.3.0, node image 1.2.0)")

	os.WriteFile(filepath.Join(repo, "CHANGELOG.md"), []byte("- KMS 1.3.0 is compatible with node 1.2.0\n"), 0o644)
	gitRun(t, repo, "add", ".")
	gitRun(t, repo, "commit", "-q", "-m", "docs")
	notes := filepath.Join(repo, "CHANGELOG.md")
	code, _, stderr = guardCLI(t, nil, "", "guard", "pr-docs", "--git-range", "base..HEAD", "--notes", notes)
	guardExpect(t, "documented", code, stderr, 0, "[PASS] documentation: documented in CHANGELOG.md", "[PASS] catalog notes (kms 1.3.0, node image 1.2.0): mentioned on line 1")

	code, _, stderr = guardCLI(t, nil, "", "guard", "pr-docs", "--git-range", "nope..HEAD")
	guardExpect(t, "unknown revision", code, stderr, 2, "--git-range nope..HEAD: repository", `revision "nope"`)
}

// dependencyFixture writes a store with mero-tee-v1.2.0 (measured) and mero-tee-v1.4.0 (without
// published-mrtds.json), a catalog listing kms 1.3.0 with both, and ready policies for 1.2.0.
func dependencyFixture(t *testing.T) (storeDir, catalogPath, policiesDir string) {
	t.Helper()
	ctx := context.Background()
	storeDir = t.TempDir()
	st, err := dir.New(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	pub := &measure.Published{SchemaVersion: measure.PublishedSchemaVersion, Family: release.Node, Version: "1.2.0", Profiles: map[release.Profile]measure.Record{}}
	for _, p := range release.Profiles() {
		reg := func(name string) string {
			sum := sha512.Sum384([]byte(string(p) + name))
			return hex.EncodeToString(sum[:])
		}
		pub.Profiles[p] = measure.Record{MRTD: reg("mrtd"), RTMR0: reg("0"), RTMR1: reg("1"), RTMR2: reg("2"), RTMR3: reg("3"), Source: "tdx-simulator", MeasuredAt: "2026-01-01T00:00:00Z"}
	}
	data, err := pub.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"mero-tee-v1.2.0", "mero-tee-v1.4.0", "mero-kms-v1.3.0"} {
		if _, err := st.CreateDraft(ctx, store.DraftSpec{Tag: tag}); err != nil {
			t.Fatal(err)
		}
		if tag == "mero-tee-v1.2.0" {
			if err := st.UploadAsset(ctx, tag, release.PublishedMRTDsFile, bytes.NewReader(data), int64(len(data))); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Publish(ctx, tag, store.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	catalogPath = catalogFile(t, "1.3.0/1.2.0", "1.3.0/1.4.0")
	policiesDir = t.TempDir()
	for _, p := range release.Profiles() {
		g, err := policy.Generate("1.3.0", p, []*measure.Published{pub}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.WriteFile(filepath.Join(policiesDir, p.PolicyFile())); err != nil {
			t.Fatal(err)
		}
	}
	return storeDir, catalogPath, policiesDir
}

func TestGuardDependencyCommand(t *testing.T) {
	storeDir, catalogPath, policiesDir := dependencyFixture(t)
	st := "dir:" + storeDir
	misfiled := t.TempDir()
	b, _ := os.ReadFile(filepath.Join(policiesDir, release.Debug.PolicyFile()))
	os.WriteFile(filepath.Join(misfiled, release.LockedReadOnly.PolicyFile()), b, 0o644)
	cases := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want []string
	}{
		{"kms release passes", nil, []string{"--tag", "mero-kms-v1.3.0", "--counterpart", "1.2.0", "--store", st, "--catalog", catalogPath, "--policies", policiesDir}, 0,
			[]string{"[PASS] counterpart release: counterpart release mero-tee-v1.2.0 is published", "[PASS] catalog pair (locked-read-only)", "[PASS] policy measurements (debug)", "[PASS] policy accepts counterpart (debug-read-only)"}},
		{"catalog from the environment", map[string]string{"COMPATIBILITY_CATALOG_PATH": catalogPath}, []string{"--tag", "mero-kms-v1.3.0", "--counterpart", "mero-tee-v1.2.0", "--store", st}, 0, nil},
		{"node release passes", nil, []string{"--tag", "mero-tee-v1.2.0", "--counterpart", "1.3.0", "--store", st, "--catalog", catalogPath}, 0, []string{"[PASS] catalog pair: kms 1.3.0 with node image 1.2.0"}},
		{"counterpart missing", nil, []string{"--tag", "mero-kms-v1.3.0", "--counterpart", "9.9.9", "--store", st, "--catalog", catalogPath}, 10,
			[]string{"[FAIL] counterpart release: counterpart release mero-tee-v9.9.9 does not exist in the store", "[FAIL] catalog pair"}},
		{"no published-mrtds.json", nil, []string{"--tag", "mero-kms-v1.3.0", "--counterpart", "1.4.0", "--store", st, "--catalog", catalogPath, "--policies", policiesDir}, 11,
			[]string{"[FAIL] policy measurements (debug): release mero-tee-v1.4.0 has no published-mrtds.json", "[ERROR] dependency guard: release mero-tee-v1.4.0 has no published-mrtds.json"}},
		{"misfiled policy", nil, []string{"--tag", "mero-kms-v1.3.0", "--counterpart", "1.2.0", "--store", st, "--catalog", catalogPath, "--policies", misfiled}, 10, []string{"[FAIL]", "file name says"}},
		{"empty policies dir", nil, []string{"--tag", "mero-kms-v1.3.0", "--counterpart", "1.2.0", "--store", st, "--catalog", catalogPath, "--policies", t.TempDir()}, 2, []string{"no attestation-policy-"}},
		{"policies for a node release", nil, []string{"--tag", "mero-tee-v1.2.0", "--counterpart", "1.3.0", "--store", st, "--catalog", catalogPath, "--policies", policiesDir}, 2, []string{"applies to a KMS release"}},
		{"counterpart of the same family", nil, []string{"--tag", "mero-kms-v1.3.0", "--counterpart", "mero-kms-v1.2.0", "--store", st, "--catalog", catalogPath}, 2, []string{"is a mero-tee release"}},
		{"malformed counterpart", nil, []string{"--tag", "mero-kms-v1.3.0", "--counterpart", "v1.2", "--store", st, "--catalog", catalogPath}, 2, []string{"--counterpart"}},
		{"malformed tag", nil, []string{"--tag", "kms-1.3.0", "--counterpart", "1.2.0", "--store", st, "--catalog", catalogPath}, 2, []string{"must start with"}},
		{"store scheme", nil, []string{"--tag", "mero-kms-v1.3.0", "--counterpart", "1.2.0", "--store", storeDir, "--catalog", catalogPath}, 2, []string{"want dir:PATH"}},
		{"store missing", nil, []string{"--tag", "mero-kms-v1.3.0", "--counterpart", "1.2.0", "--store", "dir:/nonexistent/store", "--catalog", catalogPath}, 2, []string{"is not a directory"}},
		{"catalog missing", nil, []string{"--tag", "mero-kms-v1.3.0", "--counterpart", "1.2.0", "--store", st, "--catalog", "/nonexistent/c.json"}, 2, []string{"--catalog /nonexistent/c.json"}},
		{"no tag", nil, []string{"--counterpart", "1.2.0", "--store", st}, 2, []string{"--tag is required"}},
		{"no counterpart", nil, []string{"--tag", "mero-kms-v1.3.0", "--store", st}, 2, []string{"--counterpart is required"}},
		{"no store", nil, []string{"--tag", "mero-kms-v1.3.0", "--counterpart", "1.2.0"}, 2, []string{"--store is required"}},
	}
	for _, c := range cases {
		code, _, stderr := guardCLI(t, c.env, "", append([]string{"guard", "dependency"}, c.args...)...)
		guardExpect(t, c.name, code, stderr, c.code, c.want...)
	}
	code, stdout, _ := guardCLI(t, nil, "", "guard", "dependency", "--tag", "mero-kms-v1.3.0", "--counterpart", "9.9.9", "--store", st, "--catalog", catalogPath, "--json")
	var res struct {
		Counterpart string           `json:"counterpart"`
		Checks      []map[string]any `json:"checks"`
		OK          bool             `json:"ok"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != 10 || res.OK || res.Counterpart != "mero-tee-v9.9.9" || res.Checks[0]["status"] != "FAIL" {
		t.Errorf("--json: %d %v %+v", code, err, res)
	}
}
