package guard

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/calimero-network/mero-release/pipeline/internal/lazyre"
	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// maxFollowed bounds how many local actions and reusable workflows one check follows.
const maxFollowed = 256

// localUse is a `uses: ./…` of a workflow or action: a local composite action (a directory with
// action.yml) or a reusable workflow (a .yml file), relative to the repository root.
type localUse struct {
	file string // the calling file
	line int
	ref  string // "./.github/actions/setup"
}

// repoRoot is the repository root local uses are relative to: the directory above
// .github/workflows when dir is one, else dir itself.
func repoRoot(dir string) string {
	clean := filepath.Clean(dir)
	if filepath.Base(clean) == "workflows" && filepath.Base(filepath.Dir(clean)) == ".github" {
		return filepath.Dir(filepath.Dir(clean))
	}
	return clean
}

// followLocalUses scans every local action and reusable workflow the calls reach, transitively,
// each file once (scanned holds the files already checked). A call to a file that does not exist
// or leaves the repository is a usage error naming the caller's file:line.
func followLocalUses(root string, calls []localUse, scanned map[string]bool) ([]Finding, error) {
	var findings []Finding
	var errs []error
	for i := 0; i < len(calls); i++ {
		c := calls[i]
		path, err := resolveUse(root, c.ref)
		if err != nil {
			errs = append(errs, outcome.UsageErrorf("%s:%d: uses %s: %v", c.file, c.line, c.ref, err))
			continue
		}
		if scanned[path] {
			continue
		}
		if len(scanned) >= maxFollowed {
			errs = append(errs, outcome.UsageErrorf("%s:%d: uses %s: more than %d workflow and action files to follow", c.file, c.line, c.ref, maxFollowed))
			break
		}
		scanned[path] = true
		content, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: uses %s: %w", c.file, c.line, c.ref, err))
			continue
		}
		s, err := scanFile(path, content)
		findings = append(findings, s.findings...)
		calls = append(calls, s.uses...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return findings, errors.Join(errs...)
}

// resolveUse finds the file a local uses: names: the YAML file itself (a reusable workflow), or
// the action.yml / action.yaml of a directory (a composite action).
func resolveUse(root, ref string) (string, error) {
	rel := strings.TrimPrefix(ref, "./")
	if i := strings.IndexByte(rel, '@'); i >= 0 {
		rel = rel[:i] // a ref is ignored for local paths
	}
	path := filepath.Join(root, filepath.FromSlash(rel))
	if r, err := filepath.Rel(root, path); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", errors.New("leaves the repository")
	}
	info, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s not found: the guard cannot check what it runs", path)
		}
		return "", err
	}
	if !info.IsDir() {
		return filepath.Clean(path), nil
	}
	for _, name := range []string{"action.yml", "action.yaml"} {
		if _, err := os.Stat(filepath.Join(path, name)); err == nil {
			return filepath.Clean(filepath.Join(path, name)), nil
		}
	}
	return "", fmt.Errorf("%s has no action.yml", path)
}

// action walks an action's runs: the env of a Docker action, the steps of a composite one.
func (s *workflowScanner) action(runs *yaml.Node) {
	if runs == nil || runs.Kind != yaml.MappingNode {
		return
	}
	s.env(get(runs, "env"), "action env")
	s.steps(get(runs, "steps"), "composite action ", "")
}

// withValueRE finds "ALLOWED_X=" in an input's value: a line for $GITHUB_ENV handed to the callee.
var withValueRE = lazyre.New(`(?:^|[^A-Za-z0-9_$])(` + AllowedPrefix + `[A-Za-z0-9_]*)\s*=`)

// call records a local uses: to follow and flags the inputs passed with with: that carry an
// ALLOWED_* variable into the callee: an input named ALLOWED_* (input names are
// case-insensitive; an action sees it as INPUT_ALLOWED_*), or a value holding "ALLOWED_X=…".
func (s *workflowScanner) call(uses, with *yaml.Node, label string) {
	if ref := scalar(uses); strings.HasPrefix(ref, "./") {
		s.uses = append(s.uses, localUse{file: s.file, line: uses.Line, ref: ref})
	}
	for _, p := range pairs(with) {
		if p.key.Kind != yaml.ScalarNode {
			continue
		}
		if strings.HasPrefix(strings.ToUpper(p.key.Value), AllowedPrefix) {
			s.add(p.key.Line, strings.ToUpper(p.key.Value), label+" with: input")
		}
		v := resolve(p.value)
		if v == nil || v.Kind != yaml.ScalarNode {
			continue
		}
		r := scriptRef{s: s, node: v, value: v.Value, text: v.Value, where: label + " with: " + p.key.Value}
		for _, m := range withValueRE().FindAllStringSubmatchIndex(v.Value, -1) {
			r.add(m[2], m[3]-m[2], "value")
		}
	}
}
