// Package lifecycle is the whole promotion path of SPEC §1 and §5 as one local sequence: node
// image and KMS release candidates → the stable releases → a node-image hotfix whose
// measurements changed → the KMS hotfix carrying the updated policies. It describes the steps
// and prepares what a release author and the repository would hold before each one: a scratch
// git repository whose history, tags, hotfix branch and release-notes/<tag>.md files the
// releases read (so the hotfix rule BuiltFromBase is checked for real), and the changed node
// image of the hotfix. The releases themselves are the normal pipelines (pipeline/flow), run
// by the caller with the arguments each step gives.
package lifecycle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/calimero-network/mero-release/pipeline/notes"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// Step is one release of the lifecycle.
type Step struct {
	// Tag is the release made in this step.
	Tag release.Tag
	// Counterpart is the version of the other family it pairs with.
	Counterpart string
	// Branch is the branch of the scratch repository the release is built from; From, when
	// set, is the tag the branch starts at (a hotfix branch of the stable tag).
	Branch, From string
	// Commit is the change the step commits before its tag (its subject feeds the changelog).
	Commit string
	// Notes are the author's notes the step commits as release-notes/<tag>.md ("" for an rc).
	Notes string
	// ChangedImage: the node image of this step differs from the example (a hotfix of the
	// kernel command line), so its measurements change.
	ChangedImage bool
}

// MainBranch is the scratch repository's main line.
const MainBranch = "main"

// Steps are the releases of the lifecycle of minor line X.Y (e.g. "1.3"), in order.
func Steps(line string) []Step {
	v := func(s string) string { return line + "." + s }
	tag := func(f release.Family, s string) release.Tag { return release.MustParseTag(f.TagPrefix() + v(s)) }
	hotfixBranch := "hotfix/" + v("1")
	return []Step{
		{Tag: tag(release.Node, "0-rc.1"), Counterpart: "", Branch: MainBranch,
			Commit: "feat(node): the " + line + " node image (#101)"},
		{Tag: tag(release.KMS, "0-rc.1"), Counterpart: v("0-rc.1"), Branch: MainBranch,
			Commit: "feat(kms): the " + line + " KMS (#102)"},
		{Tag: tag(release.Node, "0"), Counterpart: v("0-rc.1"), Branch: MainBranch,
			Commit: "docs: release notes of " + tag(release.Node, "0").String() + " (#103)", Notes: stableNotes("node image", line)},
		{Tag: tag(release.KMS, "0"), Counterpart: v("0"), Branch: MainBranch,
			Commit: "docs: release notes of " + tag(release.KMS, "0").String() + " (#104)", Notes: stableNotes("KMS", line)},
		{Tag: tag(release.Node, "1"), Counterpart: v("0"), Branch: hotfixBranch, From: tag(release.KMS, "0").String(), ChangedImage: true,
			Commit: "fix(node): lock the serial console in the kernel command line (#105)", Notes: nodeHotfixNotes(line)},
		{Tag: tag(release.KMS, "1"), Counterpart: v("1"), Branch: hotfixBranch,
			Commit: "fix(kms): attestation policies for " + tag(release.Node, "1").String() + " (#106)", Notes: kmsHotfixNotes(line)},
	}
}

func stableNotes(what, line string) string {
	return fmt.Sprintf(`The %s %s line, promoted from its release candidate after E2E confirmed its measurements.

## Breaking changes

None.

## Upgrade path

Deploy the KMS first with the attestation policy of its release, then roll the nodes (docs/operators.md, KMS policy migration).
`, what, line)
}

func nodeHotfixNotes(line string) string {
	return fmt.Sprintf(`A patch of the %s node image.

## CVE or incident

INC-LIFECYCLE-1 (simulated): a login console was reachable on the serial port of locked-read-only nodes.

## Exact change

The kernel command line gains `+"`mero.console=locked`"+`; RTMR2 of every profile changes.

## Rollback

Boot the %s.0 image again; its measurements stay in the KMS policies until the KMS hotfix replaces them.

## Why a patch release

The console must be closed on running nodes without waiting for the next minor release.
`, line, line)
}

func kmsHotfixNotes(line string) string {
	return fmt.Sprintf(`A patch of the %s KMS: attestation policies that hold the measurements of the %s.1 node image.

## CVE or incident

INC-LIFECYCLE-1 (simulated): follow-up of the node image hotfix %s.1.

## Exact change

The attestation policies allow the MRTD/RTMR values of mero-tee-v%s.1 (generated from its published-mrtds.json).

## Rollback

Redeploy mero-kms %s.0 with its policy; nodes of %s.1 then get no keys.

## Why a patch release

Nodes of the %s.1 hotfix get keys only from a KMS whose policy holds their measurements.
`, line, line, line, line, line, line, line)
}

// commitTime is the fixed author and commit time of step index of the scratch history
// (reproducible notes).
func commitTime(index int) time.Time {
	return time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC).Add(time.Duration(index) * time.Hour)
}

// Prepare brings the scratch repository at dir to the state step is released from: on its
// branch (created from From when new), with its change and notes committed and its tag set.
// A step whose tag exists is only checked out (a re-run). HEAD is detached at the tag.
func Prepare(dir string, step Step, index int) error {
	repo, err := openOrInit(dir)
	if err != nil {
		return err
	}
	wt, err := repo.Worktree()
	if err != nil {
		return fmt.Errorf("lifecycle repository %s: %w", dir, err)
	}
	tagRef := plumbing.NewTagReferenceName(step.Tag.String())
	if ref, err := repo.Reference(tagRef, true); err == nil {
		if err := wt.Checkout(&git.CheckoutOptions{Hash: ref.Hash(), Force: true}); err != nil {
			return fmt.Errorf("lifecycle repository %s: check out %s: %w", dir, step.Tag, err)
		}
		return nil
	}
	branch := plumbing.NewBranchReferenceName(step.Branch)
	_, err = repo.Head()
	switch {
	case errors.Is(err, plumbing.ErrReferenceNotFound):
		// an empty repository: the first commit makes the branch
		if err := repo.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, branch)); err != nil {
			return fmt.Errorf("lifecycle repository %s: %w", dir, err)
		}
	case err != nil:
		return fmt.Errorf("lifecycle repository %s: %w", dir, err)
	default:
		co := &git.CheckoutOptions{Branch: branch, Force: true}
		if _, err := repo.Reference(branch, true); err != nil {
			from, err := repo.Reference(plumbing.NewTagReferenceName(step.From), true)
			if err != nil {
				return fmt.Errorf("lifecycle repository %s: branch %s starts at %s: %w", dir, step.Branch, step.From, err)
			}
			co.Create, co.Hash = true, from.Hash()
		}
		if err := wt.Checkout(co); err != nil {
			return fmt.Errorf("lifecycle repository %s: check out %s: %w", dir, step.Branch, err)
		}
	}
	files := map[string]string{filepath.Join("changes", fmt.Sprintf("%02d.txt", index+1)): step.Commit + "\n"}
	if step.Notes != "" {
		rel, err := filepath.Rel(dir, notes.ConventionFile(dir, step.Tag))
		if err != nil {
			return err
		}
		files[rel] = step.Notes
	}
	for name, content := range files {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			return fmt.Errorf("lifecycle repository %s: %w", dir, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("lifecycle repository %s: %w", dir, err)
		}
		if _, err := wt.Add(filepath.ToSlash(name)); err != nil {
			return fmt.Errorf("lifecycle repository %s: add %s: %w", dir, name, err)
		}
	}
	sig := &object.Signature{Name: "Release Author", Email: "release-author@example.com", When: commitTime(index)}
	hash, err := wt.Commit(step.Commit, &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		return fmt.Errorf("lifecycle repository %s: commit: %w", dir, err)
	}
	if _, err := repo.CreateTag(step.Tag.String(), hash, nil); err != nil {
		return fmt.Errorf("lifecycle repository %s: tag %s: %w", dir, step.Tag, err)
	}
	if err := wt.Checkout(&git.CheckoutOptions{Hash: hash, Force: true}); err != nil {
		return fmt.Errorf("lifecycle repository %s: check out %s: %w", dir, step.Tag, err)
	}
	return nil
}

func openOrInit(dir string) (*git.Repository, error) {
	repo, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("lifecycle repository %s: %w", dir, err)
		}
		repo, err = git.PlainInit(dir, false)
	}
	if err != nil {
		return nil, fmt.Errorf("lifecycle repository %s: %w", dir, err)
	}
	return repo, nil
}
