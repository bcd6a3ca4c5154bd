package kmsclient

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// The wire contract of the KMS (SPEC §8), shared by the sample KMS (examples/kms/server) and
// this client so that both sides encode the same bytes. examples/kms/README.md documents it
// for people.

// MaxBodyBytes is the largest request body the KMS reads (64 KiB); a larger one is 413.
const MaxBodyBytes = 64 << 10

// NonceSize is the size of every nonce: the /attest nonce a caller sends and the /challenge
// nonce the KMS issues (32 bytes, base64 on the wire).
const NonceSize = 32

// MaxBindingSize is the largest /attest binding: report data is nonce (32) ‖ binding
// right-padded with zero bytes to 32.
const MaxBindingSize = 64 - NonceSize

// MaxPeerIDLength bounds a peer identifier.
const MaxPeerIDLength = 128

// SignatureDomain starts every get-key signature message (see SignatureMessage).
const SignatureDomain = "mero-kms/get-key/v1"

// KeySize is the size of a released key (HKDF-SHA256 output).
const KeySize = 32

// Error codes of the KMS ({"error": CODE, "details": "…"}), each with its HTTP status in
// StatusOf and examples/kms/README.md.
const (
	CodeMalformedJSON         = "MalformedJSON"         // 400: not a single JSON object of the right shape
	CodeUnknownField          = "UnknownField"          // 400: a field the endpoint does not define
	CodeInvalidField          = "InvalidField"          // 400: a field is missing, not base64, or the wrong size
	CodeNotFound              = "NotFound"              // 404: no such endpoint
	CodeMethodNotAllowed      = "MethodNotAllowed"      // 405: wrong HTTP method
	CodePayloadTooLarge       = "PayloadTooLarge"       // 413: body over MaxBodyBytes
	CodeUnsupportedMediaType  = "UnsupportedMediaType"  // 415: a Content-Type other than JSON
	CodeTooManyChallenges     = "TooManyChallenges"     // 429: the outstanding-challenge cap is reached
	CodeChallengeNotFound     = "ChallengeNotFound"     // 404: the challenge was never issued by this KMS
	CodeChallengeReplayed     = "ChallengeReplayed"     // 409: the challenge was already used
	CodeChallengeExpired      = "ChallengeExpired"      // 410: the challenge's TTL passed
	CodeChallengePeerMismatch = "ChallengePeerMismatch" // 403: the challenge was issued to another peerId
	CodeInvalidSignature      = "InvalidSignature"      // 401: the peer signature does not verify
	CodeInvalidQuote          = "InvalidQuote"          // 401: the quote does not parse or verify against the trusted root
	CodeReportDataMismatch    = "ReportDataMismatch"    // 401: the quote's report data does not bind nonce and public key
	CodePolicyViolation       = "PolicyViolation"       // 403: TCB status, MRTD or RTMR0–3 not allowed by the policy
	CodePolicyNotLoaded       = "PolicyNotLoaded"       // 503: the KMS has no attestation policy
	CodeQuoteUnavailable      = "QuoteUnavailable"      // 503: the KMS could not produce its own quote
	CodeInternal              = "InternalError"         // 500: a bug; never the answer to bad input
)

// StatusOf returns the HTTP status the KMS answers with for an error code (500 for an unknown
// code).
func StatusOf(code string) int {
	switch code {
	case CodeMalformedJSON, CodeUnknownField, CodeInvalidField:
		return 400
	case CodeInvalidSignature, CodeInvalidQuote, CodeReportDataMismatch:
		return 401
	case CodeChallengePeerMismatch, CodePolicyViolation:
		return 403
	case CodeNotFound, CodeChallengeNotFound:
		return 404
	case CodeMethodNotAllowed:
		return 405
	case CodeChallengeReplayed:
		return 409
	case CodeChallengeExpired:
		return 410
	case CodePayloadTooLarge:
		return 413
	case CodeUnsupportedMediaType:
		return 415
	case CodeTooManyChallenges:
		return 429
	case CodePolicyNotLoaded, CodeQuoteUnavailable:
		return 503
	}
	return 500
}

// ErrorCodes lists every error code, in the order of the README table.
func ErrorCodes() []string {
	return []string{CodeMalformedJSON, CodeUnknownField, CodeInvalidField, CodeInvalidSignature, CodeInvalidQuote,
		CodeReportDataMismatch, CodeChallengePeerMismatch, CodePolicyViolation, CodeNotFound, CodeChallengeNotFound,
		CodeMethodNotAllowed, CodeChallengeReplayed, CodeChallengeExpired, CodePayloadTooLarge, CodeUnsupportedMediaType,
		CodeTooManyChallenges, CodeInternal, CodePolicyNotLoaded, CodeQuoteUnavailable}
}

// ErrorResponse is the body of every KMS error.
type ErrorResponse struct {
	Error   string `json:"error"`
	Details string `json:"details"`
}

// HealthResponse is the body of GET /health.
type HealthResponse struct {
	Status     string `json:"status"`
	KMSVersion string `json:"kmsVersion"`
	Profile    string `json:"profile"`
	// PolicyStatus is "ready" or "policy_not_ready".
	PolicyStatus string `json:"policyStatus"`
}

// AttestRequest is the body of POST /attest.
type AttestRequest struct {
	// NonceB64 is NonceSize random bytes, standard base64.
	NonceB64 string `json:"nonceB64"`
	// BindingB64 is optional, at most MaxBindingSize bytes (e.g. SHA-256 of a TLS key).
	BindingB64 string `json:"bindingB64,omitempty"`
}

// Measurements are the registers of a quote as 96 lower-case hex characters each.
type Measurements struct {
	MRTD  string `json:"mrtd"`
	RTMR0 string `json:"rtmr0"`
	RTMR1 string `json:"rtmr1"`
	RTMR2 string `json:"rtmr2"`
	RTMR3 string `json:"rtmr3"`
}

// AttestResponse is the body of a successful POST /attest.
type AttestResponse struct {
	// QuoteB64 is the KMS's TDX v4 quote, standard base64.
	QuoteB64 string `json:"quoteB64"`
	// ReportDataHex is the quote's 64-byte report data (AttestReportData), hex.
	ReportDataHex string `json:"reportDataHex"`
	// Measurements are the quote's MRTD and RTMR0–3, for convenience (the quote is authoritative).
	Measurements Measurements `json:"measurements"`
	KMSVersion   string       `json:"kmsVersion"`
	Profile      string       `json:"profile"`
	PolicyStatus string       `json:"policyStatus"`
	// PolicySHA256 is the SHA-256 of the policy bytes the KMS loaded.
	PolicySHA256 string `json:"policySha256"`
}

// ChallengeRequest is the body of POST /challenge.
type ChallengeRequest struct {
	PeerID string `json:"peerId"`
}

// ChallengeResponse is the body of a successful POST /challenge.
type ChallengeResponse struct {
	ChallengeID string    `json:"challengeId"`
	NonceB64    string    `json:"nonceB64"`
	ExpiresAt   time.Time `json:"expiresAt"`
}

// GetKeyRequest is the body of POST /get-key.
type GetKeyRequest struct {
	ChallengeID string `json:"challengeId"`
	// QuoteB64 is the node's TDX quote whose report data is PeerReportData(nonce, public key).
	QuoteB64 string `json:"quoteB64"`
	PeerID   string `json:"peerId"`
	// PeerPublicKeyB64 is an Ed25519 key (32 raw bytes), a P-256 key (65-byte uncompressed
	// point), or either as PKIX DER.
	PeerPublicKeyB64 string `json:"peerPublicKeyB64"`
	// SignatureB64 signs SignatureMessage: Ed25519, or ECDSA P-256 over its SHA-256 (ASN.1 DER).
	SignatureB64 string `json:"signatureB64"`
}

// GetKeyResponse is the body of a successful POST /get-key.
type GetKeyResponse struct {
	// Key is KeySize bytes, standard base64.
	Key string `json:"key"`
}

// AttestReportData returns the report data of the KMS's /attest quote: nonce (exactly
// NonceSize bytes) followed by binding (0 to MaxBindingSize bytes) right-padded with zeros.
func AttestReportData(nonce, binding []byte) ([64]byte, error) {
	var rd [64]byte
	if len(nonce) != NonceSize {
		return rd, fmt.Errorf("nonce: %d bytes, want %d", len(nonce), NonceSize)
	}
	if len(binding) > MaxBindingSize {
		return rd, fmt.Errorf("binding: %d bytes, want at most %d", len(binding), MaxBindingSize)
	}
	copy(rd[:], nonce)
	copy(rd[NonceSize:], binding)
	return rd, nil
}

// PeerReportData returns the report data a node's get-key quote must carry: the challenge
// nonce (NonceSize bytes) followed by SHA-256 of the peer public key bytes exactly as sent in
// peerPublicKeyB64.
func PeerReportData(nonce, publicKey []byte) ([64]byte, error) {
	h := sha256.Sum256(publicKey)
	return AttestReportData(nonce, h[:])
}

// SignatureMessage is what a peer signs for get-key:
//
//	"mero-kms/get-key/v1" 0x00 challengeId 0x00 nonce(32 raw bytes) peerId
//
// challengeId is base64url and peerId is ValidatePeerID's alphabet, so neither holds a NUL
// byte and the encoding is unambiguous.
func SignatureMessage(challengeID string, nonce []byte, peerID string) []byte {
	var b bytes.Buffer
	b.WriteString(SignatureDomain)
	b.WriteByte(0)
	b.WriteString(challengeID)
	b.WriteByte(0)
	b.Write(nonce)
	b.WriteString(peerID)
	return b.Bytes()
}

// ValidatePeerID checks a peer identifier (the key namespace): 1 to MaxPeerIDLength characters
// of A–Z a–z 0–9 . _ : / -.
func ValidatePeerID(id string) error {
	if id == "" {
		return errors.New("peerId: empty")
	}
	if len(id) > MaxPeerIDLength {
		return fmt.Errorf("peerId: %d characters, at most %d", len(id), MaxPeerIDLength)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '/' || c == '-'
		if !ok {
			return fmt.Errorf("peerId: character %q at %d is not allowed (A-Z a-z 0-9 . _ : / -)", c, i)
		}
	}
	return nil
}

// ParsePublicKey decodes a peer public key: 32 raw bytes (Ed25519), a 65-byte uncompressed
// P-256 point, or PKIX DER of an Ed25519 or P-256 key.
func ParsePublicKey(b []byte) (crypto.PublicKey, error) {
	switch {
	case len(b) == ed25519.PublicKeySize:
		return ed25519.PublicKey(bytes.Clone(b)), nil
	case len(b) == 65 && b[0] == 4:
		pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b)
		if err != nil {
			return nil, fmt.Errorf("P-256 public key: %w", err)
		}
		return pk, nil
	}
	pub, err := x509.ParsePKIXPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("public key: %d bytes, neither a raw Ed25519 key, an uncompressed P-256 point nor PKIX DER: %w", len(b), err)
	}
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return k, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("public key: ECDSA curve %s, only P-256 is accepted", k.Curve.Params().Name)
		}
		return k, nil
	}
	return nil, fmt.Errorf("public key: %T, only Ed25519 and ECDSA P-256 are accepted", pub)
}

// VerifySignature checks sig over msg with an Ed25519 or ECDSA P-256 key (ECDSA signs SHA-256
// of msg, ASN.1 DER).
func VerifySignature(pub crypto.PublicKey, msg, sig []byte) error {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if !ed25519.Verify(k, msg, sig) {
			return errors.New("ed25519 signature does not verify")
		}
		return nil
	case *ecdsa.PublicKey:
		h := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(k, h[:], sig) {
			return errors.New("ECDSA P-256 signature does not verify")
		}
		return nil
	}
	return fmt.Errorf("unsupported public key type %T", pub)
}
