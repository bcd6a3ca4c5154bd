package flow_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/calimero-network/mero-release/pipeline/flow"
	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// commit is one commit of a test repository.
type commit struct {
	message string
	when    time.Time
}

// gitRepo writes a real git repository in dir with go-git, one file per commit; the committer
// time of each commit is fixed, so HEAD's time is the last commit's.
func gitRepo(t testing.TB, dir string, commits ...commit) string {
	t.Helper()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range commits {
		name := filepath.Join("changes", string(rune('a'+i))+".txt")
		if err := os.MkdirAll(filepath.Join(dir, "changes"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(c.message+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Add(name); err != nil {
			t.Fatal(err)
		}
		sig := &object.Signature{Name: "Alice Liddell", Email: "alice@example.com", When: c.when}
		if _, err := wt.Commit(c.message, &git.CommitOptions{Author: sig, Committer: sig}); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestCreatedTime(t *testing.T) {
	headTime := time.Date(2026, 10, 1, 9, 30, 15, 0, time.FixedZone("CEST", 2*3600))
	repo := gitRepo(t, t.TempDir(),
		commit{"feat: first", headTime.Add(-48 * time.Hour)},
		commit{"fix: second", headTime})
	sub := filepath.Join(repo, "changes")
	emptyRepo := t.TempDir()
	if _, err := git.PlainInit(emptyRepo, false); err != nil {
		t.Fatal(err)
	}
	noRepo := t.TempDir()

	tests := []struct {
		name string
		vars map[string]string
		dir  string
		want time.Time // zero: "now", truncated to the second
		code int       // exit code of the error; 0: no error
	}{
		{"SOURCE_DATE_EPOCH wins over the commit time", map[string]string{"SOURCE_DATE_EPOCH": "1700000000"}, repo, time.Unix(1700000000, 0).UTC(), 0},
		{"SOURCE_DATE_EPOCH without a repository", map[string]string{"SOURCE_DATE_EPOCH": " 0 "}, noRepo, time.Unix(0, 0).UTC(), 0},
		{"malformed SOURCE_DATE_EPOCH is a usage error", map[string]string{"SOURCE_DATE_EPOCH": "yesterday"}, repo, time.Time{}, outcome.Usage},
		{"negative SOURCE_DATE_EPOCH is a usage error", map[string]string{"SOURCE_DATE_EPOCH": "-1"}, repo, time.Time{}, outcome.Usage},
		{"HEAD commit time, in UTC", nil, repo, headTime.UTC(), 0},
		{"HEAD commit time from a subdirectory", nil, sub, headTime.UTC(), 0},
		{"a repository without commits: now", nil, emptyRepo, time.Time{}, 0},
		{"no repository: now", nil, noRepo, time.Time{}, 0},
		{"a directory that does not exist: now", nil, filepath.Join(noRepo, "missing"), time.Time{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now().UTC().Truncate(time.Second)
			got, err := flow.CreatedTime(env(tt.vars), tt.dir)
			after := time.Now().UTC()
			if tt.code != 0 {
				if err == nil {
					t.Fatalf("CreatedTime = %v, want an error with exit code %d", got, tt.code)
				}
				if c := outcome.Code(err); c != tt.code {
					t.Errorf("exit code %d (%v), want %d", c, err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Location() != time.UTC {
				t.Errorf("%v is not in UTC", got)
			}
			if !tt.want.IsZero() {
				if !got.Equal(tt.want) {
					t.Errorf("CreatedTime = %v, want %v", got, tt.want)
				}
				return
			}
			if got.Before(before) || got.After(after) || got.Nanosecond() != 0 {
				t.Errorf("CreatedTime = %v, want now (%v … %v) truncated to the second", got, before, after)
			}
		})
	}
}
