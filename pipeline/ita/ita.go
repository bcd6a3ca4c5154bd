// Package ita is a small client of Intel Trust Authority's appraisal API (SPEC §2: ITA_API_URL,
// ITA_API_KEY), an optional cross-check of a TDX quote by a second verifier: the quote is
// POSTed to ITA, and the attestation token it returns — a JWT whose signature is checked
// against ITA's token-signing keys (JWKS) — says the quote's TCB status and measurements as ITA
// appraised them. The pipeline's own verification (pipeline/tdx, with collateral) stays the one
// that decides; this client only reports what ITA says, for comparison.
package ita

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// The environment of the ITA cross-check (SPEC §2: ITA_API_URL is a repository variable; the
// key is a secret).
const (
	// EnvAPIURL is the ITA API base URL, e.g. https://api.trustauthority.intel.com.
	EnvAPIURL = "ITA_API_URL"
	// EnvAPIKey is the ITA attestation API key (sent as x-api-key).
	EnvAPIKey = "ITA_API_KEY"
)

// AttestPath is the appraisal call, relative to the API URL.
const AttestPath = "/appraisal/v1/attest"

// DefaultCertsURL is where ITA publishes its token-signing keys (a JWKS).
const DefaultCertsURL = "https://portal.trustauthority.intel.com/certs"

// maxBody bounds what is read from ITA.
const maxBody = 1 << 20

// Client calls the ITA appraisal API.
type Client struct {
	apiURL, apiKey, certsURL string
	http                     *http.Client
	now                      func() time.Time
}

// Options configure a Client.
type Options struct {
	// CertsURL is the JWKS of the token-signing keys (default DefaultCertsURL).
	CertsURL string
	// HTTPClient is used for every call (default: a client with a 30 s timeout).
	HTTPClient *http.Client
	// Now is the clock the token's validity is checked against (default time.Now).
	Now func() time.Time
}

// New returns a client of the API at apiURL (ITA_API_URL) with apiKey (ITA_API_KEY).
func New(apiURL, apiKey string, o Options) (*Client, error) {
	switch {
	case !strings.HasPrefix(apiURL, "https://") && !strings.HasPrefix(apiURL, "http://127.0.0.1") && !strings.HasPrefix(apiURL, "http://localhost"):
		return nil, outcome.UsageErrorf("ita: %s %q: want an https:// URL", EnvAPIURL, apiURL)
	case apiKey == "":
		return nil, outcome.UsageErrorf("ita: %s is empty", EnvAPIKey)
	}
	c := &Client{apiURL: strings.TrimRight(apiURL, "/"), apiKey: apiKey, certsURL: o.CertsURL, http: o.HTTPClient, now: o.Now}
	if c.certsURL == "" {
		c.certsURL = DefaultCertsURL
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Second}
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// Appraisal is what ITA says about a quote, read from its verified attestation token.
type Appraisal struct {
	// TCBStatus is the attester's TCB status as ITA evaluated it (UpToDate, OutOfDate, …).
	TCBStatus string `json:"tcb_status"`
	// AttesterType is the TEE type (TDX).
	AttesterType string `json:"attester_type"`
	// MRTD and RTMR0–3 are the measurements ITA read from the quote (hex), when it reports them.
	MRTD  string `json:"mrtd,omitempty"`
	RTMR0 string `json:"rtmr0,omitempty"`
	RTMR1 string `json:"rtmr1,omitempty"`
	RTMR2 string `json:"rtmr2,omitempty"`
	RTMR3 string `json:"rtmr3,omitempty"`
	// AdvisoryIDs are the Intel security advisories ITA lists for the TCB.
	AdvisoryIDs []string `json:"advisory_ids,omitempty"`
	// Token is the raw attestation token.
	Token string `json:"-"`
}

// tokenClaims are the claims of ITA's v1 TDX attestation token this package reads.
type tokenClaims struct {
	TCBStatus    string   `json:"attester_tcb_status"`
	AttesterType string   `json:"attester_type"`
	AdvisoryIDs  []string `json:"attester_advisory_ids"`
	MRTD         string   `json:"tdx_mrtd"`
	RTMR0        string   `json:"tdx_rtmr0"`
	RTMR1        string   `json:"tdx_rtmr1"`
	RTMR2        string   `json:"tdx_rtmr2"`
	RTMR3        string   `json:"tdx_rtmr3"`
}

// Appraise POSTs quote to ITA, verifies the returned token's signature against ITA's JWKS and
// its validity period, and returns the appraisal it carries. An HTTP error of ITA is an error
// naming its status and body; a token that does not verify is a verification error (exit 10).
func (c *Client) Appraise(ctx context.Context, quote []byte) (*Appraisal, error) {
	if len(quote) == 0 {
		return nil, outcome.UsageErrorf("ita: empty quote")
	}
	body, err := json.Marshal(struct {
		Quote []byte `json:"quote"`
	}{quote})
	if err != nil {
		return nil, fmt.Errorf("ita: %w", err)
	}
	var resp struct {
		Token string `json:"token"`
	}
	if err := c.call(ctx, http.MethodPost, c.apiURL+AttestPath, body, true, &resp); err != nil {
		return nil, err
	}
	if resp.Token == "" {
		return nil, outcome.VerificationErrorf("ita: the appraisal returned no token")
	}
	return c.verify(ctx, resp.Token)
}

// verify checks the token against ITA's JWKS and reads its claims.
func (c *Client) verify(ctx context.Context, token string) (*Appraisal, error) {
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.PS384})
	if err != nil {
		return nil, outcome.VerificationErrorf("ita: attestation token: %v", err)
	}
	var keys jose.JSONWebKeySet
	if err := c.call(ctx, http.MethodGet, c.certsURL, nil, false, &keys); err != nil {
		return nil, fmt.Errorf("ita: token-signing keys: %w", err)
	}
	if len(tok.Headers) != 1 || tok.Headers[0].KeyID == "" {
		return nil, outcome.VerificationErrorf("ita: attestation token: no key id")
	}
	found := keys.Key(tok.Headers[0].KeyID)
	if len(found) == 0 {
		return nil, outcome.VerificationErrorf("ita: attestation token: key %q is not among the token-signing keys of %s", tok.Headers[0].KeyID, c.certsURL)
	}
	var std jwt.Claims
	var claims tokenClaims
	if err := tok.Claims(found[0].Public().Key, &std, &claims); err != nil {
		return nil, outcome.VerificationErrorf("ita: attestation token: %v", err)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Time: c.now()}, time.Minute); err != nil {
		return nil, outcome.VerificationErrorf("ita: attestation token: %v", err)
	}
	if claims.TCBStatus == "" {
		return nil, outcome.VerificationErrorf("ita: attestation token has no attester_tcb_status")
	}
	return &Appraisal{TCBStatus: claims.TCBStatus, AttesterType: claims.AttesterType, AdvisoryIDs: claims.AdvisoryIDs,
		MRTD: claims.MRTD, RTMR0: claims.RTMR0, RTMR1: claims.RTMR1, RTMR2: claims.RTMR2, RTMR3: claims.RTMR3, Token: token}, nil
}

// call does one request and decodes a 200 response's JSON into out.
func (c *Client) call(ctx context.Context, method, url string, body []byte, auth bool, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return fmt.Errorf("ita: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		req.Header.Set("x-api-key", c.apiKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("ita: %s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("ita: %s %s: %w", method, url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ita: %s %s: HTTP %s: %s", method, url, resp.Status, strings.TrimSpace(string(data)))
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("ita: %s %s: %w", method, url, err)
	}
	return nil
}
