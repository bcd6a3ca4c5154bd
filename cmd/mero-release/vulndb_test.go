package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// TestVulndbCommands: `vulndb build` writes a grype v6 database from the repository's advisory
// list with grype's writer, `vulndb status` reads it offline; bad input is a usage error. (`vulndb
// update` is the only online command and is not run here.)
func TestVulndbCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	code, _, stderr := catalogCLI(t, nil, "vulndb", "build", "--advisories", filepath.Join("..", "..", "vulndb", "advisories.json"), "--dir", dir)
	catalogExpect(t, code, stderr, outcome.OK, "[PASS] vulndb: built")
	code, stdout, stderr := catalogCLI(t, nil, "--json", "vulndb", "status", "--dir", dir)
	catalogExpect(t, code, stderr, outcome.OK)
	var info struct{ Schema, Built string }
	if err := json.Unmarshal([]byte(stdout), &info); err != nil || !strings.HasPrefix(info.Schema, "v6.") || info.Built == "" {
		t.Errorf("status --json %q: %v", stdout, err)
	}
	for _, args := range [][]string{
		{"vulndb", "status", "--dir", t.TempDir()},
		{"vulndb", "update"},
		{"vulndb", "build", "--dir", dir},
		{"vulndb", "build", "--advisories", filepath.Join(t.TempDir(), "missing.json"), "--dir", dir},
		{"release-kms", "--tag", "mero-kms-v1.3.0", "--fail-on", "severe"},
	} {
		code, _, stderr := catalogCLI(t, nil, args...)
		catalogExpect(t, code, stderr, outcome.Usage)
	}
}
