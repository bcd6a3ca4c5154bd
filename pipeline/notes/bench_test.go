package notes

import (
	"fmt"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/release"
)

// BenchmarkHistory walks 1,000 commits since a tag in a real on-disk repository.
func BenchmarkHistory(b *testing.B) {
	r := newTestRepo(b)
	r.commit("alice", "Initial import")
	r.tag("mero-kms-v1.0.0", true)
	for i := range 1000 {
		r.commit([]string{"alice", "bob", "carol"}[i%3], fmt.Sprintf("feat: change %d (#%d)", i, i+1))
	}
	b.ReportAllocs()
	for b.Loop() {
		commits, err := History(b.Context(), r.dir, "mero-kms-v1.0.0", "HEAD")
		if err != nil || len(commits) != 1000 {
			b.Fatalf("%d commits, %v", len(commits), err)
		}
	}
}

// BenchmarkGenerate renders stable notes with 1,000 commits and three measured profiles.
func BenchmarkGenerate(b *testing.B) {
	var many []Commit
	for range 125 {
		many = append(many, commits()...)
	}
	in := Input{
		Tag: release.MustParseTag("mero-kms-v1.4.0"), Class: release.Stable, Previous: tagp("mero-kms-v1.3.0"),
		Commits: many, Author: AuthorNotes{Sections: []AuthorSection{
			{Heading: "Breaking changes", Section: release.SectionBreakingChanges, Body: "None."},
			{Heading: "Upgrade path", Section: release.SectionUpgradePath, Body: "Roll."},
		}},
		Measurements:         published(release.KMS, "1.4.0", true),
		PreviousMeasurements: published(release.KMS, "1.3.0", false),
		Compatible:           []string{"1.4.0", "1.3.0"},
		RepoURL:              "https://github.com/calimero-network/mero-tee",
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Generate(in); err != nil {
			b.Fatal(err)
		}
	}
}
