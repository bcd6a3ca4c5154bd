package main

import (
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/provenance"
)

// TestProvenanceBuildFromGitHubEnv: in GitHub Actions the provenance's builder is the workflow
// ref, with the repository, commit and run; elsewhere it is local; --builder-image must be pinned.
func TestProvenanceBuildFromGitHubEnv(t *testing.T) {
	gh := map[string]string{
		"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "calimero-network/mero-tee",
		"GITHUB_WORKFLOW_REF": "calimero-network/mero-tee/.github/workflows/release-kms-phala.yaml@refs/tags/mero-kms-v1.3.0",
		"GITHUB_SHA":          "0123456789abcdef0123456789abcdef01234567", "GITHUB_RUN_ID": "42", "GITHUB_RUN_ATTEMPT": "2",
	}
	a := &app{getenv: func(k string) string { return gh[k] }}
	img := "golang:1.26.8-bookworm@sha256:a688600ca24f8a4d3ca77f95b0dd40704a9fc787c826660eb7ba0b641b8b175d"
	b, err := a.provenanceBuild("", []string{img})
	if err != nil {
		t.Fatal(err)
	}
	want := provenance.Build{
		BuilderID:    "https://github.com/calimero-network/mero-tee/.github/workflows/release-kms-phala.yaml@refs/tags/mero-kms-v1.3.0",
		Repository:   "https://github.com/calimero-network/mero-tee",
		Commit:       "0123456789abcdef0123456789abcdef01234567",
		InvocationID: "https://github.com/calimero-network/mero-tee/actions/runs/42/attempts/2",
	}
	if b.BuilderID != want.BuilderID || b.Repository != want.Repository || b.Commit != want.Commit || b.InvocationID != want.InvocationID {
		t.Fatalf("got %+v, want %+v", b, want)
	}
	if len(b.Dependencies) != 1 || b.Dependencies[0].URI != img || b.Dependencies[0].Digest["sha256"] != img[len(img)-64:] {
		t.Fatalf("builder image: %+v", b.Dependencies)
	}
	local := &app{getenv: func(string) string { return "" }}
	if b, err := local.provenanceBuild("https://example.com/repo", nil); err != nil || b.BuilderID != provenance.LocalBuilder || b.Repository != "https://example.com/repo" || b.Commit != "" {
		t.Fatalf("local: %+v %v", b, err)
	}
	if _, err := local.provenanceBuild("", []string{"golang:1.26.8"}); outcome.Code(err) != outcome.Usage {
		t.Fatalf("unpinned builder image: %v", err)
	}
}
