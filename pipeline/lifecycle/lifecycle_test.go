package lifecycle

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/notes"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// TestPrepareHistory: the scratch history holds every step's tag and notes; the hotfixes are on
// a branch of the stable tags (what BuiltFromBase checks), the main line is not; a second
// Prepare of a step only checks its tag out again.
func TestPrepareHistory(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "history")
	steps := Steps("1.3")
	for i, s := range steps {
		if err := Prepare(dir, s, i); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		_, err := os.Stat(notes.ConventionFile(dir, s.Tag))
		if (s.Notes != "") != (err == nil) {
			t.Errorf("%s: notes file present %v, want %v", s.Tag, err == nil, s.Notes != "")
		}
	}
	tags, err := notes.Tags(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if !slices.Contains(tags, s.Tag) {
			t.Errorf("%s is not a tag of the history", s.Tag)
		}
	}
	for _, rel := range [][2]string{{"mero-tee-v1.3.0", "mero-tee-v1.3.1"}, {"mero-kms-v1.3.0", "mero-kms-v1.3.1"}, {"mero-kms-v1.3.0-rc.1", "mero-tee-v1.3.0"}} {
		if ok, err := notes.IsAncestor(ctx, dir, rel[0], rel[1]); err != nil || !ok {
			t.Errorf("%s is not an ancestor of %s (%v)", rel[0], rel[1], err)
		}
	}
	if ok, err := notes.IsAncestor(ctx, dir, "mero-tee-v1.3.1", MainBranch); err != nil || ok {
		t.Errorf("the hotfix is on the main line (%v)", err)
	}
	// a re-run of the first step checks its tag out: HEAD is the rc, without later notes
	if err := Prepare(dir, steps[0], 0); err != nil {
		t.Fatal(err)
	}
	if ok, err := notes.IsAncestor(ctx, dir, "mero-kms-v1.3.0-rc.1", "HEAD"); err != nil || ok {
		t.Errorf("HEAD is not back at %s (%v)", steps[0].Tag, err)
	}
	if _, err := os.Stat(notes.ConventionFile(dir, release.MustParseTag("mero-kms-v1.3.1"))); err == nil {
		t.Error("the checkout of the rc holds the notes of a later release")
	}
}
