package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.json")
	for _, content := range []string{"first\n", "second, longer\n", ""} {
		if err := Write(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("read %q, %v; want %q", got, err, content)
		}
		st, _ := os.Stat(path)
		if st.Mode().Perm() != 0o644 {
			t.Errorf("mode %v, want 0644", st.Mode().Perm())
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Errorf("temporary files left behind: %v", entries)
		}
	}
}

func TestWriteFailures(t *testing.T) {
	dir := t.TempDir()
	// A parent that is a regular file: the directory cannot be created.
	if err := os.WriteFile(filepath.Join(dir, "nope"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "nope", "out.json")
	if err := Write(missing, []byte("x")); err == nil || !strings.HasPrefix(err.Error(), "write "+missing+": ") {
		t.Errorf("parent is a file: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "nope")); err != nil {
		t.Fatal(err)
	}
	// The target is a non-empty directory: the rename fails, the temporary file is removed and
	// the target is untouched.
	target := filepath.Join(dir, "target")
	if err := os.MkdirAll(filepath.Join(target, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Write(target, []byte("x")); err == nil || !strings.HasPrefix(err.Error(), "write "+target+": ") {
		t.Errorf("rename over a directory: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 || entries[0].Name() != "target" {
		t.Errorf("after a failed rename: %v", entries)
	}
	if entries, _ := os.ReadDir(target); len(entries) != 1 || entries[0].Name() != "x" {
		t.Errorf("the target changed: %v", entries)
	}
}

func TestWriteCreatesParents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "out.json")
	if err := Write(path, []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != "{}\n" {
		t.Fatalf("read back %q, %v", data, err)
	}
}
