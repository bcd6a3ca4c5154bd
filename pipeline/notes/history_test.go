package notes

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// kmsRepo is a repository with two KMS releases, a node release on the same history, and a
// merged side branch after the last KMS release.
func kmsRepo(t *testing.T) *testRepo {
	r := newTestRepo(t)
	r.commit("alice", "Initial import")
	r.tag("mero-kms-v1.2.0", true)
	r.commit("alice", "feat(kms): bind report data to the peer key (#12)")
	r.commit("bob", "fix: refuse a consumed challenge (#13)\n\nThe second get-key with the same challenge is a 403.\n\nCo-authored-by: Carol Danvers <carol@example.com>")
	r.tag("mero-tee-v1.0.0", false)
	r.tag("v0.1-legacy", false)
	r.tag("mero-kms-v1.3.0-rc.1", false)
	main := r.head()
	r.branch("side", true)
	side := r.commit("carol", "docs: policy migration guide")
	r.branch("master", false)
	r.commit("bob", "perf: cache the policy digest")
	r.commit("alice", "Merge pull request #14 from carol/side\n\nPolicy migration guide", side)
	_ = main
	return r
}

func subjects(commits []Commit) []string {
	var out []string
	for _, c := range commits {
		out = append(out, c.Subject)
	}
	return out
}

func TestHistory(t *testing.T) {
	r := kmsRepo(t)
	ctx := context.Background()

	got, err := History(ctx, r.dir, "mero-kms-v1.2.0", "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Merge pull request #14 from carol/side",
		"perf: cache the policy digest",
		"docs: policy migration guide",
		"fix: refuse a consumed challenge (#13)",
		"feat(kms): bind report data to the peer key (#12)",
	}
	if !slices.Equal(subjects(got), want) {
		t.Errorf("History since mero-kms-v1.2.0 = %q, want %q", subjects(got), want)
	}
	merge, fix := got[0], got[3]
	if !merge.Merge || !slices.Equal(merge.PRs, []int{14}) || merge.Body != "Policy migration guide" {
		t.Errorf("merge commit = %+v", merge)
	}
	if fix.Merge || !slices.Equal(fix.PRs, []int{13}) || fix.Author.Name != "Bob Builder" || fix.Author.Email != "bob@example.com" {
		t.Errorf("fix commit = %+v", fix)
	}
	if len(fix.CoAuthors) != 1 || fix.CoAuthors[0] != (Person{"Carol Danvers", "carol@example.com"}) {
		t.Errorf("co-authors = %+v", fix.CoAuthors)
	}
	if len(fix.Hash) != 40 || fix.When.IsZero() {
		t.Errorf("hash %q, time %v", fix.Hash, fix.When)
	}

	// a commit always comes before its parents, and the order is the same every time
	pos := map[string]int{}
	for i, c := range got {
		pos[c.Hash] = i
	}
	for i, c := range got {
		for _, p := range c.Parents {
			if j, ok := pos[p]; ok && j <= i {
				t.Errorf("commit %q (position %d) comes after its parent (position %d)", c.Subject, i, j)
			}
		}
	}
	if len(merge.Parents) != 2 || len(fix.Parents) != 1 {
		t.Errorf("parents: merge %d, fix %d", len(merge.Parents), len(fix.Parents))
	}
	again, err := History(ctx, r.dir, "mero-kms-v1.2.0", "HEAD")
	if err != nil || !slices.EqualFunc(again, got, func(a, b Commit) bool { return a.Hash == b.Hash }) {
		t.Errorf("History is not deterministic: %v", err)
	}

	// lightweight tags and ranges between two tags; rc tags are revisions like any other
	between, err := History(ctx, r.dir, "mero-kms-v1.2.0", "mero-kms-v1.3.0-rc.1")
	if err != nil {
		t.Fatal(err)
	}
	if want := want[3:]; !slices.Equal(subjects(between), want) {
		t.Errorf("History v1.2.0..rc.1 = %q, want %q", subjects(between), want)
	}

	// no from: the whole history; a subdirectory of the work tree finds the repository
	all, err := History(ctx, r.dir, "", "HEAD")
	if err != nil || len(all) != 6 || all[len(all)-1].Subject != "Initial import" {
		t.Errorf("whole history = %q, %v", subjects(all), err)
	}

	// nothing new: an empty history, not an error
	none, err := History(ctx, r.dir, "HEAD", "HEAD")
	if err != nil || len(none) != 0 {
		t.Errorf("HEAD..HEAD = %q, %v", subjects(none), err)
	}
}

func TestHistoryErrors(t *testing.T) {
	r := kmsRepo(t)
	notRepo := t.TempDir()
	cases := []struct {
		name, dir, from, to, want string
	}{
		{"not a repository", notRepo, "", "", "repository " + notRepo},
		{"missing directory", filepath.Join(notRepo, "nope"), "", "", "nope"},
		{"unknown from", r.dir, "mero-kms-v0.9.0", "", `revision "mero-kms-v0.9.0"`},
		{"unknown to", r.dir, "", "release/9.9", `revision "release/9.9"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := History(context.Background(), c.dir, c.from, c.to)
			if outcome.Code(err) != outcome.Usage || !strings.Contains(err.Error(), c.want) {
				t.Errorf("History = %v, want a usage error mentioning %q", err, c.want)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := History(ctx, r.dir, "mero-kms-v1.2.0", ""); err == nil {
		t.Error("History with a canceled context succeeded")
	}
}

func TestTags(t *testing.T) {
	r := kmsRepo(t)
	tags, err := Tags(context.Background(), r.dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tag := range tags {
		names = append(names, tag.String())
	}
	want := []string{"mero-kms-v1.2.0", "mero-kms-v1.3.0-rc.1", "mero-tee-v1.0.0"}
	if !slices.Equal(names, want) {
		t.Errorf("Tags = %q, want %q (v0.1-legacy is not a release tag)", names, want)
	}
	prev, ok := release.Previous(release.MustParseTag("mero-kms-v1.3.0"), tags, true)
	if !ok || prev.String() != "mero-kms-v1.2.0" {
		t.Errorf("previous stable of mero-kms-v1.3.0 = %s %v", prev, ok)
	}
	if _, err := Tags(context.Background(), t.TempDir()); outcome.Code(err) != outcome.Usage {
		t.Errorf("Tags of a non-repository = %v, want a usage error", err)
	}
}

func TestPRRefs(t *testing.T) {
	cases := map[string][]int{
		"fix: thing (#12)":                               {12},
		"feat: a (#1) and b (#2)":                        {1, 2},
		"Merge pull request #14 from carol/side":         {14},
		"Merge pull request #14 from x (#14)":            {14},
		"see #15 for details":                            nil,
		"chore: (#0)":                                    nil,
		"chore: (#99999999999999999999999999999)":        nil,
		"Revert \"feat: a (#7)\" (#8)":                   {7, 8},
		"Merge pull request #3 from a/b; follow-up (#4)": {3, 4},
	}
	for in, want := range cases {
		if got := PRRefs(in); !slices.Equal(got, want) {
			t.Errorf("PRRefs(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestContributors(t *testing.T) {
	commits := []Commit{
		{Author: Person{"bob", "BOB@example.com"}},
		{Author: Person{"Alice", "alice@example.com"}, CoAuthors: []Person{{"Bob Builder", "bob@example.com"}, {"Dave", ""}}},
		{Author: Person{"alice (laptop)", "Alice@Example.com"}},
		{Author: Person{"Dave", ""}},
		{Author: Person{"", ""}},
	}
	got := Contributors(commits)
	want := []Person{{"Alice", "alice@example.com"}, {"bob", "BOB@example.com"}, {"Dave", ""}}
	if !slices.Equal(got, want) {
		t.Errorf("Contributors = %+v, want %+v", got, want)
	}
}
