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

	"github.com/calimero-network/mero-release/pipeline/catalog"
	"github.com/calimero-network/mero-release/pipeline/catalogpr"
	"github.com/calimero-network/mero-release/pipeline/lifecycle"
	"github.com/calimero-network/mero-release/pipeline/release"
)

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
