// Package catalogpr proposes a compatibility-catalog update as a pull request, never a direct
// push (SPEC §5): after the E2E suite passes, Ensure opens — or updates — exactly one pull
// request from the branch mero-release/catalog-<tag> that changes compatibility-catalog.json and
// its generated page docs/compatibility.md (the PR doc guard requires the documentation change)
// and names every new pair in its body (the guard's catalog-notes rule reads the body).
// It is idempotent: a rerun with the same content makes no commit and no second pull request,
// and every step survives a lost answer (it looks before it writes again).
package catalogpr

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	gh "github.com/google/go-github/v93/github"

	"github.com/calimero-network/mero-release/pipeline/catalog"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	ghstore "github.com/calimero-network/mero-release/pipeline/store/github"
)

// BranchPrefix starts the name of every catalog branch.
const BranchPrefix = "mero-release/catalog-"

// Options describe the pull request to ensure.
type Options struct {
	// Owner and Repo name the repository.
	Owner, Repo string
	// Tag is the release whose E2E run produced the catalog.
	Tag release.Tag
	// Content is the new catalog file; it must load (catalog.Load) and is committed in its
	// canonical encoding.
	Content []byte
	// Path is the file in the repository (default catalog.DefaultFile).
	Path string
	// DocsPath is the generated documentation of the catalog (default catalog.DocsFile).
	DocsPath string
	// Base is the branch the pull request targets (default: the repository's default branch).
	Base string
	// Retry paces retries of the GitHub calls (zero value: the defaults).
	Retry ghstore.RetryPolicy
	// Log receives [INFO]/[PASS] lines (nil: silent).
	Log *outcome.Logger
}

// Result says what Ensure did.
type Result struct {
	Branch string `json:"branch"`
	Base   string `json:"base"`
	// Unchanged: the base branch already holds this catalog; there is nothing to propose.
	Unchanged bool `json:"unchanged"`
	// Committed: a commit was made on the branch (false when it already held the content).
	Committed bool `json:"committed"`
	// Number and URL identify the pull request.
	Number int    `json:"number,omitempty"`
	URL    string `json:"url,omitempty"`
	// CreatedPR and UpdatedPR say whether the pull request was opened or its text changed.
	CreatedPR bool `json:"created_pr"`
	UpdatedPR bool `json:"updated_pr"`
	// Added are the catalog entries new or changed relative to the base branch.
	Added []string `json:"added"`
}

// Branch is the branch name of a tag's catalog pull request.
func Branch(tag release.Tag) string { return BranchPrefix + tag.String() }

// Ensure makes sure one open pull request proposes o.Content as the catalog.
func Ensure(ctx context.Context, client *gh.Client, o Options) (*Result, error) {
	if client == nil {
		return nil, outcome.UsageErrorf("catalog pull request: no GitHub client")
	}
	if _, _, err := ghstore.ParseRepository(o.Owner + "/" + o.Repo); err != nil {
		return nil, err
	}
	if o.Tag.Family == "" {
		return nil, outcome.UsageErrorf("catalog pull request: no tag")
	}
	next, err := catalog.Load(bytes.NewReader(o.Content))
	if err != nil {
		return nil, fmt.Errorf("catalog pull request: the new catalog: %w", err)
	}
	content, err := next.Marshal()
	if err != nil {
		return nil, fmt.Errorf("catalog pull request: %w", err)
	}
	p := &prc{client: client, o: o, path: cmp.Or(o.Path, catalog.DefaultFile)}
	res := &Result{Branch: Branch(o.Tag)}

	if res.Base = o.Base; res.Base == "" {
		var r *gh.Repository
		err := p.do(ctx, "get repository", func(ctx context.Context) (err error) {
			r, _, err = client.Repositories.Get(ctx, o.Owner, o.Repo)
			return err
		})
		if err != nil {
			return nil, err
		}
		res.Base = r.GetDefaultBranch()
	}
	baseSHA, err := p.refSHA(ctx, res.Base)
	if err != nil {
		return nil, err
	}
	if baseSHA == "" {
		return nil, outcome.UsageErrorf("catalog pull request: base branch %q does not exist in %s/%s", res.Base, o.Owner, o.Repo)
	}
	baseContent, _, err := p.file(ctx, res.Base, p.path)
	if err != nil {
		return nil, err
	}
	var before *catalog.Catalog
	if baseContent != nil {
		if before, err = catalog.Load(bytes.NewReader(baseContent)); err != nil {
			o.Log.Warnf("the catalog on %s does not load (%v); the pull request replaces it", res.Base, err)
			before = nil
		}
	}
	for _, e := range catalog.Diff(before, next) {
		res.Added = append(res.Added, e.String())
	}
	if bytes.Equal(baseContent, content) {
		res.Unchanged = true
		o.Log.Passf("%s on %s already holds this catalog; no pull request needed", p.path, res.Base)
		return res, nil
	}

	if err := p.ensureBranch(ctx, res.Branch, baseSHA); err != nil {
		return nil, err
	}
	if res.Committed, err = p.commit(ctx, res.Branch, p.path, content); err != nil {
		return nil, err
	}
	docsCommitted, err := p.commit(ctx, res.Branch, cmp.Or(o.DocsPath, catalog.DocsFile), next.Markdown())
	if err != nil {
		return nil, err
	}
	res.Committed = res.Committed || docsCommitted
	if err := p.ensurePull(ctx, res, before); err != nil {
		return nil, err
	}
	return res, nil
}

// prc carries one Ensure call.
type prc struct {
	client *gh.Client
	o      Options
	path   string
}

func (p *prc) do(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	return p.o.Retry.Do(ctx, what, func(ctx context.Context, _ int) error { return fn(ctx) })
}

// refSHA returns the commit a branch points to, or "" when it does not exist.
func (p *prc) refSHA(ctx context.Context, branch string) (string, error) {
	var sha string
	err := p.do(ctx, "get branch "+branch, func(ctx context.Context) error {
		ref, _, err := p.client.Git.GetRef(ctx, p.o.Owner, p.o.Repo, "heads/"+branch)
		if status(err) == http.StatusNotFound {
			sha = ""
			return nil
		}
		if err != nil {
			return err
		}
		sha = ref.GetObject().GetSHA()
		return nil
	})
	return sha, err
}

// file returns a file on a branch (nil when absent) and its blob SHA.
func (p *prc) file(ctx context.Context, branch, path string) ([]byte, string, error) {
	var content []byte
	var sha string
	err := p.do(ctx, fmt.Sprintf("get %s on %s", path, branch), func(ctx context.Context) (err error) {
		content, sha, err = p.fileOnce(ctx, branch, path)
		return err
	})
	return content, sha, err
}

// ensureBranch creates the branch at the base commit unless it exists.
func (p *prc) ensureBranch(ctx context.Context, branch, baseSHA string) error {
	sha, err := p.refSHA(ctx, branch)
	if err != nil || sha != "" {
		return err
	}
	err = p.do(ctx, "create branch "+branch, func(ctx context.Context) error {
		_, _, err := p.client.Git.CreateRef(ctx, p.o.Owner, p.o.Repo, gh.CreateRef{Ref: "refs/heads/" + branch, SHA: baseSHA})
		if status(err) == http.StatusUnprocessableEntity && strings.Contains(strings.ToLower(err.Error()), "already exists") {
			return nil // a lost answer, or another run: the branch is there
		}
		return err
	})
	if err == nil {
		p.o.Log.Infof("created branch %s from %s", branch, baseSHA)
	}
	return err
}

// commit puts the content of path on the branch unless the branch already holds it. Each
// attempt reads the branch first, so a commit whose answer was lost is not made twice.
func (p *prc) commit(ctx context.Context, branch, path string, content []byte) (bool, error) {
	committed := false
	err := p.o.Retry.Do(ctx, fmt.Sprintf("commit %s to %s", path, branch), func(ctx context.Context, _ int) error {
		cur, blob, err := p.fileOnce(ctx, branch, path)
		if err != nil {
			return err
		}
		if bytes.Equal(cur, content) {
			return nil
		}
		opts := &gh.RepositoryContentFileOptions{
			Message: gh.Ptr(fmt.Sprintf("compatibility catalog: entries tested with %s (%s)", p.o.Tag, path)),
			Content: content, Branch: gh.Ptr(branch),
		}
		if blob != "" {
			opts.SHA = gh.Ptr(blob)
		}
		_, _, err = p.client.Repositories.UpdateFile(ctx, p.o.Owner, p.o.Repo, path, opts)
		if status(err) == http.StatusConflict {
			return ghstore.Retryable(fmt.Errorf("%s changed on %s during the commit: %w", path, branch, err))
		}
		if err == nil {
			committed = true
		}
		return err
	})
	if err == nil && committed {
		p.o.Log.Infof("committed %s to %s", path, branch)
	} else if err == nil {
		p.o.Log.Infof("%s on %s already holds this content; no new commit", path, branch)
	}
	return committed, err
}

// fileOnce is file without retries.
func (p *prc) fileOnce(ctx context.Context, branch, path string) ([]byte, string, error) {
	fc, _, _, err := p.client.Repositories.GetContents(ctx, p.o.Owner, p.o.Repo, path, &gh.RepositoryContentGetOptions{Ref: branch})
	if status(err) == http.StatusNotFound {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	if fc == nil {
		return nil, "", ghstore.Permanent(outcome.UsageErrorf("%s on %s is a directory", path, branch))
	}
	s, err := fc.GetContent()
	if err != nil {
		return nil, "", ghstore.Permanent(err)
	}
	return []byte(s), fc.GetSHA(), nil
}

// title and body of the pull request.
func (p *prc) text(res *Result, before *catalog.Catalog) (string, string) {
	return Text(p.o.Tag, p.path, cmp.Or(p.o.DocsPath, catalog.DocsFile), res.Base, res.Added, before == nil)
}

// Text is the title and body of the catalog pull request of tag: the body names every new or
// changed pair on a line of its own with both versions (what the PR doc guard's catalog-notes
// rule looks for). replaced says the base branch had no loadable catalog.
func Text(tag release.Tag, path, docsPath, base string, added []string, replaced bool) (string, string) {
	title := fmt.Sprintf("compatibility catalog: pairs tested with %s", tag)
	var b strings.Builder
	fmt.Fprintf(&b, "The KMS–node E2E suite passed for `%s`. This pull request updates `%s` on `%s` and its generated page `%s`.\n\n", tag, path, base, docsPath)
	if len(added) > 0 {
		b.WriteString("New or changed entries:\n\n")
		for _, a := range added {
			fmt.Fprintf(&b, "- %s\n", a)
		}
	} else if replaced {
		b.WriteString("The catalog on the base branch is missing or does not load; this replaces it.\n")
	} else {
		b.WriteString("No entry is new; the file is rewritten in its canonical form.\n")
	}
	b.WriteString("\nOpened by `mero-release catalog-pr`; rerunning it updates this pull request instead of opening another.\n")
	return title, b.String()
}

// ensurePull finds the open pull request of the branch, or opens it; its title and body are
// brought up to date.
func (p *prc) ensurePull(ctx context.Context, res *Result, before *catalog.Catalog) error {
	title, body := p.text(res, before)
	return p.o.Retry.Do(ctx, "pull request for "+res.Branch, func(ctx context.Context, _ int) error {
		prs, _, err := p.client.PullRequests.List(ctx, p.o.Owner, p.o.Repo, &gh.PullRequestListOptions{
			State: "open", Head: p.o.Owner + ":" + res.Branch, Base: res.Base,
		})
		if err != nil {
			return err
		}
		if len(prs) > 0 {
			pr := prs[0]
			res.Number, res.URL = pr.GetNumber(), pr.GetHTMLURL()
			if pr.GetTitle() != title || pr.GetBody() != body {
				if _, _, err := p.client.PullRequests.Edit(ctx, p.o.Owner, p.o.Repo, pr.GetNumber(), &gh.PullRequest{Title: gh.Ptr(title), Body: gh.Ptr(body)}); err != nil {
					return err
				}
				res.UpdatedPR = true
				p.o.Log.Passf("updated pull request #%d (%s)", res.Number, res.URL)
			} else {
				p.o.Log.Passf("pull request #%d is up to date (%s)", res.Number, res.URL)
			}
			return nil
		}
		pr, _, err := p.client.PullRequests.Create(ctx, p.o.Owner, p.o.Repo, gh.CreatePullRequest{
			Title: gh.Ptr(title), Head: res.Branch, Base: res.Base, Body: gh.Ptr(body),
		})
		if status(err) == http.StatusUnprocessableEntity && strings.Contains(err.Error(), "already exists") {
			return ghstore.Retryable(err) // a lost answer: the next attempt finds it
		}
		if err != nil {
			return err
		}
		res.Number, res.URL, res.CreatedPR = pr.GetNumber(), pr.GetHTMLURL(), true
		p.o.Log.Passf("opened pull request #%d (%s)", res.Number, res.URL)
		return nil
	})
}

func status(err error) int {
	if e, ok := errors.AsType[*gh.ErrorResponse](err); ok && e.Response != nil {
		return e.Response.StatusCode
	}
	return 0
}

// Local writes into dir what the catalog pull request of tag would propose on a base whose
// catalog is before (nil: none): the catalog, its generated page and pull-request.md (title
// and body), at their repository paths, and the base's catalog as BaseCatalogFile. It is the pull request of a run without GitHub (the
// local lifecycle), and returns the changed paths as the PR doc guard sees them.
func Local(dir string, tag release.Tag, before, after *catalog.Catalog) ([]string, error) {
	content, err := after.Marshal()
	if err != nil {
		return nil, err
	}
	var added []string
	for _, e := range catalog.Diff(before, after) {
		added = append(added, e.String())
	}
	title, body := Text(tag, catalog.DefaultFile, catalog.DocsFile, "main", added, before == nil)
	files := map[string][]byte{
		catalog.DefaultFile: content,
		catalog.DocsFile:    after.Markdown(),
		PullRequestFile:     []byte("# " + title + "\n\n" + body),
	}
	if before != nil {
		if files[BaseCatalogFile], err = before.Marshal(); err != nil {
			return nil, err
		}
	}
	for name, data := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("catalog pull request: %w", err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return nil, fmt.Errorf("catalog pull request: %w", err)
		}
	}
	return []string{catalog.DefaultFile, catalog.DocsFile}, nil
}

// PullRequestFile holds the title and body of a Local pull request; BaseCatalogFile the
// catalog of the base it is proposed on.
const (
	PullRequestFile = "pull-request.md"
	BaseCatalogFile = "base-catalog.json"
)
