package flow

import (
	"time"

	"github.com/go-git/go-git/v5"

	"github.com/calimero-network/mero-release/pipeline/sbom"
)

// CreatedTime is the fixed time stamped on generated artifacts: SOURCE_DATE_EPOCH when set, else
// the commit time of HEAD in repoDir (so a rebuild of the same commit gives the same images and
// SBOM), else the current time truncated to the second (no repository: nothing to reproduce).
func CreatedTime(getenv func(string) string, repoDir string) (time.Time, error) {
	if getenv("SOURCE_DATE_EPOCH") != "" {
		return sbom.CreatedFromEnv(getenv)
	}
	if repo, err := git.PlainOpenWithOptions(repoDir, &git.PlainOpenOptions{DetectDotGit: true}); err == nil {
		if head, err := repo.Head(); err == nil {
			if c, err := repo.CommitObject(head.Hash()); err == nil {
				return c.Committer.When.UTC(), nil
			}
		}
	}
	return time.Now().UTC().Truncate(time.Second), nil
}
