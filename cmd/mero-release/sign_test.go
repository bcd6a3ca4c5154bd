package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/sign/signtest"
)

const sigPassword = "s3cret-cosign-password"

var sigRun = signtest.GitHubClaims{
	Repository: "calimero-network/mero-tee",
	Workflow:   ".github/workflows/release-kms-phala.yaml",
	Ref:        "refs/tags/mero-kms-v1.2.0",
}

// sigFiles writes files into a temp dir and returns their paths.
func sigFiles(t *testing.T, names ...string) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte("content of "+n+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return dir, paths
}

// sigNoSecrets fails when an output holds a secret.
func sigNoSecrets(t *testing.T, secrets []string, outputs ...string) {
	t.Helper()
	for _, s := range secrets {
		for _, o := range outputs {
			if strings.Contains(o, s) {
				t.Fatalf("output leaks a secret:\n%s", o)
			}
		}
	}
}

func TestSignKeyPairCLI(t *testing.T) {
	env := map[string]string{"COSIGN_PASSWORD": sigPassword}
	keyDir := t.TempDir()
	prefix := filepath.Join(keyDir, "cosign")
	code, stdout, stderr := sumCLI(t, env, "sign", "keygen", "--out-prefix", prefix)
	sumExpect(t, code, stderr, outcome.OK, "[PASS] wrote private key "+prefix+".key")
	privPEM, _ := os.ReadFile(prefix + ".key")
	sigNoSecrets(t, []string{sigPassword, string(privPEM)}, stdout, stderr)
	if info, err := os.Stat(prefix + ".key"); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", info, err)
	}
	code, _, stderr = sumCLI(t, env, "sign", "keygen", "--out-prefix", prefix)
	sumExpect(t, code, stderr, outcome.Usage, "exists (use --force")

	_, files := sigFiles(t, "sbom.spdx.json", "checksums.sha256")
	code, stdout, stderr = sumCLI(t, env, "--json", "sign", "--key", prefix+".key", files[0], files[1])
	sumExpect(t, code, stderr, outcome.OK, "[PASS] "+files[0]+": signed → "+files[0]+".sigstore.json")
	sigNoSecrets(t, []string{sigPassword}, stdout, stderr)
	var out struct {
		Signed []struct{ File, Bundle string }
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || len(out.Signed) != 2 {
		t.Fatalf("json %q %v", stdout, err)
	}
	for _, f := range files {
		code, _, stderr = sumCLI(t, nil, "verify", "--key", prefix+".pub", f)
		sumExpect(t, code, stderr, outcome.OK, "[PASS] "+f+": signature verified with key")
	}
	// Another key's public half does not verify.
	code, _, stderr = sumCLI(t, env, "sign", "keygen", "--out-prefix", filepath.Join(keyDir, "other"))
	sumExpect(t, code, stderr, outcome.OK)
	code, _, stderr = sumCLI(t, nil, "verify", "--key", filepath.Join(keyDir, "other.pub"), files[0])
	sumExpect(t, code, stderr, outcome.VerificationFailed, "[FAIL] "+files[0]+": signature does not verify with the given public key")
	// A tampered file does not verify.
	if err := os.WriteFile(files[1], []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = sumCLI(t, nil, "--json", "verify", "--key", prefix+".pub", files[1])
	sumExpect(t, code, stderr, outcome.VerificationFailed, "artifact digest does not match the bundle")
	if !strings.Contains(stdout, `"verified": false`) {
		t.Fatalf("json: %s", stdout)
	}
	// Many files in one process: each gets its line, the failure sets the exit code.
	code, _, stderr = sumCLI(t, nil, "verify", "--key", prefix+".pub", files[0], files[1], files[0])
	sumExpect(t, code, stderr, outcome.VerificationFailed, "[PASS] "+files[0]+": signature verified", "[FAIL] "+files[1]+": artifact digest does not match", "2 of 3 files verified")
	dir := filepath.Dir(files[0])
	code, stdout, stderr = sumCLI(t, nil, "--json", "verify", "--key", prefix+".pub", "--all", dir, "--workers", "2")
	sumExpect(t, code, stderr, outcome.VerificationFailed, "[PASS] "+files[0]+": signature verified", "[FAIL] "+files[1]+":", "1 of 2 files verified")
	var bulk struct {
		Results []struct {
			File     string
			Verified bool
		}
		Verified, Failed int
	}
	if err := json.Unmarshal([]byte(stdout), &bulk); err != nil || len(bulk.Results) != 2 || bulk.Verified != 1 || bulk.Failed != 1 {
		t.Fatalf("json %s (%v)", stdout, err)
	}
	// A bundle whose file is gone is a missing asset (exit 11), which beats a mismatch.
	if err := os.WriteFile(filepath.Join(dir, "gone.bin.sigstore.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = sumCLI(t, nil, "verify", "--key", prefix+".pub", "--all", dir)
	sumExpect(t, code, stderr, outcome.MissingAsset, "[FAIL] "+filepath.Join(dir, "gone.bin")+": file not found", "[PASS] "+files[0])
	code, _, stderr = sumCLI(t, nil, "verify", "--key", prefix+".pub", "--all", t.TempDir())
	sumExpect(t, code, stderr, outcome.MissingAsset, "no bundle")
	// The bundle of one file does not verify another.
	code, _, stderr = sumCLI(t, nil, "verify", "--key", prefix+".pub", "--bundle", files[0]+".sigstore.json", files[1])
	sumExpect(t, code, stderr, outcome.VerificationFailed, "artifact digest does not match the bundle")
	// Wrong password: usage error, password not echoed.
	code, stdout, stderr = sumCLI(t, map[string]string{"COSIGN_PASSWORD": "not-it"}, "sign", "--key", prefix+".key", files[0])
	sumExpect(t, code, stderr, outcome.Usage, "wrong password", "$COSIGN_PASSWORD")
	sigNoSecrets(t, []string{"not-it"}, stdout, stderr)
	// --out-dir.
	outDir := filepath.Join(t.TempDir(), "bundles")
	code, _, stderr = sumCLI(t, env, "sign", "--key", prefix+".key", "--out-dir", outDir, files[0])
	sumExpect(t, code, stderr, outcome.OK)
	if _, err := os.Stat(filepath.Join(outDir, "sbom.spdx.json.sigstore.json")); err != nil {
		t.Fatal(err)
	}
}

func TestSignKeylessCLI(t *testing.T) {
	ss, err := signtest.New()
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	tok, err := ss.GitHubToken(sigRun)
	if err != nil {
		t.Fatal(err)
	}
	trJSON, err := ss.TrustedRootJSON()
	if err != nil {
		t.Fatal(err)
	}
	trusted := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(trusted, trJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SIGSTORE_ID_TOKEN": tok}
	_, files := sigFiles(t, "attestation-policy-debug.json", "published-mrtds.json")
	code, stdout, stderr := sumCLI(t, env, "sign", "--keyless", "--fulcio-url", ss.FulcioURL(), "--rekor-url", ss.RekorURL(),
		"--tsa-url", ss.TSAURL(), "--oidc-token-env", "SIGSTORE_ID_TOKEN", "--trusted-root", trusted, files[0], files[1])
	sumExpect(t, code, stderr, outcome.OK, "[PASS] "+files[0]+": signed", "[PASS] "+files[1]+": signed")
	sigNoSecrets(t, []string{tok}, stdout, stderr)
	if ss.Entries() != 2 {
		t.Fatalf("rekor entries %d", ss.Entries())
	}
	idFlags := []string{"--certificate-identity", sigRun.WorkflowIdentity(), "--certificate-oidc-issuer", signtest.GitHubIssuer, "--trusted-root", trusted}
	code, stdout, stderr = sumCLI(t, nil, append([]string{"--json", "verify", files[0]}, idFlags...)...)
	sumExpect(t, code, stderr, outcome.OK, "[PASS] "+files[0]+": signed by "+sigRun.WorkflowIdentity()+" (issuer "+signtest.GitHubIssuer+"), 1 Rekor entry verified")
	var res struct {
		Verified bool
		Result   struct{ Repository, Ref string }
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || !res.Verified || res.Result.Ref != sigRun.Ref {
		t.Fatalf("json %s (%v)", stdout, err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"regexp identity and repository", []string{"verify", files[1], "--certificate-identity-regexp", `^https://github\.com/calimero-network/mero-tee/`, "--certificate-oidc-issuer-regexp", `githubusercontent`,
			"--certificate-repository", "https://github.com/calimero-network/mero-tee", "--certificate-ref-regexp", `^refs/tags/mero-kms-v`, "--trusted-root", trusted}, outcome.OK, "[PASS]"},
		{"wrong identity", []string{"verify", files[0], "--certificate-identity", "https://github.com/evil/x/.github/workflows/a.yaml@refs/heads/main", "--certificate-oidc-issuer", signtest.GitHubIssuer, "--trusted-root", trusted},
			outcome.VerificationFailed, `certificate identity "` + sigRun.WorkflowIdentity() + `" does not match expected "https://github.com/evil/`},
		{"wrong issuer", []string{"verify", files[0], "--certificate-identity", sigRun.WorkflowIdentity(), "--certificate-oidc-issuer", "https://accounts.google.com", "--trusted-root", trusted},
			outcome.VerificationFailed, "does not match expected OIDC issuer"},
		{"wrong ref", []string{"verify", files[0], "--certificate-identity", sigRun.WorkflowIdentity(), "--certificate-oidc-issuer", signtest.GitHubIssuer, "--certificate-ref", "refs/tags/mero-kms-v9.9.9", "--trusted-root", trusted},
			outcome.VerificationFailed, "source repository ref"},
		{"bundle of another file", []string{"verify", files[0], "--bundle", files[1] + ".sigstore.json", "--certificate-identity", sigRun.WorkflowIdentity(), "--certificate-oidc-issuer", signtest.GitHubIssuer, "--trusted-root", trusted},
			outcome.VerificationFailed, "artifact digest does not match the bundle"},
		{"key for a keyless bundle", []string{"verify", files[0], "--key", files[0]}, outcome.Usage, "public key"},
		{"missing bundle", []string{"verify", files[0] + ".nope", "--certificate-identity", "x", "--certificate-oidc-issuer", "y", "--trusted-root", trusted}, outcome.MissingAsset, "bundle " + files[0] + ".nope.sigstore.json not found"},
		{"missing file", []string{"verify", files[0] + ".nope", "--bundle", files[0] + ".sigstore.json", "--certificate-identity", "x", "--certificate-oidc-issuer", "y", "--trusted-root", trusted}, outcome.MissingAsset, "file not found"},
		{"no policy", []string{"verify", files[0]}, outcome.Usage, "give --key, or --certificate-identity"},
		{"both policies", []string{"verify", files[0], "--key", "k", "--certificate-identity", "x"}, outcome.Usage, "not both"},
		{"issuer missing", []string{"verify", files[0], "--certificate-identity", "x", "--trusted-root", trusted}, outcome.Usage, "exactly one of the certificate OIDC issuer"},
		{"bad trusted root", []string{"verify", files[0], "--certificate-identity", "x", "--certificate-oidc-issuer", "y", "--trusted-root", files[0]}, outcome.Usage, "trusted root"},
		{"--bundle with two files", []string{"verify", files[0], files[1], "--bundle", "b", "--key", "k"}, outcome.Usage, "--bundle goes with exactly one FILE"},
		{"no file", []string{"verify", "--key", "k"}, outcome.Usage, "give FILE... or --all DIR"},
		{"files and --all", []string{"verify", files[0], "--all", t.TempDir(), "--key", "k"}, outcome.Usage, "not both"},
		{"sign without mode", []string{"sign", files[0]}, outcome.Usage, "exactly one of --key and --keyless"},
		{"sign both modes", []string{"sign", "--keyless", "--key", "k", files[0]}, outcome.Usage, "exactly one of --key and --keyless"},
		{"sign no files", []string{"sign", "--keyless"}, outcome.Usage, "no FILE given"},
		{"keyless without token", []string{"sign", "--keyless", files[0]}, outcome.Usage, "needs an OIDC token"},
		{"keyless empty token env", []string{"sign", "--keyless", "--oidc-token-env", "NOPE", files[0]}, outcome.Usage, "NOPE: the variable is empty"},
		{"key flags mixed", []string{"sign", "--key", "k", "--fulcio-url", "https://x", files[0]}, outcome.Usage, "are for --keyless"},
		{"key missing", []string{"sign", "--key", filepath.Join(t.TempDir(), "none.key"), files[0]}, outcome.Usage, "not found"},
		{"keygen without prefix", []string{"sign", "keygen"}, outcome.Usage, "--out-prefix is required"},
		{"keygen without password", []string{"sign", "keygen", "--out-prefix", filepath.Join(t.TempDir(), "k")}, outcome.Usage, "set $COSIGN_PASSWORD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := sumCLI(t, nil, tt.args...)
			sumExpect(t, code, stderr, tt.code, tt.want)
		})
	}
	// Signing a missing file: [FAIL] and exit 11.
	code, _, stderr = sumCLI(t, env, "sign", "--keyless", "--fulcio-url", ss.FulcioURL(), "--rekor-url", ss.RekorURL(), "--oidc-token-env", "SIGSTORE_ID_TOKEN", files[0]+".missing")
	sumExpect(t, code, stderr, outcome.MissingAsset, "[FAIL] "+files[0]+".missing")
}

// TestSignKeylessGitHubActionsCLI takes the token from the GitHub Actions OIDC endpoint.
func TestSignKeylessGitHubActionsCLI(t *testing.T) {
	ss, err := signtest.New()
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	tok, err := ss.GitHubToken(sigRun)
	if err != nil {
		t.Fatal(err)
	}
	actions := newActionsOIDC(t, tok)
	_, files := sigFiles(t, "release-notes.md")
	env := map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": actions + "/token?api-version=2.0", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-secret"}
	code, stdout, stderr := sumCLI(t, env, "sign", "--keyless", "--fulcio-url", ss.FulcioURL(), "--rekor-url", ss.RekorURL(), files[0])
	sumExpect(t, code, stderr, outcome.OK, "[PASS] "+files[0]+": signed")
	sigNoSecrets(t, []string{tok, "request-secret"}, stdout, stderr)
}

// newActionsOIDC serves GitHub Actions' token endpoint on 127.0.0.1, answering tok to the
// request token "request-secret" for audience sigstore.
func newActionsOIDC(t *testing.T, tok string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer request-secret" || r.URL.Query().Get("audience") != "sigstore" {
			http.Error(w, "denied", http.StatusForbidden)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"value": tok})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
