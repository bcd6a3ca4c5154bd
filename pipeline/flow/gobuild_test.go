package flow_test

import (
	"context"
	"debug/elf"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/flow"
)

// TestBuildGoBinary builds a tiny module: a static linux executable lands at a path whose
// directory did not exist, and compiler errors come back with the compiler's output.
func TestBuildGoBinary(t *testing.T) {
	mod := t.TempDir()
	files := map[string]string{
		"go.mod":             "module example.com/tiny\n\ngo 1.26\n",
		"cmd/ok/main.go":     "package main\n\nfunc main() { println(\"ok\") }\n",
		"cmd/broken/main.go": "package main\n\nfunc main() { println(\"ok\" }\n",
	}
	for name, content := range files {
		path := filepath.Join(mod, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()

	out := filepath.Join(t.TempDir(), "nested", "bin", "ok")
	if err := flow.BuildGoBinary(ctx, mod, "./cmd/ok", out); err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatalf("not an ELF executable: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s asks for a dynamic loader: not a static binary", out)
		}
	}
	if f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX {
		t.Errorf("OS ABI %v, want linux", f.OSABI)
	}

	for _, tc := range []struct{ pkg, want string }{
		{"./cmd/broken", "syntax error"},
		{"./cmd/missing", "./cmd/missing"},
	} {
		bad := filepath.Join(t.TempDir(), "bad")
		err := flow.BuildGoBinary(ctx, mod, tc.pkg, bad)
		if err == nil {
			t.Errorf("%s built", tc.pkg)
			continue
		}
		if !strings.Contains(err.Error(), "build "+tc.pkg) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not name the package and %q", tc.pkg, err, tc.want)
		}
		if _, err := os.Stat(bad); !os.IsNotExist(err) {
			t.Errorf("%s: a failed build left %s (%v)", tc.pkg, bad, err)
		}
	}
}
