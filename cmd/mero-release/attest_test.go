package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/provenance"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/sign/signtest"
)

// dsseFixture writes two files, a provenance bundle over them signed by signer, and returns
// the directory, the files and the bundle path.
func dsseFixture(t *testing.T, signer sign.Signer) (string, []string, string) {
	t.Helper()
	dir, files := sigFiles(t, "sbom.spdx.json", "release-notes.md")
	in := provenance.Input{Tag: release.MustParseTag("mero-kms-v1.2.0")}
	for _, f := range files {
		data, _ := os.ReadFile(f)
		h := sha256.Sum256(data)
		in.Subjects = append(in.Subjects, provenance.Subject{Name: filepath.Base(f), SHA256: hex.EncodeToString(h[:])})
	}
	b, err := provenance.Make(context.Background(), signer, in)
	if err != nil {
		t.Fatal(err)
	}
	bp := filepath.Join(dir, release.ProvenanceFile)
	if err := os.WriteFile(bp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, files, bp
}

// tamperPayload rewrites the DSSE payload of a bundle file into a new file.
func tamperPayload(t *testing.T, bundlePath string) string {
	t.Helper()
	data, _ := os.ReadFile(bundlePath)
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	env := m["dsseEnvelope"].(map[string]any)
	payload, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
	env["payload"] = base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(payload), "mero-kms-v1.2.0", "mero-kms-v9.9.9", 1)))
	out, _ := json.Marshal(m)
	p := bundlePath + ".tampered.intoto.sigstore.json"
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestVerifyDSSEKeyCLI: `verify --bundle X.intoto.sigstore.json FILE...` with --key accepts a
// valid attestation and rejects a tampered payload, a file that is not a subject, a digest
// mismatch and another key (10); a missing file is 11.
func TestVerifyDSSEKeyCLI(t *testing.T) {
	env := map[string]string{"COSIGN_PASSWORD": sigPassword}
	keyDir := t.TempDir()
	for _, p := range []string{"cosign", "other"} {
		if code, _, stderr := sumCLI(t, env, "sign", "keygen", "--out-prefix", filepath.Join(keyDir, p)); code != 0 {
			t.Fatal(stderr)
		}
	}
	pemBytes, _ := os.ReadFile(filepath.Join(keyDir, "cosign.key"))
	priv, err := sign.LoadPrivateKey(pemBytes, []byte(sigPassword))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := sign.NewKeySigner(priv, sign.KeySignerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir, files, bp := dsseFixture(t, ks)
	pub := filepath.Join(keyDir, "cosign.pub")

	code, stdout, stderr := sumCLI(t, nil, "--json", "verify", "--key", pub, "--type", "slsaprovenance1", "--bundle", bp, files[0], files[1])
	sumExpect(t, code, stderr, outcome.OK, "in-toto attestation (https://slsa.dev/provenance/v1) signed by key", "[PASS] "+files[0]+": a subject of the attestation")
	var out struct {
		Verified bool
		Subjects []struct{ Name string }
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || !out.Verified || len(out.Subjects) != 2 {
		t.Fatalf("json %s %v", stdout, err)
	}
	// statement only: no FILE
	code, _, stderr = sumCLI(t, nil, "verify", "--key", pub, "--bundle", bp)
	sumExpect(t, code, stderr, outcome.OK, "[INFO] subject sbom.spdx.json sha256:")

	other := filepath.Join(dir, "other.bin")
	os.WriteFile(other, []byte("not attested"), 0o644)
	changed := filepath.Join(t.TempDir(), "sbom.spdx.json")
	os.WriteFile(changed, []byte("changed"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"tampered payload", []string{"verify", "--key", pub, "--bundle", tamperPayload(t, bp), files[0]}, outcome.VerificationFailed, "signature"},
		{"file not a subject", []string{"verify", "--key", pub, "--bundle", bp, files[0], other}, outcome.VerificationFailed, other + " (sha256 "},
		{"digest mismatch", []string{"verify", "--key", pub, "--bundle", bp, changed}, outcome.VerificationFailed, changed + ": digest mismatch"},
		{"another key", []string{"verify", "--key", filepath.Join(keyDir, "other.pub"), "--bundle", bp, files[0]}, outcome.VerificationFailed, "does not verify with the given public key"},
		{"wrong predicate type", []string{"verify", "--key", pub, "--type", "https://spdx.dev/Document", "--bundle", bp, files[0]}, outcome.VerificationFailed, "predicate type"},
		{"missing file", []string{"verify", "--key", pub, "--bundle", bp, filepath.Join(dir, "absent")}, outcome.MissingAsset, "file not found"},
		{"type without attestation", []string{"verify", "--key", pub, "--type", "slsaprovenance1", files[0]}, outcome.Usage, "--type goes with an attestation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := sumCLI(t, nil, tc.args...)
			sumExpect(t, code, stderr, tc.code, tc.want)
		})
	}
	// verify --all skips the attestation (it is not the bundle of a file named "provenance.intoto")
	if code, _, stderr := sumCLI(t, env, "sign", "--key", filepath.Join(keyDir, "cosign.key"), files[0]); code != 0 {
		t.Fatal(stderr)
	}
	code, _, stderr = sumCLI(t, nil, "verify", "--key", pub, "--all", dir)
	sumExpect(t, code, stderr, outcome.OK, "[PASS] "+files[0])
}

// TestVerifyDSSEKeylessCLI: a keyless attestation from the in-process Sigstore verifies with the
// identity flags; another identity and another issuer are rejected (10).
func TestVerifyDSSEKeylessCLI(t *testing.T) {
	ss, err := signtest.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ss.Close)
	tok, err := ss.GitHubToken(sigRun)
	if err != nil {
		t.Fatal(err)
	}
	trJSON, err := ss.TrustedRootJSON()
	if err != nil {
		t.Fatal(err)
	}
	trusted := filepath.Join(t.TempDir(), "trusted_root.json")
	os.WriteFile(trusted, trJSON, 0o644)
	s, err := sign.NewKeylessSigner(sign.KeylessOptions{FulcioURL: ss.FulcioURL(), RekorURL: ss.RekorURL(), Token: sign.StaticToken(tok)})
	if err != nil {
		t.Fatal(err)
	}
	_, files, bp := dsseFixture(t, s)
	id := []string{"--certificate-identity", sigRun.WorkflowIdentity(), "--certificate-oidc-issuer", signtest.GitHubIssuer, "--trusted-root", trusted}
	code, _, stderr := sumCLI(t, nil, append([]string{"verify", "--bundle", bp, files[0], files[1]}, id...)...)
	sumExpect(t, code, stderr, outcome.OK, "signed by "+sigRun.WorkflowIdentity(), "[PASS] "+files[1]+": a subject")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"other identity", []string{"--certificate-identity", "https://github.com/evil/fork/.github/workflows/release-kms-phala.yaml@refs/tags/mero-kms-v1.2.0", "--certificate-oidc-issuer", signtest.GitHubIssuer, "--trusted-root", trusted}, "does not match expected"},
		{"other issuer", []string{"--certificate-identity", sigRun.WorkflowIdentity(), "--certificate-oidc-issuer", "https://accounts.google.com", "--trusted-root", trusted}, "issuer"},
		{"tampered payload", append([]string{"--bundle", tamperPayload(t, bp)}, id...), "payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"verify", "--bundle", bp, files[0]}, tc.args...)
			code, _, stderr := sumCLI(t, nil, args...)
			sumExpect(t, code, stderr, outcome.VerificationFailed, tc.want)
		})
	}
}
