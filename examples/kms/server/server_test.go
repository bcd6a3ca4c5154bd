package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calimero-network/mero-release/pipeline/dstack"
	"github.com/calimero-network/mero-release/pipeline/dstack/guestsim"
	"github.com/calimero-network/mero-release/pipeline/kmsclient"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

func TestHappyPathThroughClient(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ts := httptest.NewServer(f.srv)
	defer ts.Close()
	c, err := kmsclient.New(ts.URL, kmsclient.Options{TrustedRoots: f.auth.RootPool(), Now: f.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h, err := c.Health(ctx)
	if err != nil || h.Status != "ok" || h.KMSVersion != "1.2.0" || h.Profile != "locked-read-only" || h.PolicyStatus != "ready" {
		t.Fatalf("health = %+v, %v", h, err)
	}
	kmsRec := pinnedOSRecord(t) // RTMR3 differs: the dstack events are extended at run time
	att, err := c.Attest(ctx, kmsclient.AttestOptions{Binding: []byte("tls key hash")})
	if err != nil {
		t.Fatal(err)
	}
	if att.Response.Measurements.MRTD != kmsRec.MRTD || att.Response.PolicySHA256 == "" {
		t.Errorf("attest response %+v", att.Response)
	}
	want := att.Quote.Measurements()
	h2 := want.Hex()
	rec := kmsRec
	rec.RTMR3 = h2.RTMR3
	if _, err := c.Attest(ctx, kmsclient.AttestOptions{Expected: &rec}); err != nil {
		t.Errorf("attest with the expected KMS measurements: %v", err)
	}
	if _, err := c.Attest(ctx, kmsclient.AttestOptions{Expected: &kmsRec}); err == nil || !strings.Contains(err.Error(), "rtmr3 observed") {
		t.Errorf("attest with other KMS measurements = %v, want an rtmr3 mismatch", err)
	}

	node := f.boot(nodeImage(release.LockedReadOnly, ""))
	if _, err := kmsclient.VerifyBoot(node, f.auth.RootPool(), nil, f.clock.now()); err != nil {
		t.Fatalf("boot verification: %v", err)
	}
	peer, err := kmsclient.NewPeer("node-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	k1, err := c.RequestKey(ctx, node, peer)
	if err != nil {
		t.Fatal(err)
	}
	// Same namespace, new key pair (a restarted node) and a P-256 key: the same key.
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	peerEC, err := kmsclient.NewPeerWithKey("node-1", ec)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := c.RequestKey(ctx, node, peerEC)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1.Key, k2.Key) || len(k1.Key) != kmsclient.KeySize {
		t.Errorf("keys of one namespace differ: %x %x", k1.Key, k2.Key)
	}
	derived, err := DeriveKey([]byte("0123456789abcdef0123456789abcdef"), release.LockedReadOnly, "node-1")
	if err != nil || !bytes.Equal(derived, k1.Key) {
		t.Errorf("key %x is not HKDF(root, profile, peerId) = %x (%v)", k1.Key, derived, err)
	}
	other, err := c.RequestKey(ctx, node, newPeer(t, "node-2"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other.Key, k1.Key) {
		t.Error("two namespaces got the same key")
	}
	if dbg, _ := DeriveKey([]byte("0123456789abcdef0123456789abcdef"), release.Debug, "node-1"); bytes.Equal(dbg, k1.Key) {
		t.Error("the profile does not separate keys")
	}
	if n := f.srv.OutstandingChallenges(); n != 0 {
		t.Errorf("%d challenges left outstanding after use", n)
	}
}

func TestGetKeyRefusals(t *testing.T) {
	lockedImg := nodeImage(release.LockedReadOnly, "")
	f := newFixture(t, fixtureOpts{})
	node := f.boot(lockedImg)
	peer := newPeer(t, "peer-a")

	t.Run("replayed challenge", func(t *testing.T) {
		ch, nonce := f.challenge(peer.ID)
		req := f.getKeyRequest(node, peer, ch, nonce)
		if code, body := f.post("/get-key", req); code != http.StatusOK {
			t.Fatalf("first use: %d %s", code, body)
		}
		code, body := f.post("/get-key", req)
		wantError(t, code, body, 409, kmsclient.CodeChallengeReplayed, "already used")
	})
	t.Run("expired while outstanding", func(t *testing.T) {
		ch, nonce := f.challenge(peer.ID)
		req := f.getKeyRequest(node, peer, ch, nonce)
		f.clock.advance(DefaultChallengeTTL)
		code, body := f.post("/get-key", req)
		wantError(t, code, body, 410, kmsclient.CodeChallengeExpired, "expired")
		code, body = f.post("/get-key", req) // consumed: still reported as expired, not replayed
		wantError(t, code, body, 410, kmsclient.CodeChallengeExpired, "expired")
	})
	t.Run("expired after sweep", func(t *testing.T) {
		ch, nonce := f.challenge(peer.ID)
		req := f.getKeyRequest(node, peer, ch, nonce)
		f.clock.advance(DefaultChallengeTTL + time.Second)
		f.challenge("sweeper") // issuing sweeps the expired challenge out of memory
		code, body := f.post("/get-key", req)
		wantError(t, code, body, 410, kmsclient.CodeChallengeExpired, "expired")
	})
	t.Run("unknown and forged challenge ids", func(t *testing.T) {
		ch, nonce := f.challenge(peer.ID)
		for _, id := range []string{"nope", ch.ChallengeID[:len(ch.ChallengeID)-2] + "AA", strings.Repeat("A", 54)} {
			req := f.getKeyRequest(node, peer, kmsclient.ChallengeResponse{ChallengeID: id, NonceB64: ch.NonceB64}, nonce)
			code, body := f.post("/get-key", req)
			wantError(t, code, body, 404, kmsclient.CodeChallengeNotFound, "not issued")
		}
	})
	t.Run("challenge of another peer", func(t *testing.T) {
		ch, nonce := f.challenge("someone-else")
		code, body := f.post("/get-key", f.getKeyRequest(node, peer, ch, nonce))
		wantError(t, code, body, 403, kmsclient.CodeChallengePeerMismatch, "someone-else")
	})
	t.Run("wrong signature", func(t *testing.T) {
		ch, nonce := f.challenge(peer.ID)
		req := f.getKeyRequest(node, peer, ch, nonce)
		forged, _ := newPeer(t, peer.ID).Sign(nil, kmsclient.SignatureMessage(ch.ChallengeID, nonce, peer.ID))
		req.SignatureB64 = base64.StdEncoding.EncodeToString(forged)
		code, body := f.post("/get-key", req)
		wantError(t, code, body, 401, kmsclient.CodeInvalidSignature, "ed25519")
	})
	t.Run("signature over another message", func(t *testing.T) {
		ch, nonce := f.challenge(peer.ID)
		req := f.getKeyRequest(node, peer, ch, nonce)
		sig, _ := peer.Sign(nil, kmsclient.SignatureMessage(ch.ChallengeID, make([]byte, 32), peer.ID))
		req.SignatureB64 = base64.StdEncoding.EncodeToString(sig)
		code, body := f.post("/get-key", req)
		wantError(t, code, body, 401, kmsclient.CodeInvalidSignature, "does not verify")
	})
	t.Run("tampered quote body", func(t *testing.T) {
		ch, nonce := f.challenge(peer.ID)
		req := f.getKeyRequest(node, peer, ch, nonce)
		q, _ := base64.StdEncoding.DecodeString(req.QuoteB64)
		q[tdx.HeaderSize+200] ^= 1 // inside MRTD
		req.QuoteB64 = base64.StdEncoding.EncodeToString(q)
		code, body := f.post("/get-key", req)
		wantError(t, code, body, 401, kmsclient.CodeInvalidQuote, "verify TDX quote")
	})
	t.Run("truncated quote", func(t *testing.T) {
		ch, nonce := f.challenge(peer.ID)
		req := f.getKeyRequest(node, peer, ch, nonce)
		q, _ := base64.StdEncoding.DecodeString(req.QuoteB64)
		req.QuoteB64 = base64.StdEncoding.EncodeToString(q[:700])
		code, body := f.post("/get-key", req)
		wantError(t, code, body, 401, kmsclient.CodeInvalidQuote, "parse TDX quote")
	})
	t.Run("quote from an untrusted platform", func(t *testing.T) {
		rogue, err := tdxsim.NewAuthority([]byte("rogue platform"))
		if err != nil {
			t.Fatal(err)
		}
		rogueVM, err := rogue.Boot(context.Background(), lockedImg)
		if err != nil {
			t.Fatal(err)
		}
		ch, nonce := f.challenge(peer.ID)
		code, body := f.post("/get-key", f.getKeyRequest(rogueVM, peer, ch, nonce))
		wantError(t, code, body, 401, kmsclient.CodeInvalidQuote, "verify TDX quote")
	})
	t.Run("quote binds another nonce", func(t *testing.T) {
		ch, nonce := f.challenge(peer.ID)
		_, otherNonce := f.challenge(peer.ID)
		req := f.getKeyRequest(node, peer, ch, nonce)
		rd, _ := kmsclient.PeerReportData(otherNonce, peer.PublicKey())
		q, _ := node.Quote(rd)
		req.QuoteB64 = base64.StdEncoding.EncodeToString(q)
		code, body := f.post("/get-key", req)
		wantError(t, code, body, 401, kmsclient.CodeReportDataMismatch, "does not bind")
	})
	t.Run("quote binds another public key", func(t *testing.T) {
		ch, nonce := f.challenge(peer.ID)
		req := f.getKeyRequest(node, peer, ch, nonce)
		rd, _ := kmsclient.PeerReportData(nonce, newPeer(t, "x").PublicKey())
		q, _ := node.Quote(rd)
		req.QuoteB64 = base64.StdEncoding.EncodeToString(q)
		code, body := f.post("/get-key", req)
		wantError(t, code, body, 401, kmsclient.CodeReportDataMismatch, "public key")
	})
	t.Run("wrong profile: debug node, locked-read-only policy", func(t *testing.T) {
		dbg := f.boot(nodeImage(release.Debug, ""))
		ch, nonce := f.challenge(peer.ID)
		code, body := f.post("/get-key", f.getKeyRequest(dbg, peer, ch, nonce))
		wantError(t, code, body, 403, kmsclient.CodePolicyViolation, "rtmr2")
		if !strings.Contains(string(body), "locked-read-only policy") {
			t.Errorf("details do not name the policy: %s", body)
		}
	})
	t.Run("another node version", func(t *testing.T) {
		newer := f.boot(nodeImage(release.LockedReadOnly, "-v2"))
		ch, nonce := f.challenge(peer.ID)
		code, body := f.post("/get-key", f.getKeyRequest(newer, peer, ch, nonce))
		wantError(t, code, body, 403, kmsclient.CodePolicyViolation, "rtmr1")
	})
	t.Run("TCB out of date", func(t *testing.T) {
		ch, nonce := f.challenge(peer.ID)
		req := f.getKeyRequest(node, peer, ch, nonce)
		req.QuoteB64 = f.outdatedTCBQuote(t, lockedImg, peer, nonce)
		code, resp := f.post("/get-key", req)
		wantError(t, code, resp, 403, kmsclient.CodePolicyViolation, "tcb_status")
	})
	if strings.Contains(f.logBuf.String(), "[ERROR]") {
		t.Errorf("bad input logged an error:\n%s", f.logBuf.String())
	}
}

// TestGetKeyCheckOrder pins the order of SPEC §8 — consume the challenge → peer signature →
// quote → TCB status → MRTD/RTMR0–3 — with requests that fail two checks at once (the earlier
// check must answer), and shows that a request refused after the challenge was consumed burns it.
func TestGetKeyCheckOrder(t *testing.T) {
	lockedImg := nodeImage(release.LockedReadOnly, "")
	f := newFixture(t, fixtureOpts{})
	node := f.boot(lockedImg)
	dbg := f.boot(nodeImage(release.Debug, ""))
	peer := newPeer(t, "peer-order")
	forge := func(req *kmsclient.GetKeyRequest, ch kmsclient.ChallengeResponse, nonce []byte) {
		sig, _ := newPeer(t, peer.ID).Sign(nil, kmsclient.SignatureMessage(ch.ChallengeID, nonce, peer.ID))
		req.SignatureB64 = base64.StdEncoding.EncodeToString(sig)
	}
	tamper := func(req *kmsclient.GetKeyRequest) {
		q, _ := base64.StdEncoding.DecodeString(req.QuoteB64)
		q[tdx.HeaderSize+200] ^= 1
		req.QuoteB64 = base64.StdEncoding.EncodeToString(q)
	}

	t.Run("challenge before signature", func(t *testing.T) {
		ch, nonce := f.challenge(peer.ID)
		good := f.getKeyRequest(node, peer, ch, nonce)
		if code, body := f.post("/get-key", good); code != http.StatusOK {
			t.Fatalf("first use: %d %s", code, body)
		}
		bad := good
		forge(&bad, ch, nonce)
		code, body := f.post("/get-key", bad)
		wantError(t, code, body, 409, kmsclient.CodeChallengeReplayed, "already used")
	})
	t.Run("signature before quote", func(t *testing.T) {
		ch, nonce := f.challenge(peer.ID)
		req := f.getKeyRequest(node, peer, ch, nonce)
		forge(&req, ch, nonce)
		tamper(&req)
		code, body := f.post("/get-key", req)
		wantError(t, code, body, 401, kmsclient.CodeInvalidSignature, "")
	})
	t.Run("quote before measurements", func(t *testing.T) {
		ch, nonce := f.challenge(peer.ID)
		req := f.getKeyRequest(dbg, peer, ch, nonce) // a debug node: measurements the policy refuses
		tamper(&req)
		code, body := f.post("/get-key", req)
		wantError(t, code, body, 401, kmsclient.CodeInvalidQuote, "verify TDX quote")
	})
	t.Run("TCB status before measurements", func(t *testing.T) {
		ch, nonce := f.challenge(peer.ID)
		req := f.getKeyRequest(dbg, peer, ch, nonce)
		req.QuoteB64 = f.outdatedTCBQuote(t, nodeImage(release.Debug, ""), peer, nonce)
		code, resp := f.post("/get-key", req)
		wantError(t, code, resp, 403, kmsclient.CodePolicyViolation, "tcb_status")
	})
	for name, spoil := range map[string]func(*kmsclient.GetKeyRequest, kmsclient.ChallengeResponse, []byte){
		"a wrong signature": forge,
		"a tampered quote":  func(r *kmsclient.GetKeyRequest, _ kmsclient.ChallengeResponse, _ []byte) { tamper(r) },
		"a refused profile": nil,
	} {
		t.Run("the challenge is burnt by "+name, func(t *testing.T) {
			ch, nonce := f.challenge(peer.ID)
			good := f.getKeyRequest(node, peer, ch, nonce)
			bad := good
			if spoil != nil {
				spoil(&bad, ch, nonce)
			} else {
				bad = f.getKeyRequest(dbg, peer, ch, nonce)
			}
			if code, body := f.post("/get-key", bad); code == http.StatusOK {
				t.Fatalf("the spoilt request got a key: %s", body)
			}
			code, body := f.post("/get-key", good)
			wantError(t, code, body, 409, kmsclient.CodeChallengeReplayed, "already used")
		})
	}
}

func TestBadRequests(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	nonce := base64.StdEncoding.EncodeToString(make([]byte, 32))
	big := `{"peerId":"` + strings.Repeat("a", kmsclient.MaxBodyBytes) + `"}`
	cases := []struct {
		name, method, path, body string
		status                   int
		code, details            string
	}{
		{"oversized body", "POST", "/challenge", big, 413, kmsclient.CodePayloadTooLarge, "65536"},
		{"oversized get-key", "POST", "/get-key", `{"quoteB64":"` + strings.Repeat("A", 70000) + `"}`, 413, kmsclient.CodePayloadTooLarge, "bytes"},
		{"empty body", "POST", "/challenge", "", 400, kmsclient.CodeMalformedJSON, "empty body"},
		{"not JSON", "POST", "/attest", "nonce=1", 400, kmsclient.CodeMalformedJSON, "JSON object"},
		{"truncated", "POST", "/attest", `{"nonceB64":"`, 400, kmsclient.CodeMalformedJSON, ""},
		{"syntax error", "POST", "/challenge", `{"peerId":"a",}`, 400, kmsclient.CodeMalformedJSON, "invalid character"},
		{"array", "POST", "/challenge", `["a"]`, 400, kmsclient.CodeMalformedJSON, "JSON object"},
		{"null", "POST", "/challenge", `null`, 400, kmsclient.CodeMalformedJSON, "JSON object"},
		{"wrong type", "POST", "/challenge", `{"peerId":5}`, 400, kmsclient.CodeMalformedJSON, "peerId"},
		{"trailing data", "POST", "/challenge", `{"peerId":"a"} {}`, 400, kmsclient.CodeMalformedJSON, "trailing"},
		{"unknown field", "POST", "/challenge", `{"peerId":"a","extra":1}`, 400, kmsclient.CodeUnknownField, `"extra"`},
		{"snake_case field", "POST", "/attest", `{"nonce_b64":"` + nonce + `"}`, 400, kmsclient.CodeUnknownField, "camelCase"},
		{"missing peerId", "POST", "/challenge", `{}`, 400, kmsclient.CodeInvalidField, "peerId: empty"},
		{"bad peerId", "POST", "/challenge", `{"peerId":"a b"}`, 400, kmsclient.CodeInvalidField, "not allowed"},
		{"long peerId", "POST", "/challenge", `{"peerId":"` + strings.Repeat("a", 129) + `"}`, 400, kmsclient.CodeInvalidField, "at most 128"},
		{"missing nonce", "POST", "/attest", `{}`, 400, kmsclient.CodeInvalidField, "nonceB64"},
		{"short nonce", "POST", "/attest", `{"nonceB64":"AAAA"}`, 400, kmsclient.CodeInvalidField, "3 bytes, want 32"},
		{"nonce not base64", "POST", "/attest", `{"nonceB64":"!!!"}`, 400, kmsclient.CodeInvalidField, "base64"},
		{"long binding", "POST", "/attest", `{"nonceB64":"` + nonce + `","bindingB64":"` + base64.StdEncoding.EncodeToString(make([]byte, 33)) + `"}`, 400, kmsclient.CodeInvalidField, "bindingB64"},
		{"get-key without challenge", "POST", "/get-key", `{"peerId":"a"}`, 400, kmsclient.CodeInvalidField, "challengeId"},
		{"get-key bad key", "POST", "/get-key", `{"challengeId":"x","peerId":"a","quoteB64":"AAAA","peerPublicKeyB64":"AAAA","signatureB64":"AAAA"}`, 400, kmsclient.CodeInvalidField, "peerPublicKeyB64"},
		{"get-key no signature", "POST", "/get-key", `{"challengeId":"x","peerId":"a","quoteB64":"AAAA","peerPublicKeyB64":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `"}`, 400, kmsclient.CodeInvalidField, "signatureB64"},
		{"wrong method", "GET", "/get-key", "", 405, kmsclient.CodeMethodNotAllowed, "POST"},
		{"wrong method health", "POST", "/health", "", 405, kmsclient.CodeMethodNotAllowed, "GET"},
		{"unknown path", "GET", "/keys", "", 404, kmsclient.CodeNotFound, "/keys"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := f.do(c.method, c.path, []byte(c.body))
			wantError(t, code, body, c.status, c.code, c.details)
		})
	}
	t.Run("content type", func(t *testing.T) {
		req := httptest.NewRequest("POST", "/challenge", strings.NewReader(`{"peerId":"a"}`))
		req.Header.Set("Content-Type", "text/plain")
		rec := httptest.NewRecorder()
		f.srv.ServeHTTP(rec, req)
		wantError(t, rec.Code, rec.Body.Bytes(), 415, kmsclient.CodeUnsupportedMediaType, "text/plain")
	})
}

func TestTooManyChallenges(t *testing.T) {
	f := newFixture(t, fixtureOpts{maxChallenges: 3, ttl: 10 * time.Second})
	for range 3 { // issued at t=0, 1, 2 s: expiring at 10, 11, 12 s
		f.challenge("peer")
		f.clock.advance(time.Second)
	}
	code, retry, body := f.postFrom("192.0.2.1:1234", "/challenge", kmsclient.ChallengeRequest{PeerID: "other"})
	wantError(t, code, body, 429, kmsclient.CodeTooManyChallenges, "3 outstanding for this KMS, the cap is 3; retry after 7 s")
	if retry != "7" { // t=3 s, the first expires at 10 s
		t.Errorf("Retry-After %q, want 7 as the body says", retry)
	}
	f.clock.advance(7 * time.Second) // t=10 s: the first one expires
	if code, body := f.post("/challenge", kmsclient.ChallengeRequest{PeerID: "peer"}); code != 200 {
		t.Fatalf("after expiry: %d %s", code, body)
	}
	if n := f.srv.OutstandingChallenges(); n != 3 {
		t.Errorf("%d outstanding, want 3 (the cap)", n)
	}
	// Using a challenge frees its slot at once.
	f2 := newFixture(t, fixtureOpts{maxChallenges: 1})
	node := f2.boot(nodeImage(release.LockedReadOnly, ""))
	peer := newPeer(t, "p")
	ch, nonce := f2.challenge("p")
	if code, body := f2.post("/get-key", f2.getKeyRequest(node, peer, ch, nonce)); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	f2.challenge("p")
}

func TestNotReadyPolicyAcceptsAnyNodeAndWarns(t *testing.T) {
	p, err := policy.Generate("1.3.0-rc.1", release.LockedReadOnly, nil, nil)
	if err != nil || !p.NotReady() {
		t.Fatalf("generate: %v", err)
	}
	f := newFixture(t, fixtureOpts{policy: loaded(t, p)})
	code, body := f.do("GET", "/health", nil)
	if code != 200 || !strings.Contains(string(body), `"policyStatus":"policy_not_ready"`) {
		t.Fatalf("health: %d %s", code, body)
	}
	for i, img := range []*tdxsim.Image{nodeImage(release.Debug, ""), nodeImage(release.LockedReadOnly, "-other")} {
		vm := f.boot(img)
		peer := newPeer(t, "peer")
		ch, nonce := f.challenge(peer.ID)
		if code, body := f.post("/get-key", f.getKeyRequest(vm, peer, ch, nonce)); code != 200 {
			t.Fatalf("image %d: %d %s", i, code, body)
		}
	}
	if n := strings.Count(f.logBuf.String(), "[WARN]"); n != 2 {
		t.Errorf("%d [WARN] lines for 2 key requests:\n%s", n, f.logBuf.String())
	}
	// Even a not-ready policy does not skip the signature or quote checks.
	vm := f.boot(nodeImage(release.Debug, ""))
	peer := newPeer(t, "peer")
	ch, nonce := f.challenge(peer.ID)
	req := f.getKeyRequest(vm, peer, ch, nonce)
	req.SignatureB64 = base64.StdEncoding.EncodeToString(make([]byte, 64))
	code, body = f.post("/get-key", req)
	wantError(t, code, body, 401, kmsclient.CodeInvalidSignature, "")
}

func TestAttestReportData(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	nonce := bytes.Repeat([]byte{7}, 32)
	binding := []byte("bind")
	code, body := f.post("/attest", kmsclient.AttestRequest{NonceB64: base64.StdEncoding.EncodeToString(nonce), BindingB64: base64.StdEncoding.EncodeToString(binding)})
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var resp kmsclient.AttestResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(resp.QuoteB64)
	q, err := tdx.ParseQuote(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(bytes.Clone(nonce), binding...), make([]byte, 28)...)
	if !bytes.Equal(q.ReportData[:], want) {
		t.Errorf("report data %x, want nonce ‖ binding ‖ zero padding %x", q.ReportData, want)
	}
	if err := q.Verify(tdx.VerifyOptions{TrustedRoots: f.auth.RootPool()}); err != nil {
		t.Error(err)
	}
	// A stopped quote source is 503, not 500.
	f.kmsVM.Shutdown()
	code, body = f.post("/attest", kmsclient.AttestRequest{NonceB64: base64.StdEncoding.EncodeToString(nonce)})
	wantError(t, code, body, 503, kmsclient.CodeQuoteUnavailable, "shut down")
}

func TestNewRefusesIncompleteOptions(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	good := Options{Policy: policyFor(t, release.Debug, nodeImage(release.Debug, "")), RootSecret: []byte("s"), Quoter: f.kmsVM, TrustedRoots: x509.NewCertPool()}
	for name, mutate := range map[string]func(*Options){
		"policy":   func(o *Options) { o.Policy = nil },
		"secret":   func(o *Options) { o.RootSecret = nil },
		"quoter":   func(o *Options) { o.Quoter = nil },
		"roots":    func(o *Options) { o.TrustedRoots = nil },
		"negative": func(o *Options) { o.MaxChallenges = -1 },
		"tcb":      func(o *Options) { o.TCB = TCBInfo{Levels: []TCBLevel{{Status: "Great"}}} },
	} {
		o := good
		mutate(&o)
		if _, err := New(o); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	if _, err := New(good); err != nil {
		t.Error(err)
	}
}

func TestTCBInfo(t *testing.T) {
	info := SimulatorTCBInfo()
	q := &tdx.Quote{}
	for _, c := range []struct {
		svn  [16]byte
		want string
	}{{[16]byte{3, 1, 2}, policy.TCBUpToDate}, {[16]byte{4}, policy.TCBOutOfDate}, {[16]byte{4, 1, 2}, policy.TCBUpToDate}, {[16]byte{}, policy.TCBOutOfDate}} {
		q.TEETCBSVN = c.svn
		if got := info.Status(q); got != c.want {
			t.Errorf("svn %v: %s, want %s", c.svn, got, c.want)
		}
	}
	strict := TCBInfo{Levels: []TCBLevel{{TEETCBSVN: [16]byte{5}, Status: policy.TCBUpToDate}}}
	if got := strict.Status(q); got != policy.TCBRevoked {
		t.Errorf("below every level: %s, want Revoked", got)
	}
	if err := (TCBInfo{}).Validate(); err == nil {
		t.Error("empty TCB info validated")
	}
}

func TestChallengeIDLayout(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	ch, _ := f.challenge("p")
	raw, err := base64.RawURLEncoding.DecodeString(ch.ChallengeID)
	if err != nil || len(raw) != idSize {
		t.Fatalf("challenge id %q: %v (%d bytes)", ch.ChallengeID, err, len(raw))
	}
	if exp := time.Unix(0, int64(binary.BigEndian.Uint64(raw[idRandom:]))); !exp.Equal(ch.ExpiresAt) {
		t.Errorf("embedded expiry %s, response %s", exp, ch.ExpiresAt)
	}
	if !ch.ExpiresAt.Equal(f.clock.now().Add(DefaultChallengeTTL)) {
		t.Errorf("expiresAt %s", ch.ExpiresAt)
	}
}

// outdatedTCBQuote is a quote (base64) of img bound to peer and nonce whose TEE TCB SVN is below
// the UpToDate level.
func (f *fixture) outdatedTCBQuote(t *testing.T, img *tdxsim.Image, peer *kmsclient.Peer, nonce []byte) string {
	t.Helper()
	rd, _ := kmsclient.PeerReportData(nonce, peer.PublicKey())
	body := tdxsim.NewBody(measurementsOf(t, img), rd)
	body.TEETCBSVN = [16]byte{3, 1, 1}
	q, err := f.auth.SignQuote(body)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(q)
}

// TestChallengeFairness: a peer holding its full share of challenges, or a source address
// holding its own, does not keep another peer from a challenge and a key; every 429 states
// the same retry time in its Retry-After header and its body.
func TestChallengeFairness(t *testing.T) {
	f := newFixture(t, fixtureOpts{maxChallenges: 100, perPeer: 4, perSource: 8, ttl: 30 * time.Second})
	const attacker, attackerAddr = "greedy", "198.51.100.7:40000"
	for i := range 4 { // issued at t=0…3 s: the first expires at t=30 s
		if code, _, body := f.postFrom(attackerAddr, "/challenge", kmsclient.ChallengeRequest{PeerID: attacker}); code != 200 {
			t.Fatalf("challenge %d: %d %s", i, code, body)
		}
		f.clock.advance(time.Second)
	}
	f.clock.advance(500 * time.Millisecond) // t=4.5 s: the first expires in 25.5 s → 26 s
	code, retry, body := f.postFrom(attackerAddr, "/challenge", kmsclient.ChallengeRequest{PeerID: attacker})
	wantError(t, code, body, 429, kmsclient.CodeTooManyChallenges, "4 outstanding for this peerId, the cap is 4")
	if retry != "26" || !strings.Contains(string(body), "retry after 26 s") {
		t.Errorf("Retry-After %q, body %s: want 26 in both", retry, body)
	}

	// Another peer, from another address, gets a challenge and its key.
	node := f.boot(nodeImage(release.LockedReadOnly, ""))
	honest := newPeer(t, "honest")
	code, _, body = f.postFrom("203.0.113.9:5000", "/challenge", kmsclient.ChallengeRequest{PeerID: honest.ID})
	if code != 200 {
		t.Fatalf("honest challenge: %d %s", code, body)
	}
	var ch kmsclient.ChallengeResponse
	if err := json.Unmarshal(body, &ch); err != nil {
		t.Fatal(err)
	}
	nonce, _ := base64.StdEncoding.DecodeString(ch.NonceB64)
	if code, _, body := f.postFrom("203.0.113.9:5000", "/get-key", f.getKeyRequest(node, honest, ch, nonce)); code != 200 {
		t.Fatalf("honest get-key: %d %s", code, body)
	}

	// The attacker rotating peerIds hits its address's share; other addresses are unaffected.
	for i := range 4 {
		if code, _, body := f.postFrom(attackerAddr, "/challenge", kmsclient.ChallengeRequest{PeerID: fmt.Sprintf("sybil-%d", i)}); code != 200 {
			t.Fatalf("sybil %d: %d %s", i, code, body)
		}
	}
	code, retry, body = f.postFrom("198.51.100.7:40001", "/challenge", kmsclient.ChallengeRequest{PeerID: "sybil-9"})
	wantError(t, code, body, 429, kmsclient.CodeTooManyChallenges, "8 outstanding for this source address, the cap is 8")
	if retry != "26" || !strings.Contains(string(body), "retry after 26 s") {
		t.Errorf("Retry-After %q, body %s: want 26 in both", retry, body)
	}
	if code, _, body := f.postFrom("203.0.113.9:5001", "/challenge", kmsclient.ChallengeRequest{PeerID: "honest-2"}); code != 200 {
		t.Fatalf("another address after the sybils: %d %s", code, body)
	}
	// After the attacker's first challenge expires, its share frees one slot.
	f.clock.advance(26 * time.Second)
	if code, _, body := f.postFrom(attackerAddr, "/challenge", kmsclient.ChallengeRequest{PeerID: attacker}); code != 200 {
		t.Fatalf("after expiry: %d %s", code, body)
	}
}

// recordedCollateral is Intel's recorded PCS collateral of platform FMSPC 50806f000000
// (pipeline/tdx/testdata/collateral), current at collateralTime.
const recordedCollateral = "../../../pipeline/tdx/testdata/collateral"

var collateralTime = time.Date(2023, time.July, 1, 1, 0, 0, 0, time.UTC)

// collateralPlatform is the platform of the recorded collateral with the given PCESVN: its
// TCB info calls ≥ 11 UpToDate and 5…10 OutOfDate.
func collateralPlatform(t *testing.T, pceSVN int) *tdxsim.Platform {
	t.Helper()
	p := tdxsim.Platform{FMSPC: [6]byte{0x50, 0x80, 0x6f}, CPUSVN: [16]byte{5, 5, 2, 2, 3, 1, 0, 3}, PCESVN: pceSVN, QESVN: 4, TEETCBSVN: [16]byte{3, 0, 5}}
	signer, _ := hex.DecodeString("dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5") // Intel's TD QE
	copy(p.QEMRSigner[:], signer)
	return &p
}

// TestTCBFromRecordedCollateral: with TCB evaluated from Intel's recorded collateral, a node
// whose platform the collateral calls OutOfDate is refused by a policy allowing only UpToDate
// (403 PolicyViolation naming the status), and one it calls UpToDate gets its key.
func TestTCBFromRecordedCollateral(t *testing.T) {
	for _, tc := range []struct {
		pceSVN int
		status int
		want   string
	}{{7, 403, `tcb_status: "OutOfDate" is not in allowed_tcb_status [UpToDate]`}, {11, 200, ""}} {
		t.Run(fmt.Sprintf("PCESVN %d", tc.pceSVN), func(t *testing.T) {
			simAuth, err := tdxsim.NewPlatformAuthority([]byte("kms server test authority"), *collateralPlatform(t, tc.pceSVN))
			if err != nil {
				t.Fatal(err)
			}
			roots, err := tdx.RootPoolFromPEM(append(simAuth.RootPEM(), tdx.IntelRootPEM()...))
			if err != nil {
				t.Fatal(err)
			}
			tcb := CollateralTCB{Options: tdx.TCBOptions{TrustedRoots: roots, Collateral: tdx.CollateralDir(recordedCollateral), CollateralTime: collateralTime}}
			f := newFixture(t, fixtureOpts{platform: collateralPlatform(t, tc.pceSVN), tcb: tcb})
			node := f.boot(nodeImage(release.LockedReadOnly, ""))
			peer := newPeer(t, "node-1")
			ch, nonce := f.challenge(peer.ID)
			code, body := f.post("/get-key", f.getKeyRequest(node, peer, ch, nonce))
			if tc.status == 200 {
				if code != 200 {
					t.Fatalf("UpToDate platform: %d %s", code, body)
				}
				return
			}
			wantError(t, code, body, tc.status, kmsclient.CodePolicyViolation, tc.want)
		})
	}
	// Collateral that cannot be read refuses the quote as invalid, never as accepted.
	simAuth, _ := tdxsim.NewPlatformAuthority([]byte("kms server test authority"), *collateralPlatform(t, 11))
	roots, _ := tdx.RootPoolFromPEM(append(simAuth.RootPEM(), tdx.IntelRootPEM()...))
	tcb := CollateralTCB{Options: tdx.TCBOptions{TrustedRoots: roots, Collateral: tdx.CollateralDir(t.TempDir()), CollateralTime: collateralTime}}
	f := newFixture(t, fixtureOpts{platform: collateralPlatform(t, 11), tcb: tcb})
	node := f.boot(nodeImage(release.LockedReadOnly, ""))
	peer := newPeer(t, "node-1")
	ch, nonce := f.challenge(peer.ID)
	code, body := f.post("/get-key", f.getKeyRequest(node, peer, ch, nonce))
	wantError(t, code, body, 401, kmsclient.CodeInvalidQuote, "TCB evaluation")
}

// TestDstackQuoteSource: the KMS takes its own quotes from the dstack guest agent API (here
// the simulator on a unix socket); /attest returns a quote whose RTMR3 is the agent's event
// log replayed and whose MRTD and RTMR0–2 are the pinned dstack OS's.
func TestDstackQuoteSource(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	dir, err := os.MkdirTemp("", "kms")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	agent, err := guestsim.Start(filepath.Join(dir, "dstack.sock"), guestsim.Options{VM: f.kmsVM, KeySeed: []byte("seed")})
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	client, err := dstack.NewGuestClient(agent.Socket())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{Policy: policyFor(t, release.LockedReadOnly, nodeImage(release.LockedReadOnly, "")), RootSecret: []byte("0123456789abcdef0123456789abcdef"), Quoter: DstackQuoter{Client: client}, TrustedRoots: f.auth.RootPool()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	c, err := kmsclient.New(ts.URL, kmsclient.Options{TrustedRoots: f.auth.RootPool()})
	if err != nil {
		t.Fatal(err)
	}
	att, err := c.Attest(context.Background(), kmsclient.AttestOptions{Binding: []byte("b")})
	if err != nil {
		t.Fatal(err)
	}
	rtmrs, err := tdx.Replay(f.kmsVM.EventLog())
	if err != nil {
		t.Fatal(err)
	}
	m := att.Quote.Measurements()
	if m.RTMR[3] != rtmrs[3] || hex.EncodeToString(m.MRTD[:]) != dstack.PinnedOSImage().MRTD {
		t.Errorf("attested registers %+v are not the dstack VM's", m.Hex())
	}
	// No agent: the KMS answers QuoteUnavailable, not a crash.
	agent.Close()
	if _, err := c.Attest(context.Background(), kmsclient.AttestOptions{}); err == nil || !strings.Contains(err.Error(), kmsclient.CodeQuoteUnavailable) {
		t.Errorf("attest without the agent: %v", err)
	}
}
