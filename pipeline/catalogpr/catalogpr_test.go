package catalogpr

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gh "github.com/google/go-github/v93/github"

	"github.com/calimero-network/mero-release/pipeline/catalog"
	"github.com/calimero-network/mero-release/pipeline/guard"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	ghstore "github.com/calimero-network/mero-release/pipeline/store/github"
	"github.com/calimero-network/mero-release/pipeline/store/github/githubtest"
)

const (
	owner = "calimero-network"
	repo  = "mero-tee"
	token = "ghs_catalog"
)

func catalogOf(t *testing.T, pairs ...[2]string) []byte {
	t.Helper()
	c := catalog.New()
	for _, p := range pairs {
		if _, err := c.Add(catalog.Entry{KMS: p[0], NodeImage: p[1], Profiles: release.Profiles(), Tested: true}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func setup(t *testing.T, mainFiles map[string][]byte) (*githubtest.Server, *gh.Client) {
	t.Helper()
	fake := githubtest.New(owner, repo, token, mainFiles)
	t.Cleanup(fake.Close)
	c, err := ghstore.NewClient(ghstore.ClientOptions{BaseURL: fake.URL, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return fake, c
}

func opts(tag string, content []byte) Options {
	return Options{
		Owner: owner, Repo: repo, Tag: release.MustParseTag(tag), Content: content,
		Retry: ghstore.RetryPolicy{
			Sleep:  func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
			Jitter: func(time.Duration) time.Duration { return 0 },
		},
	}
}

func TestOpenThenRerunThenUpdate(t *testing.T) {
	ctx := context.Background()
	seed := catalogOf(t, [2]string{"1.1.0", "1.1.0"})
	fake, c := setup(t, map[string][]byte{catalog.DefaultFile: seed})
	next := catalogOf(t, [2]string{"1.1.0", "1.1.0"}, [2]string{"1.2.0", "1.2.0"})
	branch := "mero-release/catalog-mero-kms-v1.2.0"

	res, err := Ensure(ctx, c, opts("mero-kms-v1.2.0", next))
	if err != nil {
		t.Fatal(err)
	}
	if !res.CreatedPR || !res.Committed || res.Number != 1 || res.Branch != branch || res.Base != "main" ||
		len(res.Added) != 1 || res.Added[0] != "kms 1.2.0 ↔ node image 1.2.0" {
		t.Fatalf("first run: %+v", res)
	}
	if got, _ := fake.File(branch, catalog.DefaultFile); !bytes.Equal(got, next) {
		t.Fatalf("branch holds %s", got)
	}
	if got, _ := fake.File("main", catalog.DefaultFile); !bytes.Equal(got, seed) {
		t.Fatal("main was changed directly")
	}
	// the documentation change the PR doc guard requires: the page generated from the catalog
	nextCat, err := catalog.Load(bytes.NewReader(next))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := fake.File(branch, catalog.DocsFile); !bytes.Equal(got, nextCat.Markdown()) {
		t.Fatalf("branch holds %s as %s", got, catalog.DocsFile)
	}
	pulls := fake.Pulls()
	if len(pulls) != 1 || pulls[0].Head != branch || pulls[0].Base != "main" || !strings.Contains(pulls[0].Body, "kms 1.2.0 ↔ node image 1.2.0") {
		t.Fatalf("pulls = %+v", pulls)
	}
	commits := fake.Commits(branch)

	res, err = Ensure(ctx, c, opts("mero-kms-v1.2.0", next))
	if err != nil {
		t.Fatal(err)
	}
	if res.CreatedPR || res.UpdatedPR || res.Committed || res.Number != 1 {
		t.Fatalf("rerun: %+v", res)
	}
	if fake.Commits(branch) != commits || len(fake.Pulls()) != 1 {
		t.Fatalf("rerun made %d commits and %d pull requests", fake.Commits(branch)-commits, len(fake.Pulls())-1)
	}

	more := catalogOf(t, [2]string{"1.1.0", "1.1.0"}, [2]string{"1.2.0", "1.2.0"}, [2]string{"1.2.0", "1.1.0"})
	res, err = Ensure(ctx, c, opts("mero-kms-v1.2.0", more))
	if err != nil {
		t.Fatal(err)
	}
	if res.CreatedPR || !res.UpdatedPR || !res.Committed || res.Number != 1 || len(res.Added) != 2 {
		t.Fatalf("update: %+v", res)
	}
	// one commit for the catalog, one for its page
	if fake.Commits(branch) != commits+2 || len(fake.Pulls()) != 1 || !strings.Contains(fake.Pulls()[0].Body, "kms 1.2.0 ↔ node image 1.1.0") {
		t.Fatalf("update: %d new commits, pulls %+v", fake.Commits(branch)-commits, fake.Pulls())
	}
}

func TestUnchangedNeedsNoPullRequest(t *testing.T) {
	seed := catalogOf(t, [2]string{"1.1.0", "1.1.0"})
	fake, c := setup(t, map[string][]byte{catalog.DefaultFile: seed})
	res, err := Ensure(context.Background(), c, opts("mero-tee-v1.1.0", seed))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Unchanged || res.Number != 0 || len(fake.Pulls()) != 0 || len(fake.Branches()) != 1 {
		t.Fatalf("res %+v, pulls %v, branches %v", res, fake.Pulls(), fake.Branches())
	}
}

func TestCanonicalAndMissingBaseFile(t *testing.T) {
	fake, c := setup(t, nil) // no catalog on main yet
	canonical := catalogOf(t, [2]string{"1.0.0", "1.0.0"})
	messy := []byte(strings.ReplaceAll(string(canonical), "\n  ", "\n\t"))
	o := opts("mero-tee-v1.0.0", messy)
	o.Base = "main"
	res, err := Ensure(context.Background(), c, o)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := fake.File(res.Branch, catalog.DefaultFile)
	if !bytes.Equal(got, canonical) || !res.CreatedPR || len(res.Added) != 1 {
		t.Fatalf("committed %q, res %+v", got, res)
	}
}

func TestSurvivesLostAnswersAndFaults(t *testing.T) {
	seed := catalogOf(t, [2]string{"1.1.0", "1.1.0"})
	fake, c := setup(t, map[string][]byte{catalog.DefaultFile: seed})
	fake.Inject(githubtest.OpGetRepo, githubtest.Fault{Status: 503})
	fake.Inject(githubtest.OpGetRef, githubtest.Fault{Status: 429, RetryAfter: "2"})
	fake.Inject(githubtest.OpCreateRef, githubtest.Fault{Status: 502, AfterCommit: true})
	fake.Inject(githubtest.OpPutContents, githubtest.Fault{Status: 502, AfterCommit: true})
	fake.Inject(githubtest.OpListPulls, githubtest.Fault{Hang: true})
	fake.Inject(githubtest.OpCreatePull, githubtest.Fault{Status: 502, AfterCommit: true})
	o := opts("mero-kms-v1.2.0", catalogOf(t, [2]string{"1.1.0", "1.1.0"}, [2]string{"1.2.0", "1.1.0"}))
	o.Retry.AttemptTimeout = 300 * time.Millisecond
	res, err := Ensure(context.Background(), c, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []githubtest.Op{githubtest.OpCreateRef, githubtest.OpPutContents, githubtest.OpCreatePull, githubtest.OpListPulls} {
		if fake.Pending(op) != 0 {
			t.Fatalf("fault on %s not triggered", op)
		}
	}
	if len(fake.Pulls()) != 1 || fake.Commits(res.Branch) != 3 || res.Number != 1 {
		t.Fatalf("%d pulls, %d commits on the branch (want 1 PR, 2 commits over main: catalog and page), res %+v", len(fake.Pulls()), fake.Commits(res.Branch)-1, res)
	}
}

func TestClosedPullRequestIsReopenedAsNew(t *testing.T) {
	fake, c := setup(t, nil)
	content := catalogOf(t, [2]string{"1.0.0", "1.0.0"})
	res, err := Ensure(context.Background(), c, opts("mero-tee-v1.0.0", content))
	if err != nil {
		t.Fatal(err)
	}
	fake.ClosePull(res.Number)
	res, err = Ensure(context.Background(), c, opts("mero-tee-v1.0.0", content))
	if err != nil {
		t.Fatal(err)
	}
	if !res.CreatedPR || res.Committed || res.Number != 2 {
		t.Fatalf("after a closed PR: %+v", res)
	}
}

func TestErrors(t *testing.T) {
	fake, c := setup(t, nil)
	good := catalogOf(t, [2]string{"1.0.0", "1.0.0"})
	cases := []struct {
		name string
		o    Options
		code int
		want string
	}{
		{name: "invalid catalog", o: opts("mero-tee-v1.0.0", []byte(`{"schema_version":"1","entries":[{"kms":"1.0"}]}`)), code: outcome.VerificationFailed},
		{name: "not json", o: opts("mero-tee-v1.0.0", []byte("nope")), code: outcome.VerificationFailed},
		{name: "no base branch", o: func() Options { o := opts("mero-tee-v1.0.0", good); o.Base = "release/9"; return o }(), code: outcome.Usage, want: "does not exist"},
		{name: "bad repository", o: func() Options { o := opts("mero-tee-v1.0.0", good); o.Repo = ""; return o }(), code: outcome.Usage},
		{name: "no tag", o: func() Options { o := opts("mero-tee-v1.0.0", good); o.Tag = release.Tag{}; return o }(), code: outcome.Usage},
		{name: "unknown repository", o: func() Options { o := opts("mero-tee-v1.0.0", good); o.Owner = "someone-else"; return o }(), code: outcome.General, want: "404"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Ensure(context.Background(), c, tc.o)
			if outcome.Code(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v (code %d), want code %d containing %q", err, outcome.Code(err), tc.code, tc.want)
			}
		})
	}
	if _, err := Ensure(context.Background(), nil, opts("mero-tee-v1.0.0", good)); outcome.Code(err) != outcome.Usage {
		t.Fatalf("nil client: %v", err)
	}
	if len(fake.Pulls()) != 0 || len(fake.Branches()) != 1 {
		t.Fatalf("failed runs left pulls %v, branches %v", fake.Pulls(), fake.Branches())
	}
	bad, _ := ghstore.NewClient(ghstore.ClientOptions{BaseURL: fake.URL, Token: "wrong"})
	if _, err := Ensure(context.Background(), bad, opts("mero-tee-v1.0.0", good)); err == nil || !strings.Contains(err.Error(), "Bad credentials") {
		t.Fatalf("bad token: %v", err)
	}
}

// TestLocalProposalPassesThePRDocGuard: the local catalog pull request changes the catalog and
// its page and names every new pair in its body, which is what guard pr-docs checks; a body
// that leaves out a pair fails it.
func TestLocalProposalPassesThePRDocGuard(t *testing.T) {
	before, err := catalog.Load(bytes.NewReader(catalogOf(t, [2]string{"1.2.0", "1.2.0"})))
	if err != nil {
		t.Fatal(err)
	}
	after, err := catalog.Load(bytes.NewReader(catalogOf(t, [2]string{"1.2.0", "1.2.0"}, [2]string{"1.3.0", "1.3.0"}, [2]string{"1.3.0", "1.3.1"})))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	changed, err := Local(dir, release.MustParseTag("mero-kms-v1.3.0"), before, after)
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(filepath.Join(dir, PullRequestFile))
	if err != nil {
		t.Fatal(err)
	}
	in := guard.PRDocsInput{Changed: changed, CatalogBefore: before, CatalogAfter: after, NotesText: string(body)}
	if rep, err := guard.PRDocs(in); err != nil {
		t.Fatalf("the catalog pull request fails guard pr-docs: %v %+v", err, rep)
	}
	docs, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(catalog.DocsFile)))
	if err != nil || !bytes.Equal(docs, after.Markdown()) {
		t.Errorf("%s: %v", catalog.DocsFile, err)
	}
	// a body without one of the pairs, or a change without the page, is blocked
	in.NotesText = strings.ReplaceAll(string(body), "kms 1.3.0 ↔ node image 1.3.1", "")
	if _, err := guard.PRDocs(in); outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), "1.3.1") {
		t.Errorf("unnamed pair: %v", err)
	}
	in.NotesText, in.Changed = string(body), []string{catalog.DefaultFile}
	if _, err := guard.PRDocs(in); outcome.Code(err) != outcome.VerificationFailed {
		t.Errorf("catalog change without documentation: %v", err)
	}
}
