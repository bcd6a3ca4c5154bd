// Package phala is a client of the Phala Cloud REST API (SPEC §11), the part mero-release uses
// to run a KMS release in a dstack CVM: provision an app from its app-compose, create the CVM
// with the KMS configuration as encrypted environment, wait until it runs, find its public
// endpoint, and delete it; Sweep deletes leftovers of interrupted runs. No Go SDK of Phala
// Cloud is available, so the calls are written here against the documented API.
package phala

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/calimero-network/mero-release/pipeline/internal/lazyre"
	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// APIVersion is the X-Phala-Version the client speaks.
const APIVersion = "2026-01-21"

// Status values of a CVM.
const (
	StatusStarting = "starting"
	StatusRunning  = "running"
	StatusStopped  = "stopped"
)

// Options configure a Client.
type Options struct {
	// HTTP is the HTTP client; nil means one with a 60 s timeout.
	HTTP *http.Client
	// Version is the X-Phala-Version header; empty means APIVersion.
	Version string
}

// Client calls the Phala Cloud API at a base URL ending in /api/v1.
type Client struct {
	base    string
	key     string
	version string
	http    *http.Client
}

// New returns a client of the API at baseURL (…/api/v1) authenticated by apiKey.
func New(baseURL, apiKey string, opts Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, outcome.UsageErrorf("phala: API URL %q: want https://HOST/api/v1", baseURL)
	}
	if apiKey == "" {
		return nil, outcome.UsageErrorf("phala: no API key")
	}
	c := &Client{base: strings.TrimSuffix(baseURL, "/"), key: apiKey, version: opts.Version, http: opts.HTTP}
	if c.version == "" {
		c.version = APIVersion
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: 60 * time.Second}
	}
	return c, nil
}

// ProvisionRequest is POST /cvms/provision: an app to be deployed from its compose file.
type ProvisionRequest struct {
	Name         string `json:"name"`
	InstanceType string `json:"instance_type"`
	KMS          string `json:"kms"`
	PreferDev    bool   `json:"prefer_dev"`
	Listed       bool   `json:"listed"`
	// ComposeFile is the app-compose: docker_compose_file, allowed_envs, public_logs,
	// public_sysinfo and the other dstack app-compose fields.
	ComposeFile json.RawMessage `json:"compose_file"`
}

// Provisioned is the answer to a provision: the app id, the compose hash dstack will extend
// into RTMR3, and the X25519 public key (hex) environment is encrypted to.
type Provisioned struct {
	AppID       string `json:"app_id"`
	ComposeHash string `json:"compose_hash"`
	EnvPubKey   string `json:"app_env_encrypt_pubkey"`
}

// CreateRequest is POST /cvms: the CVM of a provisioned app.
type CreateRequest struct {
	AppID        string `json:"app_id"`
	ComposeHash  string `json:"compose_hash"`
	EncryptedEnv string `json:"encrypted_env,omitempty"`
}

// PublicURL is one public endpoint of a CVM.
type PublicURL struct {
	App      string `json:"app"`
	Instance string `json:"instance"`
}

// CVM is a CVM as GET /cvms/app_<id> and GET /cvms describe it.
type CVM struct {
	VMUUID     string      `json:"vm_uuid"`
	AppID      string      `json:"app_id"`
	Name       string      `json:"name"`
	Status     string      `json:"status"`
	PublicURLs []PublicURL `json:"public_urls"`
	CreatedAt  time.Time   `json:"created_at"`
}

// Endpoint is the CVM's first public app URL, or "".
func (c *CVM) Endpoint() string {
	for _, u := range c.PublicURLs {
		if u.App != "" {
			return u.App
		}
	}
	return ""
}

// APIError is an error answer of the API: its HTTP status and the JSON detail.
type APIError struct {
	Method, Path string
	Status       int
	Detail       string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("phala %s %s: HTTP %d: %s", e.Method, e.Path, e.Status, e.Detail)
}

// IsNotFound reports whether err is an API answer 404 (e.g. a CVM already deleted).
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

var appIDRE = lazyre.New(`^[0-9a-f]{8,64}$`)

// checkAppID refuses an app id that could change the request path.
func checkAppID(id string) error {
	if !appIDRE().MatchString(id) {
		return fmt.Errorf("phala: app id %q is not lower-case hex", id)
	}
	return nil
}

// Provision registers an app (POST /cvms/provision).
func (c *Client) Provision(ctx context.Context, req ProvisionRequest) (*Provisioned, error) {
	var out Provisioned
	if err := c.do(ctx, http.MethodPost, "/cvms/provision", req, &out); err != nil {
		return nil, err
	}
	if err := checkAppID(out.AppID); err != nil {
		return nil, err
	}
	return &out, nil
}

// Create creates the CVM of a provisioned app (POST /cvms).
func (c *Client) Create(ctx context.Context, req CreateRequest) (*CVM, error) {
	if err := checkAppID(req.AppID); err != nil {
		return nil, err
	}
	var out CVM
	if err := c.do(ctx, http.MethodPost, "/cvms", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Get describes the CVM of an app (GET /cvms/app_<id>).
func (c *Client) Get(ctx context.Context, appID string) (*CVM, error) {
	if err := checkAppID(appID); err != nil {
		return nil, err
	}
	var out CVM
	if err := c.do(ctx, http.MethodGet, "/cvms/app_"+appID, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Start starts a stopped CVM (POST /cvms/app_<id>/start).
func (c *Client) Start(ctx context.Context, appID string) error {
	if err := checkAppID(appID); err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, "/cvms/app_"+appID+"/start", struct{}{}, nil)
}

// Delete removes the CVM of an app (DELETE /cvms/app_<id>); deleting one already gone is not
// an error.
func (c *Client) Delete(ctx context.Context, appID string) error {
	if err := checkAppID(appID); err != nil {
		return err
	}
	err := c.do(ctx, http.MethodDelete, "/cvms/app_"+appID, nil, nil)
	if IsNotFound(err) {
		return nil
	}
	return err
}

// List returns the account's CVMs (GET /cvms).
func (c *Client) List(ctx context.Context) ([]CVM, error) {
	var out []CVM
	if err := c.do(ctx, http.MethodGet, "/cvms", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// WaitRunning polls the CVM of appID every interval, at most polls times, until it runs and
// has a public endpoint. A stopped CVM is started once.
func (c *Client) WaitRunning(ctx context.Context, appID string, interval time.Duration, polls int) (*CVM, error) {
	started := false
	var last *CVM
	for i := 0; i < polls; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(interval):
			}
		}
		cvm, err := c.Get(ctx, appID)
		if err != nil {
			return nil, err
		}
		last = cvm
		switch {
		case cvm.Status == StatusRunning && cvm.Endpoint() != "":
			return cvm, nil
		case cvm.Status == StatusStopped && !started:
			if err := c.Start(ctx, appID); err != nil {
				return nil, err
			}
			started = true
		}
	}
	status := "unknown"
	if last != nil {
		status = last.Status
	}
	return nil, fmt.Errorf("phala: CVM of app %s not running with a public endpoint after %d polls (status %s)", appID, polls, status)
}

// maxResponse bounds an API answer.
const maxResponse = 4 << 20

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("phala %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("phala %s %s: %w", method, path, err)
	}
	req.Header.Set("X-API-Key", c.key)
	req.Header.Set("X-Phala-Version", c.version)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("phala %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("phala %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Detail any `json:"detail"`
		}
		detail := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &e) == nil && e.Detail != nil {
			detail = fmt.Sprint(e.Detail)
		}
		if len(detail) > 500 {
			detail = detail[:500] + "…"
		}
		return &APIError{Method: method, Path: path, Status: resp.StatusCode, Detail: detail}
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("phala %s %s: decode answer: %w", method, path, err)
	}
	return nil
}
