package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/calimero-network/mero-release/pipeline/catalog"
	"github.com/calimero-network/mero-release/pipeline/guard"
	"github.com/calimero-network/mero-release/pipeline/notes"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/store/dir"
)

// guardCommand is `mero-release guard`: the four release guards of SPEC §4.
func (a *app) guardCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "guard",
		Short: "Release guards: version-sync, allowed-env, pr-docs, dependency (SPEC §4)",
	}
	c.AddCommand(a.guardVersionSyncCommand(), a.guardAllowedEnvCommand(), a.guardPRDocsCommand(), a.guardDependencyCommand())
	return c
}

// guardVerdict logs a guard's verification failure as [FAIL] and marks it reported; other
// errors (usage, general) are returned as they are, for run to print as [ERROR].
func (a *app) guardVerdict(err error) error {
	if err == nil {
		return nil
	}
	if outcome.Code(err) == outcome.VerificationFailed {
		a.log.Failf("%v", err)
		return reported(err)
	}
	return err
}

func (a *app) guardVersionSyncCommand() *cobra.Command {
	var tagFlag, version string
	c := &cobra.Command{
		Use:   "version-sync --tag TAG [--version V]",
		Short: "Check that the tag's version equals MERO_KMS_VERSION / MERO_TEE_VERSION",
		Long: `Checks that the release tag's version equals the family's version variable:
MERO_KMS_VERSION for mero-kms-v* tags, MERO_TEE_VERSION for mero-tee-v* tags (read from the
environment unless --version is given). An rc tag X.Y.Z-rc.N also accepts the base X.Y.Z.
Exit 0 when they match, 10 when they differ, 2 for a malformed tag or an unset variable.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tagFlag == "" {
				return outcome.UsageErrorf("guard version-sync: --tag is required")
			}
			tag, err := release.ParseTag(tagFlag)
			if err != nil {
				return err
			}
			variable := tag.Family.VersionVariable()
			configured := version
			if !cmd.Flags().Changed("version") {
				configured = a.getenv(variable)
			}
			err = guard.VersionSync(tag, configured)
			if a.json {
				res := map[string]any{"tag": tag.String(), "version": tag.Version.String(), "variable": variable, "value": configured, "ok": err == nil}
				if err != nil {
					res["error"] = err.Error()
				}
				if jerr := a.printJSON(res); jerr != nil {
					return jerr
				}
			}
			if err != nil {
				return a.guardVerdict(err)
			}
			a.log.Passf("tag %s has version %s and %s=%s", tag, tag.Version, variable, configured)
			return nil
		},
	}
	c.Flags().StringVar(&tagFlag, "tag", "", "release tag, e.g. mero-kms-v1.3.0 (required)")
	c.Flags().StringVar(&version, "version", "", "the configured version (default: $MERO_KMS_VERSION or $MERO_TEE_VERSION by the tag's family)")
	return c
}

func (a *app) guardAllowedEnvCommand() *cobra.Command {
	var workflows string
	c := &cobra.Command{
		Use:   "allowed-env [--workflows DIR]",
		Short: "Fail if any workflow sets or exports an ALLOWED_* variable",
		Long: `Scans every *.yml / *.yaml under the workflows directory for ALLOWED_* variables (ALLOWED_MRTD,
ALLOWED_RTMR0..3, ALLOWED_TCB_STATUS, …) set in env: at workflow, job, container, service or step
level, or in run: scripts (export, assignment, env, declare -x, writes to $GITHUB_ENV).
Exit 10 listing "file:line: NAME set in WHERE" per finding, 2 for a missing directory or invalid YAML.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			findings, err := guard.AllowedEnv(workflows)
			if findings == nil {
				findings = []guard.Finding{}
			}
			for _, f := range findings {
				a.log.Failf("%s", f)
			}
			// log the other problems (invalid YAML) one by one; the verdict is the exit code
			for _, e := range guardFlatten(err) {
				if outcome.Code(e) != outcome.VerificationFailed {
					a.log.Errorf("%v", e)
				}
			}
			if a.json {
				res := map[string]any{"workflows": workflows, "findings": findings, "ok": err == nil}
				if err != nil {
					res["error"] = err.Error()
				}
				if jerr := a.printJSON(res); jerr != nil {
					return jerr
				}
			}
			if err != nil {
				if len(findings) > 0 {
					a.log.Failf("%d ALLOWED_* setting(s) in %s: allowlists belong in the attestation policy, never in a workflow environment", len(findings), workflows)
				}
				return reported(err)
			}
			a.log.Passf("no workflow under %s sets an ALLOWED_* variable", workflows)
			return nil
		},
	}
	c.Flags().StringVar(&workflows, "workflows", filepath.Join(".github", "workflows"), "directory of workflow files")
	return c
}

// guardFlatten lists the errors joined in err (errors.Join), or err itself.
func guardFlatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, guardFlatten(e)...)
		}
		return out
	}
	return []error{err}
}

func (a *app) guardPRDocsCommand() *cobra.Command {
	var changedFile, gitRange, baseCatalog, headCatalog string
	var notes []string
	c := &cobra.Command{
		Use:   "pr-docs (--changed FILE|- | --git-range BASE..HEAD) [--base-catalog F --head-catalog F] [--notes FILE]…",
		Short: "Fail when a PR changes release files without documentation or without notes for new catalog pairs",
		Long: `A PR that changes attestation-policy-*.json, published-mrtds.json, compatibility-catalog.json or
scripts/release-*.sh must also change documentation (*.md, docs/**, README*, CHANGELOG*). When the
catalog changes, every new or changed pair must be named in the notes (--notes: PR body or release
notes; one line with both versions, e.g. "KMS 1.3.0 / node 1.3.0").

The changed paths come from --changed (a file with one path per line, - for stdin) or from
--git-range BASE..HEAD (the repository in the current directory, read with go-git: no git binary;
the catalogs are then read at BASE and HEAD unless --base-catalog/--head-catalog are given).
Exit 10 when blocked.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if (changedFile == "") == (gitRange == "") {
				return outcome.UsageErrorf("guard pr-docs: give exactly one of --changed FILE|- and --git-range BASE..HEAD")
			}
			if baseCatalog != "" && headCatalog == "" {
				return outcome.UsageErrorf("guard pr-docs: --base-catalog needs --head-catalog (the catalog after the PR)")
			}
			in := guard.PRDocsInput{}
			var err error
			if changedFile != "" {
				in.Changed, err = a.guardReadChanged(changedFile)
			} else {
				in.Changed, err = guardGitChanged(ctx, gitRange)
			}
			if err != nil {
				return err
			}
			a.log.Infof("%d changed path(s)", len(in.Changed))
			if headCatalog != "" {
				if in.CatalogAfter, err = a.guardCatalog("--head-catalog", headCatalog); err != nil {
					return err
				}
				if baseCatalog != "" {
					if in.CatalogBefore, err = a.guardCatalog("--base-catalog", baseCatalog); err != nil {
						return err
					}
				}
			} else if gitRange != "" {
				if in.CatalogBefore, in.CatalogAfter, err = a.guardGitCatalogs(ctx, gitRange, in.Changed); err != nil {
					return err
				}
			}
			var text []string
			for _, n := range notes {
				b, err := a.guardReadInput("--notes", n)
				if err != nil {
					return err
				}
				text = append(text, string(b))
			}
			in.NotesText = strings.Join(text, "\n")
			report, err := guard.PRDocs(in)
			report.Log(a.log)
			if a.json {
				if jerr := a.printJSON(map[string]any{"changed": in.Changed, "checks": report.Checks, "ok": err == nil}); jerr != nil {
					return jerr
				}
			}
			return reported(err)
		},
	}
	c.Flags().StringVar(&changedFile, "changed", "", "file listing the changed paths, one per line (- for stdin)")
	c.Flags().StringVar(&gitRange, "git-range", "", "BASE..HEAD: take the changed paths from git diff --name-only")
	c.Flags().StringVar(&baseCatalog, "base-catalog", "", "compatibility-catalog.json before the PR (omit when the PR adds it)")
	c.Flags().StringVar(&headCatalog, "head-catalog", "", "compatibility-catalog.json after the PR")
	c.Flags().StringArrayVar(&notes, "notes", nil, "PR body or release notes that must name new catalog pairs (repeatable; - for stdin)")
	return c
}

// guardReadInput reads a file named by a flag, or stdin for "-". A missing file is a usage error.
func (a *app) guardReadInput(flag, name string) ([]byte, error) {
	if name == "-" {
		b, err := io.ReadAll(a.stdin)
		if err != nil {
			return nil, fmt.Errorf("%s -: read stdin: %w", flag, err)
		}
		return b, nil
	}
	b, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, outcome.UsageErrorf("%s %s: file does not exist", flag, name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, name, err)
	}
	return b, nil
}

// guardReadChanged reads one path per line; blank lines are skipped.
func (a *app) guardReadChanged(name string) ([]string, error) {
	b, err := a.guardReadInput("--changed", name)
	if err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--changed %s: %w", name, err)
	}
	return out, nil
}

// guardCatalog loads a catalog named by a flag; a refused catalog is logged as [FAIL].
func (a *app) guardCatalog(flag, name string) (*catalog.Catalog, error) {
	if _, err := os.Stat(name); errors.Is(err, os.ErrNotExist) {
		return nil, outcome.UsageErrorf("%s %s: file does not exist", flag, name)
	}
	c, err := catalog.LoadFile(name)
	if err != nil {
		return nil, a.guardVerdict(err)
	}
	return c, nil
}

// guardGitChanged lists the paths changed in a range of the repository in the current
// directory (go-git: git diff --name-only --no-renames BASE..HEAD).
func guardGitChanged(ctx context.Context, r string) ([]string, error) {
	base, head, err := notes.SplitRange(r)
	if err != nil {
		return nil, err
	}
	paths, err := notes.ChangedPaths(ctx, ".", base, head)
	if err != nil {
		return nil, fmt.Errorf("--git-range %s: %w", r, err)
	}
	return paths, nil
}

// guardGitCatalogs reads the repository catalog at both ends of the range when the range changes it:
// a catalog absent at BASE is new (nil before); absent at HEAD it was deleted (nil after).
func (a *app) guardGitCatalogs(ctx context.Context, r string, changed []string) (before, after *catalog.Catalog, err error) {
	file := path.Clean(filepath.ToSlash(a.envOr("", "COMPATIBILITY_CATALOG_PATH")))
	if file == "." {
		file = catalog.DefaultFile
	}
	if !slices.Contains(changed, file) {
		return nil, nil, nil
	}
	base, head, err := notes.SplitRange(r)
	if err != nil {
		return nil, nil, err
	}
	load := func(rev string) (*catalog.Catalog, error) {
		data, ok, err := notes.FileAt(ctx, ".", rev, file)
		if err != nil || !ok {
			return nil, err
		}
		c, err := catalog.Load(bytes.NewReader(data))
		if err != nil {
			return nil, a.guardVerdict(fmt.Errorf("%s at %s: %w", file, rev, err))
		}
		return c, nil
	}
	if before, err = load(base); err != nil {
		return nil, nil, err
	}
	if after, err = load(head); err != nil {
		return nil, nil, err
	}
	a.log.Infof("catalog %s read from git at %s and %s", file, base, head)
	return before, after, nil
}

func (a *app) guardDependencyCommand() *cobra.Command {
	var tagFlag, counterpartFlag, storeFlag, catalogFlag, policiesDir string
	c := &cobra.Command{
		Use:   "dependency --tag T --counterpart VERSION --store dir:PATH [--catalog F] [--policies DIR]",
		Short: "Check the KMS ↔ node dependency: counterpart published, pair in the catalog, policies match its measurements",
		Long: `Checks that the counterpart release (the node image for a KMS tag, the KMS for a node tag) is
published in the store, that the compatibility catalog lists the pair as tested (for every profile of
the policies), and, for a KMS release with --policies, that every MRTD/RTMR value of each ready
policy appears in the counterpart's published-mrtds.json (and that the policy accepts it).
A policy_not_ready policy is a warning. Exit 10 on a failed check, 11 when the counterpart has no
published-mrtds.json, 2 for bad arguments.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case tagFlag == "":
				return outcome.UsageErrorf("guard dependency: --tag is required")
			case counterpartFlag == "":
				return outcome.UsageErrorf("guard dependency: --counterpart is required (the other family's version, e.g. 1.2.0)")
			case storeFlag == "":
				return outcome.UsageErrorf("guard dependency: --store is required (dir:PATH)")
			}
			tag, err := release.ParseTag(tagFlag)
			if err != nil {
				return err
			}
			counterpart, err := guardCounterpart(tag, counterpartFlag)
			if err != nil {
				return err
			}
			st, err := guardOpenStore(storeFlag)
			if err != nil {
				return err
			}
			catalogPath := catalogFlag
			if catalogPath == "" {
				if catalogPath = a.getenv("COMPATIBILITY_CATALOG_PATH"); catalogPath == "" {
					catalogPath = catalog.DefaultFile
				}
			}
			cat, err := a.guardCatalog("--catalog", catalogPath)
			if err != nil {
				return err
			}
			in := guard.DependencyInput{Tag: tag, Counterpart: counterpart, Store: st, Catalog: cat}
			if policiesDir != "" {
				if tag.Family != release.KMS {
					return outcome.UsageErrorf("guard dependency: --policies applies to a KMS release, not to %s", tag)
				}
				if in.Policies, err = a.guardLoadPolicies(policiesDir); err != nil {
					return err
				}
			}
			a.log.Infof("dependency guard: %s with %s (store %s, catalog %s)", tag, counterpart, st.Root(), catalogPath)
			report, err := guard.Dependency(cmd.Context(), in)
			report.Log(a.log)
			if a.json {
				if jerr := a.printJSON(map[string]any{"tag": tag.String(), "counterpart": counterpart.String(), "checks": report.Checks, "ok": err == nil}); jerr != nil {
					return jerr
				}
			}
			for _, e := range guardFlatten(err) {
				if code := outcome.Code(e); code != outcome.VerificationFailed {
					a.log.Errorf("%v", e) // missing asset, store failure: not a [FAIL] check line
				}
			}
			return reported(err)
		},
	}
	c.Flags().StringVar(&tagFlag, "tag", "", "the release being made, e.g. mero-kms-v1.3.0 (required)")
	c.Flags().StringVar(&counterpartFlag, "counterpart", "", "the counterpart's version, e.g. 1.2.0, or its tag (required)")
	c.Flags().StringVar(&storeFlag, "store", "", "release store: dir:PATH (the local-directory store layout) (required)")
	c.Flags().StringVar(&catalogFlag, "catalog", "", "compatibility catalog (default: $COMPATIBILITY_CATALOG_PATH or compatibility-catalog.json)")
	c.Flags().StringVar(&policiesDir, "policies", "", "directory with the attestation-policy-{profile}.json being released (KMS releases)")
	return c
}

// guardCounterpart turns --counterpart (a version, or a tag of the other family) into a tag.
func guardCounterpart(tag release.Tag, s string) (release.Tag, error) {
	want := tag.Family.Counterpart()
	if strings.HasPrefix(s, "mero-") {
		t, err := release.ParseTag(s)
		if err != nil {
			return release.Tag{}, err
		}
		if t.Family != want {
			return release.Tag{}, outcome.UsageErrorf("--counterpart %s: the counterpart of %s is a %s release", s, tag, want)
		}
		return t, nil
	}
	v, err := release.ParseVersion(s)
	if err != nil {
		return release.Tag{}, outcome.UsageErrorf("--counterpart: %w", err)
	}
	return release.Tag{Family: want, Version: v}, nil
}

// guardOpenStore opens a dir:PATH store that must already exist.
func guardOpenStore(spec string) (*dir.Store, error) {
	root, ok := strings.CutPrefix(spec, "dir:")
	if !ok || root == "" {
		return nil, outcome.UsageErrorf("--store %q: want dir:PATH (a directory in the local release-store layout)", spec)
	}
	info, err := os.Stat(root)
	if err != nil || !info.IsDir() {
		return nil, outcome.UsageErrorf("--store %s: %s is not a directory", spec, root)
	}
	return dir.New(root)
}

// guardLoadPolicies loads every attestation-policy-{profile}.json in dir; at least one must exist.
func (a *app) guardLoadPolicies(policyDir string) (map[release.Profile]*policy.Policy, error) {
	out := map[release.Profile]*policy.Policy{}
	for _, prof := range release.Profiles() {
		file := filepath.Join(policyDir, prof.PolicyFile())
		if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
			continue
		}
		p, err := policy.LoadFile(file)
		if err == nil {
			err = policy.CheckFileName(file, p)
		}
		if err != nil {
			return nil, a.guardVerdict(err)
		}
		out[prof] = p
	}
	if len(out) == 0 {
		return nil, outcome.UsageErrorf("--policies %s: no attestation-policy-{%s}.json in it", policyDir, strings.Join(release.ProfileNames(), ","))
	}
	return out, nil
}
