package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calimero-network/mero-release/pipeline/kmsclient"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

// writePolicy writes the policy of lp to dir and returns its path and SHA-256.
func writePolicy(t *testing.T, dir string, lp *LoadedPolicy) (string, string) {
	t.Helper()
	data, err := lp.Policy.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, lp.Policy.Profile.PolicyFile())
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return path, hex.EncodeToString(sum[:])
}

func TestFetchPolicy(t *testing.T) {
	dir := t.TempDir()
	lp := policyFor(t, release.LockedReadOnly, nodeImage(release.LockedReadOnly, ""))
	path, sum := writePolicy(t, dir, lp)
	data, _ := os.ReadFile(path)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/policy.json":
			_, _ = w.Write(data)
		case "/big":
			_, _ = w.Write(make([]byte, maxPolicyBytes+1))
		default:
			http.NotFound(w, r)
		}
	}))
	defer ts.Close()
	ctx := context.Background()
	// a data: URL carries the policy inline (how release E2E hands a CVM an unpublished policy)
	for _, u := range []string{"file://" + path, path, ts.URL + "/policy.json", policy.DataURL(data)} {
		got, err := FetchPolicy(ctx, ts.Client(), u, strings.ToUpper(sum), "1.2.0", "locked-read-only")
		if err != nil {
			t.Errorf("%s: %v", u, err)
			continue
		}
		if got.SHA256 != sum || got.Policy.Profile != release.LockedReadOnly {
			t.Errorf("%s: %+v", u, got)
		}
	}
	bad := []struct {
		url, sha, version, profile string
		code                       int
		want                       string
	}{
		{"file://" + path, strings.Repeat("0", 64), "1.2.0", "locked-read-only", outcome.VerificationFailed, "pins"},
		{"file://" + path, "", "1.3.0", "locked-read-only", outcome.VerificationFailed, "kms_version is \"1.2.0\""},
		{"file://" + path, "", "1.2.0", "debug", outcome.VerificationFailed, "profile is \"locked-read-only\""},
		{ts.URL + "/missing", "", "1.2.0", "locked-read-only", outcome.General, "404"},
		{ts.URL + "/big", "", "1.2.0", "locked-read-only", outcome.VerificationFailed, "larger than"},
		{"ftp://host/p.json", "", "1.2.0", "locked-read-only", outcome.Usage, "scheme"},
		{"file://otherhost/p.json", "", "1.2.0", "locked-read-only", outcome.Usage, "host"},
		{"file://" + filepath.Join(dir, "nope.json"), "", "1.2.0", "locked-read-only", outcome.General, "no such file"},
		{policy.DataURL(data), strings.Repeat("0", 64), "1.2.0", "locked-read-only", outcome.VerificationFailed, "pins"},
		{policy.DataURL(make([]byte, maxPolicyBytes+1)), "", "1.2.0", "locked-read-only", outcome.VerificationFailed, "larger than"},
	}
	for _, b := range bad {
		_, err := FetchPolicy(ctx, ts.Client(), b.url, b.sha, b.version, b.profile)
		if err == nil || outcome.Code(err) != b.code || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s (sha %q, %s, %s) = %v (exit %d), want exit %d mentioning %q", b.url, b.sha, b.version, b.profile, err, outcome.Code(err), b.code, b.want)
		}
	}
	garbage := filepath.Join(dir, "garbage.json")
	_ = os.WriteFile(garbage, []byte(`{"schema_version":"1"`), 0o644)
	if _, err := FetchPolicy(ctx, nil, garbage, "", "1.2.0", "debug"); outcome.Code(err) != outcome.VerificationFailed {
		t.Errorf("a malformed policy: %v", err)
	}
}

func TestConfig(t *testing.T) {
	env := map[string]string{EnvVersion: "1.2.0", EnvProfile: "debug", EnvPolicyURL: "file:///p", EnvChallengeTTL: "30s", EnvMaxChallenges: "10"}
	c, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	c, err = c.withDefaults()
	if err != nil || c.Listen != DefaultListen || c.ChallengeTTL != 30*time.Second || c.MaxChallenges != 10 || c.QuoteSource != QuoteSourceSimulator {
		t.Fatalf("%+v %v", c, err)
	}
	for k, v := range map[string]string{EnvChallengeTTL: "soon", EnvMaxChallenges: "1e3"} {
		e := map[string]string{k: v}
		if _, err := ConfigFromEnv(func(k string) string { return e[k] }); outcome.Code(err) != outcome.Usage || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
	base := Config{Version: "1.2.0", Profile: "debug", PolicyURL: "file:///p"}
	for name, c := range map[string]Config{
		EnvVersion:       {Profile: "debug", PolicyURL: "x"},
		EnvProfile:       {Version: "1.2.0", PolicyURL: "x"},
		EnvPolicyURL:     {Version: "1.2.0", Profile: "debug"},
		"bad version":    {Version: "v1.2", Profile: "debug", PolicyURL: "x"},
		"bad profile":    {Version: "1.2.0", Profile: "prod", PolicyURL: "x"},
		EnvQuoteSource:   func() Config { c := base; c.QuoteSource = "tpm"; return c }(),
		EnvPolicySHA256:  func() Config { c := base; c.PolicySHA256 = "abc"; return c }(),
		EnvChallengeTTL:  func() Config { c := base; c.ChallengeTTL = -time.Second; return c }(),
		EnvMaxChallenges: func() Config { c := base; c.MaxChallenges = -1; return c }(),
	} {
		if _, err := c.withDefaults(); outcome.Code(err) != outcome.Usage {
			t.Errorf("%s: %v, want a usage error", name, err)
		}
	}
}

func TestReadRootSecret(t *testing.T) {
	s, dev, err := ReadRootSecret("")
	if err != nil || !dev || string(s) != DevRootSecret {
		t.Errorf("dev secret: %q %v %v", s, dev, err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	_ = os.WriteFile(good, []byte(strings.Repeat("k", 40)+"\n"), 0o600)
	if s, dev, err := ReadRootSecret(good); err != nil || dev || len(s) != 40 {
		t.Errorf("file secret: %d bytes %v %v", len(s), dev, err)
	}
	short := filepath.Join(dir, "short")
	_ = os.WriteFile(short, []byte("tiny"), 0o600)
	if _, _, err := ReadRootSecret(short); outcome.Code(err) != outcome.Usage {
		t.Errorf("short secret: %v", err)
	}
	if _, _, err := ReadRootSecret(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing secret file accepted")
	}
}

func TestStartServeAndClose(t *testing.T) {
	dir := t.TempDir()
	path, sum := writePolicy(t, dir, policyFor(t, release.Debug, nodeImage(release.Debug, "")))
	var log syncBuffer
	cfg := Config{Version: "1.2.0", Profile: "debug", PolicyURL: "file://" + path, PolicySHA256: sum, Listen: "127.0.0.1:0"}
	r, err := Start(context.Background(), cfg, strings.Repeat("cd", 32), outcome.NewLogger(&log))
	if err != nil {
		t.Fatal(err)
	}
	auth, _ := tdxsim.NewAuthority([]byte(tdxsim.DefaultSeed))
	c, err := kmsclient.New(r.URL(), kmsclient.Options{TrustedRoots: auth.RootPool()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Attest(context.Background(), kmsclient.AttestOptions{}); err != nil {
		t.Errorf("attest against the started KMS: %v", err)
	}
	node, _ := auth.Boot(context.Background(), nodeImage(release.Debug, ""))
	peer, _ := kmsclient.NewPeer("n", nil)
	if _, err := c.RequestKey(context.Background(), node, peer); err != nil {
		t.Errorf("key release from the started KMS: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Error(err)
	}
	if err := <-r.Done(); err != nil {
		t.Error(err)
	}
	if _, err := c.Health(context.Background()); err == nil {
		t.Error("the KMS still answers after Close")
	}
	out := log.String()
	for _, want := range []string{"[WARN] kms: MERO_KMS_ROOT_SECRET_FILE is not set", "[INFO] kms 1.2.0 (debug) listening on http://127.0.0.1:", sum} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}

	// Refusals happen before listening.
	for name, mutate := range map[string]func(*Config){
		"pin":          func(c *Config) { c.PolicySHA256 = strings.Repeat("1", 64) },
		"version":      func(c *Config) { c.Version = "9.9.9" },
		"compose hash": func(c *Config) { c.ComposeHash = "xyz" },
		"trusted root": func(c *Config) { c.TrustedRoot = filepath.Join(dir, "none.pem") },
		"bad root":     func(c *Config) { c.TrustedRoot = path },
		"listen":       func(c *Config) { c.Listen = "256.0.0.1:1" },
		"collateral":   func(c *Config) { c.CollateralDir = filepath.Join(dir, "no-collateral") },
	} {
		c := cfg
		mutate(&c)
		if r, err := Start(context.Background(), c, strings.Repeat("cd", 32), nil); err == nil {
			_ = r.Close()
			t.Errorf("%s: started", name)
		}
	}
}

func TestConfigFSQuoter(t *testing.T) {
	if _, err := (ConfigFSQuoter{Dir: filepath.Join(t.TempDir(), "absent")}).Quote([64]byte{}); err == nil || !strings.Contains(err.Error(), "configfs-tsm") {
		t.Errorf("absent configfs: %v", err)
	}
	// A plain directory is not configfs: the entry has no generation attribute.
	dir := t.TempDir()
	if _, err := (ConfigFSQuoter{Dir: dir}).Quote([64]byte{}); err == nil || !strings.Contains(err.Error(), "generation") {
		t.Errorf("plain directory: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the report entry was not removed: %v", entries)
	}
}

func TestBootSimulatedDstack(t *testing.T) {
	auth, _ := tdxsim.NewAuthority([]byte("x"))
	v1, err := BootSimulatedDstack(context.Background(), auth, strings.Repeat("01", 32))
	if err != nil {
		t.Fatal(err)
	}
	v2, _ := BootSimulatedDstack(context.Background(), auth, strings.Repeat("02", 32))
	m1, m2 := v1.Measurements(), v2.Measurements()
	if m1.RTMR[3] == m2.RTMR[3] || m1.MRTD != m2.MRTD || m1.RTMR[2] != m2.RTMR[2] {
		t.Error("the compose hash must change RTMR3 and only RTMR3")
	}
	// RTMR3 is the replay of the events the KMS measurement replays (pipeline/measure).
	var hash [32]byte
	copy(hash[:], bytes.Repeat([]byte{0x01}, 32))
	events, err := measure.DstackBoot{}.Events(hash)
	if err != nil {
		t.Fatal(err)
	}
	replayed, err := tdx.Replay(events)
	if err != nil || replayed[3] != m1.RTMR[3] {
		t.Errorf("RTMR3 %x is not the replay of measure.DstackBoot{}.Events (%x, %v)", m1.RTMR[3], replayed[3], err)
	}
	v1.Shutdown()
	v2.Shutdown()
	for _, bad := range []string{"", "01", strings.Repeat("zz", 32), strings.Repeat("01", 31), strings.Repeat("01", 33)} {
		if vm, err := BootSimulatedDstack(context.Background(), auth, bad); err == nil || !strings.Contains(err.Error(), "not 64 hex characters") {
			t.Errorf("compose hash %q: %v", bad, err)
			if vm != nil {
				vm.Shutdown()
			}
		}
	}
}
