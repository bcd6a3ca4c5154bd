package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/calimero-network/mero-release/examples/kms"
	"github.com/calimero-network/mero-release/examples/kms/local/e2etest"
	"github.com/calimero-network/mero-release/pipeline/e2e"
	"github.com/calimero-network/mero-release/pipeline/kmsclient"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

// e2eCLI runs the CLI and returns the exit code, stdout and stderr.
func e2eCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr, func(k string) string { return env[k] })
	return code, stdout.String(), stderr.String()
}

func e2eExpect(t *testing.T, name string, code int, stderr string, wantCode int, want ...string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("%s: exit %d, want %d; stderr:\n%s", name, code, wantCode, stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("%s: stderr lacks %q:\n%s", name, w, stderr)
		}
	}
}

// e2eWorld publishes node 1.1.0 and 1.2.0, KMS 1.1.0 and 1.2.0 (policies edited by edit) and
// writes a catalog listing kms 1.2.0 with both nodes; it returns the store flag and catalog path.
func e2eWorld(t *testing.T, edit func(map[release.Profile]*policy.Policy)) (string, string) {
	t.Helper()
	w := e2etest.New(t)
	n110 := w.AddNode(t, "1.1.0", nil)
	n120 := w.AddNode(t, "1.2.0", nil)
	w.AddKMS(t, "1.1.0", e2etest.Policies(t, "1.1.0", n110))
	p := e2etest.Policies(t, "1.2.0", n110, n120)
	if edit != nil {
		edit(p)
	}
	w.AddKMS(t, "1.2.0", p)
	data, err := e2etest.Catalog(t, [2]string{"1.2.0", "1.2.0"}, [2]string{"1.2.0", "1.1.0"}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cat := filepath.Join(w.Root, "compatibility-catalog.json")
	if err := os.WriteFile(cat, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return "dir:" + w.StoreDir, cat
}

func TestE2ECommandPassesOnAGoodPair(t *testing.T) {
	st, cat := e2eWorld(t, nil)
	code, stdout, stderr := e2eCLI(t, nil, "e2e", "--kms-release", "mero-kms-v1.2.0", "--node-release", "mero-tee-v1.2.0", "--store", st, "--catalog", cat, "--json")
	e2eExpect(t, "good pair", code, stderr, 0,
		"[PASS] node suite: kms 1.2.0 ↔ node image 1.2.0 (locked-read-only)",
		"[PASS] guardrail A (cross-version): 6 case(s) passed",
		"[PASS] guardrail B (profile isolation)",
		"[PASS] guardrail C (stale policy)",
		"[PASS] guardrail D (measurement consistency)",
		"[PASS] E2E mero-kms-v1.2.0 ↔ mero-tee-v1.2.0: 5 checks passed")
	var rep e2e.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || !rep.Passed || len(rep.Checks) != 5 {
		t.Errorf("JSON report: %v\n%s", err, stdout)
	}
	// The catalog from the environment, a subset of profiles and C on another profile.
	code, _, stderr = e2eCLI(t, map[string]string{"COMPATIBILITY_CATALOG_PATH": cat}, "e2e", "--kms-release", "mero-kms-v1.2.0",
		"--node-release", "mero-tee-v1.2.0", "--store", st, "--profiles", "debug, locked-read-only", "--stale-profile", "debug", "--run-id", "ci-42")
	e2eExpect(t, "catalog from env", code, stderr, 0, "[INFO] e2e: catalog "+cat, "node image 1.2.0 ↔ previous policy of mero-kms-v1.1.0 (debug)", "deploying mero-e2e-ci-42-1")
}

func TestE2ECommandBlocksOnAGuardrail(t *testing.T) {
	st, cat := e2eWorld(t, func(ps map[release.Profile]*policy.Policy) {
		ps[release.LockedReadOnly].AllowedRTMR2 = append(ps[release.LockedReadOnly].AllowedRTMR2, e2etest.Record(t, e2etest.NodeImage("1.2.0", release.Debug)).RTMR2)
	})
	args := []string{"e2e", "--kms-release", "mero-kms-v1.2.0", "--node-release", "mero-tee-v1.2.0", "--store", st, "--catalog", cat}
	code, stdout, stderr := e2eCLI(t, nil, append(args, "--json")...)
	e2eExpect(t, "broken isolation", code, stderr, 10,
		"[FAIL] guardrail B (profile isolation): debug node image 1.2.0 ↔ kms 1.2.0 (locked-read-only policy): expectation: a debug node got a key",
		"[FAIL] E2E mero-kms-v1.2.0 ↔ mero-tee-v1.2.0: 1 check(s) failed: the release is blocked")
	if strings.Contains(stderr, "[ERROR]") {
		t.Errorf("a reported failure was printed again as [ERROR]:\n%s", stderr)
	}
	var rep e2e.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || rep.Passed {
		t.Errorf("JSON report: %v\n%s", err, stdout)
	}
	code, _, stderr = e2eCLI(t, nil, append(args, "--advisory")...)
	e2eExpect(t, "advisory", code, stderr, 0, "[WARN] E2E mero-kms-v1.2.0 ↔ mero-tee-v1.2.0: 1 check(s) failed; advisory run (rc): not blocking")
}

func TestE2ECommandUsage(t *testing.T) {
	st, cat := e2eWorld(t, nil)
	bad := filepath.Join(t.TempDir(), "bad-catalog.json")
	if err := os.WriteFile(bad, []byte(`{"schema_version":"1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"e2e", "--kms-release", "mero-kms-v1.2.0", "--node-release", "mero-tee-v1.2.0", "--store", st, "--catalog", cat}
	with := func(extra ...string) []string { return append(append([]string(nil), base...), extra...) }
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no kms release", []string{"e2e", "--node-release", "mero-tee-v1.2.0", "--store", st}, 2, "--kms-release is required"},
		{"no node release", []string{"e2e", "--kms-release", "mero-kms-v1.2.0", "--store", st}, 2, "--node-release is required"},
		{"no store", []string{"e2e", "--kms-release", "mero-kms-v1.2.0", "--node-release", "mero-tee-v1.2.0"}, 2, "--store is required"},
		{"store kind", with("--store", "github:x/y"), 2, "want dir:PATH"},
		{"store missing", with("--store", "dir:/nonexistent/store"), 2, "is not a directory"},
		{"provider", with("--provider", "gcp"), 2, "only simulator"},
		{"profiles", with("--profiles", "prod"), 2, "--profiles"},
		{"stale profile", with("--stale-profile", "x"), 2, "--stale-profile"},
		{"missing release", with("--kms-release", "mero-kms-v9.9.9"), 2, "mero-kms-v9.9.9: not in the store"},
		{"malformed tag", with("--node-release", "mero-tee-1.2"), 2, "--node-release"},
		{"catalog missing", with("--catalog", "/nonexistent/catalog.json"), 2, "--catalog"},
		{"catalog invalid", with("--catalog", bad), 10, "entries: missing"},
		{"trusted root", with("--trusted-root", "/nonexistent.pem"), 2, "--trusted-root"},
		{"kms provider", with("--kms-provider", "aws"), 2, "--kms-provider \"aws\""},
		{"phala without url", with("--kms-provider", "phala"), 2, "PHALA_DSTACK_URL"},
		{"extra argument", with("now"), 2, "unknown command"},
	}
	for _, c := range cases {
		code, _, stderr := e2eCLI(t, nil, c.args...)
		e2eExpect(t, c.name, code, stderr, c.code, c.want)
	}
	// A node image template pointing nowhere fails the suite (deploy), blocking.
	code, _, stderr := e2eCLI(t, nil, with("--node-image", "/nonexistent/{version}", "--profiles", "debug")...)
	e2eExpect(t, "bad image template", code, stderr, 10, "[FAIL] node suite: kms 1.2.0 ↔ node image 1.2.0 (debug): deploy:")
	// Another platform's root: boot verification fails.
	other, _ := tdxsim.NewAuthority([]byte("another platform"))
	root := filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(root, other.RootPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = e2eCLI(t, nil, with("--trusted-root", root, "--profiles", "debug")...)
	e2eExpect(t, "foreign root", code, stderr, 10, "boot verification: verify TDX quote")
}

// lockedBuffer is a bytes.Buffer safe for the concurrent writes of a running command; every
// write is signalled on wrote.
type lockedBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{}
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case l.wrote <- struct{}{}:
	default:
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestKMSServeCommand(t *testing.T) {
	dir := t.TempDir()
	pub := e2etest.Measured(t, "1.2.0")
	pol := e2etest.Policies(t, "1.2.0", pub)[release.Debug]
	data, err := pol.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, release.Debug.PolicyFile())
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	// The environment names a wrong version; the flag overrides it.
	env := map[string]string{"MERO_KMS_VERSION": "0.0.1", "MERO_KMS_PROFILE": "debug", "MERO_KMS_POLICY_URL": "file://" + path, "MERO_KMS_POLICY_SHA256": hex.EncodeToString(sum[:])}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := lockedBuffer{}, lockedBuffer{wrote: make(chan struct{}, 1)}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"kms", "serve", "--version", "1.2.0", "--listen", "127.0.0.1:0"}, strings.NewReader(""), &stdout, &stderr, func(k string) string { return env[k] })
	}()
	listening := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
	var url string
	for url == "" {
		select {
		case code := <-done:
			t.Fatalf("kms serve exited %d:\n%s", code, stderr.String())
		case <-stderr.wrote:
		}
		if m := listening.FindStringSubmatch(stderr.String()); m != nil {
			url = m[1]
		}
	}
	auth, _ := tdxsim.NewAuthority([]byte(tdxsim.DefaultSeed))
	c, err := kmsclient.New(url, kmsclient.Options{TrustedRoots: auth.RootPool()})
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Health(ctx)
	if err != nil || h.KMSVersion != "1.2.0" || h.Profile != "debug" {
		t.Fatalf("health %+v %v", h, err)
	}
	node, err := auth.Boot(ctx, e2etest.NodeImage("1.2.0", release.Debug))
	if err != nil {
		t.Fatal(err)
	}
	peer, _ := kmsclient.NewPeer("cli-node", nil)
	if _, err := c.RequestKey(ctx, node, peer); err != nil {
		t.Errorf("key release from `kms serve`: %v", err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d after interrupt:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "[INFO] kms: stopping") {
		t.Errorf("stderr:\n%s", stderr.String())
	}

	// Refusals: exit 10 for a policy that does not match, 2 for bad configuration.
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"env version mismatch", []string{"kms", "serve", "--listen", "127.0.0.1:0"}, 10, "kms_version is \"1.2.0\" but MERO_KMS_VERSION is \"0.0.1\""},
		{"pin mismatch", []string{"kms", "serve", "--version", "1.2.0", "--policy-sha256", strings.Repeat("0", 64)}, 10, "refusing to start"},
		{"profile mismatch", []string{"kms", "serve", "--version", "1.2.0", "--profile", "locked-read-only"}, 10, "profile is \"debug\""},
		{"bad profile", []string{"kms", "serve", "--version", "1.2.0", "--profile", "prod"}, 2, "MERO_KMS_PROFILE"},
		{"bad ttl", []string{"kms", "serve", "--version", "1.2.0", "--challenge-ttl", "soon"}, 2, "MERO_KMS_CHALLENGE_TTL"},
		{"bad quote source", []string{"kms", "serve", "--version", "1.2.0", "--quote-source", "tpm"}, 2, "MERO_KMS_QUOTE_SOURCE"},
		{"no subcommand", []string{"kms"}, 2, "subcommand is required"},
	} {
		code, _, stderr := e2eCLI(t, env, c.args...)
		e2eExpect(t, c.name, code, stderr, c.code, c.want)
	}
}

func TestKMSComposeCommand(t *testing.T) {
	ref := "ghcr.io/calimero-network/mero-kms@sha256:" + strings.Repeat("ab", 32)
	code, stdout, stderr := e2eCLI(t, nil, "kms", "compose", "--image", ref)
	e2eExpect(t, "app-compose", code, stderr, 0)
	var app map[string]any
	if err := json.Unmarshal([]byte(stdout), &app); err != nil || !strings.Contains(app["docker_compose_file"].(string), ref) {
		t.Errorf("app-compose %v: %s", err, stdout)
	}
	code, stdout, stderr = e2eCLI(t, nil, "kms", "compose", "--image", ref, "--json")
	want, _ := kms.ComposeHash(ref)
	e2eExpect(t, "json", code, stderr, 0)
	if !strings.Contains(stdout, `"compose_hash": "`+want+`"`) {
		t.Errorf("json: %s", stdout)
	}
	code, stdout, stderr = e2eCLI(t, nil, "kms", "compose", "--image", ref, "--docker-compose")
	e2eExpect(t, "docker-compose", code, stderr, 0)
	if !strings.Contains(stdout, "image: "+ref) {
		t.Errorf("docker-compose: %s", stdout)
	}
	code, _, stderr = e2eCLI(t, nil, "kms", "compose", "--image", "mero-kms:latest")
	e2eExpect(t, "unpinned", code, stderr, 2, "pinned by digest")
	code, _, stderr = e2eCLI(t, nil, "kms", "compose")
	e2eExpect(t, "no image", code, stderr, 2, "--image is required")
}
