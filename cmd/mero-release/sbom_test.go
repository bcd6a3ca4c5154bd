package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	spdxjson "github.com/spdx/tools-golang/json"
)

// artifactCLI runs the CLI with env as the environment and returns exit code, stdout, stderr.
func artifactCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr, func(k string) string { return env[k] })
	return code, stdout.String(), stderr.String()
}

const sbomCargoLock = `version = 3

[[package]]
name = "mero-kms-phala"
version = "1.3.0"
dependencies = ["serde"]

[[package]]
name = "serde"
version = "1.0.210"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "c8e3592472072e6e22e0a54d5904d9febf8508f65fb8552499a1abc7d1078c3a"
`

func TestSBOMCommand(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "Cargo.lock"), []byte(sbomCargoLock), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SOURCE_DATE_EPOCH": "1764072000"}
	out := filepath.Join(t.TempDir(), "sbom.spdx.json")

	code, stdout, stderr := artifactCLI(t, env, "sbom", "--input", src, "--kind", "dir", "--name", "mero-kms", "--version", "1.3.0", "-o", out, "--json")
	if code != 0 || !strings.Contains(stderr, "[PASS] wrote "+out+": SPDX 2.3, 3 packages") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || res["packages"] != 3.0 || !strings.Contains(res["namespace"].(string), "/spdxdocs/mero-kms-1.3.0-") {
		t.Errorf("--json result %q: %v", stdout, err)
	}
	written, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := spdxjson.Read(bytes.NewReader(written))
	if err != nil || doc.CreationInfo.Created != "2025-11-25T12:00:00Z" {
		t.Fatalf("SPDX reader: %v (created %v)", err, doc.CreationInfo)
	}

	// without -o the same bytes go to stdout
	code, stdout, stderr = artifactCLI(t, env, "sbom", "--input", src, "--kind", "dir", "--name", "mero-kms", "--version", "1.3.0")
	if code != 0 || stdout != string(written) {
		t.Errorf("stdout run: exit %d, same bytes %v; stderr:\n%s", code, stdout == string(written), stderr)
	}
}

func TestSBOMCommandErrors(t *testing.T) {
	src := t.TempDir()
	text := filepath.Join(src, "not-an-image.tar")
	if err := os.WriteFile(text, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SOURCE_DATE_EPOCH": "1764072000"}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no input", env, []string{"--kind", "dir", "--name", "n", "--version", "1"}, "--input is required"},
		{"no name", env, []string{"--input", src, "--kind", "dir", "--version", "1"}, "--name is required"},
		{"bad kind", env, []string{"--input", src, "--kind", "rpm", "--name", "n", "--version", "1"}, `kind "rpm": must be one of oci-archive, docker-archive, oci-dir, dir, packer-manifest`},
		{"no SOURCE_DATE_EPOCH", nil, []string{"--input", src, "--kind", "dir", "--name", "n", "--version", "1"}, "SOURCE_DATE_EPOCH is not set"},
		{"bad SOURCE_DATE_EPOCH", map[string]string{"SOURCE_DATE_EPOCH": "now"}, []string{"--input", src, "--kind", "dir", "--name", "n", "--version", "1"}, `SOURCE_DATE_EPOCH="now"`},
		{"missing input", env, []string{"--input", filepath.Join(src, "nope"), "--kind", "oci-archive", "--name", "n", "--version", "1"}, "no such file or directory"},
		{"not an image", env, []string{"--input", text, "--kind", "oci-archive", "--name", "n", "--version", "1"}, "not a readable oci-archive"},
		{"extra argument", env, []string{"--input", src, "--kind", "dir", "--name", "n", "--version", "1", "stray"}, "unknown command"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := artifactCLI(t, c.env, append([]string{"sbom"}, c.args...)...)
			if code != 2 || !strings.Contains(stderr, "[ERROR]") || !strings.Contains(stderr, c.want) || stdout != "" {
				t.Errorf("exit %d, want 2 with [ERROR] %q; stdout %q, stderr:\n%s", code, c.want, stdout, stderr)
			}
		})
	}
}
