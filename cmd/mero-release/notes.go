package main

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/notes"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// notesFlags are the inputs of `mero-release notes`.
type notesFlags struct {
	tag, repo, ref, class, previous, author, measurements, prevMeasurements, repoURL, out, catalog string
	compatible                                                                                     []string
}

// notesCommand is `mero-release notes`: the release notes of a tag.
func (a *app) notesCommand() *cobra.Command {
	var f notesFlags
	c := &cobra.Command{
		Use:   "notes --tag T [--repo DIR] [--class C] [--author-notes FILE] [--measurements F --previous-measurements F] [--compatible V,V] [-o FILE]",
		Short: "Write the release notes of a tag; exit 10 when a section its class requires is missing",
		Long: `Write the release notes (Markdown) of a tag from the git history (read with go-git: no git
binary needed) since the previous tag of the same family, plus the author's notes file.

The class is classified from the repository's tags unless --class is given. The previous tag is
the newest older tag of the family — the newest older stable for stable and hotfix releases, any
older tag for a release candidate — unless --previous is given. The history ends at --ref, by
default the tag itself when it exists, else HEAD.

Generated sections: Changelog (commits grouped by Conventional Commit type, PR links with
--repo-url or GITHUB_SERVER_URL/GITHUB_REPOSITORY, contributors), MRTD/RTMR changes (with
--measurements, compared with --previous-measurements) and Compatible versions (--compatible,
and the tested pairs of --catalog).
The author's "## Section" headings fill the other sections; they are read from --author-notes,
by default from the repository's release-notes/<tag>.md (the notes convention; start one with
` + "`notes init --tag T`" + `). A stable or hotfix tag without that file, or a section its class
requires that is neither written nor generated, exits 10 naming it. Without -o the notes go to
stdout.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := a.notesInput(cmd, f)
			if err != nil {
				return err
			}
			doc, err := notes.Generate(in)
			if err != nil {
				if outcome.Code(err) == outcome.VerificationFailed {
					for _, e := range notesFlatten(err) {
						a.log.Failf("%v", e)
					}
					return reported(err)
				}
				return err
			}
			if f.out == "" {
				_, err := a.stdout.Write(doc)
				return err
			}
			if err := writeFileAtomic(f.out, doc); err != nil {
				return err
			}
			prev := "the start of the history"
			if in.Previous != nil {
				prev = in.Previous.String()
			}
			a.log.Passf("wrote %s: %s release notes of %s, %d commits since %s", f.out, in.Class, in.Tag, len(in.Commits), prev)
			if a.json {
				return a.printJSON(map[string]any{"file": f.out, "tag": in.Tag.String(), "class": in.Class, "previous": prev, "commits": len(in.Commits)})
			}
			return nil
		},
	}
	c.AddCommand(a.notesInitCommand())
	fl := c.Flags()
	fl.StringVar(&f.tag, "tag", "", "the release tag, e.g. mero-kms-v1.4.0")
	fl.StringVar(&f.repo, "repo", ".", "the git repository (work tree or any directory inside it)")
	fl.StringVar(&f.ref, "ref", "", "where the history ends (default: the tag when it exists, else HEAD)")
	fl.StringVar(&f.class, "class", "", "stable, rc or hotfix (default: classified from the repository's tags)")
	fl.StringVar(&f.previous, "previous", "", "the previous tag the history starts from (default: from the repository's tags)")
	fl.StringVar(&f.author, "author-notes", "", "the author-written notes file (Markdown, \"## Section\" headings; default REPO/release-notes/<tag>.md)")
	fl.StringVar(&f.measurements, "measurements", "", "this release's published-mrtds.json")
	fl.StringVar(&f.prevMeasurements, "previous-measurements", "", "the previous release's published-mrtds.json, to compare with")
	fl.StringSliceVar(&f.compatible, "compatible", nil, "the counterpart versions the compatibility catalog pairs this release with (V,V…)")
	fl.StringVar(&f.catalog, "catalog", "", "compatibility catalog whose tested pairs of this version are listed as compatible")
	fl.StringVar(&f.repoURL, "repo-url", "", "the repository's web URL for PR and commit links (default: $GITHUB_SERVER_URL/$GITHUB_REPOSITORY)")
	fl.StringVarP(&f.out, "output", "o", "", "write the notes to this file instead of stdout")
	return c
}

// notesInput gathers the input of notes.Generate from the flags and the repository.
func (a *app) notesInput(cmd *cobra.Command, f notesFlags) (notes.Input, error) {
	ctx := cmd.Context()
	if f.tag == "" {
		return notes.Input{}, outcome.UsageErrorf("notes: --tag is required")
	}
	if f.prevMeasurements != "" && f.measurements == "" {
		return notes.Input{}, outcome.UsageErrorf("notes: --previous-measurements needs --measurements")
	}
	tag, err := release.ParseTag(f.tag)
	if err != nil {
		return notes.Input{}, fmt.Errorf("notes: --tag: %w", err)
	}
	in := notes.Input{Tag: tag, Compatible: f.compatible, RepoURL: f.repoURL}
	if in.RepoURL == "" {
		if server, repo := a.getenv("GITHUB_SERVER_URL"), a.getenv("GITHUB_REPOSITORY"); server != "" && repo != "" {
			in.RepoURL = strings.TrimRight(server, "/") + "/" + repo
		}
	}

	tags, err := notes.Tags(ctx, f.repo)
	if err != nil {
		return notes.Input{}, fmt.Errorf("notes: %w", err)
	}
	if f.class != "" {
		if in.Class, err = release.ParseClass(f.class); err != nil {
			return notes.Input{}, fmt.Errorf("notes: --class: %w", err)
		}
	} else {
		in.Class = release.Classify(tag, tags)
		a.log.Infof("%s is a %s release (classified from the tags in %s)", tag, in.Class, f.repo)
	}
	if f.previous != "" {
		prev, err := release.ParseTag(f.previous)
		if err != nil {
			return notes.Input{}, fmt.Errorf("notes: --previous: %w", err)
		}
		in.Previous = &prev
	} else if prev, ok := release.Previous(tag, tags, in.Class != release.RC); ok {
		in.Previous = &prev
	}
	ref := f.ref
	if ref == "" {
		ref = "HEAD"
		if slices.Contains(tags, tag) {
			ref = tag.String()
		}
	}
	from := ""
	if in.Previous != nil {
		from = in.Previous.String()
	}
	if in.Commits, err = notes.History(ctx, f.repo, from, ref); err != nil {
		return notes.Input{}, fmt.Errorf("notes: %w", err)
	}
	a.log.Infof("%d commits from %s to %s", len(in.Commits), cmp.Or(from, "the first commit"), ref)

	if f.author != "" {
		file, err := os.Open(f.author)
		if err != nil {
			return notes.Input{}, notesOpenError("--author-notes", err)
		}
		in.Author, err = notes.Parse(file)
		file.Close()
		if err != nil {
			return notes.Input{}, fmt.Errorf("%s: %w", f.author, err)
		}
	} else {
		path := notes.ConventionFile(f.repo, tag)
		if err := notes.RequireAuthorFile(path, tag, in.Class); err != nil {
			// the sections the class requires then fail below, each named
			a.log.Warnf("%v", err)
		} else if in.Author, err = notes.LoadAuthorFile(path, tag, in.Class); err != nil {
			return notes.Input{}, err
		}
		if len(in.Author.Sections) > 0 || in.Author.Intro != "" {
			a.log.Infof("the author's notes are %s", path)
		}
	}
	if f.catalog != "" {
		cat, err := a.catalogLoad(f.catalog)
		if err != nil {
			return notes.Input{}, err
		}
		for _, v := range cat.CounterpartVersions(tag.Family, tag.Version.String()) {
			if !slices.Contains(in.Compatible, v) {
				in.Compatible = append(in.Compatible, v)
			}
		}
	}
	if in.Measurements, err = notesReadPublished("--measurements", f.measurements); err != nil {
		return notes.Input{}, err
	}
	if in.PreviousMeasurements, err = notesReadPublished("--previous-measurements", f.prevMeasurements); err != nil {
		return notes.Input{}, err
	}
	return in, nil
}

// notesReadPublished reads a published-mrtds.json ("" reads nothing).
func notesReadPublished(flag, path string) (*measure.Published, error) {
	if path == "" {
		return nil, nil
	}
	file, err := os.Open(path)
	if err != nil {
		return nil, notesOpenError(flag, err)
	}
	defer file.Close()
	p, err := measure.ReadPublished(file)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, path, err)
	}
	return p, nil
}

func notesOpenError(flag string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return outcome.UsageErrorf("notes: %s: %v", flag, err)
	}
	return fmt.Errorf("notes: %s: %w", flag, err)
}

// notesFlatten splits an errors.Join tree into its leaves, one [FAIL] line each.
func notesFlatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, notesFlatten(e)...)
		}
		return out
	}
	return []error{err}
}

// notesInitCommand is `mero-release notes init`: the skeleton of a tag's notes file.
func (a *app) notesInitCommand() *cobra.Command {
	var tagFlag, repo, class, out string
	c := &cobra.Command{
		Use:   "init --tag T [--repo DIR] [--class C] [-o FILE]",
		Short: "Write the skeleton of a tag's release notes at release-notes/<tag>.md",
		Long: `Writes REPO/release-notes/<tag>.md (the notes convention every release reads by default) with an
empty "## Section" for every section the tag's class needs from its author: Breaking changes and
Upgrade path for a stable release; CVE or incident, Exact change, Rollback and Why a patch
release for a hotfix. The class is classified from the repository's tags unless --class is given.
Changelog, MRTD/RTMR changes and Compatible versions are generated. An empty section counts as
missing, so an unfilled skeleton still stops the release (exit 10). An existing file is never
overwritten (exit 2).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tagFlag == "" {
				return outcome.UsageErrorf("notes init: --tag is required")
			}
			tag, err := release.ParseTag(tagFlag)
			if err != nil {
				return fmt.Errorf("notes init: --tag: %w", err)
			}
			var cl release.Class
			if class != "" {
				if cl, err = release.ParseClass(class); err != nil {
					return fmt.Errorf("notes init: --class: %w", err)
				}
			} else {
				tags, err := notes.Tags(cmd.Context(), repo)
				if err != nil {
					return fmt.Errorf("notes init: %w", err)
				}
				cl = release.Classify(tag, tags)
			}
			path := cmp.Or(out, notes.ConventionFile(repo, tag))
			if _, err := os.Stat(path); err == nil {
				return outcome.UsageErrorf("notes init: %s exists; edit it (it is never overwritten)", path)
			}
			if err := writeFileAtomic(path, notes.Skeleton(tag, cl)); err != nil {
				return err
			}
			need := notes.AuthorSections(cl)
			var names []string
			for _, s := range need {
				names = append(names, string(s))
			}
			if len(names) == 0 {
				a.log.Passf("wrote %s: a %s release needs no section from its author (Changelog is generated)", path, cl)
			} else {
				a.log.Passf("wrote %s: fill in %s (a %s release)", path, strings.Join(names, ", "), cl)
			}
			if a.json {
				return a.printJSON(map[string]any{"file": path, "tag": tag.String(), "class": cl, "sections": names})
			}
			return nil
		},
	}
	c.Flags().StringVar(&tagFlag, "tag", "", "the release tag, e.g. mero-kms-v1.4.0 (required)")
	c.Flags().StringVar(&repo, "repo", ".", "the repository (the file goes to REPO/release-notes/<tag>.md)")
	c.Flags().StringVar(&class, "class", "", "stable, rc or hotfix (default: classified from the repository's tags)")
	c.Flags().StringVarP(&out, "output", "o", "", "write the skeleton here instead")
	return c
}
