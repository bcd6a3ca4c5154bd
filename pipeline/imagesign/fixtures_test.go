package imagesign_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/imagesign"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/sign/signtest"
)

// Environment of TestWriteImageFixtures, used by scripts/ci/cosign-interop.sh.
const (
	envImageRegistry = "MERO_IMAGESIGN_REGISTRY"
	envImageDir      = "MERO_IMAGESIGN_FIXTURES_DIR"
)

// TestWriteImageFixtures pushes, when MERO_IMAGESIGN_REGISTRY (host:port of a loopback
// registry that outlives the test) and MERO_IMAGESIGN_FIXTURES_DIR are set, three images and
// signs and attests two of them as release-kms does, for checks with the real cosign CLI:
//
//	key.ref, keyless.ref, unsigned.ref   the images (REGISTRY/calimero/NAME@sha256:…)
//	key/cosign.pub                      the key that signed key.ref (no Rekor entry)
//	trusted_root.json, identity, issuer the in-process Sigstore that signed keyless.ref
//
// Without the variables the test is skipped.
func TestWriteImageFixtures(t *testing.T) {
	host, dir := os.Getenv(envImageRegistry), os.Getenv(envImageDir)
	if host == "" || dir == "" {
		t.Skip(envImageRegistry + " or " + envImageDir + " not set")
	}
	w := newWorld(t)
	ctx := context.Background()
	js, err := w.trusted.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	keySigner, priv := keySigner(t)
	_, pubPEM, err := sign.MarshalKeyPair(priv, []byte("interop"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"trusted_root.json": js,
		"identity":          []byte(run.WorkflowIdentity()),
		"issuer":            []byte(signtest.GitHubIssuer),
		"key/cosign.pub":    pubPEM,
	}
	for _, c := range []struct {
		file   string
		signer imagesign.Signer
	}{{"key.ref", keySigner}, {"keyless.ref", w.keyless(t, run)}, {"unsigned.ref", nil}} {
		d := pushImage(t, host, "calimero/mero-kms-"+c.file[:len(c.file)-len(".ref")])
		if c.signer != nil {
			if _, err := imagesign.Attach(ctx, d, imagesign.Options{Signer: c.signer, Attestations: attestations(t, d)}); err != nil {
				t.Fatalf("%s: %v", c.file, err)
			}
		}
		files[c.file] = []byte(d.String())
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
