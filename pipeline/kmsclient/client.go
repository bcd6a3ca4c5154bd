// Package kmsclient is the node side of the KMS contract (SPEC §7, §8): boot verification (the
// node can produce a verifiable TDX quote), KMS attestation (POST /attest with a fresh nonce,
// the KMS quote verified and its report data checked, optionally its measurements compared with
// the KMS release's published-mrtds.json), and key release (POST /challenge, a peer key pair
// signing the challenge, the node's quote binding the nonce and the public key, POST /get-key).
// It also holds the wire types and encodings both sides share (protocol.go).
package kmsclient

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/tdx"
)

// maxResponseBytes bounds what the client reads of a KMS response.
const maxResponseBytes = 1 << 20

// Quoter produces TDX quotes with the given report data: a node VM (tdxsim.VM, a GCP TDX VM's
// agent) or a KMS's quote source.
type Quoter interface {
	Quote(reportData [64]byte) ([]byte, error)
}

// APIError is a KMS error answer: the HTTP status and the {"error","details"} body.
type APIError struct {
	// Op is the endpoint, e.g. "POST /get-key".
	Op      string
	Status  int
	Code    string
	Details string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s: HTTP %d %s: %s", e.Op, e.Status, e.Code, e.Details)
}

// AsAPIError returns the APIError in err's chain, if any.
func AsAPIError(err error) (*APIError, bool) {
	var ae *APIError
	ok := errors.As(err, &ae)
	return ae, ok
}

// Options configure a Client.
type Options struct {
	// HTTPClient defaults to a client with a 30 s timeout.
	HTTPClient *http.Client
	// TrustedRoots are the roots the KMS's quotes (and, in VerifyBoot, node quotes) must chain
	// to; nil means Intel's SGX root.
	TrustedRoots *x509.CertPool
	// Rand is the randomness for nonces and peer keys; nil means crypto/rand.
	Rand io.Reader
	// Now is the clock used for certificate validity; nil means time.Now.
	Now func() time.Time
}

// Client talks to one KMS.
type Client struct {
	base  *url.URL
	http  *http.Client
	roots *x509.CertPool
	rand  io.Reader
	now   func() time.Time
}

// New returns a client for the KMS at baseURL (http:// or https://).
func New(baseURL string, opts Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, outcome.UsageErrorf("KMS URL %q: want http(s)://host[:port]", baseURL)
	}
	c := &Client{base: u, http: opts.HTTPClient, roots: opts.TrustedRoots, rand: opts.Rand, now: opts.Now}
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Second}
	}
	if c.roots == nil {
		if c.roots, err = tdx.IntelRootPool(); err != nil {
			return nil, err
		}
	}
	if c.rand == nil {
		c.rand = rand.Reader
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// Health calls GET /health.
func (c *Client) Health(ctx context.Context) (*HealthResponse, error) {
	var out HealthResponse
	if err := c.do(ctx, http.MethodGet, "/health", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AttestOptions tune Attest.
type AttestOptions struct {
	// Binding is optional data bound into the KMS quote (at most MaxBindingSize bytes).
	Binding []byte
	// Expected, when set, are the KMS measurements to insist on (a profile record of the KMS
	// release's published-mrtds.json).
	Expected *measure.Record
}

// Attestation is a verified KMS attestation.
type Attestation struct {
	Response AttestResponse
	Quote    *tdx.Quote
	Nonce    []byte
}

// Attest verifies the KMS (SPEC §7 "KMS attestation"): it sends a fresh NonceSize-byte nonce
// to POST /attest, verifies the returned quote's signature chain against the trusted roots,
// checks that its report data is AttestReportData(nonce, binding) and that reportDataHex and
// the reported measurements agree with the quote, and, with Expected, that MRTD and RTMR0–3
// equal the published ones. Failures of the KMS's evidence are verification errors (exit 10)
// naming what differs.
func (c *Client) Attest(ctx context.Context, opts AttestOptions) (*Attestation, error) {
	nonce := make([]byte, NonceSize)
	if _, err := io.ReadFull(c.rand, nonce); err != nil {
		return nil, fmt.Errorf("attest: nonce: %w", err)
	}
	want, err := AttestReportData(nonce, opts.Binding)
	if err != nil {
		return nil, outcome.UsageErrorf("attest: %v", err)
	}
	req := AttestRequest{NonceB64: base64.StdEncoding.EncodeToString(nonce)}
	if len(opts.Binding) > 0 {
		req.BindingB64 = base64.StdEncoding.EncodeToString(opts.Binding)
	}
	var resp AttestResponse
	if err := c.do(ctx, http.MethodPost, "/attest", req, &resp); err != nil {
		return nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(resp.QuoteB64)
	if err != nil {
		return nil, outcome.VerificationErrorf("attest: quoteB64: %v", err)
	}
	q, err := tdx.ParseQuote(raw)
	if err != nil {
		return nil, fmt.Errorf("attest: KMS quote: %w", err)
	}
	if err := q.Verify(tdx.VerifyOptions{TrustedRoots: c.roots, Now: c.now()}); err != nil {
		return nil, fmt.Errorf("attest: KMS quote: %w", err)
	}
	if q.ReportData != want {
		return nil, outcome.VerificationErrorf("attest: KMS quote report data %x does not bind our nonce (want %x): a replayed or foreign quote", q.ReportData[:], want[:])
	}
	if !strings.EqualFold(resp.ReportDataHex, hex.EncodeToString(want[:])) {
		return nil, outcome.VerificationErrorf("attest: reportDataHex %q differs from the quote's report data %x", resp.ReportDataHex, want[:])
	}
	h := q.Measurements().Hex()
	if got := (Measurements{h.MRTD, h.RTMR0, h.RTMR1, h.RTMR2, h.RTMR3}); got != resp.Measurements {
		return nil, outcome.VerificationErrorf("attest: the measurements in the response differ from the quote's")
	}
	if opts.Expected != nil {
		if err := CompareRecord(q.Measurements(), *opts.Expected); err != nil {
			return nil, fmt.Errorf("attest: KMS measurements: %w", err)
		}
	}
	return &Attestation{Response: resp, Quote: q, Nonce: nonce}, nil
}

// CompareRecord compares observed registers with a published record; the verification error
// (exit 10) names every register that differs with both values.
func CompareRecord(got tdx.Measurements, want measure.Record) error {
	h := got.Hex().Fields()
	var diffs []string
	for i, f := range want.Fields() {
		if !strings.EqualFold(h[i][1], f[1]) {
			diffs = append(diffs, fmt.Sprintf("%s observed %s, published %s", f[0], h[i][1], f[1]))
		}
	}
	if len(diffs) > 0 {
		return outcome.VerificationErrorf("%s", strings.Join(diffs, "; "))
	}
	return nil
}

// Challenge calls POST /challenge for peerID.
func (c *Client) Challenge(ctx context.Context, peerID string) (*ChallengeResponse, error) {
	var out ChallengeResponse
	if err := c.do(ctx, http.MethodPost, "/challenge", ChallengeRequest{PeerID: peerID}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Peer is a node's identity for key release: its namespace (peerId) and a signing key pair.
type Peer struct {
	ID  string
	key crypto.Signer
	pub []byte
}

// NewPeer returns a peer with a fresh Ed25519 key pair.
func NewPeer(id string, rnd io.Reader) (*Peer, error) {
	if err := ValidatePeerID(id); err != nil {
		return nil, outcome.UsageErrorf("%v", err)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	pub, priv, err := ed25519.GenerateKey(rnd)
	if err != nil {
		return nil, fmt.Errorf("peer key: %w", err)
	}
	return &Peer{ID: id, key: priv, pub: pub}, nil
}

// NewPeerWithKey returns a peer signing with key: an ed25519.PrivateKey or a P-256
// *ecdsa.PrivateKey (its public key is sent as an uncompressed point).
func NewPeerWithKey(id string, key crypto.Signer) (*Peer, error) {
	if err := ValidatePeerID(id); err != nil {
		return nil, outcome.UsageErrorf("%v", err)
	}
	switch k := key.(type) {
	case ed25519.PrivateKey:
		return &Peer{ID: id, key: k, pub: bytes.Clone(k.Public().(ed25519.PublicKey))}, nil
	case *ecdsa.PrivateKey:
		pub, err := k.PublicKey.Bytes()
		if err != nil {
			return nil, outcome.UsageErrorf("peer key: %v", err)
		}
		if _, err := ParsePublicKey(pub); err != nil {
			return nil, outcome.UsageErrorf("peer key: %v", err)
		}
		return &Peer{ID: id, key: k, pub: pub}, nil
	}
	return nil, outcome.UsageErrorf("peer key: %T, want ed25519 or ECDSA P-256", key)
}

// PublicKey returns the public key bytes sent as peerPublicKeyB64.
func (p *Peer) PublicKey() []byte { return bytes.Clone(p.pub) }

// Sign signs msg as the KMS verifies it (Ed25519, or ECDSA P-256 over SHA-256, ASN.1 DER).
func (p *Peer) Sign(rnd io.Reader, msg []byte) ([]byte, error) {
	switch k := p.key.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(k, msg), nil
	case *ecdsa.PrivateKey:
		h := sha256.Sum256(msg)
		return ecdsa.SignASN1(rnd, k, h[:])
	}
	return nil, fmt.Errorf("peer key: %T", p.key)
}

// KeyRelease is the result of a successful challenge/get-key flow.
type KeyRelease struct {
	Key         []byte
	ChallengeID string
	// NodeQuote is the quote the node presented.
	NodeQuote []byte
}

// RequestKey runs the key-release flow (SPEC §7 "Key release"): POST /challenge for the peer,
// sign SignatureMessage, have the node quote PeerReportData(nonce, public key), POST /get-key,
// and check the key is KeySize bytes. A KMS refusal is an *APIError carrying the status and
// error code.
func (c *Client) RequestKey(ctx context.Context, node Quoter, peer *Peer) (*KeyRelease, error) {
	ch, err := c.Challenge(ctx, peer.ID)
	if err != nil {
		return nil, err
	}
	nonce, err := base64.StdEncoding.DecodeString(ch.NonceB64)
	if err != nil || len(nonce) != NonceSize {
		return nil, outcome.VerificationErrorf("challenge: nonceB64 %q is not %d bytes of base64", ch.NonceB64, NonceSize)
	}
	sig, err := peer.Sign(c.rand, SignatureMessage(ch.ChallengeID, nonce, peer.ID))
	if err != nil {
		return nil, fmt.Errorf("get-key: sign: %w", err)
	}
	rd, _ := PeerReportData(nonce, peer.pub) // nonce is NonceSize bytes
	quote, err := node.Quote(rd)
	if err != nil {
		return nil, fmt.Errorf("get-key: node quote: %w", err)
	}
	req := GetKeyRequest{
		ChallengeID:      ch.ChallengeID,
		QuoteB64:         base64.StdEncoding.EncodeToString(quote),
		PeerID:           peer.ID,
		PeerPublicKeyB64: base64.StdEncoding.EncodeToString(peer.pub),
		SignatureB64:     base64.StdEncoding.EncodeToString(sig),
	}
	var resp GetKeyResponse
	if err := c.do(ctx, http.MethodPost, "/get-key", req, &resp); err != nil {
		return nil, err
	}
	key, err := base64.StdEncoding.DecodeString(resp.Key)
	if err != nil || len(key) != KeySize {
		return nil, outcome.VerificationErrorf("get-key: key is not %d bytes of base64", KeySize)
	}
	return &KeyRelease{Key: key, ChallengeID: ch.ChallengeID, NodeQuote: quote}, nil
}

// VerifyBoot is boot verification (SPEC §7): the node produces a quote over a fresh nonce, the
// quote verifies against roots (nil means Intel's) and carries the nonce. It returns the parsed
// quote, whose registers are the node's measurements.
func VerifyBoot(node Quoter, roots *x509.CertPool, rnd io.Reader, now time.Time) (*tdx.Quote, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	var rd [64]byte
	if _, err := io.ReadFull(rnd, rd[:]); err != nil {
		return nil, fmt.Errorf("boot verification: nonce: %w", err)
	}
	raw, err := node.Quote(rd)
	if err != nil {
		return nil, outcome.VerificationErrorf("boot verification: the node produced no quote: %v", err)
	}
	q, err := tdx.ParseQuote(raw)
	if err != nil {
		return nil, fmt.Errorf("boot verification: %w", err)
	}
	if err := q.Verify(tdx.VerifyOptions{TrustedRoots: roots, Now: now}); err != nil {
		return nil, fmt.Errorf("boot verification: %w", err)
	}
	if q.ReportData != rd {
		return nil, outcome.VerificationErrorf("boot verification: the quote does not carry the nonce (report data %x)", q.ReportData[:])
	}
	return q, nil
}

// do sends a JSON request and decodes a JSON answer; a non-200 answer is an *APIError.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	op := method + " " + path
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s: encode: %w", op, err)
		}
		body = bytes.NewReader(b)
	}
	u := c.base.JoinPath(path)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("%s: read answer: %w", op, err)
	}
	if len(data) > maxResponseBytes {
		return fmt.Errorf("%s: answer larger than %d bytes", op, maxResponseBytes)
	}
	if resp.StatusCode != http.StatusOK {
		var e ErrorResponse
		if err := json.Unmarshal(data, &e); err != nil || e.Error == "" {
			return &APIError{Op: op, Status: resp.StatusCode, Code: "", Details: strings.TrimSpace(string(data))}
		}
		return &APIError{Op: op, Status: resp.StatusCode, Code: e.Error, Details: e.Details}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: decode answer: %w", op, err)
	}
	return nil
}
