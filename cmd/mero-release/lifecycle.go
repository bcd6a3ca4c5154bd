package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/calimero-network/mero-release/pipeline/catalog"
	"github.com/calimero-network/mero-release/pipeline/catalogpr"
	"github.com/calimero-network/mero-release/pipeline/lifecycle"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// lifecycleCommand is `mero-release lifecycle`: the steps of release-local --lifecycle, one at a
// time, for callers that run each release themselves (scripts/ci/dagger-lifecycle.sh).
func (a *app) lifecycleCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "lifecycle",
		Short: "The promotion path of release-local --lifecycle, one step at a time",
	}
	var history, line string
	var step int
	prepare := &cobra.Command{
		Use:   "prepare --history DIR --step N [--line X.Y]",
		Short: "Bring the scratch history to step N and print: FUNCTION TAG VERSION IMAGE",
		Long: `Prepares step N (0-based) of the lifecycle in the scratch git repository DIR, as
release-local --lifecycle does before each release (its branch, change, release-notes/<tag>.md
and tag), and prints one line: the release function (release-node-image or release-kms), the
tag, the version, and the node image to release (a repository path; "-" for the example image
or a KMS step). Exit 2 for a step out of range.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			steps := lifecycle.Steps(line)
			if step < 0 || step >= len(steps) {
				return outcome.UsageErrorf("lifecycle prepare: --step %d: want 0 to %d", step, len(steps)-1)
			}
			if history == "" {
				return outcome.UsageErrorf("lifecycle prepare: --history is required")
			}
			s := steps[step]
			if err := lifecycle.Prepare(history, s, step); err != nil {
				return err
			}
			fn, image := "release-kms", "-"
			if s.Tag.Family == release.Node {
				fn = "release-node-image"
				if s.ChangedImage {
					image = lifecycle.HotfixImageDir
				}
			}
			a.log.Infof("lifecycle step %d/%d: %s from %s of %s", step+1, len(steps), s.Tag, s.Branch, history)
			_, err := fmt.Fprintf(a.stdout, "%s %s %s %s\n", fn, s.Tag, s.Tag.Version, image)
			return err
		},
	}
	prepare.Flags().StringVar(&history, "history", "", "the scratch git repository (created when missing)")
	prepare.Flags().IntVar(&step, "step", 0, "the step, 0-based")
	prepare.Flags().StringVar(&line, "line", "1.3", "the minor line X.Y")
	c.AddCommand(prepare)
	return c
}

// lifecycleOptions are the flags of release-local --lifecycle.
type lifecycleOptions struct {
	line, store, work, repo string
}

// runLifecycle runs the steps of lifecycle.Steps as release-node-image and release-kms
// commands, each from the scratch history lifecycle.Prepare leaves, with one catalog file that
// every release reads and updates (as if each catalog pull request were merged before the next
// release), and writes each release's catalog pull request into WORK/lifecycle/catalog-pr/<tag>.
func (a *app) runLifecycle(ctx context.Context, o lifecycleOptions) error {
	start := time.Now()
	repo, err := filepath.Abs(o.repo)
	if err != nil {
		return err
	}
	work, err := filepath.Abs(o.work)
	if err != nil {
		return err
	}
	history := filepath.Join(work, "lifecycle", "history")
	catalogPath := filepath.Join(work, catalog.DefaultFile)
	if _, err := os.Stat(catalogPath); errors.Is(err, fs.ErrNotExist) {
		seed, err := a.catalogLoad(filepath.Join(repo, catalog.DefaultFile))
		if err != nil {
			return err
		}
		if err := seed.WriteFile(catalogPath); err != nil {
			return err
		}
	}
	steps := lifecycle.Steps(o.line)
	for i, step := range steps {
		if err := lifecycle.Prepare(history, step, i); err != nil {
			return err
		}
		args := lifecycleArgs(step, o.store, work, repo, history, catalogPath)
		before, err := a.catalogLoad(catalogPath)
		if err != nil {
			return err
		}
		a.log.Infof("=== lifecycle %d/%d: mero-release %s", i+1, len(steps), strings.Join(args, " "))
		sub := a.rootCommand()
		sub.SetArgs(args)
		sub.SetOut(a.stdout)
		sub.SetErr(a.stderr)
		if err := sub.ExecuteContext(ctx); err != nil {
			return fmt.Errorf("lifecycle step %d (%s): %w", i+1, step.Tag, err)
		}
		after, err := a.catalogLoad(catalogPath)
		if err != nil {
			return err
		}
		if len(catalog.Diff(before, after)) > 0 {
			dir := filepath.Join(work, "lifecycle", "catalog-pr", step.Tag.String())
			if _, err := catalogpr.Local(dir, step.Tag, before, after); err != nil {
				return err
			}
			a.log.Infof("catalog pull request of %s written to %s", step.Tag, dir)
		}
	}
	var tags []string
	for _, s := range steps {
		tags = append(tags, s.Tag.String())
	}
	a.log.Passf("lifecycle %s done in %.1fs: store %s, catalog %s", strings.Join(tags, " → "), time.Since(start).Seconds(), o.store, catalogPath)
	return nil
}

// lifecycleArgs are the release command of a step.
func lifecycleArgs(step lifecycle.Step, store, work, repo, history, catalogPath string) []string {
	cmd := "release-kms"
	if step.Tag.Family == release.Node {
		cmd = "release-node-image"
	}
	args := []string{cmd, "--tag", step.Tag.String(), "--version", step.Tag.Version.String(),
		"--store", store, "--work", work, "--repo", repo, "--history", history,
		"--catalog", catalogPath, "--catalog-out", catalogPath}
	if step.Counterpart != "" {
		args = append(args, "--counterpart", step.Counterpart)
	}
	if step.Tag.Family == release.Node {
		img := filepath.Join(repo, "examples", "node-image")
		if step.ChangedImage {
			img = filepath.Join(repo, filepath.FromSlash(lifecycle.HotfixImageDir))
		}
		for _, p := range release.Profiles() {
			args = append(args, "--image", string(p)+"="+img)
		}
		args = append(args, "--sbom-input", img)
	}
	return args
}
