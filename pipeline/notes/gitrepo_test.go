package notes

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// testRepo is a real git repository on disk, written with go-git, with a fixed clock so that
// commit hashes are the same on every run.
type testRepo struct {
	t     testing.TB
	dir   string
	repo  *git.Repository
	wt    *git.Worktree
	clock time.Time
	n     int
}

func newTestRepo(t testing.TB) *testRepo {
	t.Helper()
	dir := t.TempDir()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	return &testRepo{t: t, dir: dir, repo: repo, wt: wt, clock: time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC)}
}

var people = map[string]object.Signature{
	"alice": {Name: "Alice Liddell", Email: "alice@example.com"},
	"bob":   {Name: "Bob Builder", Email: "bob@example.com"},
	"carol": {Name: "Carol Danvers", Email: "carol@example.com"},
}

// commit writes a file and commits it as who; extra parents make a merge commit.
func (r *testRepo) commit(who, message string, parents ...plumbing.Hash) plumbing.Hash {
	r.t.Helper()
	r.n++
	r.clock = r.clock.Add(time.Hour)
	name := fmt.Sprintf("file%02d.txt", r.n)
	if err := os.WriteFile(filepath.Join(r.dir, name), []byte(message+"\n"), 0o644); err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.wt.Add(name); err != nil {
		r.t.Fatal(err)
	}
	sig := people[who]
	sig.When = r.clock
	opts := &git.CommitOptions{Author: &sig, Committer: &sig}
	if len(parents) > 0 {
		head, err := r.repo.Head()
		if err != nil {
			r.t.Fatal(err)
		}
		opts.Parents = append([]plumbing.Hash{head.Hash()}, parents...)
	}
	h, err := r.wt.Commit(message, opts)
	if err != nil {
		r.t.Fatal(err)
	}
	return h
}

// tag tags HEAD; annotated tags get a tag object like `git tag -a`.
func (r *testRepo) tag(name string, annotated bool) {
	r.t.Helper()
	head, err := r.repo.Head()
	if err != nil {
		r.t.Fatal(err)
	}
	var opts *git.CreateTagOptions
	if annotated {
		sig := people["alice"]
		sig.When = r.clock
		opts = &git.CreateTagOptions{Tagger: &sig, Message: "release " + name}
	}
	if _, err := r.repo.CreateTag(name, head.Hash(), opts); err != nil {
		r.t.Fatal(err)
	}
}

// branch creates a branch at HEAD and checks it out; checkout switches back to an existing one.
func (r *testRepo) branch(name string, create bool) {
	r.t.Helper()
	if err := r.wt.Checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName(name), Create: create}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *testRepo) head() plumbing.Hash {
	r.t.Helper()
	h, err := r.repo.Head()
	if err != nil {
		r.t.Fatal(err)
	}
	return h.Hash()
}
