package checksum

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// writeFiles creates files (name → content) under a new temp dir and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var releaseFiles = map[string]string{
	"sbom.spdx.json":                           `{"spdxVersion":"SPDX-2.3"}`,
	"published-mrtds.json":                     `{"profiles":{}}`,
	"attestation-policy-debug.json":            `{"profile":"debug"}`,
	"release-notes.md":                         "# notes\n",
	"attestation-policy-locked-read-only.json": strings.Repeat("x", 3*bufferSize+17),
}

func TestComputeMarshalGolden(t *testing.T) {
	dir := writeFiles(t, releaseFiles)
	names := []string{"sbom.spdx.json", "release-notes.md", "published-mrtds.json", "attestation-policy-debug.json", "attestation-policy-locked-read-only.json"}
	f, err := Compute(context.Background(), dir, names)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSortedFunc(f.Entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) }) {
		t.Fatalf("entries not sorted: %v", f.Names())
	}
	got := f.Marshal()
	want, err := os.ReadFile("testdata/checksums.golden")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Marshal:\n%s\nwant (testdata/checksums.golden):\n%s", got, want)
	}
	for name, content := range releaseFiles {
		if d, ok := f.Lookup(name); !ok || d != sum(content) {
			t.Errorf("Lookup(%s) = %s, %v; want %s", name, d, ok, sum(content))
		}
	}
	if _, ok := f.Lookup("nope"); ok {
		t.Error("Lookup of an unlisted name succeeded")
	}
}

// TestSha256sumInterop checks the format against the real GNU sha256sum, both ways.
func TestSha256sumInterop(t *testing.T) {
	bin, err := exec.LookPath("sha256sum")
	if err != nil {
		t.Skip("sha256sum not installed")
	}
	dir := writeFiles(t, releaseFiles)
	var names []string
	for n := range releaseFiles {
		names = append(names, n)
	}
	slices.Sort(names)
	f, err := Compute(context.Background(), dir, names)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "checksums.sha256"), f.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	check := exec.Command(bin, "-c", "--strict", "checksums.sha256")
	check.Dir = dir
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("sha256sum -c rejected our file: %v\n%s", err, out)
	}
	gen := exec.Command(bin, names...)
	gen.Dir = dir
	out, err := gen.Output()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, f.Marshal()) {
		t.Fatalf("sha256sum printed\n%s\nwe print\n%s", out, f.Marshal())
	}
	parsed, err := Parse(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("Parse(sha256sum output): %v", err)
	}
	if !slices.Equal(parsed.Entries, f.Entries) {
		t.Fatalf("parsed %v, want %v", parsed.Entries, f.Entries)
	}
	// Tampering is caught by sha256sum too, proving the file really binds the content.
	if err := os.WriteFile(filepath.Join(dir, "sbom.spdx.json"), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := check.CombinedOutput(); err == nil {
		t.Fatalf("sha256sum -c accepted a tampered file:\n%s", out)
	}
}

func TestParse(t *testing.T) {
	a, b := sum("a"), sum("b")
	tests := []struct {
		name    string
		in      string
		want    []Entry
		wantErr string
	}{
		{name: "text mode", in: a + "  a.json\n" + b + "  b.json\n", want: []Entry{{"a.json", a}, {"b.json", b}}},
		{name: "binary marker", in: a + " *a.json\n", want: []Entry{{"a.json", a}}},
		{name: "unsorted input is sorted", in: b + "  b.json\n" + a + "  a.json\n", want: []Entry{{"a.json", a}, {"b.json", b}}},
		{name: "no final newline", in: a + "  a.json", want: []Entry{{"a.json", a}}},
		{name: "uppercase digest normalised", in: strings.ToUpper(a) + "  a.json\n", want: []Entry{{"a.json", a}}},
		{name: "name with spaces", in: a + "  release notes.md\n", want: []Entry{{"release notes.md", a}}},
		{name: "sub directory", in: a + "  dir/a.json\n", want: []Entry{{"dir/a.json", a}}},
		{name: "empty file", in: "", wantErr: "lists no files"},
		{name: "empty line", in: a + "  a.json\n\n" + b + "  b.json\n", wantErr: "line 2: empty line"},
		{name: "crlf", in: a + "  a.json\r\n", wantErr: "line 1: carriage return"},
		{name: "short line", in: "abc  x\n", wantErr: "line 1: expected"},
		{name: "bad hex", in: strings.Repeat("g", 64) + "  a.json\n", wantErr: "line 1: digest"},
		{name: "single space", in: a + " a.json\n", wantErr: "line 1: digest must be followed by two spaces"},
		{name: "tab separator", in: a + "\t a.json\n", wantErr: "line 1: digest must be followed"},
		{name: "short digest", in: a[:63] + "  a.json\n", wantErr: "line 1: digest"},
		{name: "long digest", in: a + "0  a.json\n", wantErr: "line 1: digest must be followed"},
		{name: "bsd style", in: "SHA256 (a.json) = " + a + "\n", wantErr: "line 1: BSD-style"},
		{name: "escaped name", in: "\\" + a + "  a\\nb\n", wantErr: "line 1: escaped file names"},
		{name: "duplicate", in: a + "  a.json\n" + b + "  a.json\n", wantErr: `line 2: "a.json" is already listed on line 1`},
		{name: "absolute path", in: a + "  /etc/passwd\n", wantErr: "line 1: file name \"/etc/passwd\" is not a clean relative path"},
		{name: "parent path", in: a + "  ../a.json\n", wantErr: "not a clean relative path"},
		{name: "dot slash", in: a + "  ./a.json\n", wantErr: "not a clean relative path"},
		{name: "dot", in: a + "  .\n", wantErr: "not a clean relative path"},
		{name: "backslash in name", in: a + "  a\\b\n", wantErr: "backslash"},
		{name: "too long", in: a + "  " + strings.Repeat("n", maxLineLength) + "\n", wantErr: "line 1: longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want one containing %q", err, tt.wantErr)
				}
				if c := outcome.Code(err); c != outcome.VerificationFailed {
					t.Fatalf("exit code %d, want %d (a malformed checksum file is a verification failure)", c, outcome.VerificationFailed)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(f.Entries, tt.want) {
				t.Fatalf("entries %v, want %v", f.Entries, tt.want)
			}
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestParseReadError(t *testing.T) {
	_, err := Parse(failingReader{})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") || outcome.Code(err) != outcome.General {
		t.Fatalf("err = %v (code %d)", err, outcome.Code(err))
	}
}

func TestComputeErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a": "a", "sub/b": "b"})
	tests := []struct {
		name     string
		names    []string
		wantErr  string
		wantCode int
	}{
		{"no names", nil, "no files", outcome.Usage},
		{"missing", []string{"a", "gone.json"}, "gone.json: file not found", outcome.MissingAsset},
		{"duplicate", []string{"a", "a"}, `"a" given twice`, outcome.Usage},
		{"absolute", []string{"/a"}, "not a clean relative path", outcome.Usage},
		{"empty", []string{""}, "empty file name", outcome.Usage},
		{"newline", []string{"a\nb"}, "newline", outcome.Usage},
		{"directory", []string{"sub"}, "sub: is a directory", outcome.General},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compute(context.Background(), dir, tt.names)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if c := outcome.Code(err); c != tt.wantCode {
				t.Fatalf("code %d, want %d", c, tt.wantCode)
			}
		})
	}
	f, err := Compute(context.Background(), dir, []string{"sub/b", "a"})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Names(); !slices.Equal(got, []string{"a", "sub/b"}) {
		t.Fatalf("names %v", got)
	}
}

func TestComputeCancelled(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a": "a"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Compute(ctx, dir, []string{"a"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func mustCompute(t *testing.T, dir string, names ...string) File {
	t.Helper()
	f, err := Compute(context.Background(), dir, names)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestVerify(t *testing.T) {
	base := map[string]string{"a.json": "a", "b.json": "b", "c.json": "c"}
	f := mustCompute(t, writeFiles(t, base), "a.json", "b.json", "c.json")
	tests := []struct {
		name     string
		modify   func(t *testing.T, dir string)
		opts     VerifyOptions
		want     map[string]Status
		wantCode int
		wantErr  []string
	}{
		{
			name:     "all good",
			want:     map[string]Status{"a.json": StatusOK, "b.json": StatusOK, "c.json": StatusOK},
			wantCode: outcome.OK,
		},
		{
			name:     "mismatch",
			modify:   func(t *testing.T, dir string) { write(t, dir, "b.json", "B") },
			want:     map[string]Status{"a.json": StatusOK, "b.json": StatusMismatch, "c.json": StatusOK},
			wantCode: outcome.VerificationFailed,
			wantErr:  []string{"b.json: SHA-256 mismatch: checksum file has " + sum("b") + ", content has " + sum("B")},
		},
		{
			name:     "unlisted",
			modify:   func(t *testing.T, dir string) { write(t, dir, "extra.bin", "x") },
			want:     map[string]Status{"a.json": StatusOK, "b.json": StatusOK, "c.json": StatusOK, "extra.bin": StatusUnlisted},
			wantCode: outcome.VerificationFailed,
			wantErr:  []string{"extra.bin: present but not listed"},
		},
		{
			name:     "unlisted in a sub directory",
			modify:   func(t *testing.T, dir string) { write(t, dir, "sub/x", "x") },
			want:     map[string]Status{"a.json": StatusOK, "b.json": StatusOK, "c.json": StatusOK, "sub/x": StatusUnlisted},
			wantCode: outcome.VerificationFailed,
		},
		{
			name: "allowed unlisted by pattern and by func",
			modify: func(t *testing.T, dir string) {
				write(t, dir, "checksums.sha256", "x")
				write(t, dir, "a.json.sigstore.json", "x")
				write(t, dir, "keep.me", "x")
			},
			opts:     VerifyOptions{AllowUnlisted: []string{"checksums.sha256", "*.sigstore.json"}, AllowUnlistedFunc: func(n string) bool { return n == "keep.me" }},
			want:     map[string]Status{"a.json": StatusOK, "b.json": StatusOK, "c.json": StatusOK},
			wantCode: outcome.OK,
		},
		{
			name:     "missing",
			modify:   func(t *testing.T, dir string) { remove(t, dir, "c.json") },
			want:     map[string]Status{"a.json": StatusOK, "b.json": StatusOK, "c.json": StatusMissing},
			wantCode: outcome.MissingAsset,
			wantErr:  []string{"c.json: listed in the checksum file but missing"},
		},
		{
			name: "every problem reported, missing wins the exit code",
			modify: func(t *testing.T, dir string) {
				write(t, dir, "a.json", "A")
				remove(t, dir, "b.json")
				write(t, dir, "z.txt", "z")
			},
			opts:     VerifyOptions{Workers: 1},
			want:     map[string]Status{"a.json": StatusMismatch, "b.json": StatusMissing, "c.json": StatusOK, "z.txt": StatusUnlisted},
			wantCode: outcome.MissingAsset,
			wantErr:  []string{"a.json: SHA-256 mismatch", "b.json: listed in the checksum file but missing", "z.txt: present but not listed"},
		},
		{
			name: "a directory where a file is listed",
			modify: func(t *testing.T, dir string) {
				remove(t, dir, "a.json")
				write(t, dir, "a.json/inner", "x")
			},
			want:     map[string]Status{"a.json": StatusError, "a.json/inner": StatusUnlisted, "b.json": StatusOK, "c.json": StatusOK},
			wantCode: outcome.VerificationFailed,
			wantErr:  []string{"a.json: cannot read: is a directory"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, base)
			if tt.modify != nil {
				tt.modify(t, dir)
			}
			rep, err := Verify(context.Background(), dir, f, tt.opts)
			got := map[string]Status{}
			for _, r := range rep.Results {
				got[r.Name] = r.Status
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("statuses %v, want %v", got, tt.want)
			}
			if c := outcome.Code(err); c != tt.wantCode {
				t.Fatalf("code %d, want %d (err %v)", c, tt.wantCode, err)
			}
			if rep.OK() != (tt.wantCode == outcome.OK) {
				t.Fatalf("OK() = %v", rep.OK())
			}
			for _, w := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v does not mention %q", err, w)
				}
			}
			if n := rep.Count(StatusOK) + len(rep.Problems()); n != len(rep.Results) {
				t.Fatalf("Count/Problems inconsistent: %d vs %d", n, len(rep.Results))
			}
		})
	}
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyUsageErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a": "a"})
	f := mustCompute(t, dir, "a")
	tests := []struct {
		name    string
		dir     string
		f       File
		opts    VerifyOptions
		wantErr string
	}{
		{"no such directory", filepath.Join(dir, "nope"), f, VerifyOptions{}, "does not exist"},
		{"not a directory", filepath.Join(dir, "a"), f, VerifyOptions{}, "is not a directory"},
		{"bad pattern", dir, f, VerifyOptions{AllowUnlisted: []string{"["}}, `pattern "["`},
		{"empty checksum file", dir, File{}, VerifyOptions{}, "lists no files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(context.Background(), tt.dir, tt.f, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || outcome.Code(err) != outcome.Usage {
				t.Fatalf("err = %v (code %d), want usage error %q", err, outcome.Code(err), tt.wantErr)
			}
		})
	}
}

func TestVerifyCancelled(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a": "a"})
	f := mustCompute(t, dir, "a")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Verify(ctx, dir, f, VerifyOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestVerifyFSWalkError(t *testing.T) {
	fsys := fstest.MapFS{"a": {Data: []byte("a")}}
	f := File{Entries: []Entry{{"a", sum("a")}}}
	if rep, err := VerifyFS(context.Background(), fsys, f, VerifyOptions{}); err != nil || !rep.OK() {
		t.Fatalf("MapFS: %v %+v", err, rep)
	}
	_, err := VerifyFS(context.Background(), brokenFS{}, f, VerifyOptions{})
	if err == nil || !strings.Contains(err.Error(), "list files") {
		t.Fatalf("err = %v", err)
	}
}

type brokenFS struct{}

func (brokenFS) Open(string) (fs.File, error) { return nil, errors.New("device gone") }

// memStore is a release store stand-in reached only through an opener, like the auditor's.
type memStore map[string]string

func (m memStore) open(name string) (io.ReadCloser, error) {
	if name == "flaky.json" {
		return nil, errors.New("connection reset")
	}
	c, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("asset %s: %w", name, fs.ErrNotExist)
	}
	return io.NopCloser(strings.NewReader(c)), nil
}

func TestVerifyFrom(t *testing.T) {
	f := File{Entries: []Entry{{"a.json", sum("a")}, {"b.json", sum("b")}, {"c.json", sum("c")}, {"flaky.json", sum("f")}}}
	store := memStore{"a.json": "a", "b.json": "tampered", "d.json": "d", "flaky.json": "f"}
	rep, err := VerifyFrom(context.Background(), store.open, f, []string{"a.json", "b.json", "d.json", "flaky.json"})
	want := map[string]Status{"a.json": StatusOK, "b.json": StatusMismatch, "c.json": StatusMissing, "d.json": StatusUnlisted, "flaky.json": StatusError}
	got := map[string]Status{}
	for _, r := range rep.Results {
		got[r.Name] = r.Status
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("statuses %v, want %v", got, want)
	}
	if outcome.Code(err) != outcome.MissingAsset {
		t.Fatalf("code %d, want 11", outcome.Code(err))
	}
	for _, w := range []string{"connection reset", "b.json: SHA-256 mismatch", "c.json: listed", "d.json: present but not listed"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	// Without names, nothing is unlisted; a clean store verifies.
	ok := memStore{"a.json": "a", "b.json": "b", "c.json": "c"}
	if rep, err := VerifyFrom(context.Background(), ok.open, File{Entries: f.Entries[:3]}, nil); err != nil || !rep.OK() {
		t.Fatalf("clean store: %v %+v", err, rep)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(sum("a") + "  a.json\n" + sum("b") + " *b.json\n"))
	f.Add([]byte(sum("a") + "  a.json\r\n"))
	f.Add([]byte("SHA256 (a) = " + sum("a")))
	f.Add([]byte(""))
	f.Add([]byte(sum("a") + "  a\n" + sum("a") + "  a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(bytes.NewReader(data))
		if err != nil {
			if c := outcome.Code(err); c != outcome.VerificationFailed {
				t.Fatalf("parse error with code %d: %v", c, err)
			}
			return
		}
		out := file.Marshal()
		again, err := Parse(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("re-parse of Marshal output failed: %v\n%q", err, out)
		}
		if !slices.Equal(file.Entries, again.Entries) {
			t.Fatalf("round trip changed entries: %v vs %v", file.Entries, again.Entries)
		}
		if !bytes.Equal(out, again.Marshal()) {
			t.Fatal("Marshal is not stable")
		}
	})
}

// BenchmarkVerify verifies 8 files of 8 MiB (64 MiB) per iteration; see bench/checksum for
// the ≥1 GiB comparison against sha256sum -c.
func BenchmarkVerify(b *testing.B) {
	const files, size = 8, 8 << 20
	dir := b.TempDir()
	chunk := bytes.Repeat([]byte("mero-release benchmark "), size/23+1)[:size]
	var names []string
	for i := range files {
		name := fmt.Sprintf("asset-%d.bin", i)
		chunk[0] = byte(i)
		if err := os.WriteFile(filepath.Join(dir, name), chunk, 0o644); err != nil {
			b.Fatal(err)
		}
		names = append(names, name)
	}
	f, err := Compute(context.Background(), dir, names)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(files * size)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(context.Background(), dir, f, VerifyOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
