package storeopen

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/store"
	"github.com/calimero-network/mero-release/pipeline/store/dir"
	ghstore "github.com/calimero-network/mero-release/pipeline/store/github"
	"github.com/calimero-network/mero-release/pipeline/store/github/githubtest"
)

func TestOpenDir(t *testing.T) {
	root := filepath.Join(t.TempDir(), "releases")
	st, err := Open(context.Background(), "dir:"+root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, ok := st.(*dir.Store)
	if !ok || d.Root() != root {
		t.Fatalf("Open(dir:) = %T %v", st, st)
	}
}

func TestOpenGitHub(t *testing.T) {
	ctx := context.Background()
	fake := githubtest.New("calimero-network", "mero-tee", "tok", nil)
	defer fake.Close()
	st, err := Open(ctx, "github:calimero-network/mero-tee", Options{Token: "tok", APIURL: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.(*ghstore.Store); !ok {
		t.Fatalf("Open(github:) = %T", st)
	}
	if _, err := st.CreateDraft(ctx, store.DraftSpec{Tag: "mero-tee-v1.0.0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Release(ctx, "mero-tee-v1.0.0"); err != nil {
		t.Fatalf("the token was not used: %v", err)
	}
	anon, err := Open(ctx, "github:calimero-network/mero-tee", Options{APIURL: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Release(ctx, "mero-tee-v1.0.0"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("anonymous store sees the draft: %v", err)
	}
}

func TestOpenBadSpecs(t *testing.T) {
	for _, spec := range []string{"", "dir:", "dir", "github:", "github:owner", "github:a/b/c", "s3:bucket", "/tmp/x", "github:a/b c"} {
		_, err := Open(context.Background(), spec, Options{})
		if outcome.Code(err) != outcome.Usage || !strings.Contains(err.Error(), "store") && !strings.Contains(err.Error(), "repository") {
			t.Errorf("Open(%q) = %v, want a usage error", spec, err)
		}
	}
	if _, err := Open(context.Background(), "github:a/b", Options{APIURL: "ftp://x"}); outcome.Code(err) != outcome.Usage {
		t.Errorf("bad API URL = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Open(ctx, "dir:"+t.TempDir(), Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled = %v", err)
	}
}
