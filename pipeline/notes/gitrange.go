package notes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// ChangedPaths lists the paths that differ between two revisions of the repository at repoDir
// (git diff --name-only --no-renames BASE HEAD): added, modified and deleted files, a rename as
// its old and its new path, sorted. Unknown revisions are usage errors.
func ChangedPaths(ctx context.Context, repoDir, base, head string) ([]string, error) {
	repo, err := openRepo(repoDir)
	if err != nil {
		return nil, err
	}
	from, err := resolve(repo, repoDir, base)
	if err != nil {
		return nil, err
	}
	to, err := resolve(repo, repoDir, head)
	if err != nil {
		return nil, err
	}
	fromTree, err := from.Tree()
	if err != nil {
		return nil, fmt.Errorf("repository %s: %s: %w", repoDir, base, err)
	}
	toTree, err := to.Tree()
	if err != nil {
		return nil, fmt.Errorf("repository %s: %s: %w", repoDir, head, err)
	}
	changes, err := object.DiffTreeWithOptions(ctx, fromTree, toTree, &object.DiffTreeOptions{DetectRenames: false})
	if err != nil {
		return nil, fmt.Errorf("repository %s: diff %s..%s: %w", repoDir, base, head, err)
	}
	var paths []string
	for _, c := range changes {
		for _, name := range []string{c.From.Name, c.To.Name} {
			if name != "" {
				paths = append(paths, name)
			}
		}
	}
	slices.Sort(paths)
	return slices.Compact(paths), nil
}

// FileAt returns the content of path at a revision of the repository at repoDir; ok is false
// when the revision has no such file. Unknown revisions are usage errors.
func FileAt(ctx context.Context, repoDir, rev, path string) (data []byte, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	repo, err := openRepo(repoDir)
	if err != nil {
		return nil, false, err
	}
	c, err := resolve(repo, repoDir, rev)
	if err != nil {
		return nil, false, err
	}
	f, err := c.File(path)
	if errors.Is(err, object.ErrFileNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("repository %s: %s at %s: %w", repoDir, path, rev, err)
	}
	s, err := f.Contents()
	if err != nil {
		return nil, false, fmt.Errorf("repository %s: %s at %s: %w", repoDir, path, rev, err)
	}
	return []byte(s), true, nil
}

// SplitRange checks a BASE..HEAD range and returns its ends; anything else is a usage error.
func SplitRange(r string) (base, head string, err error) {
	base, head, ok := strings.Cut(r, "..")
	if !ok || base == "" || head == "" || strings.HasPrefix(head, ".") || strings.HasPrefix(base, "-") || strings.HasPrefix(head, "-") {
		return "", "", outcome.UsageErrorf("git range %q: want BASE..HEAD, e.g. origin/main..HEAD", r)
	}
	return base, head, nil
}
