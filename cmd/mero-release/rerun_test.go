package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/audit/audittest"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/store/dir"
)

// treeDigest hashes every file's path and content under root.
func treeDigest(t *testing.T, root string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		h.Write([]byte(rel + "\x00"))
		h.Write(b)
		h.Write([]byte{0})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// A re-run of a published release only re-audits it: the signing key is never decrypted (a
// wrong $COSIGN_PASSWORD does not matter while its .pub is beside it), no KMS binary is built
// (the --repo has no sources) and the store is byte-identical afterwards.
func TestReleaseKMSRerunDoesNothingElse(t *testing.T) {
	root := t.TempDir()
	work := filepath.Join(root, "work")
	keys := filepath.Join(work, "keys")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	privPEM, pubPEM, err := sign.GenerateKeyPair([]byte("right"))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := sign.LoadPrivateKey(privPEM, []byte("right"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := sign.NewKeySigner(priv, sign.KeySignerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"cosign.key": privPEM, "cosign.pub": pubPEM} {
		if err := os.WriteFile(filepath.Join(keys, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tag := release.MustParseTag("mero-kms-v1.3.0-rc.1")
	ctx := context.Background()
	files, err := audittest.Build(ctx, audittest.Options{Tag: tag, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	releases := filepath.Join(root, "releases")
	st, err := dir.New(releases)
	if err != nil {
		t.Fatal(err)
	}
	if err := audittest.Publish(ctx, st, tag, files); err != nil {
		t.Fatal(err)
	}
	before := treeDigest(t, releases)
	args := []string{"release-kms", "--tag", tag.String(), "--version", "1.3.0-rc.1", "--store", "dir:" + releases,
		"--work", work, "--repo", t.TempDir(), "--catalog", filepath.Join("..", "..", "compatibility-catalog.json")}
	env := map[string]string{"COSIGN_PASSWORD": "wrong", "SOURCE_DATE_EPOCH": "1764547200"}
	code, _, stderr := catalogCLI(t, env, args...)
	catalogExpect(t, code, stderr, 0, "[PASS] audit "+tag.String()+": all checks passed", "published: true")
	if strings.Contains(stderr, "building ./examples/kms") {
		t.Errorf("the re-run built the KMS binary:\n%s", stderr)
	}
	if after := treeDigest(t, releases); after != before {
		t.Error("the re-run changed the store")
	}
	// Without the .pub the key must be decrypted to know the public key: the wrong password
	// then fails, which shows the run above never decrypted it.
	if err := os.Remove(filepath.Join(keys, "cosign.pub")); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = catalogCLI(t, env, args...)
	if code == 0 || !strings.Contains(stderr, "COSIGN_PASSWORD") {
		t.Errorf("without cosign.pub and with a wrong password: exit %d\n%s", code, stderr)
	}
}
