package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// TestVulndbCommands: `vulndb build` writes a grype v6 database from the repository's advisory
// list with grype's writer, `vulndb status` reads it offline; bad input is a usage error (`vulndb
// update` against a listing: TestVulndbUpdateFromMirror).
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

// TestVulndbUpdateFromMirror: a database built here, written as a listing by `vulndb mirror` and
// served on loopback, is installed by `vulndb update --listing-url` through grype's client; a
// second update finds nothing newer; an unreachable listing fails and keeps the installed one.
func TestVulndbUpdateFromMirror(t *testing.T) {
	built := filepath.Join(t.TempDir(), "built")
	code, _, stderr := catalogCLI(t, nil, "vulndb", "build", "--advisories", filepath.Join("..", "..", "vulndb", "advisories.json"), "--dir", built)
	catalogExpect(t, code, stderr, outcome.OK)
	mirror := t.TempDir()
	code, _, stderr = catalogCLI(t, nil, "vulndb", "mirror", "--dir", built, "--out", mirror)
	catalogExpect(t, code, stderr, outcome.OK, "[PASS] vulndb: "+mirror+" lists the grype database v6.")
	srv := httptest.NewServer(http.FileServer(http.Dir(mirror)))
	defer srv.Close()

	installed := filepath.Join(t.TempDir(), "vulndb")
	code, _, stderr = catalogCLI(t, nil, "vulndb", "update", "--dir", installed, "--listing-url", srv.URL)
	catalogExpect(t, code, stderr, outcome.OK, "(updated: true)")
	code, _, stderr = catalogCLI(t, nil, "vulndb", "update", "--dir", installed, "--listing-url", srv.URL+"/v6/latest.json")
	catalogExpect(t, code, stderr, outcome.OK, "(updated: false)")
	code, _, stderr = catalogCLI(t, nil, "vulndb", "update", "--dir", installed, "--listing-url", "http://127.0.0.1:1/databases")
	if code == outcome.OK || !strings.Contains(stderr, "listing") {
		t.Fatalf("unreachable listing: exit %d, %s", code, stderr)
	}
	code, stdout, stderr := catalogCLI(t, nil, "--json", "vulndb", "status", "--dir", installed)
	catalogExpect(t, code, stderr, outcome.OK)
	var info struct{ Schema, Built string }
	if err := json.Unmarshal([]byte(stdout), &info); err != nil || !strings.HasPrefix(info.Schema, "v6.") {
		t.Fatalf("status of the installed database %q: %v", stdout, err)
	}
	for _, args := range [][]string{
		{"vulndb", "mirror", "--dir", built},
		{"vulndb", "mirror", "--dir", t.TempDir(), "--out", t.TempDir()},
		{"vulndb", "update", "--dir", installed, "--listing-url", "file:///etc"},
	} {
		code, _, stderr := catalogCLI(t, nil, args...)
		catalogExpect(t, code, stderr, outcome.Usage)
	}
}
