package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/audit/audittest"
	"github.com/calimero-network/mero-release/pipeline/catalog"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/store/github/githubtest"
)

// pubCLI runs the CLI with env and returns the exit code, stdout and stderr.
func pubCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr, func(k string) string { return env[k] })
	return code, stdout.String(), stderr.String()
}

// pubAssets writes a complete, key-signed release of tag into a directory and returns it and
// the public key file.
func pubAssets(t *testing.T, tagText string) (dir, pubKey string) {
	t.Helper()
	signer, pubPEM, err := audittest.KeySigner()
	if err != nil {
		t.Fatal(err)
	}
	tag := release.MustParseTag(tagText)
	files, err := audittest.Build(context.Background(), audittest.Options{Tag: tag, Signer: signer, NotReady: tag.Version.IsRC()})
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pubKey = filepath.Join(t.TempDir(), "cosign.pub")
	if err := os.WriteFile(pubKey, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, pubKey
}

func TestPublishCLIDirStore(t *testing.T) {
	assets, _ := pubAssets(t, "mero-kms-v1.2.0")
	storeDir := filepath.Join(t.TempDir(), "releases")
	args := []string{"publish", "--tag", "mero-kms-v1.2.0", "--dir", assets, "--store", "dir:" + storeDir}
	code, stdout, stderr := pubCLI(t, nil, append(args, "--json")...)
	if code != outcome.OK || !strings.Contains(stderr, "[PASS] published mero-kms-v1.2.0 (stable, release, marked latest)") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var out struct {
		Class   string
		Release struct {
			Draft, Latest bool
			Notes         string
			Assets        []struct{ Name string }
		}
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	if out.Class != "stable" || out.Release.Draft || !out.Release.Latest || len(out.Release.Assets) != len(release.ExpectedAssets(release.KMS).All()) || !strings.Contains(out.Release.Notes, "## Changelog") {
		t.Fatalf("json: %+v", out)
	}
	// A rerun is a no-op.
	code, _, stderr = pubCLI(t, nil, args...)
	if code != outcome.OK || !strings.Contains(stderr, "already published with identical assets") {
		t.Fatalf("rerun: exit %d\n%s", code, stderr)
	}
	// A version that goes backwards is refused.
	old, _ := pubAssets(t, "mero-kms-v1.1.0")
	code, _, stderr = pubCLI(t, nil, "publish", "--tag", "mero-kms-v1.1.0", "--dir", old, "--store", "dir:"+storeDir)
	if code != outcome.Usage || !strings.Contains(stderr, "goes backwards") {
		t.Fatalf("backwards: exit %d\n%s", code, stderr)
	}
}

func TestPublishCLIMissingAssetAndUsage(t *testing.T) {
	assets, _ := pubAssets(t, "mero-tee-v1.0.0")
	os.Remove(filepath.Join(assets, release.SBOMFile+release.BundleSuffix))
	storeDir := t.TempDir()
	code, _, stderr := pubCLI(t, nil, "publish", "--tag", "mero-tee-v1.0.0", "--dir", assets, "--store", "dir:"+storeDir)
	if code != outcome.MissingAsset || strings.Count(stderr, "sbom.spdx.json.sigstore.json") != 1 {
		t.Fatalf("exit %d, want 11 with one line naming the bundle\n%s", code, stderr)
	}
	entries, _ := os.ReadDir(storeDir)
	for _, e := range entries {
		if e.IsDir() {
			t.Fatalf("a release directory %s was created", e.Name())
		}
	}
	for _, args := range [][]string{
		{"publish", "--dir", assets, "--store", "dir:" + storeDir},
		{"publish", "--tag", "mero-tee-v1.0", "--dir", assets, "--store", "dir:" + storeDir},
		{"publish", "--tag", "mero-tee-v1.0.0", "--store", "dir:" + storeDir},
		{"publish", "--tag", "mero-tee-v1.0.0", "--dir", assets},
		{"publish", "--tag", "mero-tee-v1.0.0", "--dir", assets, "--store", "s3:bucket"},
		{"publish", "--tag", "mero-tee-v1.0.0", "--dir", assets, "--store", "dir:" + storeDir, "--notes", "/nonexistent"},
		{"publish", "--tag", "mero-tee-v1.0.0", "--dir", assets, "--store", "dir:" + storeDir, "extra"},
	} {
		if code, _, stderr := pubCLI(t, nil, args...); code != outcome.Usage {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, stderr)
		}
	}
}

func TestPublishAndAuditCLIGitHub(t *testing.T) {
	fake := githubtest.New("calimero-network", "mero-tee", "ghs_cli", nil)
	defer fake.Close()
	env := map[string]string{"GITHUB_TOKEN": "ghs_cli", "GITHUB_API_URL": fake.URL}
	assets, pub := pubAssets(t, "mero-kms-v1.3.0-rc.1")
	fake.Inject(githubtest.OpUpload, githubtest.Fault{Status: 503}, githubtest.Fault{Truncate: true})
	notes := filepath.Join(t.TempDir(), "notes.md")
	os.WriteFile(notes, []byte("rc notes"), 0o644)
	code, _, stderr := pubCLI(t, env, "publish", "--tag", "mero-kms-v1.3.0-rc.1", "--dir", assets,
		"--store", "github:calimero-network/mero-tee", "--notes", notes)
	if code != outcome.OK || !strings.Contains(stderr, "[WARN] upload mero-kms-v1.3.0-rc.1/") || !strings.Contains(stderr, "(rc, prerelease)") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	rels := fake.Releases()
	if len(rels) != 1 || rels[0].Draft || !rels[0].Prerelease || rels[0].Body != "rc notes" || len(rels[0].Assets) != len(release.ExpectedAssets(release.KMS).All()) {
		t.Fatalf("fake releases: %+v", rels)
	}
	summary := filepath.Join(t.TempDir(), "summary.md")
	code, stdout, stderr := pubCLI(t, env, "audit", "--tag", "mero-kms-v1.3.0-rc.1", "--store", "github:calimero-network/mero-tee",
		"--key", pub, "--summary", summary, "--json")
	if code != outcome.OK || !strings.Contains(stderr, "[PASS] audit mero-kms-v1.3.0-rc.1: all checks passed") {
		t.Fatalf("audit: exit %d\n%s", code, stderr)
	}
	var rep struct {
		Passed bool
		Class  string
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || !rep.Passed || rep.Class != "rc" {
		t.Fatalf("json report: %v %s", err, stdout)
	}
	md, _ := os.ReadFile(summary)
	if !strings.Contains(string(md), "## Release audit: `mero-kms-v1.3.0-rc.1` — ✅ passed") {
		t.Fatalf("summary:\n%s", md)
	}
}

func TestCatalogPRCLI(t *testing.T) {
	seed := catalog.New()
	seedBytes, _ := seed.Marshal()
	fake := githubtest.New("calimero-network", "mero-tee", "ghs_cli", map[string][]byte{catalog.DefaultFile: seedBytes})
	defer fake.Close()
	next := catalog.New()
	if _, err := next.Add(catalog.Entry{KMS: "1.2.0", NodeImage: "1.2.0", Profiles: release.Profiles(), Tested: true}); err != nil {
		t.Fatal(err)
	}
	b, _ := next.Marshal()
	file := filepath.Join(t.TempDir(), catalog.DefaultFile)
	os.WriteFile(file, b, 0o644)
	env := map[string]string{"GITHUB_TOKEN": "ghs_cli", "GITHUB_API_URL": fake.URL}
	args := []string{"catalog-pr", "--tag", "mero-kms-v1.2.0", "--repo", "calimero-network/mero-tee", "--file", file}
	for i := range 2 {
		code, stdout, stderr := pubCLI(t, env, append(args, "--json")...)
		if code != outcome.OK {
			t.Fatalf("run %d: exit %d\n%s", i, code, stderr)
		}
		var res struct {
			Number    int
			CreatedPR bool `json:"created_pr"`
			Committed bool
		}
		if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.Number != 1 || res.CreatedPR != (i == 0) || res.Committed != (i == 0) {
			t.Fatalf("run %d: %v %s", i, err, stdout)
		}
	}
	if len(fake.Pulls()) != 1 {
		t.Fatalf("pulls: %+v", fake.Pulls())
	}
	for _, tc := range []struct {
		env  map[string]string
		args []string
		code int
	}{
		{env: map[string]string{"GITHUB_API_URL": fake.URL}, args: args, code: outcome.Usage},
		{env: env, args: []string{"catalog-pr", "--tag", "mero-kms-v1.2.0", "--file", file}, code: outcome.Usage},
		{env: env, args: []string{"catalog-pr", "--tag", "mero-kms-v1.2.0", "--repo", "x/y", "--file", "/nonexistent"}, code: outcome.Usage},
		{env: env, args: []string{"catalog-pr", "--repo", "x/y", "--file", file}, code: outcome.Usage},
	} {
		if code, _, stderr := pubCLI(t, tc.env, tc.args...); code != tc.code {
			t.Errorf("%v: exit %d, want %d\n%s", tc.args, code, tc.code, stderr)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"schema_version":"2","entries":[]}`), 0o644)
	if code, _, stderr := pubCLI(t, env, "catalog-pr", "--tag", "mero-kms-v1.2.0", "--repo", "calimero-network/mero-tee", "--file", bad); code != outcome.VerificationFailed {
		t.Errorf("invalid catalog: exit %d\n%s", code, stderr)
	}
}
