package lifecycle

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ciOnly are the flags the release workflows pass that the local lifecycle replaces by its
// defaults: GitHub Releases and the catalog pull request instead of the state's store and
// catalog, keyless signing instead of the state's key pair, GHCR, Packer on GCP instead of the
// simulator, the KMS of E2E on Phala Cloud instead of a local process, and the workflow run the
// provenance names as its builder (locally the builder is "local").
var ciOnly = []string{"github-repository", "github-workflow-ref", "github-sha", "github-run-id", "registry", "registry-username", "ghcr-token", "catalog-pr", "keyless",
	"actions-id-token-request-url", "actions-id-token-request-token", "provider", "gcp-project", "gcp-zone",
	"gcp-service-account-key", "build", "image-family", "kms-provider", "phala-dstack-url", "phala-api-key"}

// localOnly are the flags dagger-lifecycle.sh passes that the workflows do not need: the
// previous call's state, the scratch history (the workflows' is the checkout), the prebuilt KMS
// binary (no registry to compile in), the hotfix's node image (the workflows build theirs), and
// the vulnerability database listing on loopback (the workflows read grype's public listing).
var localOnly = []string{"state", "history", "kms-binary", "image", "vuln-db-listing"}

// neither are flags no release call may pass: the notes come from the notes convention
// (release-notes/<tag>.md) and the counterpart is the newest published release.
var neither = []string{"author-notes", "counterpart"}

// TestWorkflowCallsAreTheLifecycleScript: the release workflows' `dagger call` lines and the
// calls of scripts/ci/dagger-lifecycle.sh (which .ci/run runs on a real engine) call the same
// functions with the same flags, but for the documented CI-only and local-only ones; none
// passes author notes (both read release-notes/<tag>.md) or a counterpart.
func TestWorkflowCallsAreTheLifecycleScript(t *testing.T) {
	root := filepath.Join("..", "..")
	workflows := map[string]string{
		"release-kms":        filepath.Join(root, ".github", "workflows", "release-kms-phala.yaml"),
		"release-node-image": filepath.Join(root, ".github", "workflows", "release-node-image-gcp.yaml"),
	}
	script := scriptCalls(t, filepath.Join(root, "scripts", "ci", "dagger-lifecycle.sh"))
	for fn, file := range workflows {
		wf := workflowCall(t, file, fn)
		local, ok := script[fn]
		if !ok {
			t.Errorf("dagger-lifecycle.sh does not call %s, which %s calls", fn, file)
			continue
		}
		for _, f := range []string{"tag", "version"} {
			if !slices.Contains(wf, f) || !slices.Contains(local, f) {
				t.Errorf("%s: --%s missing (workflow %v, script %v)", fn, f, wf, local)
			}
		}
		for _, f := range wf {
			if !slices.Contains(local, f) && !slices.Contains(ciOnly, f) {
				t.Errorf("%s: %s passes --%s, which dagger-lifecycle.sh does not run and is not a documented CI-only flag", fn, file, f)
			}
		}
		for _, f := range local {
			if !slices.Contains(wf, f) && !slices.Contains(localOnly, f) {
				t.Errorf("%s: dagger-lifecycle.sh passes --%s, which %s does not and is not a documented local-only flag", fn, f, file)
			}
		}
		for _, f := range neither {
			if slices.Contains(wf, f) || slices.Contains(local, f) {
				t.Errorf("%s: --%s is passed; the notes come from release-notes/<tag>.md and the counterpart is the newest published release", fn, f)
			}
		}
	}
}

// workflowCall returns the flags of the `dagger call FN …` in the args of a workflow step.
func workflowCall(t *testing.T, file, fn string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	in := false
	indent := 0
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "args: >-") || strings.HasPrefix(trimmed, "args: >"):
			in, indent = true, len(line)-len(strings.TrimLeft(line, " "))
			continue
		case in && (trimmed == "" || len(line)-len(strings.TrimLeft(line, " ")) <= indent):
			in = false
		}
		if in {
			args = append(args, strings.Fields(trimmed)...)
		}
	}
	i := slices.Index(args, fn)
	if i < 0 {
		t.Fatalf("%s: no dagger call %s in a step's args", file, fn)
	}
	return flagNames(args[i+1:])
}

// scriptCalls returns the flags of each `dcall release-…` of the script, by function.
func scriptCalls(t *testing.T, file string) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	text := strings.ReplaceAll(string(data), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		fields := strings.Fields(line)
		i := slices.Index(fields, "dcall")
		if i < 0 || i+1 >= len(fields) || !strings.HasPrefix(fields[i+1], "release-") {
			continue
		}
		rest := fields[i+2:]
		if j := slices.Index(rest, "export"); j >= 0 {
			rest = rest[:j]
		}
		out[fields[i+1]] = flagNames(rest)
	}
	return out
}

// flagNames lists the --flags among args (names only, sorted, once each).
func flagNames(args []string) []string {
	var names []string
	for _, a := range args {
		if name, ok := strings.CutPrefix(a, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}
