package catalog

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/release"
)

// TestRepositoryCompatibilityDocs: docs/compatibility.md is the page generated from the
// repository's compatibility-json (-update, the golden-file flag, rewrites it).
func TestRepositoryCompatibilityDocs(t *testing.T) {
	root := filepath.Join("..", "..")
	c, err := LoadFile(filepath.Join(root, DefaultFile))
	if err != nil {
		t.Fatal(err)
	}
	want := c.Markdown()
	docs := filepath.Join(root, filepath.FromSlash(DocsFile))
	if *update {
		if err := os.WriteFile(docs, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(docs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not the page generated from %s: run go test ./pipeline/catalog -run TestRepositoryCompatibilityDocs -update\n%s", DocsFile, DefaultFile, want)
	}
}

func TestMarkdown(t *testing.T) {
	c := New()
	if _, err := c.Add(Entry{KMS: "1.3.0", NodeImage: "1.3.0", Profiles: release.Profiles(), Tested: true, Notes: "E2E | passed\nfor mero-kms-v1.3.0"}); err != nil {
		t.Fatal(err)
	}
	md := string(c.Markdown())
	for _, want := range []string{"| KMS | node image | profiles | tested | notes |",
		"| 1.3.0 | 1.3.0 | debug, debug-read-only, locked-read-only | yes | E2E \\| passed for mero-kms-v1.3.0 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if md := string(New().Markdown()); !strings.Contains(md, "No pair is listed yet.") {
		t.Errorf("empty catalog:\n%s", md)
	}
}
