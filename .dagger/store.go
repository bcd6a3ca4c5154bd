package main

import (
	"context"
	"fmt"

	"dagger/mero-release/internal/dagger"
)

// releaseStore is where a function reads releases from, as the CLI's flags name it.
type releaseStore struct {
	// spec is dir:PATH or github:OWNER/REPO.
	spec string
	// stateKey is the state directory's own public key, when the store is a release call's
	// state (releases/ and work/keys/cosign.pub); "" otherwise.
	stateKey string
	// stateCatalog is the state's updated catalog (work/compatibility-catalog.json), when present.
	stateCatalog string
	// stateWork is the state's work directory (work/), where a release call keeps what it built.
	stateWork string
}

// withStore mounts a local store — a release call's state directory, or a store directory
// itself — at /state, or configures the GitHub store of githubRepository (token: the
// constructor's github-token). Exactly one must be given.
func (m *MeroRelease) withStore(ctx context.Context, ctr *dagger.Container, what string, store *dagger.Directory, githubRepository string) (*dagger.Container, releaseStore, error) {
	switch {
	case store != nil && githubRepository != "":
		return nil, releaseStore{}, fmt.Errorf("%s: give --store or --github-repository, not both", what)
	case githubRepository != "":
		ctr = ctr.WithEnvVariable("GITHUB_REPOSITORY", githubRepository)
		if m.GithubToken != nil {
			ctr = ctr.WithSecretVariable("GITHUB_TOKEN", m.GithubToken)
		}
		return ctr, releaseStore{spec: "github:" + githubRepository}, nil
	case store == nil:
		return nil, releaseStore{}, fmt.Errorf("%s: give --store (a local store or a release call's state) or --github-repository", what)
	}
	ctr = ctr.WithMountedDirectory(statePath, store)
	entries, err := store.Entries(ctx)
	if err != nil {
		return nil, releaseStore{}, fmt.Errorf("%s: read --store: %w", what, err)
	}
	rs := releaseStore{spec: "dir:" + statePath}
	if contains(entries, "releases/") {
		rs.spec = "dir:" + statePath + "/releases"
		if contains(entries, "work/") {
			rs.stateWork = statePath + "/work"
			work, err := store.Directory("work").Entries(ctx)
			if err != nil {
				return nil, releaseStore{}, fmt.Errorf("%s: read --store work/: %w", what, err)
			}
			if contains(work, "keys/") {
				rs.stateKey = statePath + "/work/keys/cosign.pub"
			}
			if contains(work, catalogFile) {
				rs.stateCatalog = statePath + "/work/" + catalogFile
			}
		}
	}
	return ctr, rs, nil
}

// verification returns the flags that say how the store's signatures are checked: the given
// key or trusted root, else the state's own key pair.
func (rs releaseStore) verification(keyPath, rootPath string) []string {
	if keyPath == "" && rootPath == "" && rs.stateKey != "" {
		keyPath = rs.stateKey
	}
	return append(flag("key", keyPath), flag("trusted-root", rootPath)...)
}

// catalog returns the catalog to read: the given one, the state's updated one, or the source's.
func (rs releaseStore) catalog(given string) string {
	switch {
	case given != "":
		return given
	case rs.stateCatalog != "":
		return rs.stateCatalog
	}
	return catalogFile
}
