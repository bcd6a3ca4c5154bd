package guard

import (
	"path/filepath"
	"slices"
	"strings"

	"mvdan.cc/sh/v3/syntax"

	"github.com/calimero-network/mero-release/pipeline/internal/lazyre"
)

// maxInnerDepth bounds scripts inside scripts (bash -c "eval '…'").
const maxInnerDepth = 4

// trackGitHubEnv finds the indirect ways a script reaches the $GITHUB_ENV file: variables that
// hold its path (f=$GITHUB_ENV, declare -n f=GITHUB_ENV, and copies of those) and file
// descriptors opened on it (exec 3>>"$GITHUB_ENV").
func (r scriptRef) trackGitHubEnv(f *syntax.File) {
	for range 8 { // copies of copies: until nothing changes
		before := len(r.envVars) + len(r.envFDs)
		syntax.Walk(f, func(node syntax.Node) bool {
			switch x := node.(type) {
			case *syntax.CallExpr:
				for _, a := range x.Assigns {
					if a.Name != nil && a.Value != nil && r.refersGitHubEnv(a.Value) {
						r.envVars[a.Name.Value] = true
					}
				}
			case *syntax.DeclClause:
				nameref := false
				for _, a := range x.Args {
					if a.Name == nil && a.Naked && a.Value != nil && strings.HasPrefix(a.Value.Lit(), "-") && strings.Contains(a.Value.Lit(), "n") {
						nameref = true
					}
				}
				for _, a := range x.Args {
					if a.Name == nil || a.Value == nil {
						continue
					}
					if r.refersGitHubEnv(a.Value) || nameref && r.envVars[wordLits(a.Value)] {
						r.envVars[a.Name.Value] = true
					}
				}
			case *syntax.Stmt:
				call, ok := x.Cmd.(*syntax.CallExpr)
				if !ok || len(call.Args) != 1 || call.Args[0].Lit() != "exec" {
					return true
				}
				for _, rd := range x.Redirs {
					if rd.N != nil && isOutput(rd.Op) && r.refersGitHubEnv(rd.Word) {
						r.envFDs[rd.N.Value] = true
					}
				}
			}
			return true
		})
		if len(r.envVars)+len(r.envFDs) == before {
			return
		}
	}
}

// wrappers are commands that run their operands as a command (env also takes NAME=value).
func wrappers() []string {
	return []string{"env", "sudo", "command", "builtin", "exec", "nohup", "time"}
}

// shells are the interpreters whose -c operand is a script.
func shells() []string { return []string{"bash", "sh", "dash", "zsh", "ksh"} }

// innerScript scans the script a command runs from a string: bash -c '…' (and sh, zsh, …), or
// eval with its arguments joined. Its findings are placed in the file like the outer script's.
func (r scriptRef) innerScript(x *syntax.CallExpr) {
	if r.depth >= maxInnerDepth {
		return
	}
	args := x.Args
	for len(args) > 0 && slices.Contains(wrappers(), args[0].Lit()) {
		args = args[1:]
		for len(args) > 0 && (assignWordRE().MatchString(args[0].Lit()) || strings.HasPrefix(args[0].Lit(), "-")) {
			args = args[1:]
		}
	}
	if len(args) < 2 {
		return
	}
	cmd := filepath.Base(args[0].Lit())
	switch {
	case cmd == "eval":
		r.inner(args[1:], "via eval")
	case slices.Contains(shells(), cmd):
		dashC := false
		for i := 1; i < len(args); i++ {
			opt := args[i].Lit()
			switch {
			case opt == "-o" || opt == "+o":
				i++
			case opt == "--":
			case strings.HasPrefix(opt, "-") && len(opt) > 1 && !strings.HasPrefix(opt, "--"):
				dashC = dashC || strings.Contains(opt, "c")
			case dashC:
				r.inner(args[i:i+1], "via "+cmd+" -c")
				return
			default:
				return // a script file, not a string
			}
		}
	}
}

// inner parses the words as one script, with their quotes removed in place (so that offsets
// stay those of the outer text), and scans it.
func (r scriptRef) inner(words []*syntax.Word, how string) {
	start, end := int(words[0].Pos().Offset()), int(words[len(words)-1].End().Offset())
	if start < 0 || end > len(r.text) || start >= end {
		return
	}
	b := []byte(r.text[start:end])
	blank := func(i int) {
		if i >= 0 && i < len(b) {
			b[i] = ' '
		}
	}
	unescape := func(from, to int, special string) {
		for i := max(from, 0); i < min(to, len(b))-1; i++ {
			if b[i] == '\\' && (special == "" || strings.IndexByte(special, b[i+1]) >= 0) {
				b[i] = ' '
				i++
			}
		}
	}
	for _, w := range words {
		for _, part := range w.Parts {
			ps, pe := int(part.Pos().Offset())-start, int(part.End().Offset())-start
			switch p := part.(type) {
			case *syntax.SglQuoted:
				blank(ps)
				if p.Dollar {
					blank(ps + 1)
				}
				blank(pe - 1)
			case *syntax.DblQuoted:
				blank(ps)
				if p.Dollar {
					blank(ps + 1)
				}
				blank(pe - 1)
				unescape(ps+1, pe-1, "$`\"\\\n")
			case *syntax.Lit:
				unescape(ps, pe, "")
			}
		}
	}
	child := r
	child.text, child.base, child.depth = string(b), r.base+start, r.depth+1
	child.where = r.where + " " + how
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(child.text), "")
	if err != nil {
		child.lines(child.text)
		return
	}
	child.shellAST(f)
}

// lineAliasRE finds a line-based script's variable that takes the $GITHUB_ENV path:
// f=$GITHUB_ENV, $f = $env:GITHUB_ENV, p = os.environ["GITHUB_ENV"].
var lineAliasRE = lazyre.New(`(?:^|[\s;])\$?([A-Za-z_][A-Za-z0-9_]*)\s*:?=[^=].*GITHUB_ENV`)

// mentionsWord reports whether text holds word as a whole identifier.
func mentionsWord(text, word string) bool {
	isName := func(c byte) bool {
		return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	for i := 0; ; {
		j := strings.Index(text[i:], word)
		if j < 0 {
			return false
		}
		s, e := i+j, i+j+len(word)
		if (s == 0 || !isName(text[s-1])) && (e == len(text) || !isName(text[e])) {
			return true
		}
		i = s + 1
	}
}
