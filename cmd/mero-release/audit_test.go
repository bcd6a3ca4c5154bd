package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/audit/audittest"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/sign/signtest"
	"github.com/calimero-network/mero-release/pipeline/store/dir"
)

// auditStore publishes a release built with o (minus skip, after tamper) into a new directory
// store and returns the store's spec.
func auditStore(t *testing.T, o audittest.Options, tamper func(map[string][]byte), skip ...string) string {
	t.Helper()
	root := t.TempDir()
	st, err := dir.New(root)
	if err != nil {
		t.Fatal(err)
	}
	files, err := audittest.Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if tamper != nil {
		tamper(files)
	}
	if err := audittest.Publish(context.Background(), st, o.Tag, files, skip...); err != nil {
		t.Fatal(err)
	}
	return "dir:" + root
}

func TestAuditCLIKey(t *testing.T) {
	signer, pubPEM, err := audittest.KeySigner()
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(t.TempDir(), "cosign.pub")
	os.WriteFile(pub, pubPEM, 0o644)
	tag := release.MustParseTag("mero-tee-v1.4.0")
	o := audittest.Options{Tag: tag, Signer: signer}

	good := auditStore(t, o, nil)
	summary := filepath.Join(t.TempDir(), "step-summary.md")
	os.WriteFile(summary, []byte("# earlier step\n"), 0o644)
	env := map[string]string{"GITHUB_STEP_SUMMARY": summary}
	code, stdout, stderr := pubCLI(t, env, "audit", "--tag", tag.String(), "--store", good, "--key", pub)
	if code != outcome.OK || stdout != "" || strings.Contains(stderr, "[FAIL]") || strings.Count(stderr, "[PASS]") != auditPasses(tag) {
		t.Fatalf("good: exit %d, stdout %q\n%s", code, stdout, stderr)
	}
	md, _ := os.ReadFile(summary)
	if !strings.HasPrefix(string(md), "# earlier step\n## Release audit: `mero-tee-v1.4.0` — ✅ passed") {
		t.Fatalf("summary was not appended:\n%s", md)
	}

	missing := auditStore(t, o, nil, release.PublishedMRTDsFile)
	code, stdout, stderr = pubCLI(t, nil, "audit", "--tag", tag.String(), "--store", missing, "--key", pub, "--json")
	if code != outcome.MissingAsset || !strings.Contains(stderr, "[FAIL] asset-completeness published-mrtds.json: required asset is missing") || strings.Contains(stderr, "[ERROR]") {
		t.Fatalf("missing: exit %d\n%s", code, stderr)
	}
	var rep struct {
		ExitCode int `json:"exit_code"`
		Findings []struct{ Status string }
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || rep.ExitCode != 11 {
		t.Fatalf("json: %v\n%s", err, stdout)
	}

	flipped := auditStore(t, o, func(files map[string][]byte) { files[release.NodeImageManifest][5] ^= 1 })
	code, _, stderr = pubCLI(t, nil, "audit", "--tag", tag.String(), "--store", flipped, "--key", pub)
	if code != outcome.VerificationFailed || !strings.Contains(stderr, "[FAIL] checksums node-image-manifest.json: SHA-256 mismatch") ||
		!strings.Contains(stderr, "[FAIL] signatures node-image-manifest.json: node-image-manifest.json.sigstore.json: artifact digest does not match") {
		t.Fatalf("flipped: exit %d\n%s", code, stderr)
	}
}

func TestAuditCLIKeyless(t *testing.T) {
	ss, err := signtest.New()
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	trJSON, err := ss.TrustedRootJSON()
	if err != nil {
		t.Fatal(err)
	}
	trFile := filepath.Join(t.TempDir(), "trusted_root.json")
	os.WriteFile(trFile, trJSON, 0o644)
	tr, err := sign.ParseTrustedRoot(trJSON)
	if err != nil {
		t.Fatal(err)
	}
	tag := release.MustParseTag("mero-kms-v1.2.0")
	claims := signtest.GitHubClaims{Repository: "calimero-network/mero-tee", Workflow: ".github/workflows/release-kms-phala.yaml", Ref: "refs/tags/" + tag.String()}
	tok, err := ss.GitHubToken(claims)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := sign.NewKeylessSigner(sign.KeylessOptions{FulcioURL: ss.FulcioURL(), RekorURL: ss.RekorURL(), Token: sign.StaticToken(tok), TrustedRoot: tr})
	if err != nil {
		t.Fatal(err)
	}
	spec := auditStore(t, audittest.Options{Tag: tag, Signer: signer}, nil)
	env := map[string]string{"GITHUB_REPOSITORY": "calimero-network/mero-tee"}

	code, _, stderr := pubCLI(t, env, "audit", "--tag", tag.String(), "--store", spec, "--trusted-root", trFile)
	if code != outcome.OK || !strings.Contains(stderr, "signed by "+claims.WorkflowIdentity()) {
		t.Fatalf("keyless: exit %d\n%s", code, stderr)
	}
	code, _, stderr = pubCLI(t, nil, "audit", "--tag", tag.String(), "--store", spec, "--trusted-root", trFile,
		"--repository", "calimero-network/mero-tee", "--workflow", "release-node-image-gcp.yaml")
	if code != outcome.VerificationFailed || strings.Count(stderr, "[FAIL] signatures") != len(release.ExpectedAssets(tag.Family).Signed()) {
		t.Fatalf("wrong workflow: exit %d\n%s", code, stderr)
	}

	for _, args := range [][]string{
		{"audit", "--store", spec, "--trusted-root", trFile, "--repository", "a/b"},
		{"audit", "--tag", tag.String(), "--store", spec, "--trusted-root", trFile},
		{"audit", "--tag", tag.String(), "--store", spec, "--key", trFile},
		{"audit", "--tag", tag.String(), "--store", spec, "--key", "/nonexistent.pub"},
		{"audit", "--tag", tag.String(), "--store", spec, "--key", trFile, "--repository", "a/b"},
		{"audit", "--tag", tag.String(), "--store", spec, "--trusted-root", "/nonexistent.json", "--repository", "a/b"},
		{"audit", "--tag", tag.String(), "--trusted-root", trFile, "--repository", "a/b"},
		{"audit", "--tag", tag.String(), "--store", spec, "--trusted-root", trFile, "--repository", "a/b", "--ref-pattern", "("},
	} {
		if code, _, stderr := pubCLI(t, nil, args...); code != outcome.Usage {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, stderr)
		}
	}
}

// auditPasses is the number of [PASS] lines of a good node release's audit: each signed file and
// its bundle present, each signature, each content file's checksum, the five assets that name
// the release (manifest, measurements, SBOM, vulnerabilities, notes), and the verdict.
func auditPasses(tag release.Tag) int {
	n := len(release.ExpectedAssets(tag.Family).Signed())
	// assets: every signed file and its bundle, plus the provenance; signatures: one per signed
	// file; checksums: the content and the provenance; binding; provenance; the verdict line
	return (2*n + 1) + n + n + 5 + 1 + 1
}
