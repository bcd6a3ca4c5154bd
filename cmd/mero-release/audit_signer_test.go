package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/audit"
	"github.com/calimero-network/mero-release/pipeline/audit/audittest"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/sign/signtest"
	"github.com/calimero-network/mero-release/pipeline/store/dir"
)

// TestAuditCLINeedsASigner: without --key, --certificate-identity, --repository or a key the
// repository pins, the audit is a usage error saying what to pass — even when the store is a
// release call's state holding its own cosign.pub. The pinned key is used when present.
func TestAuditCLINeedsASigner(t *testing.T) {
	signer, pubPEM, err := audittest.KeySigner()
	if err != nil {
		t.Fatal(err)
	}
	tag := release.MustParseTag("mero-tee-v1.4.0")
	spec := auditStore(t, audittest.Options{Tag: tag, Signer: signer}, nil)
	// A state-like store carrying its own key is still not trusted by default.
	os.MkdirAll(filepath.Join(strings.TrimPrefix(spec, "dir:"), "work", "keys"), 0o755)
	os.WriteFile(filepath.Join(strings.TrimPrefix(spec, "dir:"), "work", "keys", "cosign.pub"), pubPEM, 0o644)

	emptyRepo := t.TempDir()
	code, _, stderr := pubCLI(t, nil, "audit", "--tag", tag.String(), "--store", spec, "--repo-dir", emptyRepo)
	if code != outcome.Usage || !strings.Contains(stderr, "--key cosign.pub") || !strings.Contains(stderr, "--certificate-identity") || !strings.Contains(stderr, audit.PinnedKeyFile) {
		t.Fatalf("no signer: exit %d\n%s", code, stderr)
	}

	pinnedRepo := t.TempDir()
	os.MkdirAll(filepath.Join(pinnedRepo, ".github"), 0o755)
	os.WriteFile(filepath.Join(pinnedRepo, filepath.FromSlash(audit.PinnedKeyFile)), pubPEM, 0o644)
	code, _, stderr = pubCLI(t, nil, "audit", "--tag", tag.String(), "--store", spec, "--repo-dir", pinnedRepo)
	if code != outcome.OK || !strings.Contains(stderr, "the key the repository pins") {
		t.Fatalf("pinned key: exit %d\n%s", code, stderr)
	}
	// A pinned key of someone else: every signature fails.
	_, otherPEM, _ := audittest.KeySigner()
	os.WriteFile(filepath.Join(pinnedRepo, filepath.FromSlash(audit.PinnedKeyFile)), otherPEM, 0o644)
	if code, _, stderr = pubCLI(t, nil, "audit", "--tag", tag.String(), "--store", spec, "--repo-dir", pinnedRepo); code != outcome.VerificationFailed {
		t.Fatalf("other pinned key: exit %d\n%s", code, stderr)
	}
}

// TestAuditCLICertificateIdentity: one --certificate-identity names the keyless signer.
func TestAuditCLICertificateIdentity(t *testing.T) {
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
	tag := release.MustParseTag("mero-tee-v1.2.0")
	claims := signtest.GitHubClaims{Repository: "calimero-network/mero-tee", Workflow: ".github/workflows/release-node-image-gcp.yaml", Ref: "refs/tags/" + tag.String()}
	tok, err := ss.GitHubToken(claims)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sign.NewKeylessSigner(sign.KeylessOptions{FulcioURL: ss.FulcioURL(), RekorURL: ss.RekorURL(), Token: sign.StaticToken(tok), TrustedRoot: tr})
	if err != nil {
		t.Fatal(err)
	}
	spec := auditStore(t, audittest.Options{Tag: tag, Signer: s}, nil)
	id := claims.WorkflowIdentity()
	if code, _, stderr := pubCLI(t, nil, "audit", "--tag", tag.String(), "--store", spec, "--trusted-root", trFile, "--certificate-identity", id); code != outcome.OK {
		t.Fatalf("identity %s: exit %d\n%s", id, code, stderr)
	}
	other := strings.Replace(id, tag.String(), "mero-tee-v1.1.0", 1)
	if code, _, stderr := pubCLI(t, nil, "audit", "--tag", tag.String(), "--store", spec, "--trusted-root", trFile, "--certificate-identity", other); code != outcome.VerificationFailed {
		t.Fatalf("identity %s: exit %d\n%s", other, code, stderr)
	}
	for _, args := range [][]string{
		{"--certificate-identity", "calimero-network/mero-tee"},
		{"--certificate-identity", id, "--repository", "a/b"},
		{"--certificate-identity", id, "--key", trFile},
	} {
		all := append([]string{"audit", "--tag", tag.String(), "--store", spec, "--trusted-root", trFile}, args...)
		if code, _, stderr := pubCLI(t, nil, all...); code != outcome.Usage {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, stderr)
		}
	}
}

// TestAuditCLIHoles: a replay under another tag is 10, a missing checksum file or bundle 11 —
// through the CLI as operators and scripts run it.
func TestAuditCLIHoles(t *testing.T) {
	signer, pubPEM, err := audittest.KeySigner()
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(t.TempDir(), "cosign.pub")
	os.WriteFile(pub, pubPEM, 0o644)
	tag := release.MustParseTag("mero-tee-v1.2.0")
	files, err := audittest.Build(context.Background(), audittest.Options{Tag: tag, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	st, err := dir.New(root)
	if err != nil {
		t.Fatal(err)
	}
	replayed := release.MustParseTag("mero-tee-v1.3.0")
	if err := audittest.Publish(context.Background(), st, replayed, files); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := pubCLI(t, nil, "audit", "--tag", replayed.String(), "--store", "dir:"+root, "--key", pub)
	if code != outcome.VerificationFailed || !strings.Contains(stderr, `[FAIL] tag-binding published-mrtds.json: version: "1.2.0", but the release is mero-tee-v1.3.0`) {
		t.Fatalf("replay: exit %d\n%s", code, stderr)
	}
	for _, missing := range []string{release.ChecksumsFile, release.BundleName(release.NotesFile)} {
		spec := auditStore(t, audittest.Options{Tag: tag, Signer: signer}, nil, missing)
		code, _, stderr := pubCLI(t, nil, "audit", "--tag", tag.String(), "--store", spec, "--key", pub)
		if code != outcome.MissingAsset || !strings.Contains(stderr, "[FAIL] asset-completeness "+missing+": required asset is missing") {
			t.Fatalf("missing %s: exit %d\n%s", missing, code, stderr)
		}
	}
}
