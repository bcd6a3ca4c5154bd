package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// sumCLI runs the CLI and returns exit code, stdout and stderr.
func sumCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr, func(k string) string { return env[k] })
	return code, stdout.String(), stderr.String()
}

// sumExpect asserts the exit code and that stderr holds every want string.
func sumExpect(t *testing.T, code int, stderr string, wantCode int, want ...string) {
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

// sumRelease writes a small release directory.
func sumRelease(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"sbom.spdx.json":               `{"spdxVersion":"SPDX-2.3"}`,
		"published-mrtds.json":         `{}`,
		"release-notes.md":             "# notes\n",
		"sbom.spdx.json.sigstore.json": `{}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestChecksumsWriteAndVerify(t *testing.T) {
	dir := sumRelease(t)
	code, _, stderr := sumCLI(t, nil, "checksums", "write", "--dir", dir)
	sumExpect(t, code, stderr, outcome.OK, "[PASS] wrote "+filepath.Join(dir, "checksums.sha256")+" (3 files)")
	data, err := os.ReadFile(filepath.Join(dir, "checksums.sha256"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], "  published-mrtds.json") || !strings.HasSuffix(lines[2], "  sbom.spdx.json") {
		t.Fatalf("checksums.sha256:\n%s", data)
	}
	code, stdout, stderr := sumCLI(t, nil, "--json", "checksums", "verify", "--dir", dir)
	sumExpect(t, code, stderr, outcome.OK, "[PASS] sbom.spdx.json: sha256 ", "all 3 files verified")
	var rep struct {
		OK      bool `json:"ok"`
		Results []struct{ Name, Status string }
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || !rep.OK || len(rep.Results) != 3 {
		t.Fatalf("json %q: %v", stdout, err)
	}
	// Named files only, to stdout.
	code, stdout, stderr = sumCLI(t, nil, "checksums", "write", "--dir", dir, "-o", "-", "release-notes.md")
	sumExpect(t, code, stderr, outcome.OK)
	if !strings.HasSuffix(stdout, "  release-notes.md\n") || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("stdout %q", stdout)
	}
	// Every problem at once; missing wins the exit code.
	if err := os.WriteFile(filepath.Join(dir, "sbom.spdx.json"), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "release-notes.md")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "extra.bin"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = sumCLI(t, nil, "checksums", "verify", "--dir", dir)
	sumExpect(t, code, stderr, outcome.MissingAsset,
		"[FAIL] sbom.spdx.json: SHA-256 mismatch", "[FAIL] release-notes.md: listed in the checksum file but missing",
		"[FAIL] extra.bin: present but not listed", "[PASS] published-mrtds.json", "3 of 4 files failed")
	// Without the missing file: mismatch and unlisted are verification failures.
	if err := os.WriteFile(filepath.Join(dir, "release-notes.md"), []byte("# notes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = sumCLI(t, nil, "checksums", "verify", "--dir", dir, "--allow-unlisted", "*.bin")
	sumExpect(t, code, stderr, outcome.VerificationFailed, "[FAIL] sbom.spdx.json")
	if strings.Contains(stderr, "extra.bin") {
		t.Fatalf("allowed file reported:\n%s", stderr)
	}
}

func TestChecksumsVerifyExternalFile(t *testing.T) {
	dir := sumRelease(t)
	sums := filepath.Join(t.TempDir(), "SHA256SUMS")
	code, _, stderr := sumCLI(t, nil, "checksums", "write", "--dir", dir, "-o", sums)
	sumExpect(t, code, stderr, outcome.OK)
	code, _, stderr = sumCLI(t, nil, "checksums", "verify", "--dir", dir, "--file", sums)
	sumExpect(t, code, stderr, outcome.OK, "all 3 files verified")
}

func TestChecksumsErrors(t *testing.T) {
	dir := sumRelease(t)
	empty := t.TempDir()
	bad := filepath.Join(t.TempDir(), "bad.sha256")
	if err := os.WriteFile(bad, []byte("nonsense\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Malformed checksum files are outside input: a verification failure (10) naming the line.
	digest := strings.Repeat("ab", 32)
	malformed := map[string]string{
		"bad-hex.sha256":      digest + "  a\n" + strings.Repeat("zz", 32) + "  b\n",
		"short.sha256":        digest[:62] + "  a\n",
		"duplicate.sha256":    digest + "  a\n" + digest + "  b\n" + digest + "  a\n",
		"non-relative.sha256": digest + "  ../etc/passwd\n",
	}
	malformedDir := t.TempDir()
	malformedLine := map[string]string{"bad-hex.sha256": "line 2", "short.sha256": "line 1", "duplicate.sha256": "line 3", "non-relative.sha256": "line 1"}
	for name, content := range malformed {
		if err := os.WriteFile(filepath.Join(malformedDir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"write without dir", []string{"checksums", "write"}, outcome.Usage, "--dir is required"},
		{"write missing dir", []string{"checksums", "write", "--dir", filepath.Join(dir, "nope")}, outcome.Usage, "does not exist"},
		{"write empty dir", []string{"checksums", "write", "--dir", empty}, outcome.Usage, "no files to checksum"},
		{"write missing file", []string{"checksums", "write", "--dir", dir, "-o", "-", "gone.json"}, outcome.MissingAsset, "gone.json: file not found"},
		{"write bad name", []string{"checksums", "write", "--dir", dir, "-o", "-", "../x"}, outcome.Usage, "not a clean relative path"},
		{"verify without dir", []string{"checksums", "verify"}, outcome.Usage, "--dir is required"},
		{"verify without checksum file", []string{"checksums", "verify", "--dir", dir}, outcome.MissingAsset, "checksums.sha256 not found"},
		{"verify malformed file", []string{"checksums", "verify", "--dir", dir, "--file", bad}, outcome.VerificationFailed, "bad.sha256: checksum file line 1"},
		{"verify stray argument", []string{"checksums", "verify", "--dir", dir, "x"}, outcome.Usage, "unknown command"},
		{"no subcommand", []string{"checksums"}, outcome.Usage, "subcommand is required"},
	}
	for name := range malformed {
		tests = append(tests, struct {
			name string
			args []string
			code int
			want string
		}{"verify " + name, []string{"checksums", "verify", "--dir", dir, "--file", filepath.Join(malformedDir, name)}, outcome.VerificationFailed, name + ": checksum file " + malformedLine[name]})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := sumCLI(t, nil, tt.args...)
			sumExpect(t, code, stderr, tt.code, tt.want)
		})
	}
	// A malformed pattern is a usage error once the checksum file parses.
	code, _, stderr := sumCLI(t, nil, "checksums", "write", "--dir", dir)
	sumExpect(t, code, stderr, outcome.OK)
	code, _, stderr = sumCLI(t, nil, "checksums", "verify", "--dir", dir, "--allow-unlisted", "[")
	sumExpect(t, code, stderr, outcome.Usage, `pattern "["`)
}
