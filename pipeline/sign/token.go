package sign

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// TokenSource provides the OIDC identity token that Fulcio exchanges for a certificate.
type TokenSource interface {
	// Token returns a raw JWT.
	Token(ctx context.Context) (string, error)
}

// StaticToken is a TokenSource returning a fixed token: for tests, and for CI systems that
// hand the token over in an environment variable (e.g. SIGSTORE_ID_TOKEN).
type StaticToken string

// Token returns the token; an empty token is a usage error.
func (t StaticToken) Token(context.Context) (string, error) {
	if strings.TrimSpace(string(t)) == "" {
		return "", outcome.UsageErrorf("OIDC token is empty")
	}
	return strings.TrimSpace(string(t)), nil
}

// GitHub Actions environment variables that grant an OIDC token (job permission id-token: write).
const (
	EnvActionsTokenURL     = "ACTIONS_ID_TOKEN_REQUEST_URL"
	EnvActionsRequestToken = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
)

// GitHubActionsTokenSource fetches the token from the GitHub Actions OIDC provider.
type GitHubActionsTokenSource struct {
	// HTTPClient is used for the request; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Getenv reads the environment; nil is a usage error when Token is called.
	Getenv func(string) string
}

// Token requests a token with audience "sigstore".
func (g GitHubActionsTokenSource) Token(ctx context.Context) (string, error) {
	return GitHubActionsToken(ctx, g.HTTPClient, g.Getenv)
}

// GitHubActionsToken requests an OIDC token for audience "sigstore" from
// $ACTIONS_ID_TOKEN_REQUEST_URL, authenticated with $ACTIONS_ID_TOKEN_REQUEST_TOKEN, as the
// GitHub Actions toolkit does. Neither the request token nor the returned token is ever
// part of an error message.
func GitHubActionsToken(ctx context.Context, client *http.Client, getenv func(string) string) (string, error) {
	if getenv == nil {
		return "", outcome.UsageErrorf("github actions token: no environment")
	}
	rawURL, bearer := getenv(EnvActionsTokenURL), getenv(EnvActionsRequestToken)
	if rawURL == "" || bearer == "" {
		return "", outcome.UsageErrorf("github actions token: %s and %s must be set (is the job granted `permissions: id-token: write`?)", EnvActionsTokenURL, EnvActionsRequestToken)
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", outcome.UsageErrorf("github actions token: %s is not a URL", EnvActionsTokenURL)
	}
	q := u.Query()
	q.Set("audience", "sigstore")
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("github actions token: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Accept", "application/json")
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("github actions token: request to %s://%s%s: %w", u.Scheme, u.Host, u.Path, stripURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("github actions token: read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("github actions token: %s://%s%s returned HTTP %d", u.Scheme, u.Host, u.Path, resp.StatusCode)
	}
	var payload struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &payload); err != nil {
		return "", fmt.Errorf("github actions token: response is not JSON: %w", err)
	}
	if strings.Count(payload.Value, ".") != 2 {
		return "", fmt.Errorf("github actions token: response has no JWT in \"value\"")
	}
	return payload.Value, nil
}

// stripURLError drops the URL (which carries no secret but may be long) from a client error.
func stripURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
