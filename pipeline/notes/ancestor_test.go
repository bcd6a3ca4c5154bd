package notes

import (
	"context"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

func TestIsAncestor(t *testing.T) {
	r := newTestRepo(t)
	r.commit("alice", "feat: first")
	r.branch("side", true)
	r.commit("bob", "fix: on the side")
	r.tag("mero-kms-v1.3.0", true) // the stable release, on the side branch
	r.branch("hotfix-1.3", true)
	r.commit("bob", "fix: the hotfix")
	ctx := context.Background()
	ok, err := IsAncestor(ctx, r.dir, "mero-kms-v1.3.0", "")
	if err != nil || !ok {
		t.Fatalf("the base tag is an ancestor of the hotfix branch's HEAD: %v, %v", ok, err)
	}
	if ok, err := IsAncestor(ctx, r.dir, "mero-kms-v1.3.0", "mero-kms-v1.3.0"); err != nil || !ok {
		t.Errorf("a commit is its own ancestor: %v, %v", ok, err)
	}
	r.branch("master", false)
	r.commit("carol", "feat: main line moves on")
	if ok, err := IsAncestor(ctx, r.dir, "mero-kms-v1.3.0", "HEAD"); err != nil || ok {
		t.Errorf("a tag on a side branch is not an ancestor of master: %v, %v", ok, err)
	}
	if _, err := IsAncestor(ctx, r.dir, "mero-kms-v9.9.9", ""); outcome.Code(err) != outcome.Usage {
		t.Errorf("an unknown tag: %v", err)
	}
	if _, err := IsAncestor(ctx, t.TempDir(), "HEAD", ""); outcome.Code(err) != outcome.Usage {
		t.Errorf("not a repository: %v", err)
	}
}
