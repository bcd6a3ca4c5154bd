package main

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// policyReg is a deterministic 96-hex register value.
func policyReg(label string) string {
	sum := sha512.Sum384([]byte(label))
	return hex.EncodeToString(sum[:])
}

// policyMeasurements writes a node release's published-mrtds.json with a record per profile
// and returns its path.
func policyMeasurements(t *testing.T, version string, profiles ...release.Profile) string {
	t.Helper()
	p := &measure.Published{SchemaVersion: measure.PublishedSchemaVersion, Family: release.Node, Version: version,
		Profiles: map[release.Profile]measure.Record{}}
	for _, prof := range profiles {
		l := version + "/" + string(prof) + "/"
		p.Profiles[prof] = measure.Record{MRTD: policyReg(l + "mrtd"), RTMR0: policyReg(l + "rtmr0"), RTMR1: policyReg(l + "rtmr1"),
			RTMR2: policyReg(l + "rtmr2"), RTMR3: policyReg(l + "rtmr3"), Source: "tdx-simulator", MeasuredAt: "2026-11-25T10:00:00Z"}
	}
	data, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "published-mrtds.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// policyWrite writes content to dir/name.
func policyWrite(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPolicyGenerateCommand(t *testing.T) {
	n120 := policyMeasurements(t, "1.2.0", release.Profiles()...)
	n110 := policyMeasurements(t, "1.1.0", release.LockedReadOnly)
	code, stdout, stderr := catalogCLI(t, nil, "policy", "generate", "--kms-version", "1.2.0", "--profile", "locked-read-only",
		"--measurements", n120, "--measurements", n110, "--tcb-status", "UpToDate,SWHardeningNeeded")
	catalogExpect(t, code, stderr, 0, "[PASS] generated attestation-policy-locked-read-only.json", "from node image(s) 1.1.0, 1.2.0")
	p, err := policy.Load(strings.NewReader(stdout))
	if err != nil {
		t.Fatalf("stdout is not a policy: %v\n%s", err, stdout)
	}
	if p.NotReady() || len(p.AllowedMRTD) != 2 || len(p.AllowedTCBStatus) != 2 {
		t.Errorf("generated %+v", p)
	}
	if !strings.Contains(stderr, "sha256 "+p.SHA256()) {
		t.Errorf("the log must give the policy's sha256: %s", stderr)
	}

	// From the environment, to a file; no measurements for the profile: not ready, with a warning.
	out := filepath.Join(t.TempDir(), "attestation-policy-debug.json")
	env := map[string]string{"MERO_KMS_VERSION": "1.3.0-rc.1", "MERO_KMS_PROFILE": "debug"}
	code, stdout, stderr = catalogCLI(t, env, "policy", "generate", "--measurements", n110, "-o", out)
	catalogExpect(t, code, stderr, 0, "[WARN]", "policy_not_ready", "[PASS]")
	if stdout != "" {
		t.Errorf("with -o nothing goes to stdout: %q", stdout)
	}
	written, err := policy.LoadFile(out)
	if err != nil || !written.NotReady() || written.KMSVersion != "1.3.0-rc.1" {
		t.Errorf("written policy %+v, %v", written, err)
	}

	badMeasurements := policyWrite(t, t.TempDir(), "published-mrtds.json", `{"schema_version":"1","family":"mero-tee","version":"1.0.0","profiles":{"debug":{"mrtd":"00"}}}`)
	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"no version", []string{"--profile", "debug"}, 2, []string{"--kms-version and --profile are required"}},
		{"bad profile", []string{"--kms-version", "1.2.0", "--profile", "prod"}, 2, []string{"--profile:"}},
		{"bad version", []string{"--kms-version", "1.2", "--profile", "debug"}, 2, []string{"kms version"}},
		{"revoked", []string{"--kms-version", "1.2.0", "--profile", "debug", "--tcb-status", "Revoked"}, 2, []string{"Revoked is never allowed"}},
		{"missing measurements", []string{"--kms-version", "1.2.0", "--profile", "debug", "--measurements", "/nonexistent/published-mrtds.json"}, 1, []string{"[ERROR]", "nonexistent"}},
		{"bad measurements", []string{"--kms-version", "1.2.0", "--profile", "debug", "--measurements", badMeasurements}, 10, []string{"[FAIL]", badMeasurements}},
		{"stray argument", []string{"--kms-version", "1.2.0", "--profile", "debug", "x"}, 2, []string{"unknown command"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := catalogCLI(t, nil, append([]string{"policy", "generate"}, tc.args...)...)
			catalogExpect(t, code, stderr, tc.code, tc.want...)
		})
	}
}

// policySet generates the three policies of KMS 1.2.0 into a directory and returns their paths.
func policySet(t *testing.T, measurements string) (dir string, paths []string) {
	t.Helper()
	dir = t.TempDir()
	for _, prof := range release.Profiles() {
		out := filepath.Join(dir, prof.PolicyFile())
		code, _, stderr := catalogCLI(t, nil, "policy", "generate", "--kms-version", "1.2.0", "--profile", string(prof), "--measurements", measurements, "-o", out)
		if code != 0 {
			t.Fatalf("generate %s: %d %s", prof, code, stderr)
		}
		paths = append(paths, out)
	}
	return dir, paths
}

func TestPolicyValidateCommand(t *testing.T) {
	n := policyMeasurements(t, "1.2.0", release.Profiles()...)
	dir, paths := policySet(t, n)

	code, _, stderr := catalogCLI(t, nil, append([]string{"policy", "validate", "--stable"}, paths...)...)
	catalogExpect(t, code, stderr, 0, "[PASS] "+paths[0]+": valid attestation policy (profile debug, kms 1.2.0, ready", "[PASS] policy set: 3 profiles")
	data, _ := os.ReadFile(paths[0])
	sum := sha256.Sum256(data)
	if !strings.Contains(stderr, "sha256 "+hex.EncodeToString(sum[:])) {
		t.Errorf("the file's sha256 must be printed:\n%s", stderr)
	}

	// The repository's seed policies are valid rc policies, but not stable ones.
	var seeds []string
	for _, prof := range release.Profiles() {
		seeds = append(seeds, filepath.Join("..", "..", "policies", prof.PolicyFile()))
	}
	code, _, stderr = catalogCLI(t, nil, append([]string{"policy", "validate"}, seeds...)...)
	catalogExpect(t, code, stderr, 0, "[WARN]", "policy_not_ready", "[PASS] policy set")
	code, _, stderr = catalogCLI(t, nil, append([]string{"policy", "validate", "--stable"}, seeds...)...)
	catalogExpect(t, code, stderr, 10, "[FAIL]", "status: policy_not_ready")

	// The brief's example: an empty allowed_tcb_status exits 10 naming the field.
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	doc["allowed_tcb_status"] = []any{}
	emptyTCB, _ := json.Marshal(doc)
	bad := policyWrite(t, t.TempDir(), "attestation-policy-debug.json", string(emptyTCB))
	code, _, stderr = catalogCLI(t, nil, "policy", "validate", bad)
	catalogExpect(t, code, stderr, 10, "[FAIL]", bad, "allowed_tcb_status: empty")
	if strings.Contains(stderr, "[ERROR]") {
		t.Errorf("printed twice:\n%s", stderr)
	}

	doc["allowed_tcb_status"] = []any{"UpToDate"}
	doc["allowed_rtmr2"] = []any{policyReg("a"), "nothex"}
	badHex, _ := json.Marshal(doc)
	code, stdout, stderr := catalogCLI(t, nil, "--json", "policy", "validate", policyWrite(t, t.TempDir(), "p.json", string(badHex)))
	catalogExpect(t, code, stderr, 10, `allowed_rtmr2[1]: "nothex" is not 96 lower-case hex`)
	var res struct {
		Files []policyFileResult `json:"files"`
		Valid bool               `json:"valid"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.Valid || len(res.Files) != 1 || !strings.Contains(res.Files[0].Error, "allowed_rtmr2[1]") {
		t.Errorf("--json = %s (%v)", stdout, err)
	}

	// A policy under another profile's file name.
	locked, _ := os.ReadFile(paths[2])
	misfiled := policyWrite(t, t.TempDir(), "attestation-policy-debug.json", string(locked))
	code, _, stderr = catalogCLI(t, nil, "policy", "validate", misfiled)
	catalogExpect(t, code, stderr, 10, `profile: "locked-read-only", but the file name says "debug"`)

	// Profile isolation: the locked-read-only policy also accepts the debug node.
	isoDir := t.TempDir()
	debugPolicy, _ := policy.LoadFile(paths[0])
	lockedPolicy, _ := policy.LoadFile(paths[2])
	lockedPolicy.AllowedMRTD = append(lockedPolicy.AllowedMRTD, debugPolicy.AllowedMRTD...)
	lockedPolicy.AllowedRTMR0 = append(lockedPolicy.AllowedRTMR0, debugPolicy.AllowedRTMR0...)
	lockedPolicy.AllowedRTMR1 = append(lockedPolicy.AllowedRTMR1, debugPolicy.AllowedRTMR1...)
	lockedPolicy.AllowedRTMR2 = append(lockedPolicy.AllowedRTMR2, debugPolicy.AllowedRTMR2...)
	lockedPolicy.AllowedRTMR3 = append(lockedPolicy.AllowedRTMR3, debugPolicy.AllowedRTMR3...)
	leaky := filepath.Join(isoDir, release.LockedReadOnly.PolicyFile())
	if err := lockedPolicy.WriteFile(leaky); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = catalogCLI(t, nil, "--json", "policy", "validate", paths[0], paths[1], leaky)
	catalogExpect(t, code, stderr, 10, "[FAIL] profile isolation: the debug and locked-read-only policies", debugPolicy.AllowedMRTD[0])
	if !strings.Contains(stdout, `"set": {`) || !strings.Contains(stdout, `"valid": false`) {
		t.Errorf("--json set result: %s", stdout)
	}

	// Two policies for one profile; a KMS version mismatch.
	code, _, stderr = catalogCLI(t, nil, "policy", "validate", paths[0], paths[0])
	catalogExpect(t, code, stderr, 10, "a second policy for profile debug")
	other := filepath.Join(t.TempDir(), release.DebugReadOnly.PolicyFile())
	code, _, stderr = catalogCLI(t, nil, "policy", "generate", "--kms-version", "1.3.0", "--profile", "debug-read-only", "--measurements", n, "-o", other)
	catalogExpect(t, code, stderr, 0)
	code, _, stderr = catalogCLI(t, nil, "policy", "validate", paths[0], other)
	catalogExpect(t, code, stderr, 10, "kms_version: the debug policy is for 1.2.0 but the debug-read-only policy is for 1.3.0")

	// Unreadable file: general error, the other files are still checked.
	code, _, stderr = catalogCLI(t, nil, "policy", "validate", filepath.Join(dir, "missing.json"), paths[1])
	catalogExpect(t, code, stderr, 1, "[ERROR]", "missing.json", "[PASS] "+paths[1])
	code, _, stderr = catalogCLI(t, nil, "policy", "validate")
	catalogExpect(t, code, stderr, 2, "requires at least 1 arg")

	// A non-canonical but valid file passes with a note.
	var pretty map[string]any
	_ = json.Unmarshal(data, &pretty)
	compact, _ := json.Marshal(pretty)
	code, _, stderr = catalogCLI(t, nil, "policy", "validate", policyWrite(t, t.TempDir(), "attestation-policy-debug.json", string(compact)))
	catalogExpect(t, code, stderr, 0, "not in canonical form", "[PASS]")
}

func TestPolicyPromoteCommand(t *testing.T) {
	n := policyMeasurements(t, "1.2.0", release.Profiles()...)
	rcDir := t.TempDir()
	rc := filepath.Join(rcDir, release.Debug.PolicyFile())
	code, _, stderr := catalogCLI(t, nil, "policy", "generate", "--kms-version", "1.2.0", "--profile", "debug", "-o", rc)
	catalogExpect(t, code, stderr, 0, "policy_not_ready")

	// Promote in place.
	code, stdout, stderr := catalogCLI(t, nil, "policy", "promote", rc, "--measurements", n, "-o", rc)
	catalogExpect(t, code, stderr, 0, "[PASS] promoted", "ready", "from node image(s) 1.2.0")
	if stdout != "" {
		t.Errorf("stdout with -o: %q", stdout)
	}
	code, _, stderr = catalogCLI(t, nil, "policy", "validate", "--stable", rc)
	catalogExpect(t, code, stderr, 0, "[PASS]")

	// To stdout, keeping the lists of a measured rc policy.
	code, stdout, stderr = catalogCLI(t, nil, "policy", "promote", rc)
	catalogExpect(t, code, stderr, 0, "[PASS]")
	if p, err := policy.Load(strings.NewReader(stdout)); err != nil || p.NotReady() {
		t.Errorf("promoted to stdout: %v %+v", err, p)
	}

	// Refusals: no measurements at all; measurements without the profile; a broken policy.
	bare := filepath.Join(t.TempDir(), release.Debug.PolicyFile())
	catalogCLI(t, nil, "policy", "generate", "--kms-version", "1.2.0", "--profile", "debug", "-o", bare)
	code, _, stderr = catalogCLI(t, nil, "policy", "promote", bare)
	catalogExpect(t, code, stderr, 10, "[FAIL]", "allowed_mrtd: empty; a final policy needs verified measurements")
	other := policyMeasurements(t, "1.1.0", release.LockedReadOnly)
	code, _, stderr = catalogCLI(t, nil, "policy", "promote", bare, "--measurements", other)
	catalogExpect(t, code, stderr, 10, "none of the node releases [1.1.0] has measurements for profile debug")
	broken := policyWrite(t, t.TempDir(), "p.json", `{"schema_version":"1"}`)
	code, _, stderr = catalogCLI(t, nil, "policy", "promote", broken, "--measurements", n)
	catalogExpect(t, code, stderr, 10, "[FAIL]", "allowed_mrtd: missing")
	code, _, stderr = catalogCLI(t, nil, "policy", "promote", filepath.Join(t.TempDir(), "none.json"))
	catalogExpect(t, code, stderr, 1, "[ERROR]")
	code, _, stderr = catalogCLI(t, nil, "policy", "promote", bare, "--measurements", filepath.Join(t.TempDir(), "none.json"))
	catalogExpect(t, code, stderr, 1, "[ERROR]")
	code, _, stderr = catalogCLI(t, nil, "policy", "promote")
	catalogExpect(t, code, stderr, 2)
	code, _, stderr = catalogCLI(t, nil, "policy", "promote", bare, "--measurements", n, "-o", filepath.Join(fileDir(t), "dir.json"))
	catalogExpect(t, code, stderr, 1, "[ERROR]")
}
