package guard

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

var update = flag.Bool("update", false, "rewrite golden files")

var wantMarker = regexp.MustCompile(`# want: (.+?)\s*$`)

// markers reads the "# want: NAME" markers of every workflow under dir: the findings a file must
// produce, as "file:line: NAME".
func markers(t *testing.T, dir string) []string {
	t.Helper()
	var want []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !isYAML(path) {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for line := 1; sc.Scan(); line++ {
			if m := wantMarker.FindStringSubmatch(sc.Text()); m != nil {
				want = append(want, fmt.Sprintf("%s:%d: %s", path, line, m[1]))
			}
		}
		return nil
	})
	slices.Sort(want)
	return want
}

func located(findings []Finding) []string {
	var got []string
	for _, f := range findings {
		got = append(got, fmt.Sprintf("%s:%d: %s", f.File, f.Line, f.Name))
	}
	slices.Sort(got)
	return got
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output:\n%s", path, got)
	}
}

func TestAllowedEnvDirty(t *testing.T) {
	dir := filepath.Join("testdata", "workflows", "dirty")
	findings, err := AllowedEnv(dir)
	if outcome.Code(err) != outcome.VerificationFailed {
		t.Fatalf("AllowedEnv = %v, want a verification error", err)
	}
	got, want := located(findings), markers(t, dir)
	if len(want) < 60 {
		t.Fatalf("only %d markers: the testdata lost cases", len(want))
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("missed: %s", w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			t.Errorf("unexpected: %s", g)
		}
	}
	for _, f := range findings {
		if !strings.HasPrefix(f.Name, AllowedPrefix) || f.Where == "" {
			t.Errorf("malformed finding %+v", f)
		}
	}
	if !strings.Contains(err.Error(), "ALLOWED_MRTD") || !strings.Contains(err.Error(), "attestation policy") {
		t.Errorf("error does not name the variables or the rule: %v", err)
	}
	out, _ := json.MarshalIndent(findings, "", "  ")
	golden(t, "allowed-env-dirty.golden.json", append(out, '\n'))
}

func TestAllowedEnvClean(t *testing.T) {
	findings, err := AllowedEnv(filepath.Join("testdata", "workflows", "clean"))
	if err != nil || len(findings) != 0 {
		t.Fatalf("clean workflows: %v %v", findings, err)
	}
}

func TestAllowedEnvFileWhere(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string // "line NAME where"
	}{
		{"workflow env", "env:\n  ALLOWED_A: 1\n", []string{"2 ALLOWED_A workflow env"}},
		{"step labels", "jobs:\n  b:\n    steps:\n      - id: sign\n        run: export ALLOWED_A=1\n      - run: ALLOWED_B=1\n",
			[]string{"5 ALLOWED_A job b step 1 (sign) run export", "6 ALLOWED_B job b step 2 run assignment"}},
		{"service and container", "jobs:\n  j:\n    container: {image: x, env: {ALLOWED_C: 1}}\n    services:\n      db:\n        env:\n          ALLOWED_S: 1\n",
			[]string{"3 ALLOWED_C job j container env", "7 ALLOWED_S job j service db env"}},
		{"github env", "jobs:\n  j:\n    steps:\n      - name: Set\n        run: |\n          echo hi\n          echo ALLOWED_G=1 >> $GITHUB_ENV\n",
			[]string{"7 ALLOWED_G job j step 1 (Set) run writes $GITHUB_ENV"}},
		{"merge list", "a: &a {ALLOWED_M1: 1}\nb: &b {ALLOWED_M2: 1}\nenv:\n  <<: [*a, *b]\n",
			[]string{"1 ALLOWED_M1 workflow env", "2 ALLOWED_M2 workflow env"}},
		{"job alias", "j: &j\n  env: {ALLOWED_J: 1}\njobs:\n  one: *j\n  two: *j\n",
			[]string{"2 ALLOWED_J job one env", "2 ALLOWED_J job two env"}},
		{"not a workflow", "- ALLOWED_A: 1\n", nil},
		{"scalar env", "env: ALLOWED_A\njobs: 3\n", nil},
		{"steps not a list", "jobs:\n  j:\n    steps: {run: export ALLOWED_A=1}\n", nil},
		{"run not a string", "jobs:\n  j:\n    steps:\n      - run: [export ALLOWED_A=1]\n", nil},
		{"empty", "", nil},
		{"declare +x", "jobs:\n  j:\n    steps:\n      - run: declare +x ALLOWED_A=1\n", nil},
		{"crlf", "env:\r\n  X: 1\r\n  ALLOWED_A: 1\r\n", []string{"3 ALLOWED_A workflow env"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			findings, err := AllowedEnvFile("w.yml", []byte(c.yaml))
			var got []string
			for _, f := range findings {
				if f.File != "w.yml" {
					t.Errorf("file %q", f.File)
				}
				got = append(got, fmt.Sprintf("%d %s %s", f.Line, f.Name, f.Where))
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
			wantCode := outcome.OK
			if len(c.want) > 0 {
				wantCode = outcome.VerificationFailed
			}
			if outcome.Code(err) != wantCode {
				t.Errorf("err = %v, want code %d", err, wantCode)
			}
		})
	}
}

func TestFindingString(t *testing.T) {
	f := Finding{File: ".github/workflows/r.yml", Line: 7, Name: "ALLOWED_MRTD", Where: "workflow env"}
	if got := f.String(); got != ".github/workflows/r.yml:7: ALLOWED_MRTD set in workflow env" {
		t.Fatal(got)
	}
}

func TestAllowedEnvErrors(t *testing.T) {
	bad := map[string]string{
		"jobs:\n  a:\n    steps: [\n":        "w.yml:",
		"a: b\n  c: d\n":                     "w.yml:2:",
		"env:\n\tALLOWED_A: 1\n":             "w.yml:2:",
		"x: *nowhere\n":                      "unknown anchor",
		"a: 1\n---\nb: [\n---\nc: 3\n":       "w.yml:",
		"env: {ALLOWED_A: 1}\n---\n: : :\n-": "w.yml:",
	}
	for in, mention := range bad {
		_, err := AllowedEnvFile("w.yml", []byte(in))
		if outcome.Code(err) != outcome.Usage || !strings.Contains(err.Error(), mention) || !strings.Contains(err.Error(), "invalid YAML") {
			t.Errorf("AllowedEnvFile(%q) = %v, want a usage error mentioning %q", in, err, mention)
		}
	}
	if _, err := AllowedEnv(filepath.Join(t.TempDir(), "missing")); outcome.Code(err) != outcome.Usage || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing dir = %v", err)
	}
	file := filepath.Join(t.TempDir(), "file.yml")
	os.WriteFile(file, []byte("a: 1\n"), 0o644)
	if _, err := AllowedEnv(file); outcome.Code(err) != outcome.Usage || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file as dir = %v", err)
	}
	// one broken file does not hide the findings of the others
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte("a: b\n  c: d\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "dirty.yml"), []byte("env:\n  ALLOWED_X: 1\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "nested.YML"), []byte("env:\n  ALLOWED_Y: 1\n"), 0o644)
	findings, err := AllowedEnv(dir)
	if len(findings) != 2 || outcome.Code(err) != outcome.VerificationFailed || !outcome.Is(err, outcome.KindUsage) || !strings.Contains(err.Error(), "broken.yaml:2") {
		t.Errorf("mixed dir = %v, %v", findings, err)
	}
	// an unreadable file is a general error naming it
	if os.Getuid() != 0 {
		unreadable := t.TempDir()
		p := filepath.Join(unreadable, "secret.yml")
		os.WriteFile(p, []byte("a: 1\n"), 0o000)
		if _, err := AllowedEnv(unreadable); err == nil || !strings.Contains(err.Error(), "secret.yml") {
			t.Errorf("unreadable = %v", err)
		}
	}
}

func FuzzAllowedEnvFile(f *testing.F) {
	for _, dir := range []string{"dirty", "clean"} {
		paths, _ := filepath.Glob(filepath.Join("testdata", "workflows", dir, "*"))
		for _, p := range paths {
			b, _ := os.ReadFile(p)
			f.Add(b)
		}
	}
	f.Add([]byte("jobs:\n  j:\n    steps:\n      - run: |\n          echo ALLOWED_A=1 >> $GITHUB_ENV\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, content []byte) {
		findings, err := AllowedEnvFile("fuzz.yml", content)
		lines := bytes.Count(content, []byte("\n")) + 1
		for _, fd := range findings {
			if fd.Line < 1 || fd.Line > lines || !strings.HasPrefix(fd.Name, AllowedPrefix) || fd.File != "fuzz.yml" {
				t.Fatalf("bad finding %+v in %d lines", fd, lines)
			}
		}
		switch code := outcome.Code(err); {
		case code == outcome.Usage:
		case len(findings) > 0 && code != outcome.VerificationFailed:
			t.Fatalf("findings without a verification error: %v", err)
		case len(findings) == 0 && code != outcome.OK:
			t.Fatalf("error without findings: %v", err)
		}
	})
}

func BenchmarkAllowedEnvFile(b *testing.B) {
	content, err := os.ReadFile(filepath.Join("testdata", "workflows", "dirty", "run-bash.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(content)))
	for b.Loop() {
		AllowedEnvFile("run-bash.yaml", content)
	}
}

// TestAllowedEnvFollowsWhatWorkflowsRun: the composite actions and reusable workflows a release
// workflow calls (uses: ./…, transitively), the inputs it hands over with with:, and indirect
// writes to $GITHUB_ENV (a variable or descriptor holding its path, bash -c, eval) are found
// with file:line; names that merely contain ALLOWED_ (GCP_ATTESTATION_ALLOWED_CIDRS) are not.
func TestAllowedEnvFollowsWhatWorkflowsRun(t *testing.T) {
	repo := filepath.Join("testdata", "repo")
	findings, err := AllowedEnv(filepath.Join(repo, ".github", "workflows"))
	if outcome.Code(err) != outcome.VerificationFailed || outcome.Is(err, outcome.KindUsage) {
		t.Fatalf("AllowedEnv = %v, want only a verification error", err)
	}
	got, want := located(findings), markers(t, repo)
	if len(want) < 21 {
		t.Fatalf("only %d markers: the testdata lost cases", len(want))
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("missed: %s", w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			t.Errorf("unexpected: %s", g)
		}
	}
	for _, f := range findings {
		if strings.Contains(f.File, "unused") || strings.Contains(f.Name, "CIDRS") {
			t.Errorf("finding %s", f)
		}
	}
	// Each kind of place is named.
	for _, where := range []string{
		"job measure with: input", "composite action step 1 (Env) env", "composite action step 1 (Env) run writes $GITHUB_ENV",
		"composite action step 2 with: line value", "action env", "run via bash -c writes $GITHUB_ENV", "run via eval writes $GITHUB_ENV",
		"run via bash -c via eval export",
	} {
		if !slices.ContainsFunc(findings, func(f Finding) bool { return strings.HasSuffix(f.Where, where) }) {
			t.Errorf("no finding in %q: %v", where, findings)
		}
	}
}

// TestAllowedEnvLocalUseErrors: a local action that is missing or outside the repository is a
// usage error naming the caller's file:line; the other findings are still returned.
func TestAllowedEnvLocalUseErrors(t *testing.T) {
	for ref, want := range map[string]string{
		"./.github/actions/missing": "not found",
		"./../outside":              "leaves the repository",
		"./.github/actions/noyml":   "has no action.yml",
	} {
		root := t.TempDir()
		wf := filepath.Join(root, ".github", "workflows")
		os.MkdirAll(wf, 0o755)
		os.MkdirAll(filepath.Join(root, ".github", "actions", "noyml"), 0o755)
		os.WriteFile(filepath.Join(wf, "r.yml"), []byte("env:\n  ALLOWED_X: 1\njobs:\n  j:\n    steps:\n      - uses: "+ref+"\n"), 0o644)
		findings, err := AllowedEnv(wf)
		if len(findings) != 1 || !outcome.Is(err, outcome.KindUsage) || !strings.Contains(err.Error(), filepath.Join(wf, "r.yml")+":6: uses "+ref) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, %v; want a usage error naming r.yml:6 and %q", ref, findings, err, want)
		}
	}
}

// TestNamesContainingAllowedAreNotFindings: mero-tee's real workflows set
// GCP_ATTESTATION_ALLOWED_CIDRS in every form; none is an ALLOWED_* variable.
func TestNamesContainingAllowedAreNotFindings(t *testing.T) {
	const wf = `env:
  GCP_ATTESTATION_ALLOWED_CIDRS: ${{ vars.GCP_ATTESTATION_ALLOWED_CIDRS }}
jobs:
  measure:
    uses: ./x.yml
    with:
      GCP_ATTESTATION_ALLOWED_CIDRS: a
    secrets:
      GCP_ATTESTATION_ALLOWED_CIDRS: b
  j:
    steps:
      - env:
          GCP_ATTESTATION_ALLOWED_CIDRS: c
        with:
          cidrs: "GCP_ATTESTATION_ALLOWED_CIDRS=10.0.0.0/8"
        run: |
          export GCP_ATTESTATION_ALLOWED_CIDRS=10.0.0.0/8
          GCP_ATTESTATION_ALLOWED_CIDRS=x ./measure.sh
          declare -x GCP_ATTESTATION_ALLOWED_CIDRS
          f=$GITHUB_ENV
          echo "GCP_ATTESTATION_ALLOWED_CIDRS=${GCP_ATTESTATION_ALLOWED_CIDRS}" >> "$f"
          bash -c 'echo GCP_ATTESTATION_ALLOWED_CIDRS=1 >> $GITHUB_ENV'
          eval "export GCP_ATTESTATION_ALLOWED_CIDRS=1"
      - shell: pwsh
        run: |
          $env:GCP_ATTESTATION_ALLOWED_CIDRS = "x"
          "GCP_ATTESTATION_ALLOWED_CIDRS=x" | Out-File -Append $env:GITHUB_ENV
`
	findings, err := AllowedEnvFile("w.yml", []byte(wf))
	if err != nil || len(findings) != 0 {
		t.Fatalf("findings %v, %v; want none", findings, err)
	}
}
