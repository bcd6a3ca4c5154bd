package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/catalog"
)

// catalogCLI runs the CLI with env as the environment and returns exit code, stdout, stderr.
func catalogCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr, func(k string) string { return env[k] })
	return code, stdout.String(), stderr.String()
}

// catalogExpect asserts the exit code and that stderr contains every want string.
func catalogExpect(t *testing.T, code int, stderr string, wantCode int, want ...string) {
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

// catalogSeedFile copies the repository's seed catalog into a temporary directory.
func catalogSeedFile(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", catalog.DefaultFile))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), catalog.DefaultFile)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCatalogValidateCommand(t *testing.T) {
	good := catalogSeedFile(t)
	code, stdout, stderr := catalogCLI(t, nil, "catalog", "validate", good)
	catalogExpect(t, code, stderr, 0, "[PASS] "+good+": compatibility catalog valid (2 entries)")
	if strings.Contains(stderr, "[WARN]") || stdout != "" {
		t.Errorf("canonical seed: unexpected output %q / %q", stdout, stderr)
	}

	code, stdout, _ = catalogCLI(t, nil, "catalog", "validate", "--json", good)
	var res map[string]any
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != 0 || res["valid"] != true || res["canonical"] != true || res["entries"] != 2.0 {
		t.Errorf("--json = %d %s (%v)", code, stdout, err)
	}

	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := write("bad.json", `{"schema_version":"1","entries":[
		{"kms":"1.2.0","node_image":"1.2.0","profiles":["debug"],"tested":true},
		{"kms":"1.2.0","node_image":"1.1.0","profiles":["debug","prod"],"tested":true}]}`)
	code, _, stderr = catalogCLI(t, nil, "catalog", "validate", bad)
	catalogExpect(t, code, stderr, 10, "[FAIL]", `entries[1] (kms "1.2.0", node_image "1.1.0")`, `profiles[1]: unknown profile "prod"`)
	if strings.Contains(stderr, "[ERROR]") {
		t.Errorf("a reported failure must not be printed twice:\n%s", stderr)
	}

	untested := write("untested.json", `{"schema_version":"1","entries":[{"kms":"1.2.0","node_image":"1.2.0","profiles":["debug"]}]}`)
	code, stdout, stderr = catalogCLI(t, nil, "--json", "catalog", "validate", untested)
	catalogExpect(t, code, stderr, 10, "tested: missing")
	if !strings.Contains(stdout, `"valid": false`) {
		t.Errorf("--json failure output: %s", stdout)
	}

	syntax := write("syntax.json", "{\n\"schema_version\": \"1\",\n\"entries\": [}\n")
	code, _, stderr = catalogCLI(t, nil, "catalog", "validate", syntax)
	catalogExpect(t, code, stderr, 10, "line 3, column 13")

	unsorted := write("unsorted.json", `{"schema_version":"1","entries":[{"kms":"1.2.0","node_image":"1.1.0","profiles":["debug"],"tested":true},{"kms":"1.3.0","node_image":"1.1.0","profiles":["debug"],"tested":true}]}`)
	code, _, stderr = catalogCLI(t, nil, "catalog", "validate", unsorted)
	catalogExpect(t, code, stderr, 0, "[WARN]", "not in canonical form", "[PASS]")

	code, _, stderr = catalogCLI(t, nil, "catalog", "validate", filepath.Join(dir, "missing.json"))
	catalogExpect(t, code, stderr, 1, "[ERROR]", "missing.json")

	code, _, stderr = catalogCLI(t, nil, "catalog", "validate")
	catalogExpect(t, code, stderr, 2, "accepts 1 arg")
	code, _, stderr = catalogCLI(t, nil, "catalog")
	catalogExpect(t, code, stderr, 2, "subcommand is required")
	code, _, stderr = catalogCLI(t, nil, "catalog", "frobnicate")
	catalogExpect(t, code, stderr, 2, `unknown command "frobnicate"`)
}

func TestCatalogAddCommand(t *testing.T) {
	path := catalogSeedFile(t)
	code, _, stderr := catalogCLI(t, nil, "catalog", "add", "--kms", "1.3.0", "--node", "1.2.0", "--profiles", "locked-read-only,debug", "--notes", "KMS 1.3.0 with node 1.2.0", "--file", path)
	catalogExpect(t, code, stderr, 0, "[PASS]", "recorded kms 1.3.0 ↔ node image 1.2.0 (profiles debug, locked-read-only)")
	c, err := catalog.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Lists("1.3.0", "1.2.0", "debug") || c.Entries[0].KMS != "1.3.0" {
		t.Errorf("entry not recorded first: %+v", c.Entries)
	}
	canonical, _ := c.Marshal()
	if onDisk, _ := os.ReadFile(path); !bytes.Equal(onDisk, canonical) {
		t.Error("the file is not canonical after add")
	}

	// The same pair again: nothing to add, the file is untouched.
	before, _ := os.ReadFile(path)
	code, stdout, stderr := catalogCLI(t, nil, "--json", "catalog", "add", "--kms", "1.3.0", "--node", "1.2.0", "--profiles", "debug", "--file", path)
	catalogExpect(t, code, stderr, 0, "[INFO]", "nothing to add")
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("an unchanged catalog was rewritten differently")
	}
	if !strings.Contains(stdout, `"changed": false`) {
		t.Errorf("--json: %s", stdout)
	}

	// The file comes from COMPATIBILITY_CATALOG_PATH when --file is not given; a missing file is created.
	fresh := filepath.Join(t.TempDir(), "catalog.json")
	code, _, stderr = catalogCLI(t, map[string]string{"COMPATIBILITY_CATALOG_PATH": fresh}, "catalog", "add", "--kms", "2.0.0-rc.1", "--node", "2.0.0-rc.1", "--profiles", "debug")
	catalogExpect(t, code, stderr, 0, "creating it", "[PASS]")
	if _, err := catalog.LoadFile(fresh); err != nil {
		t.Errorf("created catalog: %v", err)
	}

	// A non-canonical file is rewritten canonically even when the pair is already there.
	messy := filepath.Join(t.TempDir(), "messy.json")
	if err := os.WriteFile(messy, []byte(`{"entries":[{"kms":"1.0.0","node_image":"1.0.0","profiles":["debug"],"tested":true}],"schema_version":"1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = catalogCLI(t, nil, "catalog", "add", "--kms", "1.0.0", "--node", "1.0.0", "--profiles", "debug", "--file", messy)
	catalogExpect(t, code, stderr, 0, "nothing to add")
	if data, _ := os.ReadFile(messy); !strings.HasPrefix(string(data), "{\n  \"schema_version\": \"1\",") {
		t.Errorf("not rewritten canonically:\n%s", data)
	}

	usage := [][]string{
		{"--node", "1.2.0", "--profiles", "debug"},
		{"--kms", "1.2", "--node", "1.2.0", "--profiles", "debug"},
		{"--kms", "1.2.0", "--node", "v1.2.0", "--profiles", "debug"},
		{"--kms", "1.2.0", "--node", "1.2.0", "--profiles", "debug,prod"},
		{"--kms", "1.2.0", "--node", "1.2.0"},
		{"--kms", "1.2.0", "--node", "1.2.0", "--profiles", "debug", "extra"},
		{"--bogus"},
	}
	for _, args := range usage {
		code, _, stderr := catalogCLI(t, nil, append([]string{"catalog", "add", "--file", path}, args...)...)
		catalogExpect(t, code, stderr, 2, "[ERROR]")
	}

	// A broken catalog is not overwritten.
	broken := filepath.Join(t.TempDir(), "broken.json")
	if err := os.WriteFile(broken, []byte(`{"schema_version":"9","entries":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = catalogCLI(t, nil, "catalog", "add", "--kms", "1.0.0", "--node", "1.0.0", "--profiles", "debug", "--file", broken)
	catalogExpect(t, code, stderr, 10, "[FAIL]", "schema_version")
	if data, _ := os.ReadFile(broken); string(data) != `{"schema_version":"9","entries":[]}` {
		t.Error("a broken catalog was overwritten")
	}
	// An unwritable location is a general error.
	code, _, stderr = catalogCLI(t, nil, "catalog", "add", "--kms", "1.0.0", "--node", "1.0.0", "--profiles", "debug", "--file", filepath.Join(fileDir(t), "dir.json"))
	catalogExpect(t, code, stderr, 1, "[ERROR]")
}

func TestCatalogQueryCommand(t *testing.T) {
	path := catalogSeedFile(t)
	code, stdout, stderr := catalogCLI(t, nil, "catalog", "query", "--kms", "1.2.0", "--file", path)
	catalogExpect(t, code, stderr, 0, "2 matching entries")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "node_image 1.2.0") || !strings.Contains(lines[1], "profiles locked-read-only") || !strings.Contains(lines[1], "notes Backward compat") {
		t.Errorf("query output:\n%s", stdout)
	}

	code, stdout, _ = catalogCLI(t, map[string]string{"COMPATIBILITY_CATALOG_PATH": path}, "catalog", "query", "--node", "1.1.0", "--json")
	var entries []catalog.Entry
	if err := json.Unmarshal([]byte(stdout), &entries); err != nil || code != 0 || len(entries) != 1 || entries[0].KMS != "1.2.0" {
		t.Errorf("--node --json = %d %s (%v)", code, stdout, err)
	}

	code, stdout, _ = catalogCLI(t, nil, "catalog", "query", "--node", "9.9.9", "--json", "--file", path)
	if code != 0 || strings.TrimSpace(stdout) != "[]" {
		t.Errorf("no counterparts: %d %q", code, stdout)
	}

	code, stdout, stderr = catalogCLI(t, nil, "catalog", "query", "--kms", "1.2.0", "--node", "1.1.0", "--file", path)
	catalogExpect(t, code, stderr, 0)
	if !strings.Contains(stdout, "tested true") {
		t.Errorf("pair output: %s", stdout)
	}
	code, _, stderr = catalogCLI(t, nil, "catalog", "query", "--kms", "1.2.0", "--node", "1.0.0", "--file", path)
	catalogExpect(t, code, stderr, 10, "[FAIL]", "no entry for kms 1.2.0 ↔ node image 1.0.0")

	code, _, stderr = catalogCLI(t, nil, "catalog", "query", "--file", path)
	catalogExpect(t, code, stderr, 2, "give --kms, --node or both")
	code, _, stderr = catalogCLI(t, nil, "catalog", "query", "--kms", "latest", "--file", path)
	catalogExpect(t, code, stderr, 2, "--kms:")
	code, _, stderr = catalogCLI(t, nil, "catalog", "query", "--kms", "1.2.0", "--file", filepath.Join(t.TempDir(), "none.json"))
	catalogExpect(t, code, stderr, 1, "[ERROR]")
}

// fileDir returns a path whose "directory" is a regular file: nothing can be written under it.
func fileDir(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
