package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is the Go module path of this repository.
const module = "github.com/calimero-network/mero-release"

// listedPackage is the part of `go list -json` output the import check reads.
type listedPackage struct {
	ImportPath string
	Imports    []string // direct imports of the non-test files
	Deps       []string // every package the non-test files depend on, transitively
	Error      *struct{ Err string }
}

// upwardRoots are the trees no package under pipeline/ may depend on.
func upwardRoots() []string { return []string{module + "/cmd", module + "/examples"} }

// isUpward reports whether path is in one of the upward trees (the tree itself or below it).
func isUpward(path string) bool {
	for _, root := range upwardRoots() {
		if path == root || strings.HasPrefix(path, root+"/") {
			return true
		}
	}
	return false
}

// upward lists, for every package, each upward package it imports directly or depends on
// through another package, as readable lines, sorted.
func upward(pkgs []listedPackage) []string {
	var out []string
	for _, p := range pkgs {
		for _, dep := range p.Deps {
			if !isUpward(dep) {
				continue
			}
			if slices.Contains(p.Imports, dep) {
				out = append(out, fmt.Sprintf("%s imports %s", p.ImportPath, dep))
			} else {
				out = append(out, fmt.Sprintf("%s depends on %s (through another package)", p.ImportPath, dep))
			}
		}
	}
	slices.Sort(out)
	return out
}

// decodeList reads the stream of JSON objects `go list -json` writes.
func decodeList(r io.Reader) ([]listedPackage, error) {
	dec := json.NewDecoder(r)
	var pkgs []listedPackage
	for {
		var p listedPackage
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return pkgs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode go list output: %w", err)
		}
		pkgs = append(pkgs, p)
	}
}

// TestPipelineImportsFlowOneWay lists every non-test package under pipeline/ with `go list`
// and fails if any imports — directly or through another package — anything under cmd/ or
// examples/. Test files may import examples (the sample KMS is what the E2E tests run).
func TestPipelineImportsFlowOneWay(t *testing.T) {
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Imports,Deps,Error", "./...")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list ./...: %v\n%s", err, stderr.String())
	}
	pkgs, err := decodeList(&stdout)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, p := range pkgs {
		if p.ImportPath != module+"/pipeline" && !strings.HasPrefix(p.ImportPath, module+"/pipeline/") {
			t.Fatalf("go list listed %s, which is not under %s/pipeline: is the module path still %s?", p.ImportPath, module, module)
		}
		if p.Error != nil {
			t.Logf("%s: %s", p.ImportPath, p.Error.Err)
		}
		paths = append(paths, p.ImportPath)
	}
	// The check must see the packages that once imported examples/, or it proves nothing.
	for _, want := range []string{"/pipeline/e2e", "/pipeline/flow", "/pipeline/measure"} {
		if !slices.Contains(paths, module+want) {
			t.Fatalf("go list did not list %s%s (listed %d packages)", module, want, len(paths))
		}
	}
	if bad := upward(pkgs); len(bad) > 0 {
		t.Errorf("pipeline/ must not import cmd/ or examples/ (imports flow one way; CONTRIBUTING.md):\n  %s", strings.Join(bad, "\n  "))
	}
}

func TestUpward(t *testing.T) {
	const m = module
	pkgs := []listedPackage{
		{ImportPath: m + "/pipeline/clean", Imports: []string{"fmt", m + "/pipeline/release"}, Deps: []string{"fmt", m + "/pipeline/release"}},
		{ImportPath: m + "/pipeline/direct", Imports: []string{m + "/examples/kms/server"}, Deps: []string{m + "/examples/kms/server", m + "/pipeline/policy"}},
		{ImportPath: m + "/pipeline/indirect", Imports: []string{m + "/pipeline/direct"}, Deps: []string{m + "/examples/kms/server", m + "/pipeline/direct"}},
		{ImportPath: m + "/pipeline/cli", Imports: []string{m + "/cmd/mero-release"}, Deps: []string{m + "/cmd/mero-release"}},
		{ImportPath: m + "/pipeline/root", Imports: []string{m + "/examples"}, Deps: []string{m + "/examples"}},
		{ImportPath: m + "/pipeline/lookalike", Imports: []string{m + "/examplesfoo", m + "/cmdline", m + "/pipeline/cmd"}, Deps: []string{m + "/examplesfoo", m + "/cmdline", m + "/pipeline/cmd"}},
	}
	want := []string{
		m + "/pipeline/cli imports " + m + "/cmd/mero-release",
		m + "/pipeline/direct imports " + m + "/examples/kms/server",
		m + "/pipeline/indirect depends on " + m + "/examples/kms/server (through another package)",
		m + "/pipeline/root imports " + m + "/examples",
	}
	if got := upward(pkgs); !slices.Equal(got, want) {
		t.Errorf("upward:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if got := upward(pkgs[:1]); len(got) != 0 {
		t.Errorf("a clean package is reported: %v", got)
	}
}

func TestDecodeList(t *testing.T) {
	pkgs, err := decodeList(strings.NewReader(`{"ImportPath":"a","Imports":["b"],"Deps":["b","c"]}
{"ImportPath":"b","Error":{"Err":"broken"}}`))
	if err != nil || len(pkgs) != 2 || pkgs[0].ImportPath != "a" || !slices.Equal(pkgs[0].Deps, []string{"b", "c"}) || pkgs[1].Error == nil || pkgs[1].Error.Err != "broken" {
		t.Fatalf("decodeList = %+v, %v", pkgs, err)
	}
	if _, err := decodeList(strings.NewReader(`{"ImportPath":`)); err == nil {
		t.Error("truncated output accepted")
	}
}
