package guard

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
	"mvdan.cc/sh/v3/syntax"

	"github.com/calimero-network/mero-release/pipeline/internal/lazyre"
	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// AllowedPrefix is the forbidden variable-name prefix (case-sensitive): ALLOWED_MRTD,
// ALLOWED_RTMR0..3, ALLOWED_TCB_STATUS and every other ALLOWED_* (SPEC §4.4). The allowlists live
// in the attestation policy, never in a workflow's environment.
const AllowedPrefix = "ALLOWED_"

// Finding is one place where a workflow sets an ALLOWED_* variable.
type Finding struct {
	// File is the workflow file as given (the path joined under the workflows directory).
	File string `json:"file"`
	// Line is the 1-based line in File where the variable name appears.
	Line int `json:"line"`
	// Name is the variable, e.g. ALLOWED_MRTD.
	Name string `json:"name"`
	// Where says how it is set: "workflow env", "job build env", "job build container env",
	// "job build service db env", "job build step 3 (Build) env", "job build step 3 (Build) run
	// export", "… run assignment", "… run env", "… run declare -x", "… run writes $GITHUB_ENV".
	Where string `json:"where"`
}

// String formats the finding as "file:line: NAME set in WHERE".
func (f Finding) String() string {
	return fmt.Sprintf("%s:%d: %s set in %s", f.File, f.Line, f.Name, f.Where)
}

// AllowedEnv checks every *.yml and *.yaml file under dir (recursively) with AllowedEnvFile,
// and follows what they run: every local composite action (uses: ./path, its action.yml) and
// reusable workflow (uses: ./path.yml) they call, transitively, is checked too. Local paths are
// relative to the repository root: the directory above .github/workflows when dir is one,
// else dir itself. It returns every finding, sorted by file and line, and a verification error
// (exit 10) when there is one. A missing directory, a file that is not valid YAML or a local
// action that does not exist is a usage error (exit 2); the other files are still checked and
// their findings returned.
func AllowedEnv(dir string) ([]Finding, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, outcome.UsageErrorf("workflows directory %s: %v", dir, err)
	}
	if !info.IsDir() {
		return nil, outcome.UsageErrorf("workflows directory %s: not a directory", dir)
	}
	var findings []Finding
	var errs []error
	var calls []localUse
	scanned := map[string]bool{}
	walkErr := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !isYAML(path) {
			return nil
		}
		content, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		scanned[filepath.Clean(path)] = true
		s, err := scanFile(path, content)
		findings = append(findings, s.findings...)
		calls = append(calls, s.uses...)
		if err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	if walkErr != nil {
		return nil, fmt.Errorf("read workflows in %s: %w", dir, walkErr)
	}
	f, err := followLocalUses(repoRoot(dir), calls, scanned)
	findings = append(findings, f...)
	if err != nil {
		errs = append(errs, err)
	}
	sortFindings(findings)
	if len(findings) > 0 {
		errs = append(errs, blocked(findings))
	}
	return findings, errors.Join(errs...)
}

// AllowedEnvFile checks one workflow file. name is used in findings and errors; content is the
// YAML. Variables are flagged when set in env: at workflow, job, container, service or step level,
// and in run: scripts by export, a plain or prefix assignment (also after ;, &&, || and env),
// declare/typeset/local -x, and writes to $GITHUB_ENV (echo/printf redirects, tee, heredocs,
// redirected blocks). Bash and sh scripts are parsed with mvdan.cc/sh; scripts in other shells
// (pwsh, python, …) or that bash cannot parse are scanned line by line for the same forms. A
// mention in a comment or a read such as echo $ALLOWED_MRTD is not a finding.
//
// Findings are a verification error (exit 10); invalid YAML is a usage error naming file:line.
func AllowedEnvFile(name string, content []byte) ([]Finding, error) {
	s, err := scanFile(name, content)
	findings := s.findings
	sortFindings(findings)
	if err != nil {
		return findings, err
	}
	if len(findings) > 0 {
		return findings, blocked(findings)
	}
	return findings, nil
}

func blocked(findings []Finding) error {
	names := map[string]bool{}
	for _, f := range findings {
		names[f.Name] = true
	}
	list := make([]string, 0, len(names))
	for n := range names {
		list = append(list, n)
	}
	slices.Sort(list)
	return outcome.VerificationErrorf("%d place(s) in the workflows set %s: allowlists belong in the attestation policy, never in a workflow environment (first: %s)",
		len(findings), strings.Join(list, ", "), findings[0])
}

func isYAML(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	return ext == ".yml" || ext == ".yaml"
}

func sortFindings(f []Finding) {
	slices.SortFunc(f, func(a, b Finding) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Where, b.Where)
	})
}

// maxMergeDepth bounds alias and merge-key chains ("<<: *anchor").
const maxMergeDepth = 16

// workflowScanner collects the findings of one file.
type workflowScanner struct {
	file       string
	raw        string
	lineStarts []int
	seen       map[Finding]bool
	findings   []Finding
	// uses are the local actions and reusable workflows the file calls (uses: ./…).
	uses []localUse
}

var yamlLineRE = lazyre.New(`^yaml: line (\d+): (.*)$`)

// scanFile scans a workflow or an action file.
func scanFile(name string, content []byte) (*workflowScanner, error) {
	s := &workflowScanner{file: name, raw: string(content), seen: map[Finding]bool{}}
	s.lineStarts = append(s.lineStarts, 0)
	for i, c := range content {
		if c == '\n' {
			s.lineStarts = append(s.lineStarts, i+1)
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(content))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if m := yamlLineRE().FindStringSubmatch(err.Error()); m != nil {
				return s, outcome.UsageErrorf("%s:%s: invalid YAML: %s", name, m[1], m[2])
			}
			return s, outcome.UsageErrorf("%s: invalid YAML: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		if len(doc.Content) == 1 {
			s.workflow(resolve(doc.Content[0]))
		}
	}
	return s, nil
}

func (s *workflowScanner) add(line int, name, where string) {
	// The YAML parser also breaks lines at a lone '\r'; a finding stays within the file's lines.
	line = min(max(line, 1), len(s.lineStarts))
	f := Finding{File: s.file, Line: line, Name: name, Where: where}
	if !s.seen[f] {
		s.seen[f] = true
		s.findings = append(s.findings, f)
	}
}

// resolve follows aliases to the anchored node.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxMergeDepth; i++ {
		n = n.Alias
	}
	return n
}

// pair is one key/value of a mapping.
type pair struct{ key, value *yaml.Node }

// pairs lists a mapping's entries, expanding merge keys ("<<: *anchor" or a list of anchors).
func pairs(n *yaml.Node) []pair {
	return appendPairs(nil, resolve(n), 0)
}

func appendPairs(out []pair, n *yaml.Node, depth int) []pair {
	if n == nil || n.Kind != yaml.MappingNode || depth > maxMergeDepth {
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			v = resolve(v)
			if v != nil && v.Kind == yaml.SequenceNode {
				for _, item := range v.Content {
					out = appendPairs(out, resolve(item), depth+1)
				}
			} else {
				out = appendPairs(out, v, depth+1)
			}
			continue
		}
		out = append(out, pair{k, v})
	}
	return out
}

// get returns the value of a key of a mapping (the last one, as YAML loaders keep).
func get(n *yaml.Node, key string) *yaml.Node {
	var found *yaml.Node
	for _, p := range pairs(n) {
		if p.key.Value == key {
			found = resolve(p.value)
		}
	}
	return found
}

func scalar(n *yaml.Node) string {
	if n = resolve(n); n != nil && n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return ""
}

// workflow walks the workflow-level keys.
func (s *workflowScanner) workflow(root *yaml.Node) {
	if root == nil || root.Kind != yaml.MappingNode {
		return // not a workflow: nothing can set an environment
	}
	if runs := get(root, "runs"); runs != nil && get(root, "jobs") == nil {
		s.action(runs)
		return
	}
	s.env(get(root, "env"), "workflow env")
	defaultShell := scalar(get(get(get(root, "defaults"), "run"), "shell"))
	for _, job := range pairs(get(root, "jobs")) {
		s.job(job.key.Value, resolve(job.value), defaultShell)
	}
}

func (s *workflowScanner) job(id string, job *yaml.Node, defaultShell string) {
	if job == nil || job.Kind != yaml.MappingNode {
		return
	}
	prefix := "job " + id
	s.env(get(job, "env"), prefix+" env")
	s.call(get(job, "uses"), get(job, "with"), prefix)
	s.env(get(job, "secrets"), prefix+" secrets (passed to the reusable workflow)")
	if c := get(job, "container"); c != nil && c.Kind == yaml.MappingNode {
		s.env(get(c, "env"), prefix+" container env")
	}
	for _, svc := range pairs(get(job, "services")) {
		s.env(get(svc.value, "env"), prefix+" service "+svc.key.Value+" env")
	}
	if sh := scalar(get(get(get(job, "defaults"), "run"), "shell")); sh != "" {
		defaultShell = sh
	}
	s.steps(get(job, "steps"), prefix+" ", defaultShell)
}

// steps walks the steps of a job or a composite action; prefix is "job build " or "".
func (s *workflowScanner) steps(steps *yaml.Node, prefix, defaultShell string) {
	if steps == nil || steps.Kind != yaml.SequenceNode {
		return
	}
	for i, step := range steps.Content {
		step = resolve(step)
		if step == nil || step.Kind != yaml.MappingNode {
			continue
		}
		label := prefix + "step " + strconv.Itoa(i+1)
		if n := scalar(get(step, "name")); n != "" {
			label += " (" + n + ")"
		} else if n := scalar(get(step, "id")); n != "" {
			label += " (" + n + ")"
		}
		s.env(get(step, "env"), label+" env")
		s.call(get(step, "uses"), get(step, "with"), label)
		run := get(step, "run")
		if run == nil || run.Kind != yaml.ScalarNode {
			continue
		}
		shell := scalar(get(step, "shell"))
		if shell == "" {
			shell = defaultShell
		}
		s.script(run, shell, label+" run")
	}
}

// env flags every ALLOWED_* key of an env: mapping.
func (s *workflowScanner) env(n *yaml.Node, where string) {
	for _, p := range pairs(n) {
		if p.key.Kind == yaml.ScalarNode && strings.HasPrefix(p.key.Value, AllowedPrefix) {
			s.add(p.key.Line, p.key.Value, where)
		}
	}
}

// scriptRef is a run: script and where it sits in the file; for a script inside the script
// (bash -c '…', eval), the inner text and where it starts.
type scriptRef struct {
	s     *workflowScanner
	node  *yaml.Node
	value string // the script as YAML delivers it
	where string // "job build step 3 (Build) run"
	text  string // the text being scanned: value, or a part of it (bash -c, eval)
	base  int    // offset of text in value
	// envVars are the variables holding the $GITHUB_ENV path (GITHUB_ENV and its copies);
	// envFDs the file descriptors opened on it (exec 3>>"$GITHUB_ENV").
	envVars map[string]bool
	envFDs  map[string]bool
	depth   int
}

// add records a finding at a byte offset of the scanned text.
func (r scriptRef) add(off int, nameLen int, kind string) {
	// The name is read from the script as written (value): the scanned text has its ${{ … }}
	// expressions masked and, inside bash -c or eval, its quotes blanked, at the same offsets.
	abs := min(max(r.base+off, 0), len(r.value))
	end := min(abs+nameLen, len(r.value))
	r.s.add(r.line(abs, r.value[abs:end]), r.value[abs:end], r.where+" "+kind)
}

// line maps a byte offset of the script (value) to the line in the file. A literal block scalar (run: |)
// keeps its lines, so the offset's line is counted from the indicator line; for other styles
// (folded, quoted, plain) the n-th occurrence of the name in the script is the n-th occurrence in
// the file text from the scalar's first line on.
func (r scriptRef) line(off int, name string) int {
	if r.node.Style&yaml.LiteralStyle != 0 {
		return r.node.Line + 1 + strings.Count(r.value[:off], "\n")
	}
	nth := strings.Count(r.value[:off], name)
	start := 0
	if r.node.Line-1 < len(r.s.lineStarts) && r.node.Line >= 1 {
		start = r.s.lineStarts[r.node.Line-1]
	}
	pos := start
	for range nth + 1 {
		i := strings.Index(r.s.raw[pos:], name)
		if i < 0 || name == "" {
			return r.node.Line
		}
		pos += i + len(name)
	}
	pos -= len(name)
	line, _ := slices.BinarySearch(r.s.lineStarts, pos+1)
	return line
}

// githubExprRE matches a GitHub Actions expression ${{ … }}, which the runner substitutes before
// the shell sees the script.
var githubExprRE = lazyre.New(`(?s)\$\{\{.*?\}\}`)

// maskExpressions replaces each ${{ … }} by shell text of the same length (newlines kept), so
// that offsets stay valid: ${{ github.env }} becomes ${GITHUB_ENV} (it is that file's path),
// anything else a run of underscores.
func maskExpressions(script string) string {
	return githubExprRE().ReplaceAllStringFunc(script, func(expr string) string {
		inner := strings.TrimSpace(expr[3 : len(expr)-2])
		if inner == "github.env" || inner == "env.GITHUB_ENV" {
			return "${GITHUB_ENV}" + strings.Repeat("_", len(expr)-len("${GITHUB_ENV}"))
		}
		var b strings.Builder
		for _, c := range []byte(expr) {
			if c == '\n' {
				b.WriteByte('\n')
			} else {
				b.WriteByte('_')
			}
		}
		return b.String()
	})
}

// script checks one run: script.
func (s *workflowScanner) script(n *yaml.Node, shell, where string) {
	masked := maskExpressions(n.Value) // same length as n.Value: offsets are shared
	r := scriptRef{s: s, node: n, value: n.Value, text: masked, where: where,
		envVars: map[string]bool{"GITHUB_ENV": true}, envFDs: map[string]bool{}}
	if isPOSIXShell(shell) {
		f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(masked), "")
		if err == nil {
			r.shellAST(f)
			return
		}
	}
	r.lines(masked)
}

// isPOSIXShell reports whether a step's shell is bash or sh (the default when none is set).
func isPOSIXShell(shell string) bool {
	fields := strings.Fields(shell)
	if len(fields) == 0 {
		return true
	}
	base := filepath.Base(fields[0])
	return base == "bash" || base == "sh" || base == "dash" || base == "zsh"
}

// shellAST walks a parsed script.
func (r scriptRef) shellAST(f *syntax.File) {
	r.trackGitHubEnv(f)
	syntax.Walk(f, func(node syntax.Node) bool {
		switch x := node.(type) {
		case *syntax.Stmt:
			if r.writesGitHubEnv(x) {
				r.written(x)
			}
		case *syntax.BinaryCmd:
			if (x.Op == syntax.Pipe || x.Op == syntax.PipeAll) && r.writesGitHubEnv(x.Y) {
				r.written(x.X) // cmd | tee -a $GITHUB_ENV
			}
		case *syntax.CallExpr:
			for _, a := range x.Assigns {
				r.assign(a, "assignment")
			}
			r.envCommand(x)
			r.innerScript(x)
		case *syntax.DeclClause:
			r.decl(x)
		}
		return true
	})
}

func isAllowed(name string) bool { return strings.HasPrefix(name, AllowedPrefix) }

func (r scriptRef) assign(a *syntax.Assign, kind string) {
	if a.Name != nil && isAllowed(a.Name.Value) {
		r.add(int(a.Name.Pos().Offset()), len(a.Name.Value), kind)
	}
}

// litPrefix is the leading literal text of a word, and its offset.
func litPrefix(w *syntax.Word) (string, int, bool) {
	if w == nil || len(w.Parts) == 0 {
		return "", 0, false
	}
	switch p := w.Parts[0].(type) {
	case *syntax.Lit:
		return p.Value, int(p.Pos().Offset()), true
	case *syntax.DblQuoted:
		if len(p.Parts) > 0 {
			if l, ok := p.Parts[0].(*syntax.Lit); ok {
				return l.Value, int(l.Pos().Offset()), true
			}
		}
	case *syntax.SglQuoted:
		return p.Value, int(p.Pos().Offset()) + 1, true
	}
	return "", 0, false
}

var (
	assignWordRE  = lazyre.New(`^([A-Za-z_][A-Za-z0-9_]*)\+?=`)
	leadingNameRE = lazyre.New(`^[A-Za-z_][A-Za-z0-9_]*`)
)

// envCommand flags NAME=value operands of env (env [-i] [-u NAME] NAME=value … cmd).
func (r scriptRef) envCommand(x *syntax.CallExpr) {
	if len(x.Args) == 0 {
		return
	}
	if name, _, _ := litPrefix(x.Args[0]); name != "env" || len(x.Args[0].Parts) != 1 {
		return
	}
	for i := 1; i < len(x.Args); i++ {
		text, off, ok := litPrefix(x.Args[i])
		if !ok {
			return
		}
		if strings.HasPrefix(text, "-") {
			if text == "-u" || text == "-C" || text == "-S" || text == "--unset" || text == "--chdir" || text == "--split-string" {
				i++ // the option's operand
			}
			continue
		}
		m := assignWordRE().FindStringSubmatch(text)
		if m == nil {
			return // the command env runs
		}
		if isAllowed(m[1]) {
			r.add(off, len(m[1]), "env")
		}
	}
}

// decl handles export, declare, typeset, local and readonly.
func (r scriptRef) decl(x *syntax.DeclClause) {
	variant := x.Variant.Value
	var set, unset string // option letters after - and after +
	for _, a := range x.Args {
		if a.Name == nil && a.Naked {
			if text, _, ok := litPrefix(a.Value); ok && len(text) > 1 && (text[0] == '-' || text[0] == '+') {
				if text[0] == '-' {
					set += text[1:]
				} else {
					unset += text[1:]
				}
			}
		}
	}
	exported := strings.Contains(set, "x")
	for _, a := range x.Args {
		name, off := "", 0
		switch {
		case a.Name != nil:
			name, off = a.Name.Value, int(a.Name.Pos().Offset())
		case a.Value != nil:
			// export "ALLOWED_X=1": the parser sees a quoted word, bash an assignment
			text, o, ok := litPrefix(a.Value)
			if !ok || strings.HasPrefix(text, "-") || strings.HasPrefix(text, "+") {
				continue
			}
			name, off = leadingNameRE().FindString(text), o
		}
		if !isAllowed(name) {
			continue
		}
		hasValue := !a.Naked || (a.Name == nil && a.Value != nil && strings.Contains(wordLits(a.Value), "="))
		switch variant {
		case "export":
			if !strings.Contains(set, "n") {
				r.add(off, len(name), "export")
			}
		case "declare", "typeset", "local":
			if exported {
				r.add(off, len(name), variant+" -x")
			} else if hasValue && !strings.Contains(unset, "x") {
				r.add(off, len(name), variant+" assignment")
			}
		case "readonly":
			if hasValue {
				r.add(off, len(name), "readonly assignment")
			}
		}
	}
}

// wordLits concatenates the literal text of a word.
func wordLits(w *syntax.Word) string {
	var b strings.Builder
	for _, p := range w.Parts {
		switch p := p.(type) {
		case *syntax.Lit:
			b.WriteString(p.Value)
		case *syntax.SglQuoted:
			b.WriteString(p.Value)
		case *syntax.DblQuoted:
			for _, q := range p.Parts {
				if l, ok := q.(*syntax.Lit); ok {
					b.WriteString(l.Value)
				}
			}
		}
	}
	return b.String()
}

// refersGitHubEnv reports whether a word expands $GITHUB_ENV or a variable holding its path
// (plain, braced or quoted).
func (r scriptRef) refersGitHubEnv(w *syntax.Word) bool {
	found := false
	if w == nil {
		return false
	}
	syntax.Walk(w, func(n syntax.Node) bool {
		if p, ok := n.(*syntax.ParamExp); ok && p.Param != nil && r.envVars[p.Param.Value] {
			found = true
		}
		return !found
	})
	return found
}

func isOutput(op syntax.RedirOperator) bool {
	switch op {
	case syntax.RdrOut, syntax.AppOut, syntax.ClbOut, syntax.RdrAll, syntax.AppAll:
		return true
	}
	return false
}

// writesGitHubEnv reports whether a statement writes to the $GITHUB_ENV file: an output redirect
// to it (or to a descriptor opened on it), or tee with it as an operand.
func (r scriptRef) writesGitHubEnv(st *syntax.Stmt) bool {
	if st == nil {
		return false
	}
	for _, rd := range st.Redirs {
		if isOutput(rd.Op) && r.refersGitHubEnv(rd.Word) {
			return true
		}
		if (rd.Op == syntax.DplOut) && rd.Word != nil && r.envFDs[rd.Word.Lit()] {
			return true
		}
	}
	if call, ok := st.Cmd.(*syntax.CallExpr); ok && len(call.Args) > 1 {
		if name, _, _ := litPrefix(call.Args[0]); name == "tee" {
			return slices.ContainsFunc(call.Args[1:], r.refersGitHubEnv)
		}
	}
	return false
}

// literalNameRE finds ALLOWED_* names in literal text, not preceded by a name character.
var literalNameRE = lazyre.New(`(?:^|[^A-Za-z0-9_$])(` + AllowedPrefix + `[A-Za-z0-9_]*)`)

// written flags every ALLOWED_* name that appears as literal text in what a statement writes to
// $GITHUB_ENV: its arguments, here-documents and here-strings, and the commands of a redirected
// block. Expansions ($ALLOWED_X, ${ALLOWED_X}) are reads, not names being set.
func (r scriptRef) written(st *syntax.Stmt) {
	syntax.Walk(st, func(n syntax.Node) bool {
		switch x := n.(type) {
		case *syntax.Redirect:
			if x.Hdoc != nil {
				r.literalNames(x.Hdoc)
			}
			if x.Op == syntax.WordHdoc {
				r.literalNames(x.Word)
			}
			return false
		case *syntax.Word:
			r.literalNames(x)
			return false
		}
		return true
	})
}

func (r scriptRef) literalNames(w *syntax.Word) {
	syntax.Walk(w, func(n syntax.Node) bool {
		var text string
		var off int
		switch x := n.(type) {
		case *syntax.ParamExp:
			return false
		case *syntax.Lit:
			text, off = x.Value, int(x.Pos().Offset())
		case *syntax.SglQuoted:
			text, off = x.Value, int(x.Pos().Offset())+1
			if x.Dollar {
				off++
			}
		default:
			return true
		}
		for _, m := range literalNameRE().FindAllStringSubmatchIndex(text, -1) {
			r.add(off+m[2], m[3]-m[2], "writes $GITHUB_ENV")
		}
		return true
	})
}

// Line-based forms for scripts that are not parsed as POSIX shell.
var (
	lineAssignRE    = lazyre.New(`(?:^|[;&|({]|\b(?:then|do|else|env(?:\s+-\S+)*))\s*(` + AllowedPrefix + `[A-Za-z0-9_]*)\+?=`)
	lineDeclRE      = lazyre.New(`(?:^|[;&|({]|\b(?:then|do|else))\s*(export|declare|typeset|local|readonly)\b([^;&|#]*)`)
	lineNameRE      = lazyre.New(`(?:^|[\s"'])(` + AllowedPrefix + `[A-Za-z0-9_]*)`)
	linePwshRE      = lazyre.New(`\$env:(` + AllowedPrefix + `[A-Za-z0-9_]*)\s*(?:=[^=]|=$)`)
	linePyIndex     = lazyre.New(`environ\[\s*['"](` + AllowedPrefix + `[A-Za-z0-9_]*)['"]\s*\]\s*(?:=[^=]|=$)`)
	linePyCall      = lazyre.New(`(?:putenv|environ\.setdefault|environ\.update|SetEnvironmentVariable)\(\s*\{?\s*['"](` + AllowedPrefix + `[A-Za-z0-9_]*)['"]`)
	lineDeclX       = lazyre.New(`(?:^|\s)-[a-z]*x`)
	lineHeredocBody = lazyre.New(`^\s*(` + AllowedPrefix + `[A-Za-z0-9_]*)(?:=|<<)`)
	lineHeredoc     = lazyre.New(`(?:^|[^A-Za-z0-9_"'])<<-?\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?`)
	lineEnvFile     = lazyre.New(`GITHUB_ENV`)
)

// mentionsEnvVar reports whether a line names a variable holding the $GITHUB_ENV path.
func (r scriptRef) mentionsEnvVar(text string) bool {
	for v := range r.envVars {
		if v != "GITHUB_ENV" && mentionsWord(text, v) {
			return true
		}
	}
	return false
}

// lines is the fallback for pwsh, python and other shells, and for bash the parser rejects.
// Comment lines (# …) are skipped.
func (r scriptRef) lines(masked string) {
	off := 0
	heredocEnd := "" // delimiter of a here-document being written to $GITHUB_ENV
	for _, line := range strings.SplitAfter(masked, "\n") {
		start := off
		off += len(line)
		text := strings.TrimRight(line, "\r\n")
		trimmed := strings.TrimSpace(text)
		if heredocEnd != "" {
			if trimmed == heredocEnd {
				heredocEnd = ""
				continue
			}
			if m := lineHeredocBody().FindStringSubmatchIndex(text); m != nil {
				r.add(start+m[2], m[3]-m[2], "writes $GITHUB_ENV")
			}
			continue
		}
		if strings.HasPrefix(trimmed, "#") || trimmed == "" {
			continue
		}
		for _, m := range lineAssignRE().FindAllStringSubmatchIndex(text, -1) {
			r.add(start+m[2], m[3]-m[2], "assignment")
		}
		for _, m := range lineDeclRE().FindAllStringSubmatchIndex(text, -1) {
			variant, args := text[m[2]:m[3]], text[m[4]:m[5]]
			if variant != "export" && !lineDeclX().MatchString(args) {
				continue // declare without -x is caught as an assignment or sets nothing
			}
			kind := "export"
			if variant != "export" {
				kind = variant + " -x"
			}
			for _, n := range lineNameRE().FindAllStringSubmatchIndex(args, -1) {
				r.add(start+m[4]+n[2], n[3]-n[2], kind)
			}
		}
		for _, re := range []*regexp.Regexp{linePwshRE(), linePyIndex(), linePyCall()} {
			for _, m := range re.FindAllStringSubmatchIndex(text, -1) {
				r.add(start+m[2], m[3]-m[2], "assignment")
			}
		}
		if m := lineAliasRE().FindStringSubmatch(text); m != nil {
			r.envVars[m[1]] = true
		}
		if lineEnvFile().MatchString(text) || r.mentionsEnvVar(text) {
			for _, m := range literalNameRE().FindAllStringSubmatchIndex(text, -1) {
				if m[2] > 0 && (text[m[2]-1] == '{' || text[m[2]-1] == ':' || text[m[2]-1] == '.') {
					continue // ${ALLOWED_X}, $env:ALLOWED_X, env.ALLOWED_X are reads
				}
				r.add(start+m[2], m[3]-m[2], "writes $GITHUB_ENV")
			}
			if m := lineHeredoc().FindStringSubmatch(text); m != nil {
				heredocEnd = m[1]
			}
		}
	}
}
