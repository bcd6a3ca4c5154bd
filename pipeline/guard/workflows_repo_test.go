package guard_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"gopkg.in/yaml.v3"
	"mvdan.cc/sh/v3/syntax"

	"github.com/calimero-network/mero-release/pipeline/guard"
)

// The repository's workflows and Dagger module, relative to this package.
const (
	repoWorkflows = "../../.github/workflows"
	repoModule    = "../../.dagger"
)

// repoWorkflowFiles are the workflows the repository must have (DESIGN.md, SPEC §1, §4, §6).
func repoWorkflowFiles() []string {
	return []string{"release-kms-phala.yaml", "release-node-image-gcp.yaml", "release-auditor.yaml", "pr-guards.yaml"}
}

// TestRepoWorkflowsSetNoAllowedVariables runs the ALLOWED_* guard (SPEC §4.4) over the real
// workflows: no finding.
func TestRepoWorkflowsSetNoAllowedVariables(t *testing.T) {
	for _, name := range repoWorkflowFiles() {
		if _, err := os.Stat(filepath.Join(repoWorkflows, name)); err != nil {
			t.Errorf("workflow %s: %v", name, err)
		}
	}
	findings, err := guard.AllowedEnv(repoWorkflows)
	if err != nil || len(findings) != 0 {
		t.Fatalf("guard.AllowedEnv(%s) = %v, %v; want no finding", repoWorkflows, findings, err)
	}
}

// TestRepoWorkflowsAreThinDaggerCalls: every workflow only checks out and calls the Dagger module
// (thinProblems), and each grants what its pipeline needs.
func TestRepoWorkflowsAreThinDaggerCalls(t *testing.T) {
	module := daggerModule(t)
	grants := map[string]bool{}
	for _, name := range repoWorkflowFiles() {
		data, err := os.ReadFile(filepath.Join(repoWorkflows, name))
		if err != nil {
			t.Fatal(err)
		}
		problems, g := thinProblems(data, module)
		for _, p := range problems {
			t.Errorf("%s: %s", name, p)
		}
		for _, x := range g {
			grants[name+" "+x] = true
		}
	}
	for _, g := range []string{"release-kms-phala.yaml contents: write", "release-kms-phala.yaml id-token: write", "release-kms-phala.yaml packages: write",
		"release-node-image-gcp.yaml contents: write", "release-node-image-gcp.yaml id-token: write", "release-auditor.yaml contents: read", "pr-guards.yaml contents: read"} {
		if !grants[g] {
			t.Errorf("missing grant %s", g)
		}
	}
	for g := range grants {
		if (strings.HasPrefix(g, "release-auditor.yaml") || strings.HasPrefix(g, "pr-guards.yaml")) && strings.HasSuffix(g, "write") {
			t.Errorf("%s: a read-only workflow must not write", g)
		}
	}
}

// TestThinProblemsCatches: each way a workflow can grow logic or loosen its pins is reported.
func TestThinProblemsCatches(t *testing.T) {
	module := daggerModule(t)
	base, err := os.ReadFile(filepath.Join(repoWorkflows, "release-kms-phala.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := thinProblems(base, module); len(p) != 0 {
		t.Fatalf("the base workflow has problems: %v", p)
	}
	for _, tc := range []struct{ name, old, new, want string }{
		{"run step", "      - name: dagger call release-kms\n", "      - run: echo hi\n      - name: dagger call release-kms\n", "want exactly two steps"},
		{"run in the dagger step", "        uses: dagger/dagger-for-github@", "        run: echo hi\n        uses: dagger/dagger-for-github@", "a run: step"},
		{"checkout by tag", "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2", "actions/checkout@v4", "not pinned by a full commit SHA"},
		{"wrong version comment", "# v8.4.1", "# v8", "want @27b130bf0f79a7f6fbbbe0fbca6760dc9bb40a77 # v8.4.1"},
		{"other action", "dagger/dagger-for-github@27b130bf0f79a7f6fbbbe0fbca6760dc9bb40a77", "evil/runner@27b130bf0f79a7f6fbbbe0fbca6760dc9bb40a77", "not one of the allowed actions"},
		{"other engine", `version: "0.19.10"`, `version: "latest"`, "dagger version must be"},
		{"workflow permissions", "permissions: {}\n", "permissions: write-all\n", "top-level permissions must be {}"},
		{"no job permissions", "    permissions:\n      contents: write # create", "    env:\n      X: y # create", "explicit permissions"},
		{"broad permission", "      packages: write # push", "      actions: write # push", "permission actions"},
		{"no concurrency", "concurrency:\n  group: release-kms-phala-${{ github.ref_name }}\n  cancel-in-progress: false\n", "", "no concurrency group"},
		{"workflow env", "permissions: {}\n", "permissions: {}\nenv:\n  X: y\n", "workflow-level env"},
		{"expression in args", `--tag "$GITHUB_REF_NAME"`, `--tag ${{ github.ref_name }}`, "interpolates an expression"},
		{"a second command", "--keyless\n", "--keyless; curl evil\n", "one plain dagger call"},
		{"computation in args", `--version "$MERO_KMS_VERSION"`, `--version "$(cat VERSION)"`, "compute something"},
		{"unknown function", "            release-kms\n", "            release-everything\n", `no function "release-everything"`},
		{"unknown flag", "--keyless\n", "--keyless\n            --yolo\n", "has no --yolo"},
		{"secret as a value", "--ghcr-token env:GHCR_TOKEN", `--ghcr-token "$GHCR_TOKEN"`, "--ghcr-token"},
		{"value as a secret", `--registry "$GHCR_REGISTRY"`, "--registry env:GHCR_REGISTRY", "--registry"},
		{"secret renamed", "GHCR_TOKEN: ${{ secrets.GHCR_TOKEN }}", "TOKEN2: ${{ secrets.GHCR_TOKEN }}", "TOKEN2"},
		{"ALLOWED env", "GHCR_REGISTRY: ${{ vars.GHCR_REGISTRY }}", "ALLOWED_MRTD: ${{ vars.GHCR_REGISTRY }}", "env ALLOWED_MRTD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mutated := strings.Replace(string(base), tc.old, tc.new, 1)
			if mutated == string(base) {
				t.Fatalf("%q is not in the workflow", tc.old)
			}
			problems, _ := thinProblems([]byte(mutated), module)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Fatalf("problems %q lack %q", problems, tc.want)
			}
		})
	}
}

// pinnedAction is a `uses:` pinned by a full commit SHA.
var pinnedAction = regexp.MustCompile(`^([a-z0-9-]+/[a-z0-9-]+)@([0-9a-f]{40})$`)

// envSecret is how a secret reaches a Dagger function: env:NAME.
var envSecret = regexp.MustCompile(`^env:[A-Z][A-Z0-9_]*$`)

// allowedActions are the actions the workflows may use: the pinned commit and its version comment.
func allowedActions() map[string][2]string {
	return map[string][2]string{
		"actions/checkout":         {"11bd71901bbe5b1630ceea73d27597364c9af683", "# v4.2.2"},
		"dagger/dagger-for-github": {"27b130bf0f79a7f6fbbbe0fbca6760dc9bb40a77", "# v8.4.1"},
	}
}

// daggerEngine is the Dagger version every workflow installs (DESIGN.md).
const daggerEngine = "0.19.10"

// computedChanged is the one computed input of the workflows: the PR's changed paths for the PR
// doc guard, whose Dagger function takes the list.
const computedChanged = `"$(git diff --name-only HEAD^1 HEAD | paste -sd, -)"`

// thinProblems checks one workflow: top-level permissions {} and a concurrency group, no
// workflow env; each job with explicit permissions among contents, id-token, packages and
// pull-requests, and exactly two steps — actions/checkout, then dagger/dagger-for-github — pinned
// by commit with their version comment, without run:. The dagger step installs the pinned engine,
// interpolates no expression into the action's shell, sets no ALLOWED_* variable, puts each
// secret in the variable of its own name, and its args are one plain `dagger call` of a module
// function with parameters the module has, secrets (and only secrets) as env:NAME. It returns the
// problems and the grants ("scope: level").
func thinProblems(data []byte, module map[string]map[string]bool) (problems, grants []string) {
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		return []string{fmt.Sprintf("not YAML: %v", err)}, nil
	}
	root := doc.Content[0]
	if p := mapGet(root, "permissions"); p == nil || p.Kind != yaml.MappingNode || len(p.Content) != 0 {
		add("top-level permissions must be {} (each job grants its own)")
	}
	if mapGet(root, "concurrency") == nil {
		add("no concurrency group")
	}
	if env := mapGet(root, "env"); env != nil {
		add("line %d: a workflow-level env", env.Line)
	}
	jobs := mapGet(root, "jobs")
	if jobs == nil || len(jobs.Content) == 0 {
		add("no jobs")
		return problems, grants
	}
	for i := 0; i+1 < len(jobs.Content); i += 2 {
		id, job := jobs.Content[i].Value, jobs.Content[i+1]
		perms := mapGet(job, "permissions")
		if perms == nil || perms.Kind != yaml.MappingNode || len(perms.Content) == 0 {
			add("job %s: explicit permissions are required", id)
		} else {
			for j := 0; j+1 < len(perms.Content); j += 2 {
				scope, level := perms.Content[j].Value, perms.Content[j+1].Value
				grants = append(grants, scope+": "+level)
				if !slices.Contains([]string{"contents", "id-token", "packages", "pull-requests"}, scope) {
					add("job %s: permission %s is not one the release needs", id, scope)
				}
			}
		}
		steps := mapGet(job, "steps")
		if steps == nil || len(steps.Content) != 2 {
			add("job %s: want exactly two steps (checkout, dagger call)", id)
			continue
		}
		for k, step := range steps.Content {
			if run := mapGet(step, "run"); run != nil {
				add("job %s step %d (line %d): a run: step carries logic of its own", id, k+1, run.Line)
			}
			uses := mapGet(step, "uses")
			if uses == nil {
				add("job %s step %d: no uses", id, k+1)
				continue
			}
			m := pinnedAction.FindStringSubmatch(uses.Value)
			action := ""
			if m != nil {
				action = m[1]
			}
			want, known := allowedActions()[action]
			switch {
			case m == nil:
				add("line %d: %s is not pinned by a full commit SHA", uses.Line, uses.Value)
			case !known:
				add("line %d: action %s is not one of the allowed actions", uses.Line, action)
			case m[2] != want[0] || uses.LineComment != want[1]:
				add("line %d: %s %s, want @%s %s", uses.Line, uses.Value, uses.LineComment, want[0], want[1])
			}
			if k == 0 && action != "actions/checkout" || k == 1 && action != "dagger/dagger-for-github" {
				add("job %s step %d: %s out of order (checkout, then the dagger call)", id, k+1, uses.Value)
			}
			if k == 1 {
				problems = append(problems, daggerStepProblems(module, id, step)...)
			}
		}
	}
	return problems, grants
}

// daggerStepProblems checks the dagger step of a job (see thinProblems).
func daggerStepProblems(module map[string]map[string]bool, job string, step *yaml.Node) (problems []string) {
	add := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf("job %s: ", job)+fmt.Sprintf(format, args...))
	}
	with := mapGet(step, "with")
	if with == nil {
		add("the dagger step has no with:")
		return problems
	}
	if v := mapGet(with, "version"); v == nil || v.Value != daggerEngine {
		add("dagger version must be %q", daggerEngine)
	}
	if v := mapGet(with, "verb"); v == nil || v.Value != "call" {
		add("verb must be call")
	}
	for i := 0; i+1 < len(with.Content); i += 2 {
		if strings.Contains(with.Content[i+1].Value, "${{") {
			add("with.%s interpolates an expression into the action's shell: hand it over in env", with.Content[i].Value)
		}
	}
	if env := mapGet(step, "env"); env != nil {
		for i := 0; i+1 < len(env.Content); i += 2 {
			name, value := env.Content[i].Value, env.Content[i+1].Value
			if strings.HasPrefix(name, guard.AllowedPrefix) {
				add("env %s", name)
			}
			if strings.Contains(value, "secrets.") && value != "${{ secrets."+name+" }}" {
				add("env %s = %s: a secret goes into the variable of its own name", name, value)
			}
		}
	}
	args := mapGet(with, "args")
	if args == nil {
		add("no args")
		return problems
	}
	line := strings.Replace(args.Value, computedChanged, `"$CHANGED"`, 1)
	file, err := syntax.NewParser().Parse(strings.NewReader("dagger call "+line+"\n"), "")
	if err != nil {
		add("args do not parse as one shell command: %v", err)
		return problems
	}
	var call *syntax.CallExpr
	if len(file.Stmts) == 1 && len(file.Stmts[0].Redirs) == 0 && !file.Stmts[0].Background {
		call, _ = file.Stmts[0].Cmd.(*syntax.CallExpr)
	}
	if call == nil || len(call.Assigns) != 0 {
		add("args must be one plain dagger call")
		return problems
	}
	syntax.Walk(file, func(n syntax.Node) bool {
		switch n.(type) {
		case *syntax.CmdSubst, *syntax.ProcSubst, *syntax.ArithmExp:
			add("args compute something (%T): only the dagger call belongs here", n)
		}
		return true
	})
	var words []string
	for _, w := range call.Args[2:] {
		words = append(words, w.Lit()) // "" for a quoted or expanded value
	}
	// Constructor flags (each with a value), then the function and its flags.
	i := 0
	for i < len(words) && strings.HasPrefix(words[i], "--") {
		i += 2
	}
	if i >= len(words) {
		add("no function called")
		return problems
	}
	problems = append(problems, flagProblems(job, "the constructor", module[""], words[:i])...)
	fn := words[i]
	params, ok := module[fn]
	if !ok {
		add("the module has no function %q", fn)
		return problems
	}
	return append(problems, flagProblems(job, fn, params, words[i+1:])...)
}

// flagProblems checks the flags of one call: each is a parameter of fn; secrets, and only
// secrets, are given as env:NAME.
func flagProblems(job, fn string, params map[string]bool, words []string) (problems []string) {
	for j, w := range words {
		if !strings.HasPrefix(w, "--") {
			continue
		}
		name := strings.TrimPrefix(w, "--")
		secret, ok := params[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("job %s: %s has no --%s", job, fn, name))
			continue
		}
		value := ""
		if j+1 < len(words) && !strings.HasPrefix(words[j+1], "--") {
			value = words[j+1]
		}
		if secret != envSecret.MatchString(value) {
			problems = append(problems, fmt.Sprintf("job %s: %s --%s %q: secrets, and only secrets, are passed as env:NAME", job, fn, name, value))
		}
	}
	return problems
}

// daggerModule reads the module's Go source: function name → its parameters in Dagger's kebab
// case, each marked when it is a *dagger.Secret (the constructor New under "").
func daggerModule(t *testing.T) map[string]map[string]bool {
	t.Helper()
	entries, err := os.ReadDir(repoModule)
	if err != nil {
		t.Fatalf("the Dagger module: %v", err)
	}
	fset := token.NewFileSet()
	out := map[string]map[string]bool{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") || e.Name() == "dagger.gen.go" {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(repoModule, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || !fd.Name.IsExported() {
				continue
			}
			name := kebab(fd.Name.Name)
			switch {
			case fd.Recv == nil && fd.Name.Name == "New":
				name = ""
			case fd.Recv == nil:
				continue
			}
			params := map[string]bool{}
			for _, field := range fd.Type.Params.List {
				secret := false
				if star, ok := field.Type.(*ast.StarExpr); ok {
					if sel, ok := star.X.(*ast.SelectorExpr); ok {
						secret = sel.Sel.Name == "Secret"
					}
				}
				for _, n := range field.Names {
					if n.Name != "ctx" {
						params[kebab(n.Name)] = secret
					}
				}
			}
			out[name] = params
		}
	}
	if len(out) < 5 || out[""] == nil {
		t.Fatalf("read only %d functions from %s (constructor found: %v)", len(out), repoModule, out[""] != nil)
	}
	return out
}

// kebab is Dagger's name for a Go identifier: ReleaseKms → release-kms, actionsIdTokenRequestUrl →
// actions-id-token-request-url.
func kebab(s string) string {
	var b strings.Builder
	r := []rune(s)
	for i, c := range r {
		if unicode.IsUpper(c) {
			if i > 0 && (unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1]) || i+1 < len(r) && unicode.IsLower(r[i+1]) && unicode.IsUpper(r[i-1])) {
				b.WriteByte('-')
			}
			c = unicode.ToLower(c)
		}
		b.WriteRune(c)
	}
	return b.String()
}

func TestKebab(t *testing.T) {
	for in, want := range map[string]string{"ReleaseKms": "release-kms", "GuardPrDocs": "guard-pr-docs", "actionsIdTokenRequestUrl": "actions-id-token-request-url",
		"githubRepository": "github-repository", "tag": "tag", "EndToEnd": "end-to-end", "ParseQuote": "parse-quote", "HTTPServer": "http-server"} {
		if got := kebab(in); got != want {
			t.Errorf("kebab(%q) = %q, want %q", in, got, want)
		}
	}
}

// mapGet returns the value of key in a mapping node, or nil.
func mapGet(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
