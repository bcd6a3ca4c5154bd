package main

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/calimero-network/mero-release/pipeline/catalog"
	"github.com/calimero-network/mero-release/pipeline/catalogpr"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/publish"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/store"
	ghstore "github.com/calimero-network/mero-release/pipeline/store/github"
	"github.com/calimero-network/mero-release/pipeline/store/storeopen"
)

// Environment variables of the GitHub commands (set by GitHub Actions).
const (
	envGitHubToken      = "GITHUB_TOKEN"
	envGitHubAPIURL     = "GITHUB_API_URL"
	envGitHubRepository = "GITHUB_REPOSITORY"
	envStepSummary      = "GITHUB_STEP_SUMMARY"
	envCatalogPath      = "COMPATIBILITY_CATALOG_PATH"
)

// openStore opens a dir:PATH or github:OWNER/REPO store with the GitHub token and API URL of
// the environment. Retries are announced as [WARN] lines.
func (a *app) openStore(cmd *cobra.Command, spec string) (store.Store, error) {
	if spec == "" {
		return nil, outcome.UsageErrorf("%s: --store is required (dir:PATH or github:OWNER/REPO)", cmd.CommandPath())
	}
	return storeopen.Open(cmd.Context(), spec, storeopen.Options{
		Token: a.getenv(envGitHubToken), APIURL: a.getenv(envGitHubAPIURL), Retry: a.retryPolicy(),
	})
}

// retryPolicy is the default GitHub retry policy with [WARN] lines for each retry.
func (a *app) retryPolicy() ghstore.RetryPolicy {
	return ghstore.RetryPolicy{OnRetry: func(what string, attempt int, wait time.Duration, err error) {
		a.log.Warnf("%s: attempt %d failed (%v); retrying in %v", what, attempt, err, wait.Round(time.Millisecond))
	}}
}

// parseTagFlag parses --tag.
func parseTagFlag(cmd *cobra.Command, tag string) (release.Tag, error) {
	if tag == "" {
		return release.Tag{}, outcome.UsageErrorf("%s: --tag is required", cmd.CommandPath())
	}
	return release.ParseTag(tag)
}

// publishCommand is `mero-release publish`.
func (a *app) publishCommand() *cobra.Command {
	var tagText, dir, storeSpec, notesFile string
	var concurrency int
	c := &cobra.Command{
		Use:   "publish --tag T --dir ASSETS --store dir:PATH|github:OWNER/REPO [--notes FILE]",
		Short: "Publish an assembled release: draft, verified uploads, then publish (never a partial release)",
		Long: `Publish the assets in --dir as the release --tag.

Every asset the family requires must be in --dir (else exit 11 and nothing is created), and
checksums.sha256 must match them. The release is created as a draft (or the existing draft is
resumed), every asset is uploaded and verified against the local file (name, size, SHA-256),
and only then is the draft published: an rc as a prerelease, never latest; a stable or hotfix
release as latest unless a newer stable release of its family exists. Any failure leaves a
draft; a rerun completes it without duplicate assets. A published release with identical
assets is left as it is; one with different assets is an error (exit 10).

The class comes from the tag and the published tags of the store. The body is --notes, else
release-notes.md from --dir. For github: stores the token is $GITHUB_TOKEN and the API
$GITHUB_API_URL (default github.com).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tag, err := parseTagFlag(cmd, tagText)
			if err != nil {
				return err
			}
			if dir == "" {
				return outcome.UsageErrorf("publish: --dir is required")
			}
			st, err := a.openStore(cmd, storeSpec)
			if err != nil {
				return err
			}
			names, err := st.Tags(cmd.Context())
			if err != nil {
				return fmt.Errorf("publish: list published tags: %w", err)
			}
			published := release.ParseTags(names)
			if err := release.Progression(tag, published); err != nil {
				return err
			}
			class := release.Classify(tag, published)
			notes, err := readNotes(cmp.Or(notesFile, filepath.Join(dir, release.NotesFile)), notesFile != "")
			if err != nil {
				return err
			}
			a.log.Infof("publish %s as %s to %s", tag, class, storeSpec)
			err = publish.Publish(cmd.Context(), st, publish.Input{
				Tag: tag, Rules: release.RulesFor(class), Dir: dir, Notes: notes, Concurrency: concurrency, Log: a.log,
			})
			if err != nil {
				if outcome.Code(err) == outcome.MissingAsset || outcome.Code(err) == outcome.VerificationFailed {
					return reported(err) // each problem is a [FAIL] line already
				}
				return err
			}
			if a.json {
				r, err := st.Release(cmd.Context(), tag.String())
				if err != nil {
					return err
				}
				return a.printJSON(map[string]any{"class": class, "release": r})
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&tagText, "tag", "", "release tag, e.g. mero-kms-v1.2.0")
	f.StringVar(&dir, "dir", "", "directory holding the assembled assets")
	f.StringVar(&storeSpec, "store", "", "release store: dir:PATH or github:OWNER/REPO")
	f.StringVar(&notesFile, "notes", "", "release notes file (default: release-notes.md in --dir)")
	f.IntVar(&concurrency, "concurrency", publish.DefaultConcurrency, "assets uploaded at once")
	return c
}

// readNotes reads the release body; an absent default file is an empty body.
func readNotes(path string, required bool) (string, error) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !required:
		return "", nil
	case errors.Is(err, fs.ErrNotExist):
		return "", outcome.UsageErrorf("--notes %s: file not found", path)
	case err != nil:
		return "", fmt.Errorf("read notes: %w", err)
	}
	return string(b), nil
}

// catalogPRCommand is `mero-release catalog-pr`.
func (a *app) catalogPRCommand() *cobra.Command {
	var tagText, repoText, file, path, base string
	c := &cobra.Command{
		Use:   "catalog-pr --tag T --repo OWNER/REPO --file compatibility-catalog.json",
		Short: "Open or update the one pull request that proposes the new compatibility catalog",
		Long: `After the E2E suite passed for --tag, propose --file as the repository's catalog: the
canonical encoding is committed to the branch mero-release/catalog-<tag> (created from --base,
default the repository's default branch) and one pull request is opened, or the open one is
updated. A rerun with the same content makes no commit and no second pull request; a catalog
that --base already holds needs no pull request. The token is $GITHUB_TOKEN (contents and
pull-requests write), the API $GITHUB_API_URL.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tag, err := parseTagFlag(cmd, tagText)
			if err != nil {
				return err
			}
			owner, repo, err := ghstore.ParseRepository(a.envOr(repoText, envGitHubRepository))
			if err != nil {
				return err
			}
			if file == "" {
				return outcome.UsageErrorf("catalog-pr: --file is required")
			}
			content, err := os.ReadFile(file)
			if errors.Is(err, fs.ErrNotExist) {
				return outcome.UsageErrorf("catalog-pr: --file %s: file not found", file)
			} else if err != nil {
				return fmt.Errorf("catalog-pr: %w", err)
			}
			tok := a.getenv(envGitHubToken)
			if tok == "" {
				return outcome.UsageErrorf("catalog-pr: $%s is empty: a token with contents and pull-requests write is needed", envGitHubToken)
			}
			client, err := ghstore.NewClient(ghstore.ClientOptions{Token: tok, BaseURL: a.getenv(envGitHubAPIURL)})
			if err != nil {
				return err
			}
			res, err := catalogpr.Ensure(cmd.Context(), client, catalogpr.Options{
				Owner: owner, Repo: repo, Tag: tag, Content: content, Base: base,
				Path: cmp.Or(path, a.getenv(envCatalogPath), catalog.DefaultFile), Retry: a.retryPolicy(), Log: a.log,
			})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(res)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&tagText, "tag", "", "the release whose E2E run produced the catalog")
	f.StringVar(&repoText, "repo", "", "repository OWNER/REPO (default $GITHUB_REPOSITORY)")
	f.StringVar(&file, "file", "", "the new compatibility-catalog.json")
	f.StringVar(&path, "path", "", "the catalog's path in the repository (default $COMPATIBILITY_CATALOG_PATH or "+catalog.DefaultFile+")")
	f.StringVar(&base, "base", "", "branch the pull request targets (default: the repository's default branch)")
	return c
}
