// Package server is the sample KMS of mero-release (SPEC §8): the HTTP service a mero-tee node
// attests to and gets its key from. It speaks the documented API of mero-kms-phala —
// GET /health, POST /attest, POST /challenge, POST /get-key — verifies node quotes with
// go-tdx-guest against a configured root, applies one attestation policy
// (pipeline/policy), and derives keys with HKDF-SHA256 from a root secret. The wire types live
// in pipeline/kmsclient; examples/kms/README.md documents every status and error code.
package server

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/calimero-network/mero-release/pipeline/kmsclient"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx"
)

// KeyDerivationSalt and KeyDerivationLabel fix the HKDF-SHA256 parameters of released keys:
//
//	key = HKDF-SHA256(secret = root secret, salt = KeyDerivationSalt,
//	                  info = KeyDerivationLabel ‖ 0x00 ‖ profile ‖ 0x00 ‖ peerId, 32 bytes)
//
// so a key depends only on the root secret, the profile and the peer's namespace (peerId): the
// same node gets the same key from every KMS instance and version sharing the root secret.
const (
	KeyDerivationSalt  = "mero-kms key derivation v1"
	KeyDerivationLabel = "mero-kms/key/v1"
)

// Options configure a Server.
type Options struct {
	// Policy is the attestation policy, loaded and checked (FetchPolicy); required.
	Policy *LoadedPolicy
	// RootSecret is the key-derivation secret; required.
	RootSecret []byte
	// Quoter produces the KMS's own quotes for /attest; required.
	Quoter Quoter
	// TrustedRoots are the roots node quotes must chain to; required.
	TrustedRoots *x509.CertPool
	// TCB evaluates the TCB status of node quotes: CollateralTCB for Intel-rooted quotes; nil
	// means SimulatorTCBInfo (the fixed levels of the TDX simulator's platform).
	TCB TCBEvaluator
	// ChallengeTTL and MaxChallenges tune the challenge store (defaults DefaultChallengeTTL,
	// DefaultMaxChallenges); MaxChallengesPerPeer and MaxChallengesPerSource bound one peerId's
	// and one source address's share of it (defaults DefaultMaxChallengesPerPeer,
	// DefaultMaxChallengesPerSource).
	ChallengeTTL           time.Duration
	MaxChallenges          int
	MaxChallengesPerPeer   int
	MaxChallengesPerSource int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the randomness source; nil means crypto/rand.
	Rand io.Reader
	// Log receives [INFO]/[WARN] lines (a nil Logger discards).
	Log *outcome.Logger
}

// Server is the sample KMS as an http.Handler. It is safe for concurrent use.
type Server struct {
	policy     *policy.Policy
	policySHA  string
	version    string
	profile    release.Profile
	secret     []byte
	quoter     Quoter
	roots      *x509.CertPool
	tcb        TCBEvaluator
	challenges *challengeStore
	now        func() time.Time
	rand       io.Reader
	log        *outcome.Logger
	mux        *http.ServeMux
}

// New checks the options and returns a Server.
func New(opts Options) (*Server, error) {
	switch {
	case opts.Policy == nil || opts.Policy.Policy == nil:
		return nil, outcome.UsageErrorf("kms: no attestation policy")
	case len(opts.RootSecret) == 0:
		return nil, outcome.UsageErrorf("kms: no root secret")
	case opts.Quoter == nil:
		return nil, outcome.UsageErrorf("kms: no quote source")
	case opts.TrustedRoots == nil:
		return nil, outcome.UsageErrorf("kms: no trusted root for node quotes")
	case opts.ChallengeTTL < 0 || opts.MaxChallenges < 0 || opts.MaxChallengesPerPeer < 0 || opts.MaxChallengesPerSource < 0:
		return nil, outcome.UsageErrorf("kms: challenge TTL %s and caps %d (global), %d (per peer), %d (per source) must not be negative",
			opts.ChallengeTTL, opts.MaxChallenges, opts.MaxChallengesPerPeer, opts.MaxChallengesPerSource)
	}
	if opts.TCB == nil {
		opts.TCB = SimulatorTCBInfo()
	}
	if info, ok := opts.TCB.(TCBInfo); ok {
		if err := info.Validate(); err != nil {
			return nil, outcome.UsageErrorf("kms: %v", err)
		}
	}
	if opts.ChallengeTTL == 0 {
		opts.ChallengeTTL = DefaultChallengeTTL
	}
	if opts.MaxChallenges == 0 {
		opts.MaxChallenges = DefaultMaxChallenges
	}
	if opts.MaxChallengesPerPeer == 0 {
		opts.MaxChallengesPerPeer = DefaultMaxChallengesPerPeer
	}
	if opts.MaxChallengesPerSource == 0 {
		opts.MaxChallengesPerSource = DefaultMaxChallengesPerSource
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	p := opts.Policy.Policy
	limits := challengeLimits{Global: opts.MaxChallenges, PerPeer: opts.MaxChallengesPerPeer, PerSource: opts.MaxChallengesPerSource}
	cs, err := newChallengeStore(limits, opts.ChallengeTTL, opts.Rand)
	if err != nil {
		return nil, err
	}
	s := &Server{
		policy: p, policySHA: opts.Policy.SHA256, version: p.KMSVersion, profile: p.Profile,
		secret: append([]byte(nil), opts.RootSecret...), quoter: opts.Quoter, roots: opts.TrustedRoots,
		tcb: opts.TCB, challenges: cs, now: opts.Now, rand: opts.Rand, log: opts.Log, mux: http.NewServeMux(),
	}
	s.mux.HandleFunc("GET /health", s.health)
	s.mux.HandleFunc("POST /attest", s.attest)
	s.mux.HandleFunc("POST /challenge", s.challenge)
	s.mux.HandleFunc("POST /get-key", s.getKey)
	return s, nil
}

// Version is the KMS version the server runs as (the policy's kms_version).
func (s *Server) Version() string { return s.version }

// Profile is the profile the server runs as (the policy's profile).
func (s *Server) Profile() release.Profile { return s.profile }

// OutstandingChallenges returns how many challenges are held (for benchmarks and tests).
func (s *Server) OutstandingChallenges() int { return s.challenges.outstanding() }

// ServeHTTP routes a request. Unknown paths are 404 NotFound, wrong methods 405
// MethodNotAllowed, and a panic (a bug) is answered 500 InternalError instead of crashing.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Errorf("kms: internal error on %s %s: %v", r.Method, r.URL.Path, v)
			writeError(w, kmsclient.CodeInternal, "internal error")
		}
	}()
	if _, pattern := s.mux.Handler(r); pattern == "" {
		switch r.URL.Path {
		case "/health":
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, kmsclient.CodeMethodNotAllowed, fmt.Sprintf("%s %s: use GET", r.Method, r.URL.Path))
		case "/attest", "/challenge", "/get-key":
			w.Header().Set("Allow", "POST")
			writeError(w, kmsclient.CodeMethodNotAllowed, fmt.Sprintf("%s %s: use POST", r.Method, r.URL.Path))
		default:
			writeError(w, kmsclient.CodeNotFound, fmt.Sprintf("no endpoint %s (have GET /health, POST /attest, POST /challenge, POST /get-key)", r.URL.Path))
		}
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) policyStatus() string {
	if s.policy.NotReady() {
		return policy.StatusNotReady
	}
	return "ready"
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, kmsclient.HealthResponse{Status: "ok", KMSVersion: s.version, Profile: string(s.profile), PolicyStatus: s.policyStatus()})
}

func (s *Server) attest(w http.ResponseWriter, r *http.Request) {
	var req kmsclient.AttestRequest
	if !decode(w, r, &req) {
		return
	}
	nonce, ok := field(w, "nonceB64", req.NonceB64, kmsclient.NonceSize, kmsclient.NonceSize)
	if !ok {
		return
	}
	var binding []byte
	if req.BindingB64 != "" {
		if binding, ok = field(w, "bindingB64", req.BindingB64, 0, kmsclient.MaxBindingSize); !ok {
			return
		}
	}
	rd, err := kmsclient.AttestReportData(nonce, binding)
	if err != nil { // unreachable: the lengths were checked
		writeError(w, kmsclient.CodeInvalidField, err.Error())
		return
	}
	raw, err := s.quoter.Quote(rd)
	if err != nil {
		s.log.Errorf("kms: own quote: %v", err)
		writeError(w, kmsclient.CodeQuoteUnavailable, "the KMS could not produce a quote: "+err.Error())
		return
	}
	q, err := tdx.ParseQuote(raw)
	if err != nil {
		s.log.Errorf("kms: own quote: %v", err)
		writeError(w, kmsclient.CodeQuoteUnavailable, "the KMS produced an unparsable quote: "+err.Error())
		return
	}
	h := q.Measurements().Hex()
	writeJSON(w, http.StatusOK, kmsclient.AttestResponse{
		QuoteB64:      base64.StdEncoding.EncodeToString(raw),
		ReportDataHex: hex.EncodeToString(rd[:]),
		Measurements:  kmsclient.Measurements{MRTD: h.MRTD, RTMR0: h.RTMR0, RTMR1: h.RTMR1, RTMR2: h.RTMR2, RTMR3: h.RTMR3},
		KMSVersion:    s.version,
		Profile:       string(s.profile),
		PolicyStatus:  s.policyStatus(),
		PolicySHA256:  s.policySHA,
	})
}

func (s *Server) challenge(w http.ResponseWriter, r *http.Request) {
	var req kmsclient.ChallengeRequest
	if !decode(w, r, &req) {
		return
	}
	if err := kmsclient.ValidatePeerID(req.PeerID); err != nil {
		writeError(w, kmsclient.CodeInvalidField, err.Error())
		return
	}
	c, err := s.challenges.issue(req.PeerID, sourceAddress(r), s.now())
	if err != nil {
		var limit *limitError
		if errors.As(err, &limit) {
			w.Header().Set("Retry-After", strconv.FormatInt(limit.RetryAfterSeconds(), 10))
			writeError(w, kmsclient.CodeTooManyChallenges, err.Error())
			return
		}
		s.log.Errorf("kms: issue challenge: %v", err)
		writeError(w, kmsclient.CodeInternal, "could not issue a challenge")
		return
	}
	writeJSON(w, http.StatusOK, kmsclient.ChallengeResponse{
		ChallengeID: c.id,
		NonceB64:    base64.StdEncoding.EncodeToString(c.nonce[:]),
		ExpiresAt:   c.expires.UTC(),
	})
}

// sourceAddress is the caller's address without its port: the unit of the per-source challenge
// limit.
func sourceAddress(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// getKey runs the SPEC §8 order: policy ready? → consume the challenge → verify the peer
// signature → verify the quote → TCB status allowed → MRTD/RTMR0–3 allowed → derive the key.
func (s *Server) getKey(w http.ResponseWriter, r *http.Request) {
	var req kmsclient.GetKeyRequest
	if !decode(w, r, &req) {
		return
	}
	if req.ChallengeID == "" {
		writeError(w, kmsclient.CodeInvalidField, "challengeId: empty")
		return
	}
	if err := kmsclient.ValidatePeerID(req.PeerID); err != nil {
		writeError(w, kmsclient.CodeInvalidField, err.Error())
		return
	}
	rawQuote, ok := field(w, "quoteB64", req.QuoteB64, 1, kmsclient.MaxBodyBytes)
	if !ok {
		return
	}
	pubBytes, ok := field(w, "peerPublicKeyB64", req.PeerPublicKeyB64, 1, 1024)
	if !ok {
		return
	}
	pub, err := kmsclient.ParsePublicKey(pubBytes)
	if err != nil {
		writeError(w, kmsclient.CodeInvalidField, "peerPublicKeyB64: "+err.Error())
		return
	}
	sig, ok := field(w, "signatureB64", req.SignatureB64, 1, 1024)
	if !ok {
		return
	}

	// 1. Policy ready?
	if s.policy == nil {
		writeError(w, kmsclient.CodePolicyNotLoaded, "no attestation policy is loaded")
		return
	}
	notReady := s.policy.NotReady()
	if notReady {
		s.log.Warnf("kms %s (%s): attestation policy is %s: accepting any MRTD/RTMR and TCB status for peer %s", s.version, s.profile, policy.StatusNotReady, req.PeerID)
	}
	// 2. Consume the challenge (single use, whatever happens next).
	c, err := s.challenges.consume(req.ChallengeID, s.now())
	switch {
	case errors.Is(err, errChallengeNotFound):
		writeError(w, kmsclient.CodeChallengeNotFound, "challengeId: "+err.Error())
		return
	case errors.Is(err, errChallengeReplayed):
		writeError(w, kmsclient.CodeChallengeReplayed, "challengeId: "+err.Error()+"; request a new challenge")
		return
	case errors.Is(err, errChallengeExpired):
		writeError(w, kmsclient.CodeChallengeExpired, "challengeId: "+err.Error()+"; request a new challenge")
		return
	case err != nil:
		writeError(w, kmsclient.CodeInternal, "challenge: "+err.Error())
		return
	}
	if subtle.ConstantTimeCompare([]byte(c.peerID), []byte(req.PeerID)) != 1 {
		writeError(w, kmsclient.CodeChallengePeerMismatch, fmt.Sprintf("the challenge was issued to peerId %q, not %q", c.peerID, req.PeerID))
		return
	}
	// 3. The peer signature over challengeId, nonce and peerId.
	if err := kmsclient.VerifySignature(pub, kmsclient.SignatureMessage(c.id, c.nonce[:], req.PeerID), sig); err != nil {
		writeError(w, kmsclient.CodeInvalidSignature, "signatureB64: "+err.Error())
		return
	}
	// 4. The quote: signature chain to the trusted root, report data = nonce ‖ SHA-256(public key).
	q, err := tdx.ParseQuote(rawQuote)
	if err == nil {
		err = q.Verify(tdx.VerifyOptions{TrustedRoots: s.roots, Now: s.now()})
	}
	if err != nil {
		writeError(w, kmsclient.CodeInvalidQuote, "quoteB64: "+err.Error())
		return
	}
	want, _ := kmsclient.PeerReportData(c.nonce[:], pubBytes) // nonce is NonceSize bytes
	if subtle.ConstantTimeCompare(q.ReportData[:], want[:]) != 1 {
		writeError(w, kmsclient.CodeReportDataMismatch, fmt.Sprintf("quote report data %x does not bind the challenge nonce and the peer public key (want %x)", q.ReportData[:], want[:]))
		return
	}
	// 5–6. TCB status, then MRTD and RTMR0–3 (policy.Accepts checks in that order).
	tcbStatus, err := s.tcb.Evaluate(r.Context(), q, s.now())
	if err != nil {
		writeError(w, kmsclient.CodeInvalidQuote, "quoteB64: TCB evaluation: "+err.Error())
		return
	}
	h := q.Measurements().Hex()
	rec := measure.Record{MRTD: h.MRTD, RTMR0: h.RTMR0, RTMR1: h.RTMR1, RTMR2: h.RTMR2, RTMR3: h.RTMR3}
	if err := s.policy.Accepts(rec, tcbStatus); err != nil {
		details := strings.TrimPrefix(err.Error(), policy.ErrPolicyViolation.Error()+": ")
		s.log.Warnf("kms %s (%s): refused peer %s: %s", s.version, s.profile, req.PeerID, details)
		writeError(w, kmsclient.CodePolicyViolation, details)
		return
	}
	// 7. Derive the key.
	key, err := DeriveKey(s.secret, s.profile, req.PeerID)
	if err != nil {
		writeError(w, kmsclient.CodeInternal, "key derivation failed")
		return
	}
	writeJSON(w, http.StatusOK, kmsclient.GetKeyResponse{Key: base64.StdEncoding.EncodeToString(key)})
}

// DeriveKey returns the key of peerID under profile: HKDF-SHA256 (see KeyDerivationSalt).
func DeriveKey(secret []byte, profile release.Profile, peerID string) ([]byte, error) {
	info := KeyDerivationLabel + "\x00" + string(profile) + "\x00" + peerID
	return hkdf.Key(sha256.New, secret, []byte(KeyDerivationSalt), info, kmsclient.KeySize)
}

// decode reads a JSON request body strictly: at most kmsclient.MaxBodyBytes (413), a JSON
// Content-Type if one is given (415), one object, no unknown field, nothing after it (400).
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			writeError(w, kmsclient.CodeUnsupportedMediaType, fmt.Sprintf("Content-Type %q: send application/json", ct))
			return false
		}
	}
	body := http.MaxBytesReader(w, r.Body, kmsclient.MaxBodyBytes)
	data, err := io.ReadAll(body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, kmsclient.CodePayloadTooLarge, fmt.Sprintf("request body over %d bytes", kmsclient.MaxBodyBytes))
			return false
		}
		writeError(w, kmsclient.CodeMalformedJSON, "read body: "+err.Error())
		return false
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		writeError(w, kmsclient.CodeMalformedJSON, "empty body: send a JSON object")
		return false
	}
	if trimmed[0] != '{' {
		writeError(w, kmsclient.CodeMalformedJSON, "the body must be a JSON object")
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			writeError(w, kmsclient.CodeUnknownField, strings.TrimPrefix(err.Error(), "json: ")+" (field names are camelCase)")
		case errors.As(err, &syntax):
			writeError(w, kmsclient.CodeMalformedJSON, fmt.Sprintf("%v at byte %d", syntax, syntax.Offset))
		case errors.As(err, &typ):
			writeError(w, kmsclient.CodeMalformedJSON, fmt.Sprintf("%s: must be a JSON %s, got %s", typ.Field, typ.Type.Kind(), typ.Value))
		case errors.Is(err, io.ErrUnexpectedEOF):
			writeError(w, kmsclient.CodeMalformedJSON, "truncated JSON object")
		default:
			writeError(w, kmsclient.CodeMalformedJSON, err.Error())
		}
		return false
	}
	if dec.More() {
		writeError(w, kmsclient.CodeMalformedJSON, "trailing data after the JSON object")
		return false
	}
	return true
}

// field decodes a standard-base64 field and checks its size.
func field(w http.ResponseWriter, name, value string, minLen, maxLen int) ([]byte, bool) {
	if value == "" {
		writeError(w, kmsclient.CodeInvalidField, name+": missing or empty")
		return nil, false
	}
	b, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		writeError(w, kmsclient.CodeInvalidField, fmt.Sprintf("%s: not standard base64: %v", name, err))
		return nil, false
	}
	if len(b) < minLen || len(b) > maxLen {
		if minLen == maxLen {
			writeError(w, kmsclient.CodeInvalidField, fmt.Sprintf("%s: %d bytes, want %d", name, len(b), minLen))
		} else {
			writeError(w, kmsclient.CodeInvalidField, fmt.Sprintf("%s: %d bytes, want %d to %d", name, len(b), minLen, maxLen))
		}
		return nil, false
	}
	return b, true
}

func writeError(w http.ResponseWriter, code, details string) {
	writeJSON(w, kmsclient.StatusOf(code), kmsclient.ErrorResponse{Error: code, Details: details})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client going away is not the server's error
}
