package migrate

import (
	"net/url"
	"path/filepath"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	ghstore "github.com/calimero-network/mero-release/pipeline/store/github"
)

// DefaultServerURL is the GitHub web URL release downloads are served from.
const DefaultServerURL = "https://github.com"

// AssetLocator says where a KMS fetches a release asset from (MERO_KMS_POLICY_URL).
type AssetLocator struct {
	// Base, when set, is a mirror of the releases: the URL of an asset is Base/<tag>/<asset>
	// (http, https or file).
	Base string
	// StoreSpec is the store the release was read from: "github:OWNER/REPO" gives
	// ServerURL/OWNER/REPO/releases/download/<tag>/<asset>, "dir:PATH" the asset's file in the
	// directory store (file://…/PATH/<tag>/assets/<asset>, pipeline/store/dir's layout).
	StoreSpec string
	// ServerURL is the GitHub web URL of a github: store (default DefaultServerURL).
	ServerURL string
}

// URL returns the URL of an asset of the release tag. A malformed Base or store spec is a usage
// error.
func (l AssetLocator) URL(tag, asset string) (string, error) {
	if l.Base != "" {
		u, err := url.Parse(l.Base)
		if err != nil || u.Opaque != "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") ||
			(u.Scheme != "file" && u.Host == "") || u.RawQuery != "" || u.Fragment != "" {
			return "", outcome.UsageErrorf("policy URL base %q: want an http(s):// URL with a host, or file:///DIR, without query or fragment", l.Base)
		}
		return strings.TrimRight(l.Base, "/") + "/" + url.PathEscape(tag) + "/" + url.PathEscape(asset), nil
	}
	kind, rest, _ := strings.Cut(l.StoreSpec, ":")
	switch {
	case kind == "github" && rest != "":
		owner, repo, err := ghstore.ParseRepository(rest)
		if err != nil {
			return "", outcome.UsageErrorf("store %q: %v", l.StoreSpec, err)
		}
		server := strings.TrimRight(l.ServerURL, "/")
		if server == "" {
			server = DefaultServerURL
		}
		return server + "/" + owner + "/" + repo + "/releases/download/" + url.PathEscape(tag) + "/" + url.PathEscape(asset), nil
	case kind == "dir" && rest != "":
		abs, err := filepath.Abs(rest)
		if err != nil {
			return "", outcome.UsageErrorf("store %q: %v", l.StoreSpec, err)
		}
		u := url.URL{Scheme: "file", Path: filepath.ToSlash(filepath.Join(abs, tag, "assets", asset))}
		return u.String(), nil
	}
	return "", outcome.UsageErrorf("store %q: cannot derive a policy URL (want dir:PATH or github:OWNER/REPO, or give a policy URL base)", l.StoreSpec)
}
