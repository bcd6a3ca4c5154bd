// Package notes writes the release notes of a release (SPEC §1, §5): a changelog generated from
// the git history since the previous tag of the same family, the measurement changes per
// profile, the compatible counterpart versions, and the sections the author wrote. A section
// the release class requires that is neither written nor generated fails the stage (exit 10).
//
// Git history is read with go-git, so the stage needs no git binary.
package notes

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/calimero-network/mero-release/pipeline/internal/lazyre"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// Person is a commit author or co-author.
type Person struct {
	Name  string
	Email string
}

// Commit is one commit of the history a release note covers.
type Commit struct {
	// Hash is the full hexadecimal commit hash.
	Hash string
	// Subject is the first line of the message; Body is the rest, trimmed.
	Subject string
	Body    string
	// Author wrote the change; CoAuthors come from "Co-authored-by:" trailers.
	Author    Person
	CoAuthors []Person
	// When is the author time.
	When time.Time
	// PRs are the pull-request numbers the subject references: "(#123)" or "Merge pull request #123".
	PRs []int
	// Parents are the parent commit hashes; Merge is true when there is more than one.
	Parents []string
	Merge   bool
}

var (
	prRefRE      = lazyre.New(`\(#([0-9]+)\)`)
	mergePRRE    = lazyre.New(`^Merge pull request #([0-9]+)`)
	coAuthoredRE = lazyre.New(`(?im)^co-authored-by:\s*(.*?)\s*<([^>]*)>\s*$`)
)

// PRRefs returns the pull-request numbers a commit subject references, in order of appearance:
// "(#123)" anywhere (GitHub squash merges) and a leading "Merge pull request #123".
func PRRefs(subject string) []int {
	var prs []int
	add := func(s string) {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || slices.Contains(prs, n) {
			return
		}
		prs = append(prs, n)
	}
	if m := mergePRRE().FindStringSubmatch(subject); m != nil {
		add(m[1])
	}
	for _, m := range prRefRE().FindAllStringSubmatch(subject, -1) {
		add(m[1])
	}
	return prs
}

// openRepo opens the repository at dir or one of its parents.
func openRepo(dir string) (*git.Repository, error) {
	repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if err != nil {
		return nil, outcome.UsageErrorf("repository %s: %v", dir, err)
	}
	return repo, nil
}

// resolve returns the commit a revision (tag, branch, hash, HEAD) names; annotated tags are peeled.
func resolve(repo *git.Repository, dir, rev string) (*object.Commit, error) {
	h, err := repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return nil, outcome.UsageErrorf("repository %s: revision %q: %v", dir, rev, err)
	}
	c, err := repo.CommitObject(*h)
	if err != nil {
		return nil, fmt.Errorf("repository %s: revision %q: commit %s: %w", dir, rev, h, err)
	}
	return c, nil
}

// IsAncestor reports whether the commit ancestor names is ref's commit or one of its ancestors
// (ref empty: HEAD). Unknown revisions are usage errors.
func IsAncestor(ctx context.Context, repoDir, ancestor, ref string) (bool, error) {
	repo, err := openRepo(repoDir)
	if err != nil {
		return false, err
	}
	if ref == "" {
		ref = "HEAD"
	}
	a, err := resolve(repo, repoDir, ancestor)
	if err != nil {
		return false, err
	}
	h, err := resolve(repo, repoDir, ref)
	if err != nil {
		return false, err
	}
	if a.Hash == h.Hash {
		return true, nil
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	return a.IsAncestor(h)
}

// History returns the commits reachable from the revision to (empty: HEAD) and not from the
// revision from (empty: the whole history), newest first in a deterministic topological order
// (a commit always comes before its parents; among the rest, newer committer time first, then
// hash). Revisions are anything git rev-parse would accept that go-git resolves: tags (annotated
// or not), branches, hashes, HEAD. A repository or revision that does not exist is a usage error.
func History(ctx context.Context, repoDir, from, to string) ([]Commit, error) {
	repo, err := openRepo(repoDir)
	if err != nil {
		return nil, err
	}
	if to == "" {
		to = "HEAD"
	}
	head, err := resolve(repo, repoDir, to)
	if err != nil {
		return nil, err
	}
	excluded := map[plumbing.Hash]bool{}
	if from != "" {
		base, err := resolve(repo, repoDir, from)
		if err != nil {
			return nil, err
		}
		it := object.NewCommitPreorderIter(base, nil, nil)
		err = it.ForEach(func(c *object.Commit) error {
			excluded[c.Hash] = true
			return ctx.Err()
		})
		if err != nil {
			return nil, fmt.Errorf("repository %s: walk %s: %w", repoDir, from, err)
		}
	}
	var commits []*object.Commit
	it := object.NewCommitPreorderIter(head, excluded, nil)
	err = it.ForEach(func(c *object.Commit) error {
		commits = append(commits, c)
		return ctx.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("repository %s: walk %s: %w", repoDir, to, err)
	}
	out := make([]Commit, 0, len(commits))
	for _, c := range topoOrder(commits) {
		out = append(out, toCommit(c))
	}
	return out, nil
}

// topoOrder orders commits children-first (Kahn's algorithm); among commits that are ready, the
// newest committer time wins and the hash breaks ties, so the order never depends on map or heap
// iteration.
func topoOrder(commits []*object.Commit) []*object.Commit {
	in := make(map[plumbing.Hash]*object.Commit, len(commits))
	for _, c := range commits {
		in[c.Hash] = c
	}
	children := make(map[plumbing.Hash]int, len(commits)) // number of unvisited children inside the set
	for _, c := range commits {
		for _, p := range c.ParentHashes {
			if _, ok := in[p]; ok {
				children[p]++
			}
		}
	}
	newer := func(a, b *object.Commit) int {
		if c := b.Committer.When.Compare(a.Committer.When); c != 0 {
			return c
		}
		return strings.Compare(a.Hash.String(), b.Hash.String())
	}
	var ready []*object.Commit
	for _, c := range commits {
		if children[c.Hash] == 0 {
			ready = append(ready, c)
		}
	}
	out := make([]*object.Commit, 0, len(commits))
	for len(ready) > 0 {
		slices.SortFunc(ready, newer)
		c := ready[0]
		ready = ready[1:]
		out = append(out, c)
		for _, p := range c.ParentHashes {
			if pc, ok := in[p]; ok {
				children[p]--
				if children[p] == 0 {
					ready = append(ready, pc)
				}
			}
		}
	}
	return out
}

func toCommit(c *object.Commit) Commit {
	subject, body, _ := strings.Cut(strings.TrimSpace(c.Message), "\n")
	subject = strings.TrimSpace(subject)
	body = strings.TrimSpace(body)
	out := Commit{
		Hash:    c.Hash.String(),
		Subject: subject,
		Body:    body,
		Author:  Person{Name: strings.TrimSpace(c.Author.Name), Email: strings.TrimSpace(c.Author.Email)},
		When:    c.Author.When,
		PRs:     PRRefs(subject),
		Merge:   c.NumParents() > 1,
	}
	for _, p := range c.ParentHashes {
		out.Parents = append(out.Parents, p.String())
	}
	for _, m := range coAuthoredRE().FindAllStringSubmatch(body, -1) {
		out.CoAuthors = append(out.CoAuthors, Person{Name: strings.TrimSpace(m[1]), Email: strings.TrimSpace(m[2])})
	}
	return out
}

// Tags returns the release tags (of either family) in the repository at repoDir, sorted by
// family and version. Tags that are not release tags are skipped.
func Tags(ctx context.Context, repoDir string) ([]release.Tag, error) {
	repo, err := openRepo(repoDir)
	if err != nil {
		return nil, err
	}
	refs, err := repo.Tags()
	if err != nil {
		return nil, fmt.Errorf("repository %s: list tags: %w", repoDir, err)
	}
	defer refs.Close()
	var names []string
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ref, err := refs.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("repository %s: list tags: %w", repoDir, err)
		}
		names = append(names, ref.Name().Short())
	}
	tags := release.ParseTags(names)
	release.SortTags(tags)
	return tags, nil
}

// Contributors returns everyone who authored or co-authored the commits, once each (by e-mail,
// case-insensitively; by name when there is no e-mail), sorted by name.
func Contributors(commits []Commit) []Person {
	seen := map[string]bool{}
	var people []Person
	add := func(p Person) {
		if p.Name == "" && p.Email == "" {
			return
		}
		key := strings.ToLower(cmp.Or(p.Email, p.Name))
		if seen[key] {
			return
		}
		seen[key] = true
		people = append(people, p)
	}
	for _, c := range commits {
		add(c.Author)
		for _, co := range c.CoAuthors {
			add(co)
		}
	}
	slices.SortFunc(people, func(a, b Person) int {
		if c := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); c != 0 {
			return c
		}
		return strings.Compare(strings.ToLower(a.Email), strings.ToLower(b.Email))
	})
	return people
}
