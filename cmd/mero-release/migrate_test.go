package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/examples/kms"
	"github.com/calimero-network/mero-release/examples/kms/local/e2etest"
	"github.com/calimero-network/mero-release/examples/kms/server"
	"github.com/calimero-network/mero-release/pipeline/audit/audittest"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/migrate"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sbom"
)

// migrateWorld is a directory store with node release 1.3.0 and a key-signed KMS release 1.3.0
// whose policies accept it, a catalog listing the pair, and the public key.
type migrateWorld struct {
	*e2etest.World
	catalog, pub, store string
}

func newMigrateWorld(t *testing.T, skip ...string) *migrateWorld {
	t.Helper()
	w := &migrateWorld{World: e2etest.New(t)}
	node := w.AddNode(t, "1.3.0", nil)
	signer, pubPEM, err := audittest.KeySigner()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for p, pol := range e2etest.Policies(t, "1.3.0", node) {
		if files[p.PolicyFile()], err = pol.Marshal(); err != nil {
			t.Fatal(err)
		}
	}
	pub := &measure.Published{SchemaVersion: measure.PublishedSchemaVersion, Family: release.KMS, Version: "1.3.0", Profiles: map[release.Profile]measure.Record{}}
	for _, p := range release.Profiles() {
		pub.Profiles[p] = w.KMSRecord(t)
	}
	if files[release.PublishedMRTDsFile], err = pub.Marshal(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tag := release.MustParseTag("mero-kms-v1.3.0")
	if files, err = audittest.Seal(ctx, audittest.Options{Tag: tag, Signer: signer}, files); err != nil {
		t.Fatal(err)
	}
	if err := audittest.Publish(ctx, w.Store, tag, files, skip...); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w.catalog, w.pub, w.store = filepath.Join(dir, "compatibility-catalog.json"), filepath.Join(dir, "cosign.pub"), "dir:"+w.StoreDir
	if err := e2etest.Catalog(t, [2]string{"1.3.0", "1.3.0"}).WriteFile(w.catalog); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.pub, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// migrateRun runs the CLI with env as its whole environment.
func migrateRun(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr, func(k string) string { return env[k] })
	return code, stdout.String(), stderr.String()
}

// parseExports reads `export NAME='value'` lines (values without embedded quotes).
func parseExports(t *testing.T, out string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, value, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok || !strings.HasPrefix(line, "export ") || len(value) < 2 || value[0] != '\'' || value[len(value)-1] != '\'' {
			t.Fatalf("not an export line: %q", line)
		}
		env[name] = value[1 : len(value)-1]
	}
	return env
}

func TestMigratePolicyCLI(t *testing.T) {
	w := newMigrateWorld(t)
	policyOut := filepath.Join(t.TempDir(), "policy.json")
	code, stdout, stderr := migrateRun(t, map[string]string{"MERO_KMS_PROFILE": "locked-read-only", "COMPATIBILITY_CATALOG_PATH": w.catalog},
		"migrate-policy", "--kms-version", "1.3.0", "--node-version", "1.3.0", "--store", w.store, "--key", w.pub, "-o", policyOut)
	if code != outcome.OK || strings.Contains(stderr, "[FAIL]") || strings.Contains(stderr, "[ERROR]") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	env := parseExports(t, stdout)
	asset := filepath.Join(w.StoreDir, "mero-kms-v1.3.0", "assets", "attestation-policy-locked-read-only.json")
	data, err := os.ReadFile(asset)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	want := map[string]string{"MERO_KMS_VERSION": "1.3.0", "MERO_KMS_PROFILE": "locked-read-only", "MERO_KMS_POLICY_URL": "file://" + asset, "MERO_KMS_POLICY_SHA256": hex.EncodeToString(sum[:])}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if len(env) != 4 {
		t.Errorf("exports %v", env)
	}
	if written, _ := os.ReadFile(policyOut); !bytes.Equal(written, data) {
		t.Errorf("-o wrote %d bytes, not the verified policy", len(written))
	}
	for _, line := range []string{"[PASS] catalog: kms 1.3.0 ↔ node image 1.3.0 is tested for locked-read-only", "[PASS] mero-kms-v1.3.0/attestation-policy-locked-read-only.json: signature verified", "[PASS] migration target verified"} {
		if !strings.Contains(stderr, line) {
			t.Errorf("stderr lacks %q:\n%s", line, stderr)
		}
	}

	// --json, a mirror for the policy URL.
	code, stdout, stderr = migrateRun(t, nil, "migrate-policy", "--kms-version", "1.3.0", "--node-version", "1.3.0", "--profile", "debug",
		"--store", w.store, "--catalog", w.catalog, "--key", w.pub, "--policy-url-base", "https://policies.example.com/kms/", "--json")
	var res struct {
		PolicySHA256 string            `json:"policy_sha256"`
		Environment  map[string]string `json:"environment"`
		Signer       struct {
			KeyHint string `json:"key_hint"`
		} `json:"signer"`
	}
	if code != outcome.OK || json.Unmarshal([]byte(stdout), &res) != nil || res.Signer.KeyHint == "" ||
		res.Environment["MERO_KMS_POLICY_URL"] != "https://policies.example.com/kms/mero-kms-v1.3.0/attestation-policy-debug.json" ||
		res.Environment["MERO_KMS_POLICY_SHA256"] != res.PolicySHA256 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
}

func TestMigratePolicyCLIFailures(t *testing.T) {
	w := newMigrateWorld(t)
	noPolicy := newMigrateWorld(t, "attestation-policy-debug.json")
	otherCatalog := filepath.Join(t.TempDir(), "catalog.json")
	if err := e2etest.Catalog(t, [2]string{"1.3.0", "1.2.0"}).WriteFile(otherCatalog); err != nil {
		t.Fatal(err)
	}
	_, otherPub, err := audittest.KeySigner()
	if err != nil {
		t.Fatal(err)
	}
	otherKey := filepath.Join(t.TempDir(), "other.pub")
	if err := os.WriteFile(otherKey, otherPub, 0o644); err != nil {
		t.Fatal(err)
	}
	base := func(store, catalog string) []string {
		return []string{"migrate-policy", "--kms-version", "1.3.0", "--node-version", "1.3.0", "--profile", "debug", "--store", store, "--catalog", catalog}
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"pair not in the catalog", append(base(w.store, otherCatalog), "--key", w.pub), outcome.VerificationFailed,
			"[FAIL] the compatibility catalog does not list the pair kms 1.3.0 ↔ node image 1.3.0"},
		{"wrong key", append(base(w.store, w.catalog), "--key", otherKey), outcome.VerificationFailed, "[FAIL] mero-kms-v1.3.0/attestation-policy-debug.json: signature"},
		{"policy missing", append(base(noPolicy.store, noPolicy.catalog), "--key", noPolicy.pub), outcome.MissingAsset, "[FAIL] mero-kms-v1.3.0/attestation-policy-debug.json: not found"},
		{"no signer", base(w.store, w.catalog), outcome.Usage, "[ERROR] mero-release migrate-policy: give the release's signer"},
		{"key and identity", append(base(w.store, w.catalog), "--key", w.pub, "--certificate-identity", "x"), outcome.Usage, "not both"},
		{"identity without issuer", append(base(w.store, w.catalog), "--certificate-identity", "x"), outcome.Usage, "needs both"},
		{"key file missing", append(base(w.store, w.catalog), "--key", "/nonexistent.pub"), outcome.Usage, "--key"},
		{"no kms version", []string{"migrate-policy", "--node-version", "1.3.0", "--profile", "debug", "--store", w.store, "--key", w.pub}, outcome.Usage, "--kms-version is required"},
		{"no node version", []string{"migrate-policy", "--kms-version", "1.3.0", "--profile", "debug", "--store", w.store, "--key", w.pub}, outcome.Usage, "--node-version is required"},
		{"no profile", []string{"migrate-policy", "--kms-version", "1.3.0", "--node-version", "1.3.0", "--store", w.store, "--key", w.pub}, outcome.Usage, "--profile is required"},
		{"bad profile", append(base(w.store, w.catalog)[:5], "--profile", "prod", "--store", w.store, "--key", w.pub), outcome.Usage, "--profile"},
		{"no store", []string{"migrate-policy", "--kms-version", "1.3.0", "--node-version", "1.3.0", "--profile", "debug", "--key", w.pub}, outcome.Usage, "--store is required"},
		{"bad store", append(base("s3:bucket", w.catalog), "--key", w.pub), outcome.Usage, "dir:PATH or github:OWNER/REPO"},
		{"catalog missing", append(base(w.store, "/nonexistent.json"), "--key", w.pub), outcome.General, "nonexistent.json"},
		{"unknown flag", append(base(w.store, w.catalog), "--key", w.pub, "--nope"), outcome.Usage, "unknown flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := migrateRun(t, nil, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) || stdout != "" {
				t.Fatalf("exit %d (want %d), stdout %q\n%s", code, tc.code, stdout, stderr)
			}
		})
	}
}

func TestMigrateCheckCLI(t *testing.T) {
	w := newMigrateWorld(t)
	code, stdout, stderr := migrateRun(t, nil, "migrate-policy", "--kms-version", "1.3.0", "--node-version", "1.3.0", "--profile", "debug-read-only",
		"--store", w.store, "--catalog", w.catalog, "--key", w.pub)
	if code != outcome.OK {
		t.Fatalf("migrate-policy: exit %d\n%s", code, stderr)
	}
	env := parseExports(t, stdout)
	// The rolling restart: the KMS starts from exactly the exported environment.
	cfg, err := server.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = "127.0.0.1:0"
	hash, err := kms.ComposeHash(kms.LocalImage)
	if err != nil {
		t.Fatal(err)
	}
	running, err := server.Start(context.Background(), cfg, hash, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer running.Close()

	code, stdout, stderr = migrateRun(t, env, "migrate-check", "--kms-url", running.URL(), "--node-release", "mero-tee-v1.3.0", "--store", w.store, "--json")
	var rep struct {
		Passed bool `json:"passed"`
		Steps  []struct {
			Name, Status string
		} `json:"steps"`
	}
	if code != outcome.OK || json.Unmarshal([]byte(stdout), &rep) != nil || !rep.Passed || len(rep.Steps) != 6 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, line := range []string{"[PASS] health: kms 1.3.0 (debug-read-only), policy ready", "[PASS] KMS attestation: quote verified", "[PASS] key release", "[PASS] post-migration check of"} {
		if !strings.Contains(stderr, line) {
			t.Errorf("stderr lacks %q:\n%s", line, stderr)
		}
	}

	badRoot := filepath.Join(t.TempDir(), "root.pem")
	os.WriteFile(badRoot, []byte("not a certificate"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"expected another version", []string{"--kms-version", "1.2.0"}, outcome.VerificationFailed, `[FAIL] health: GET /health: version is "1.3.0", want "1.2.0"`},
		{"another profile", []string{"--profile", "debug"}, outcome.VerificationFailed, `profile is "debug-read-only", want "debug"`},
		{"Intel root", []string{"--trusted-root", "intel"}, outcome.VerificationFailed, "[FAIL] KMS attestation: POST /attest"},
		{"unreadable root", []string{"--trusted-root", "/nonexistent.pem"}, outcome.Usage, "--trusted-root"},
		{"bad root", []string{"--trusted-root", badRoot}, outcome.Usage, "--trusted-root"},
		{"node release missing", []string{"--node-release", "mero-tee-v9.0.0"}, outcome.MissingAsset, "[FAIL] release mero-tee-v9.0.0: not found"},
		{"KMS tag as node release", []string{"--node-release", "mero-kms-v1.3.0"}, outcome.Usage, "not a mero-tee tag"},
		{"no KMS URL", []string{"--kms-url", ""}, outcome.Usage, "--kms-url is required"},
		{"no node release", []string{"--node-release", ""}, outcome.Usage, "--node-release is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"migrate-check", "--kms-url", running.URL(), "--node-release", "mero-tee-v1.3.0", "--store", w.store}
			args = append(args, tc.args...) // later flags win
			code, _, stderr := migrateRun(t, env, args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d (want %d)\n%s", code, tc.code, stderr)
			}
		})
	}
}

func TestKMSAttestationConfigCLI(t *testing.T) {
	w := newMigrateWorld(t)
	args := []string{"kms-attestation-config", "--kms-release", "mero-kms-v1.3.0", "--profile", "locked-read-only", "--store", w.store, "--kms-url", "https://kms.example.com:8443/", "--key", w.pub}
	code, stdout, stderr := migrateRun(t, nil, args...)
	if code != outcome.OK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	golden, err := os.ReadFile(filepath.Join("..", "..", "pipeline", "migrate", "testdata", "merod-kms-attestation.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if stdout != string(golden) {
		t.Fatalf("stdout differs from the migrate golden file:\n%s", stdout)
	}
	out := filepath.Join(t.TempDir(), "tee-kms.toml")
	code, stdout, stderr = migrateRun(t, nil, append(args, "-o", out)...)
	if written, _ := os.ReadFile(out); code != outcome.OK || stdout != "" || string(written) != string(golden) || !strings.Contains(stderr, "[PASS] wrote the merod KMS attestation config") {
		t.Fatalf("-o: exit %d\n%s", code, stderr)
	}
	code, stdout, _ = migrateRun(t, nil, append(args, "--json")...)
	var cfg struct {
		Measurements struct {
			ComposeHash string `json:"compose_hash"`
		} `json:"measurements"`
	}
	if code != outcome.OK || json.Unmarshal([]byte(stdout), &cfg) != nil || cfg.Measurements.ComposeHash != w.KMSRecord(t).ComposeHash {
		t.Fatalf("--json: exit %d\n%s", code, stdout)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no URL", []string{"--kms-url", ""}, outcome.Usage, "--kms-url"},
		{"bad TCB status", []string{"--tcb-status", "UpToDate,Revoked"}, outcome.Usage, "never Revoked"},
		{"node release", []string{"--kms-release", "mero-tee-v1.3.0"}, outcome.Usage, "not a mero-kms tag"},
		{"release missing", []string{"--kms-release", "mero-kms-v2.0.0"}, outcome.MissingAsset, "[FAIL] release mero-kms-v2.0.0: not found"},
		{"no release", []string{"--kms-release", ""}, outcome.Usage, "--kms-release is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := migrateRun(t, nil, append(append([]string{}, args...), tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d (want %d)\n%s", code, tc.code, stderr)
			}
		})
	}
}

// envTestAsCLI makes the test binary behave as the mero-release CLI, so that the scripts of
// scripts/ run the code under test (MERO_RELEASE_BIN = the test binary) without a separate build.
const envTestAsCLI = "MERO_RELEASE_TEST_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(envTestAsCLI) == "1" {
		os.Exit(runProcess(context.Background(), os.Args[1:]))
	}
	// the tests call run in this process, as many CLI runs: clean up once, as a process does
	code := m.Run()
	sbom.Cleanup()
	os.Exit(code)
}

// scriptsDir is the repository's scripts/ directory.
const scriptsDir = "../../scripts"

// releaseScripts are the documented scripts of SPEC §9.
func releaseScripts() []string {
	return []string{
		"build-kms-image.sh", "generate-attestation-policy.sh", "compute-compose-hash.sh", "publish-kms-release.sh",
		"verify-release-assets.sh", "build-node-image.sh", "collect-measurements.sh", "publish-node-release.sh",
		"generate-merod-kms-phala-attestation-config.sh",
	}
}

// runScript runs scripts/NAME with the test binary as the CLI and extra environment.
func runScript(t *testing.T, env []string, name string, args ...string) (int, string, string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(scriptsDir, name), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), envTestAsCLI + "=1", "MERO_RELEASE_BIN=" + self}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return code, stdout.String(), stderr.String()
}

// TestScriptsUsage: every script prints its usage on -h/--help (exit 0), and a bad argument is a
// usage error (exit 2) with an [ERROR] line, as from the CLI.
func TestScriptsUsage(t *testing.T) {
	bad := map[string][]string{
		// The build scripts check the family of --tag before they look for their CLI command.
		"build-kms-image.sh":  {"--tag", "mero-tee-v1.3.0"},
		"build-node-image.sh": {"--tag", "mero-kms-v1.3.0"},
	}
	for _, name := range releaseScripts() {
		t.Run(name, func(t *testing.T) {
			for _, h := range []string{"-h", "--help"} {
				code, stdout, stderr := runScript(t, nil, name, h)
				if code != 0 || !strings.HasPrefix(stdout, "Usage: "+name+" ") || !strings.Contains(stdout, "Exit codes: 0 ") || stderr != "" {
					t.Fatalf("%s %s: exit %d\n%s\n%s", name, h, code, stdout, stderr)
				}
			}
			args := bad[name]
			if args == nil {
				args = []string{"--no-such-flag"}
			}
			code, stdout, stderr := runScript(t, nil, name, args...)
			if code != outcome.Usage || !strings.HasPrefix(stderr, "[ERROR] ") || stdout != "" {
				t.Fatalf("%s %v: exit %d, stdout %q\n%s", name, args, code, stdout, stderr)
			}
			if code, _, stderr := runScript(t, nil, name); code != outcome.Usage {
				t.Fatalf("%s without arguments: exit %d\n%s", name, code, stderr)
			}
		})
	}
}

// TestScriptsPassThrough: the scripts run the CLI command and keep its output and exit code.
func TestScriptsPassThrough(t *testing.T) {
	image := "ghcr.io/calimero-network/mero-kms@sha256:" + strings.Repeat("ab", 32)
	code, stdout, stderr := runScript(t, nil, "compute-compose-hash.sh", "--image", image)
	hash, err := kms.ComposeHash(image)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || !strings.Contains(stdout, `"compose_hash": "`+hash+`"`) {
		t.Fatalf("compute-compose-hash.sh: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if code, _, stderr := runScript(t, nil, "compute-compose-hash.sh", "--image", "mero-kms:latest"); code != outcome.Usage || !strings.Contains(stderr, "[ERROR]") {
		t.Fatalf("unpinned image: exit %d\n%s", code, stderr)
	}

	w := newMigrateWorld(t)
	golden, err := os.ReadFile(filepath.Join("..", "..", "pipeline", "migrate", "testdata", "merod-kms-attestation.toml"))
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runScript(t, []string{"MERO_KMS_PROFILE=locked-read-only"}, "generate-merod-kms-phala-attestation-config.sh",
		"--kms-release", "mero-kms-v1.3.0", "--store", w.store, "--kms-url", "https://kms.example.com:8443/", "--key", w.pub)
	if code != 0 || stdout != string(golden) || !strings.Contains(stderr, "[PASS] mero-kms-v1.3.0/published-mrtds.json: signature verified") {
		t.Fatalf("generate-merod-kms-phala-attestation-config.sh: exit %d\n%s\n%s", code, stdout, stderr)
	}

	// verify-release-assets.sh keeps the auditor's exit codes: 0, and 11 for a missing asset.
	signer, pubPEM, err := audittest.KeySigner()
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(t.TempDir(), "cosign.pub")
	if err := os.WriteFile(pub, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	tag := release.MustParseTag("mero-tee-v1.3.0")
	good := auditStore(t, audittest.Options{Tag: tag, Signer: signer}, nil)
	if code, _, stderr := runScript(t, nil, "verify-release-assets.sh", "--tag", tag.String(), "--store", good, "--key", pub); code != 0 || !strings.Contains(stderr, "[PASS]") {
		t.Fatalf("verify-release-assets.sh: exit %d\n%s", code, stderr)
	}
	missing := auditStore(t, audittest.Options{Tag: tag, Signer: signer}, nil, release.SBOMFile)
	if code, _, stderr := runScript(t, nil, "verify-release-assets.sh", "--tag", tag.String(), "--store", missing, "--key", pub); code != outcome.MissingAsset || !strings.Contains(stderr, "[FAIL]") {
		t.Fatalf("verify-release-assets.sh, missing asset: exit %d\n%s", code, stderr)
	}

	// publish-*-release.sh refuse the other family's tag before anything is published.
	for name, tag := range map[string]string{"publish-kms-release.sh": "mero-tee-v1.3.0", "publish-node-release.sh": "mero-kms-v1.3.0"} {
		if code, _, stderr := runScript(t, nil, name, "--tag="+tag, "--dir", t.TempDir(), "--store", "dir:"+t.TempDir()); code != outcome.Usage || !strings.Contains(stderr, "not a ") {
			t.Fatalf("%s --tag=%s: exit %d\n%s", name, tag, code, stderr)
		}
	}
	// publish-node-release.sh passes a complete check to publish: an empty directory is exit 11.
	if code, _, stderr := runScript(t, nil, "publish-node-release.sh", "--tag", "mero-tee-v1.3.0", "--dir", t.TempDir(), "--store", "dir:"+t.TempDir()); code != outcome.MissingAsset {
		t.Fatalf("publish-node-release.sh, empty dir: exit %d\n%s", code, stderr)
	}
	// The build scripts: each profile's KMS image, and the simulator's node-image description.
	kmsBin := filepath.Join(t.TempDir(), "mero-kms")
	if err := os.WriteFile(kmsBin, []byte("a static KMS stand-in\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if code, _, stderr := runScript(t, []string{"SOURCE_DATE_EPOCH=1764547200"}, "build-kms-image.sh", "--tag", "mero-kms-v1.3.0", "--kms-binary", kmsBin, "--repo", "../..", "-o", out); code != outcome.OK ||
		!strings.Contains(stderr, "[PASS] locked-read-only image localhost/mero-kms@sha256:") {
		t.Fatalf("build-kms-image.sh: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, release.KMSImageManifest)); err != nil {
		t.Errorf("build-kms-image.sh wrote no manifest: %v", err)
	}
	if code, _, stderr := runScript(t, nil, "build-node-image.sh", "--tag", "mero-tee-v1.3.0", "--provider", "sim", "--source", "../../examples/node-image", "-o", t.TempDir()); code != outcome.OK ||
		!strings.Contains(stderr, "[PASS] debug-read-only: ") {
		t.Fatalf("build-node-image.sh: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := runScript(t, nil, "build-node-image.sh", "--tag", "mero-kms-v1.3.0"); code != outcome.Usage || !strings.Contains(stderr, "not a mero-tee release tag") {
		t.Fatalf("build-node-image.sh with a KMS tag: exit %d\n%s", code, stderr)
	}
}

// TestScriptsLocateCLI: without a usable MERO_RELEASE_BIN the scripts build the CLI with go build,
// and say so plainly when they cannot.
func TestScriptsLocateCLI(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "bin", "mero-release")
	// The PATH without any directory that holds a go command.
	var noGo []string
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if _, err := os.Stat(filepath.Join(d, "go")); err != nil {
			noGo = append(noGo, d)
		}
	}
	cmd := exec.Command(filepath.Join(scriptsDir, "compute-compose-hash.sh"), "--image", "x@sha256:"+strings.Repeat("0", 64))
	cmd.Env = []string{"PATH=" + strings.Join(noGo, string(filepath.ListSeparator)), "MERO_RELEASE_BIN=" + bin}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "[ERROR] compute-compose-hash.sh: no mero-release at "+bin+" and no Go toolchain") {
		t.Fatalf("without go: %v\n%s", err, out)
	}
	// With a go on the PATH the script builds the CLI once: `CGO_ENABLED=0 go build -o BIN
	// ./cmd/mero-release` in the repository, then reuses BIN. The go here is a stand-in that
	// records how it was called and "builds" a launcher of this test binary as the CLI, so the
	// test checks the script's logic without compiling the whole CLI from cold (that build is
	// CI's own step: .ci/run builds bin/ci/mero-release).
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	goDir := t.TempDir()
	calls := filepath.Join(goDir, "calls")
	standIn := `#!/bin/sh
echo "CGO_ENABLED=$CGO_ENABLED PWD=$(pwd) $*" >>` + migrate.ShellQuote(calls) + `
[ "$1" = build ] && [ "$2" = -o ] || exit 3
printf '#!/bin/sh\nMERO_RELEASE_TEST_AS_CLI=1 exec %s "$@"\n' ` + migrate.ShellQuote(self) + ` >"$3" && chmod +x "$3"
`
	if err := os.WriteFile(filepath.Join(goDir, "go"), []byte(standIn), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + goDir + string(filepath.ListSeparator) + strings.Join(noGo, string(filepath.ListSeparator)), "MERO_RELEASE_BIN=" + bin}
	for i, want := range []string{"[INFO] building mero-release", ""} {
		cmd := exec.Command(filepath.Join(scriptsDir, "compute-compose-hash.sh"), "--image", "x@sha256:"+strings.Repeat("0", 64))
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil || !strings.Contains(stdout.String(), "compose_hash") {
			t.Fatalf("run %d: %v\n%s\n%s", i, err, stdout.String(), stderr.String())
		}
		if built := strings.Contains(stderr.String(), "[INFO] building mero-release"); built != (want != "") {
			t.Fatalf("run %d: built=%v, want %v (the CLI is built once)\n%s", i, built, want != "", stderr.String())
		}
	}
	log, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "CGO_ENABLED=0 PWD="+repo+" build -o "+bin+".tmp.") || !strings.HasSuffix(lines[0], " ./cmd/mero-release") {
		t.Fatalf("the script ran go %d time(s), want one static build of ./cmd/mero-release in %s:\n%s", len(lines), repo, log)
	}
}
