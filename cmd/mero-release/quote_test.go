package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/tdx"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

const (
	quoteExampleImage = "../../examples/node-image"
	quoteGCEQuote     = "../../pipeline/tdx/testdata/gce-cos-113-quote.dat"
	quoteGCECCEL      = "../../pipeline/tdx/testdata/gce-cos-113-ccel.dat"
	quoteIntelQuote   = "../../pipeline/tdx/testdata/intel-spr-e4-quote.dat"
	// quoteAt is inside the validity of the sample quotes' PCK certificates.
	quoteAt = "2025-01-01T00:00:00Z"
)

// quoteCLI runs the CLI with stdin and env and returns exit code, stdout, stderr.
func quoteCLI(t *testing.T, stdin []byte, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, bytes.NewReader(stdin), &stdout, &stderr, func(k string) string { return env[k] })
	return code, stdout.String(), stderr.String()
}

func quoteExpect(t *testing.T, code int, stderr string, wantCode int, want ...string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("exit code %d, want %d; stderr:\n%s", code, wantCode, stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr does not contain %q:\n%s", w, stderr)
		}
	}
}

// quoteSimFiles produces a simulator quote, its event log and the root with the CLI.
func quoteSimFiles(t *testing.T, profile string, extra ...string) (dir, quote, log, root string) {
	t.Helper()
	dir = t.TempDir()
	quote, log, root = filepath.Join(dir, "q.bin"), filepath.Join(dir, "log.json"), filepath.Join(dir, "root.pem")
	args := append([]string{"tdxsim", "quote", "--image", quoteExampleImage, "--profile", profile, "--report-data", "cafe", "-o", quote, "--event-log", log}, extra...)
	code, _, stderr := quoteCLI(t, nil, nil, args...)
	quoteExpect(t, code, stderr, 0, "wrote quote "+quote, "wrote event log "+log)
	code, _, stderr = quoteCLI(t, nil, nil, "tdxsim", "root", "-o", root)
	quoteExpect(t, code, stderr, 0, "wrote simulator root certificate")
	return dir, quote, log, root
}

func TestTdxsimQuoteAndParseQuote(t *testing.T) {
	_, quote, log, root := quoteSimFiles(t, "debug-read-only")
	img, err := tdxsim.LoadImage(quoteExampleImage, "debug-read-only")
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := tdxsim.Measure(img)
	if err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := quoteCLI(t, nil, nil, "parse-quote", quote, "--verify", "--trusted-root", root, "--event-log", log)
	quoteExpect(t, code, stderr, 0, "[PASS]", "signature chain verified against the --trusted-root", "replays to RTMR0-3")
	for _, f := range want.Hex().Fields() {
		if !strings.Contains(stdout, f[0]) || !strings.Contains(stdout, f[1]) {
			t.Errorf("stdout lacks %s %s:\n%s", f[0], f[1], stdout)
		}
	}
	if !strings.Contains(stdout, "report_data   cafe0000") {
		t.Errorf("report data not printed:\n%s", stdout)
	}

	// --json, from stdin, --trusted-root alone implies --verify.
	raw, err := os.ReadFile(quote)
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = quoteCLI(t, raw, nil, "parse-quote", "-", "--trusted-root", root, "--json")
	quoteExpect(t, code, stderr, 0, "[PASS]")
	var res struct {
		tdx.HexMeasurements
		Verified    bool   `json:"verified"`
		QuoteSHA256 string `json:"quote_sha256"`
		ReportData  string `json:"report_data"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("json: %v\n%s", err, stdout)
	}
	if res.HexMeasurements != want.Hex() || !res.Verified || len(res.QuoteSHA256) != 64 || !strings.HasPrefix(res.ReportData, "cafe00") {
		t.Errorf("json result %+v", res)
	}

	// Without --verify nothing is checked and the measurements are printed.
	code, stdout, stderr = quoteCLI(t, nil, nil, "parse-quote", quote)
	quoteExpect(t, code, stderr, 0, "TDX v4 quote")
	if strings.Contains(stderr, "[PASS]") || !strings.Contains(stdout, want.MRTDHex()) {
		t.Errorf("unverified parse: stdout %s stderr %s", stdout, stderr)
	}
}

func TestParseQuoteVerificationFailures(t *testing.T) {
	dir, quote, _, root := quoteSimFiles(t, "debug")
	raw, err := os.ReadFile(quote)
	if err != nil {
		t.Fatal(err)
	}
	tampered := filepath.Join(dir, "tampered.bin")
	bad := append([]byte(nil), raw...)
	bad[tdx.HeaderSize+0x88] ^= 1 // first MRTD byte
	if err := os.WriteFile(tampered, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	otherRoot := filepath.Join(dir, "other.pem")
	code, _, stderr := quoteCLI(t, nil, map[string]string{"MERO_TDXSIM_SEED": "another platform"}, "tdxsim", "root", "-o", otherRoot)
	quoteExpect(t, code, stderr, 0)
	locked := filepath.Join(dir, "locked.json")
	code, _, stderr = quoteCLI(t, nil, nil, "tdxsim", "quote", "--image", quoteExampleImage, "--profile", "locked-read-only", "-o", filepath.Join(dir, "l.bin"), "--event-log", locked)
	quoteExpect(t, code, stderr, 0)
	garbage := filepath.Join(dir, "garbage.bin")
	if err := os.WriteFile(garbage, []byte("not a quote"), 0o644); err != nil {
		t.Fatal(err)
	}
	badLog := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(badLog, []byte(`[{"imr":7,"digest":"00"}]`), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"tampered body", []string{"parse-quote", tampered, "--trusted-root", root}, []string{"[FAIL]", "unable to verify message digest"}},
		{"Intel root", []string{"parse-quote", quote, "--verify"}, []string{"[FAIL]", "unknown authority"}},
		{"other authority's root", []string{"parse-quote", quote, "--trusted-root", otherRoot}, []string{"[FAIL]", "unknown authority"}},
		{"another profile's event log", []string{"parse-quote", quote, "--event-log", locked}, []string{"[FAIL]", "rtmr2 mismatch: event log replays to"}},
		{"malformed quote", []string{"parse-quote", garbage}, []string{"[FAIL]", "quote is 11 bytes"}},
		{"malformed event log", []string{"parse-quote", quote, "--event-log", badLog}, []string{"[FAIL]", "event 0: imr: 7"}},
		{"expired at --at", []string{"parse-quote", quote, "--trusted-root", root, "--at", "2099-01-01T00:00:00Z"}, []string{"[FAIL]", "expired"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := quoteCLI(t, nil, nil, tc.args...)
			quoteExpect(t, code, stderr, 10, tc.want...)
			if stdout != "" {
				t.Errorf("measurements printed for a failed check:\n%s", stdout)
			}
			if strings.Count(stderr, tc.want[1]) != 1 {
				t.Errorf("failure printed more than once:\n%s", stderr)
			}
		})
	}
	// --json still reports the failure as a result.
	code, stdout, stderr := quoteCLI(t, nil, nil, "parse-quote", tampered, "--trusted-root", root, "--json")
	quoteExpect(t, code, stderr, 10)
	var res map[string]any
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || res["verified"] != false || !strings.Contains(res["error"].(string), "verify TDX quote") {
		t.Errorf("json failure result: %v %s", err, stdout)
	}
}

func TestParseQuoteRealSamples(t *testing.T) {
	code, stdout, stderr := quoteCLI(t, nil, nil, "parse-quote", quoteGCEQuote, "--verify", "--at", quoteAt, "--event-log", quoteGCECCEL)
	quoteExpect(t, code, stderr, 0, "verified against Intel SGX root", "(43 events) replays to RTMR0-3")
	if !strings.Contains(stdout, "mrtd          dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba41394c7717cb2735396c1d04231f94a") {
		t.Errorf("GCE MRTD not printed:\n%s", stdout)
	}
	code, stdout, stderr = quoteCLI(t, nil, nil, "parse-quote", quoteIntelQuote, "--verify", "--at", quoteAt)
	quoteExpect(t, code, stderr, 0, "[PASS]")
	if !strings.Contains(stdout, "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d7215cbb") {
		t.Errorf("Intel MRTD not printed:\n%s", stdout)
	}
}

func TestQuoteCommandUsageErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "x.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "q.bin")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no file", []string{"parse-quote"}, "accepts 1 arg"},
		{"missing file", []string{"parse-quote", filepath.Join(dir, "nope")}, "no such file"},
		{"missing root", []string{"parse-quote", quoteIntelQuote, "--trusted-root", filepath.Join(dir, "nope.pem")}, "--trusted-root:"},
		{"root not PEM", []string{"parse-quote", quoteIntelQuote, "--trusted-root", notPEM}, "no PEM CERTIFICATE block"},
		{"bad --at", []string{"parse-quote", quoteIntelQuote, "--at", "yesterday"}, "--at: \"yesterday\" is not an RFC 3339 time"},
		{"missing event log", []string{"parse-quote", quoteIntelQuote, "--event-log", filepath.Join(dir, "nope.json")}, "--event-log:"},
		{"unknown flag", []string{"parse-quote", quoteIntelQuote, "--frobnicate"}, "unknown flag"},
		{"tdxsim alone", []string{"tdxsim"}, "a subcommand is required"},
		{"quote without -o", []string{"tdxsim", "quote", "--image", quoteExampleImage, "--profile", "debug"}, "-o/--output is required"},
		{"quote without image", []string{"tdxsim", "quote", "-o", out}, "--image and --profile are required"},
		{"unknown profile", []string{"tdxsim", "quote", "--image", quoteExampleImage, "--profile", "prod", "-o", out}, "prod.json: no such file"},
		{"odd report data", []string{"tdxsim", "quote", "--image", quoteExampleImage, "--profile", "debug", "--report-data", "abc", "-o", out}, "--report-data: encoding/hex: odd length"},
		{"long report data", []string{"tdxsim", "quote", "--image", quoteExampleImage, "--profile", "debug", "--report-data", strings.Repeat("00", 65), "-o", out}, "--report-data: 65 bytes, at most 64"},
		{"bad rtmr3", []string{"tdxsim", "quote", "--image", quoteExampleImage, "--profile", "debug", "--rtmr3", "novalue", "-o", out}, `--rtmr3 "novalue": want EVENT=VALUE`},
		{"measure without profile", []string{"tdxsim", "measure", "--image", quoteExampleImage}, "--image and --profile are required"},
		{"root with args", []string{"tdxsim", "root", "extra"}, "unknown command"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := quoteCLI(t, nil, nil, tc.args...)
			quoteExpect(t, code, stderr, 2, tc.want)
		})
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a failed quote command wrote %s", out)
	}
}

func TestTdxsimRootAndMeasure(t *testing.T) {
	auth, err := tdxsim.NewAuthority([]byte(tdxsim.DefaultSeed))
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := quoteCLI(t, nil, nil, "tdxsim", "root")
	quoteExpect(t, code, stderr, 0)
	if stdout != string(auth.RootPEM()) {
		t.Errorf("tdxsim root is not the default authority's root:\n%s", stdout)
	}
	code, fromEnv, stderr := quoteCLI(t, nil, map[string]string{"MERO_TDXSIM_SEED": "x"}, "tdxsim", "root")
	quoteExpect(t, code, stderr, 0)
	code, fromFlag, stderr := quoteCLI(t, nil, nil, "tdxsim", "root", "--seed", "x")
	quoteExpect(t, code, stderr, 0)
	if fromEnv != fromFlag || fromEnv == stdout {
		t.Errorf("--seed/MERO_TDXSIM_SEED do not select the authority")
	}

	code, stdout, stderr = quoteCLI(t, nil, nil, "tdxsim", "measure", "--image", quoteExampleImage, "--profile", "locked-read-only", "--json")
	quoteExpect(t, code, stderr, 0)
	var res struct {
		Profile      string              `json:"profile"`
		Measurements tdx.HexMeasurements `json:"measurements"`
		EventLog     []tdx.Event         `json:"event_log"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	rtmrs, err := tdx.Replay(res.EventLog)
	if err != nil {
		t.Fatal(err)
	}
	if res.Profile != "locked-read-only" || tdx.RTMRName(2) != "rtmr2" || (tdx.Measurements{RTMR: rtmrs}).RTMRHex(2) != res.Measurements.RTMR2 {
		t.Errorf("measure --json: %+v", res)
	}
	code, stdout, stderr = quoteCLI(t, nil, nil, "tdxsim", "measure", "--image", quoteExampleImage, "--profile", "locked-read-only")
	quoteExpect(t, code, stderr, 0)
	if !strings.Contains(stdout, "rtmr2         "+res.Measurements.RTMR2) {
		t.Errorf("measure text output:\n%s", stdout)
	}
}

func TestTdxsimQuoteJSONAndRTMR3(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "q.bin")
	code, stdout, stderr := quoteCLI(t, nil, nil, "tdxsim", "quote", "--image", quoteExampleImage, "--profile", "debug", "-o", out,
		"--rtmr3", "compose-hash=sha256:abc", "--rtmr3", "app-id=x=y", "--json")
	quoteExpect(t, code, stderr, 0)
	var res struct {
		QuoteSHA256  string              `json:"quote_sha256"`
		Measurements tdx.HexMeasurements `json:"measurements"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	var zero [48]byte
	want := tdx.Extend(tdx.Extend(zero, tdx.Digest([]byte("sha256:abc"))), tdx.Digest([]byte("x=y")))
	if res.Measurements.RTMR3 != (tdx.Measurements{RTMR: [4][48]byte{3: want}}).RTMRHex(3) {
		t.Errorf("rtmr3 %s", res.Measurements.RTMR3)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	q, err := tdx.ParseQuote(raw)
	if err != nil {
		t.Fatal(err)
	}
	if q.SHA256() != res.QuoteSHA256 || q.RTMRs[3] != want {
		t.Errorf("written quote differs from the reported one")
	}
}
