package sign_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/provenance"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/sign/signtest"
)

// Environment of TestWriteFixtures, used by scripts/ci/cosign-interop.sh and bench/sign/run.sh.
const (
	envFixturesDir   = "MERO_SIGN_FIXTURES_DIR"
	envFixturesCount = "MERO_SIGN_FIXTURES_COUNT"
)

// TestWriteFixtures writes, when MERO_SIGN_FIXTURES_DIR is set, bundles made with the
// in-process Sigstore for checks with the real cosign CLI:
//
//	trusted_root.json            the instance's Fulcio CA, Rekor log, CT log and TSA
//	identity, issuer             the expected certificate identity and OIDC issuer
//	keyless/artifact-NNN.json    MERO_SIGN_FIXTURES_COUNT (default 1) artifacts with
//	keyless/artifact-NNN.json.sigstore.json   their keyless bundles (Fulcio cert with SCT, Rekor entry)
//	key/artifact.json(.sigstore.json), key/cosign.key, key/cosign.pub
//	                             a cosign-format key pair (password "interop") and a bundle
//	                             signed with it and recorded in the Rekor log
//	keyless/provenance.intoto.sigstore.json, key/provenance.intoto.sigstore.json
//	                             SLSA provenance (DSSE) over the artifacts, keyless and with
//	                             the key (recorded in the Rekor log)
//
// Without the variable the test is skipped.
func TestWriteFixtures(t *testing.T) {
	dir := os.Getenv(envFixturesDir)
	if dir == "" {
		t.Skip(envFixturesDir + " not set")
	}
	count := 1
	if s := os.Getenv(envFixturesCount); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q is not a positive number", envFixturesCount, s)
		}
		count = n
	}
	in := newInstance(t)
	ctx := context.Background()
	js, err := in.trusted.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"trusted_root.json": js,
		"identity":          []byte(kmsRun.WorkflowIdentity()),
		"issuer":            []byte(signtest.GitHubIssuer),
	}
	signer := in.keylessSigner(t, kmsRun, false)
	verifier := sign.NewVerifier(in.trusted)
	for i := range count {
		name := fmt.Sprintf("keyless/artifact-%03d.json", i)
		content := fmt.Appendf(nil, `{"artifact":%d,"profile":"locked-read-only"}`+"\n", i)
		b, err := signer.Sign(ctx, content)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := verifier.Verify(ctx, b, bytes.NewReader(content), sign.Policy{Identity: releaseIdentity()}); err != nil {
			t.Fatal(err)
		}
		files[name], files[name+release.BundleSuffix] = content, b
	}
	tag := release.MustParseTag("mero-kms-v1.2.0")
	var subjects []provenance.Subject
	for i := range count {
		name := fmt.Sprintf("keyless/artifact-%03d.json", i)
		h := sha256.Sum256(files[name])
		subjects = append(subjects, provenance.Subject{Name: path.Base(name), SHA256: hex.EncodeToString(h[:])})
	}
	if files["keyless/"+release.ProvenanceFile], err = provenance.Make(ctx, signer, provenance.Input{Tag: tag, Subjects: subjects}); err != nil {
		t.Fatal(err)
	}
	privPEM, pubPEM, err := sign.GenerateKeyPair([]byte("interop"))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := sign.LoadPrivateKey(privPEM, []byte("interop"))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := sign.NewKeySigner(priv, sign.KeySignerOptions{RekorURL: in.ss.RekorURL()})
	if err != nil {
		t.Fatal(err)
	}
	content := []byte(`{"published":"mrtds"}` + "\n")
	kb, err := ks.Sign(ctx, content)
	if err != nil {
		t.Fatal(err)
	}
	files["key/artifact.json"], files["key/artifact.json"+release.BundleSuffix] = content, kb
	h := sha256.Sum256(content)
	if files["key/"+release.ProvenanceFile], err = provenance.Make(ctx, ks, provenance.Input{Tag: tag,
		Subjects: []provenance.Subject{{Name: "artifact.json", SHA256: hex.EncodeToString(h[:])}}}); err != nil {
		t.Fatal(err)
	}
	files["key/cosign.key"], files["key/cosign.pub"] = privPEM, pubPEM
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %d files to %s", len(files), dir)
}

// BenchmarkVerifyBundles verifies 200 keyless bundles (certificate chain, SCT, Rekor SET
// and inclusion proof, identity) per iteration with one Verifier; see bench/sign for the
// comparison with 200 `cosign verify-blob` processes.
func BenchmarkVerifyBundles(b *testing.B) {
	const n = 200
	ss, err := signtest.New()
	if err != nil {
		b.Fatal(err)
	}
	defer ss.Close()
	tr, err := ss.TrustedRoot()
	if err != nil {
		b.Fatal(err)
	}
	tok, err := ss.GitHubToken(kmsRun)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := sign.NewKeylessSigner(sign.KeylessOptions{FulcioURL: ss.FulcioURL(), RekorURL: ss.RekorURL(), Token: sign.StaticToken(tok)})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	artifacts, bundles := make([][]byte, n), make([][]byte, n)
	for i := range n {
		artifacts[i] = fmt.Appendf(nil, `{"artifact":%d}`, i)
		if bundles[i], err = signer.Sign(ctx, artifacts[i]); err != nil {
			b.Fatal(err)
		}
	}
	v := sign.NewVerifier(tr)
	policy := sign.Policy{Identity: releaseIdentity()}
	b.ReportAllocs()
	for b.Loop() {
		for i := range n {
			if _, err := v.Verify(ctx, bundles[i], bytes.NewReader(artifacts[i]), policy); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/bundle")
}
