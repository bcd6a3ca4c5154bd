package github

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	gh "github.com/google/go-github/v93/github"

	"github.com/calimero-network/mero-release/pipeline/internal/lazyre"
	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// PublicAPIURL is the REST API of github.com; GitHub Actions sets $GITHUB_API_URL to it.
const PublicAPIURL = "https://api.github.com"

// ClientOptions configures NewClient.
type ClientOptions struct {
	// Token authenticates every request to the API and upload origins (a GitHub token's
	// value, e.g. the plaintext of a Dagger secret); empty means anonymous (public data only).
	Token string
	// BaseURL is the REST API root: empty or PublicAPIURL for github.com, otherwise a GitHub
	// Enterprise Server (https://HOST/api/v3) or a test server.
	BaseURL string
	// UploadURL is the upload root; empty derives it from BaseURL (…/api/v3 → …/api/uploads).
	UploadURL string
	// HTTPClient carries the transport and its timeouts (nil: a default client).
	HTTPClient *http.Client
}

// NewClient builds a go-github client. go-github's own rate-limit bookkeeping is turned off:
// RetryPolicy waits for the limits GitHub announces instead of failing fast.
func NewClient(o ClientOptions) (*gh.Client, error) {
	opts := []gh.ClientOptionsFunc{gh.WithDisableRateLimitCheck(), gh.WithUserAgent("mero-release")}
	if o.HTTPClient != nil {
		opts = append(opts, gh.WithHTTPClient(o.HTTPClient))
	}
	if o.Token != "" {
		opts = append(opts, gh.WithAuthToken(o.Token))
	}
	base := strings.TrimSuffix(o.BaseURL, "/")
	if base != "" && base != PublicAPIURL {
		if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, outcome.UsageErrorf("GitHub API URL %q is not an http(s) URL", o.BaseURL)
		}
		upload := o.UploadURL
		if upload == "" {
			upload = base
			if s, ok := strings.CutSuffix(base, "/api/v3"); ok {
				upload = s + "/api/uploads"
			}
		}
		opts = append(opts, gh.WithEnterpriseURLs(base+"/", strings.TrimSuffix(upload, "/")+"/"))
	}
	c, err := gh.NewClient(opts...)
	if err != nil {
		return nil, outcome.UsageErrorf("GitHub client: %v", err)
	}
	return c, nil
}

var repoPart = lazyre.New(`^[A-Za-z0-9_.-]+$`)

// ParseRepository splits "OWNER/REPO", refusing anything else with a usage error.
func ParseRepository(s string) (owner, repo string, err error) {
	owner, repo, ok := strings.Cut(s, "/")
	if !ok || !repoPart().MatchString(owner) || !repoPart().MatchString(repo) || repo == "." || repo == ".." {
		return "", "", outcome.UsageErrorf("repository %q: must be OWNER/REPO", s)
	}
	return owner, repo, nil
}

// statusCode returns the HTTP status of a go-github error, or 0.
func statusCode(err error) int {
	if e, ok := errors.AsType[*gh.ErrorResponse](err); ok && e.Response != nil {
		return e.Response.StatusCode
	}
	return 0
}

// alreadyExists reports GitHub's 422 "already_exists" validation error.
func alreadyExists(err error) bool {
	e, ok := errors.AsType[*gh.ErrorResponse](err)
	if !ok || e.Response == nil || e.Response.StatusCode != http.StatusUnprocessableEntity {
		return false
	}
	for _, d := range e.Errors {
		if d.Code == "already_exists" {
			return true
		}
	}
	return strings.Contains(strings.ToLower(e.Message), "already exists")
}
