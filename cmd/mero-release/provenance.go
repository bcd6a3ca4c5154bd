package main

import (
	"strings"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/provenance"
)

// provenanceBuild says who builds the release, for its provenance: in GitHub Actions
// ($GITHUB_ACTIONS=true) the workflow ref as the builder id
// (https://github.com/OWNER/REPO/.github/workflows/FILE@REF, the identity keyless signatures
// carry), $GITHUB_REPOSITORY, $GITHUB_SHA and the run URL; elsewhere provenance.LocalBuilder and
// repoURL (the commit is then HEAD of --repo). images are --builder-image REF@sha256:HEX.
func (a *app) provenanceBuild(repoURL string, images []string) (provenance.Build, error) {
	b := provenance.Build{BuilderID: provenance.LocalBuilder, Repository: repoURL}
	if a.getenv("GITHUB_ACTIONS") == "true" && a.getenv("GITHUB_WORKFLOW_REF") != "" && a.getenv("GITHUB_REPOSITORY") != "" {
		server := strings.TrimRight(a.getenv("GITHUB_SERVER_URL"), "/")
		if server == "" {
			server = "https://github.com"
		}
		repo := server + "/" + a.getenv("GITHUB_REPOSITORY")
		b.BuilderID = server + "/" + a.getenv("GITHUB_WORKFLOW_REF")
		b.Repository = repo
		b.Commit = a.getenv("GITHUB_SHA")
		if run := a.getenv("GITHUB_RUN_ID"); run != "" {
			b.InvocationID = repo + "/actions/runs/" + run
			if attempt := a.getenv("GITHUB_RUN_ATTEMPT"); attempt != "" {
				b.InvocationID += "/attempts/" + attempt
			}
		}
	}
	for _, ref := range images {
		_, digest, ok := strings.Cut(ref, "@sha256:")
		if !ok || len(digest) != 64 || strings.Trim(digest, "0123456789abcdef") != "" {
			return provenance.Build{}, outcome.UsageErrorf("--builder-image %q: want REF@sha256:<64 hex>", ref)
		}
		b.Dependencies = append(b.Dependencies, provenance.Dependency{Name: "builder-image", URI: ref, Digest: map[string]string{"sha256": digest}})
	}
	return b, nil
}
