// Package storeopen opens a release store from a spec string, so that the CLI, scripts and the
// Dagger module name stores the same way: "dir:PATH" (a local directory, pipeline/store/dir) or
// "github:OWNER/REPO" (GitHub Releases, pipeline/store/github).
package storeopen

import (
	"context"
	"net/http"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/store"
	"github.com/calimero-network/mero-release/pipeline/store/dir"
	ghstore "github.com/calimero-network/mero-release/pipeline/store/github"
)

// Options are what a GitHub store needs; a directory store needs none of them.
type Options struct {
	// Token is the GitHub token's value (e.g. $GITHUB_TOKEN, or a Dagger secret's plaintext).
	// Without it only published releases of a public repository can be read.
	Token string
	// APIURL is the REST API root (e.g. $GITHUB_API_URL); empty means github.com.
	APIURL string
	// HTTPClient carries the transport (nil: a default client).
	HTTPClient *http.Client
	// Retry paces the retries of GitHub calls (zero value: the defaults).
	Retry ghstore.RetryPolicy
}

// Kinds of store spec.
const (
	KindDir    = "dir"
	KindGitHub = "github"
)

// Open opens the store a spec names: "dir:PATH" or "github:OWNER/REPO". A malformed spec is a
// usage error naming the accepted forms.
func Open(ctx context.Context, spec string, opts Options) (store.Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	kind, rest, ok := strings.Cut(spec, ":")
	switch {
	case ok && kind == KindDir && rest != "":
		return dir.New(rest)
	case ok && kind == KindGitHub:
		owner, repo, err := ghstore.ParseRepository(rest)
		if err != nil {
			return nil, outcome.UsageErrorf("store %q: %v", spec, err)
		}
		c, err := ghstore.NewClient(ghstore.ClientOptions{Token: opts.Token, BaseURL: opts.APIURL, HTTPClient: opts.HTTPClient})
		if err != nil {
			return nil, err
		}
		return ghstore.New(ghstore.Options{Owner: owner, Repo: repo, Client: c, Retry: opts.Retry})
	}
	return nil, outcome.UsageErrorf("store %q: must be dir:PATH or github:OWNER/REPO", spec)
}
