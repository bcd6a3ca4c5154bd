package agent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// requestTimeout bounds one metadata-server request.
const requestTimeout = 10 * time.Second

// metadata is a client of the GCE metadata server (the few calls the agent makes).
type metadata struct {
	base string
	http *http.Client
}

func newMetadata(base string) (*metadata, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, outcome.UsageErrorf("agent: metadata URL %q: want http://HOST/computeMetadata/v1", base)
	}
	return &metadata{base: strings.TrimSuffix(base, "/"), http: &http.Client{Timeout: requestTimeout,
		// The metadata server never redirects; following one would leave it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, nil
}

// attribute reads instance metadata key; found is false when it is not set. A value longer
// than limit bytes is an error.
func (m *metadata) attribute(ctx context.Context, key string, limit int) (value string, found bool, err error) {
	resp, err := m.do(ctx, http.MethodGet, "/instance/attributes/"+url.PathEscape(key), "")
	if err != nil {
		return "", false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return "", false, nil
	}
	if resp.StatusCode != http.StatusOK {
		return "", false, fmt.Errorf("GET %s: %s", key, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		return "", false, fmt.Errorf("GET %s: %w", key, err)
	}
	if len(b) > limit {
		return "", true, fmt.Errorf("GET %s: longer than %d bytes", key, limit)
	}
	return string(b), true, nil
}

// putGuestAttribute sets guest attribute namespace/key.
func (m *metadata) putGuestAttribute(ctx context.Context, namespace, key, value string) error {
	return m.guestAttribute(ctx, http.MethodPut, namespace, key, value)
}

// deleteGuestAttribute removes guest attribute namespace/key (absent is not an error).
func (m *metadata) deleteGuestAttribute(ctx context.Context, namespace, key string) error {
	return m.guestAttribute(ctx, http.MethodDelete, namespace, key, "")
}

func (m *metadata) guestAttribute(ctx context.Context, method, namespace, key, value string) error {
	resp, err := m.do(ctx, method, "/instance/guest-attributes/"+url.PathEscape(namespace)+"/"+url.PathEscape(key), value)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 && !(method == http.MethodDelete && resp.StatusCode == http.StatusNotFound) {
		return fmt.Errorf("%s guest attribute %s/%s: %s", method, namespace, key, resp.Status)
	}
	return nil
}

func (m *metadata) do(ctx context.Context, method, path, body string) (*http.Response, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, m.base+path, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Metadata-Flavor", "Google")
	return m.http.Do(req)
}
