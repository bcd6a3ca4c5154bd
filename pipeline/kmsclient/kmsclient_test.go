package kmsclient

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

func TestStatusOfEveryCode(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range ErrorCodes() {
		if seen[c] {
			t.Errorf("%s listed twice", c)
		}
		seen[c] = true
		st := StatusOf(c)
		if st < 400 || (st >= 500 && c != CodeInternal && st != 503) {
			t.Errorf("%s → %d", c, st)
		}
	}
	if len(seen) != 19 || StatusOf("Nope") != 500 || StatusOf(CodePolicyViolation) != 403 || StatusOf(CodeTooManyChallenges) != 429 || StatusOf(CodePayloadTooLarge) != 413 {
		t.Error("status table")
	}
}

func TestReportData(t *testing.T) {
	nonce := bytes.Repeat([]byte{1}, 32)
	rd, err := AttestReportData(nonce, []byte{9, 9})
	if err != nil || !bytes.Equal(rd[:32], nonce) || rd[32] != 9 || rd[33] != 9 || !bytes.Equal(rd[34:], make([]byte, 30)) {
		t.Errorf("%x %v", rd, err)
	}
	if _, err := AttestReportData(nonce[:31], nil); err == nil {
		t.Error("short nonce")
	}
	if _, err := AttestReportData(nonce, make([]byte, 33)); err == nil {
		t.Error("long binding")
	}
	pub := []byte("public key")
	prd, _ := PeerReportData(nonce, pub)
	other, _ := PeerReportData(nonce, []byte("public kez"))
	if prd == other || !bytes.Equal(prd[:32], nonce) {
		t.Error("peer report data does not bind the key")
	}
}

func TestSignatureMessage(t *testing.T) {
	nonce := bytes.Repeat([]byte{0xaa}, 32)
	got := SignatureMessage("cid", nonce, "peer")
	want := append(append([]byte("mero-kms/get-key/v1\x00cid\x00"), nonce...), "peer"...)
	if !bytes.Equal(got, want) {
		t.Errorf("%q", got)
	}
	if bytes.Equal(SignatureMessage("a", nonce, "bc"), SignatureMessage("ab", nonce, "c")) {
		t.Error("ambiguous encoding")
	}
}

func TestValidatePeerID(t *testing.T) {
	for _, ok := range []string{"a", "node-1", "ns/app:1.2_x", strings.Repeat("z", 128)} {
		if err := ValidatePeerID(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", " ", "a\x00b", "é", strings.Repeat("z", 129), "a b", "a\nb"} {
		if err := ValidatePeerID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPublicKeysAndSignatures(t *testing.T) {
	edPub, edPriv, _ := ed25519.GenerateKey(nil)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecRaw, _ := ec.PublicKey.Bytes()
	edDER, _ := x509.MarshalPKIXPublicKey(edPub)
	ecDER, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	msg := []byte("message")
	edSig := ed25519.Sign(edPriv, msg)
	peerEC, err := NewPeerWithKey("p", ec)
	if err != nil {
		t.Fatal(err)
	}
	ecSig, err := peerEC.Sign(rand.Reader, msg)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		key []byte
		sig []byte
	}{"ed25519 raw": {edPub, edSig}, "ed25519 PKIX": {edDER, edSig}, "P-256 point": {ecRaw, ecSig}, "P-256 PKIX": {ecDER, ecSig}} {
		pub, err := ParsePublicKey(c.key)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if err := VerifySignature(pub, msg, c.sig); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if err := VerifySignature(pub, []byte("other"), c.sig); err == nil {
			t.Errorf("%s: a signature over another message verified", name)
		}
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	badPoint := append([]byte{4}, make([]byte, 64)...)
	for name, b := range map[string][]byte{"P-384": p384DER, "RSA": rsaDER, "junk": []byte("junk"), "off-curve point": badPoint, "empty": nil} {
		if _, err := ParsePublicKey(b); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if err := VerifySignature(&rsaKey.PublicKey, msg, nil); err == nil {
		t.Error("RSA key verified")
	}
	if _, err := NewPeerWithKey("p", rsaKey); outcome.Code(err) != outcome.Usage {
		t.Errorf("RSA peer: %v", err)
	}
	if _, err := NewPeerWithKey("bad id", edPriv); outcome.Code(err) != outcome.Usage {
		t.Errorf("bad peer id: %v", err)
	}
	if _, err := NewPeer("", nil); outcome.Code(err) != outcome.Usage {
		t.Errorf("empty peer id: %v", err)
	}
}

// fakeKMS answers /attest with a quote from vm, letting a test corrupt the answer.
type fakeKMS struct {
	vm      *tdxsim.VM
	corrupt func(req AttestRequest, resp *AttestResponse)
	status  int
	body    string
}

func (f *fakeKMS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.status != 0 {
		w.WriteHeader(f.status)
		_, _ = w.Write([]byte(f.body))
		return
	}
	switch r.URL.Path {
	case "/attest":
		var req AttestRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		nonce, _ := base64.StdEncoding.DecodeString(req.NonceB64)
		binding, _ := base64.StdEncoding.DecodeString(req.BindingB64)
		rd, _ := AttestReportData(nonce, binding)
		q, _ := f.vm.Quote(rd)
		h := f.vm.Measurements().Hex()
		resp := AttestResponse{QuoteB64: base64.StdEncoding.EncodeToString(q), ReportDataHex: hex.EncodeToString(rd[:]),
			Measurements: Measurements{h.MRTD, h.RTMR0, h.RTMR1, h.RTMR2, h.RTMR3}}
		if f.corrupt != nil {
			f.corrupt(req, &resp)
		}
		_ = json.NewEncoder(w).Encode(resp)
	case "/challenge":
		_, _ = w.Write([]byte(f.body))
	}
}

func newFake(t *testing.T) (*fakeKMS, *tdxsim.Authority, *Client) {
	t.Helper()
	auth, err := tdxsim.NewAuthority([]byte("kmsclient test"))
	if err != nil {
		t.Fatal(err)
	}
	img := &tdxsim.Image{Name: "kms", Profile: "kms", Firmware: []byte("f"), Kernel: []byte("k"), Initrd: []byte("i"), Cmdline: "c", VCPUs: 1, MemoryMB: 1}
	vm, err := auth.Boot(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeKMS{vm: vm}
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	c, err := New(ts.URL, Options{TrustedRoots: auth.RootPool()})
	if err != nil {
		t.Fatal(err)
	}
	return f, auth, c
}

func TestAttestVerifiesTheKMS(t *testing.T) {
	f, _, c := newFake(t)
	ctx := context.Background()
	att, err := c.Attest(ctx, AttestOptions{Binding: []byte("b")})
	if err != nil {
		t.Fatal(err)
	}
	h := att.Quote.Measurements().Hex()
	cases := map[string]struct {
		corrupt func(AttestRequest, *AttestResponse)
		want    string
	}{
		"replayed quote": {func(_ AttestRequest, r *AttestResponse) {
			q, _ := f.vm.Quote([64]byte{1})
			r.QuoteB64 = base64.StdEncoding.EncodeToString(q)
		}, "does not bind our nonce"},
		"report data hex":  {func(_ AttestRequest, r *AttestResponse) { r.ReportDataHex = "00" }, "reportDataHex"},
		"measurements":     {func(_ AttestRequest, r *AttestResponse) { r.Measurements.RTMR1 = h.RTMR2 }, "measurements in the response"},
		"not base64":       {func(_ AttestRequest, r *AttestResponse) { r.QuoteB64 = "***" }, "quoteB64"},
		"not a quote":      {func(_ AttestRequest, r *AttestResponse) { r.QuoteB64 = "AAAA" }, "parse TDX quote"},
		"tampered quote":   {func(_ AttestRequest, r *AttestResponse) { r.QuoteB64 = tamper(r.QuoteB64) }, "verify TDX quote"},
		"ignores the bind": {func(req AttestRequest, r *AttestResponse) { r.QuoteB64 = quoteFor(f.vm, req.NonceB64, "") }, "does not bind our nonce"},
	}
	for name, cs := range cases {
		f.corrupt = cs.corrupt
		_, err := c.Attest(ctx, AttestOptions{Binding: []byte("b")})
		if err == nil || outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), cs.want) {
			t.Errorf("%s: %v (exit %d), want a verification error mentioning %q", name, err, outcome.Code(err), cs.want)
		}
	}
	f.corrupt = nil
	if _, err := c.Attest(ctx, AttestOptions{Binding: make([]byte, 33)}); outcome.Code(err) != outcome.Usage {
		t.Errorf("oversized binding: %v", err)
	}
	// Another platform's quote does not verify against our root.
	other, _ := New(c.base.String(), Options{})
	if _, err := other.Attest(ctx, AttestOptions{}); err == nil || !strings.Contains(err.Error(), "verify TDX quote") {
		t.Errorf("simulator quote against Intel's root: %v", err)
	}
}

func tamper(b64 string) string {
	q, _ := base64.StdEncoding.DecodeString(b64)
	q[100] ^= 1
	return base64.StdEncoding.EncodeToString(q)
}

func quoteFor(vm *tdxsim.VM, nonceB64, binding string) string {
	nonce, _ := base64.StdEncoding.DecodeString(nonceB64)
	rd, _ := AttestReportData(nonce, []byte(binding))
	q, _ := vm.Quote(rd)
	return base64.StdEncoding.EncodeToString(q)
}

func TestAPIErrors(t *testing.T) {
	f, _, c := newFake(t)
	ctx := context.Background()
	f.status, f.body = 403, `{"error":"PolicyViolation","details":"rtmr2: …"}`
	_, err := c.Health(ctx)
	ae, ok := AsAPIError(err)
	if !ok || ae.Status != 403 || ae.Code != CodePolicyViolation || ae.Op != "GET /health" || !strings.Contains(ae.Error(), "HTTP 403 PolicyViolation: rtmr2") {
		t.Errorf("%#v", err)
	}
	f.status, f.body = 502, "bad gateway"
	_, err = c.Challenge(ctx, "p")
	if ae, ok := AsAPIError(err); !ok || ae.Status != 502 || ae.Code != "" || ae.Details != "bad gateway" {
		t.Errorf("%#v", err)
	}
	f.status, f.body = 200, "not json"
	if _, err := c.Health(ctx); err == nil || !strings.Contains(err.Error(), "decode answer") {
		t.Errorf("%v", err)
	}
	f.status, f.body = 200, strings.Repeat("x", maxResponseBytes+1)
	if _, err := c.Health(ctx); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("%v", err)
	}
	if _, ok := AsAPIError(errors.New("plain")); ok {
		t.Error("a plain error is not an APIError")
	}
}

func TestRequestKeyChecksTheKMSAnswers(t *testing.T) {
	f, auth, c := newFake(t)
	ctx := context.Background()
	peer, _ := NewPeer("p", nil)
	f.body = `{"challengeId":"x","nonceB64":"AAAA","expiresAt":"2026-01-01T00:00:00Z"}`
	if _, err := c.RequestKey(ctx, f.vm, peer); err == nil || !strings.Contains(err.Error(), "nonceB64") {
		t.Errorf("short challenge nonce: %v", err)
	}
	// A node that cannot quote.
	f.body = `{"challengeId":"x","nonceB64":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `","expiresAt":"2026-01-01T00:00:00Z"}`
	f.vm.Shutdown()
	if _, err := c.RequestKey(ctx, f.vm, peer); err == nil || !strings.Contains(err.Error(), "node quote") {
		t.Errorf("stopped node: %v", err)
	}
	// Boot verification.
	img := &tdxsim.Image{Name: "n", Profile: "debug", Firmware: []byte("f"), Kernel: []byte("k"), Initrd: []byte("i"), Cmdline: "c", VCPUs: 1, MemoryMB: 1}
	node, _ := auth.Boot(ctx, img)
	if q, err := VerifyBoot(node, auth.RootPool(), nil, time.Now()); err != nil || q.MRTD == [48]byte{} {
		t.Errorf("boot verification: %v", err)
	}
	if _, err := VerifyBoot(fixedQuoter{node}, auth.RootPool(), nil, time.Now()); err == nil || !strings.Contains(err.Error(), "does not carry the nonce") {
		t.Errorf("a node replaying an old quote: %v", err)
	}
	if _, err := VerifyBoot(node, nil, nil, time.Now()); err == nil || !strings.Contains(err.Error(), "verify TDX quote") {
		t.Errorf("untrusted platform: %v", err)
	}
	node.Shutdown()
	if _, err := VerifyBoot(node, auth.RootPool(), nil, time.Now()); outcome.Code(err) != outcome.VerificationFailed {
		t.Errorf("a node that produces no quote: %v", err)
	}
}

// fixedQuoter always quotes zero report data.
type fixedQuoter struct{ vm *tdxsim.VM }

func (f fixedQuoter) Quote([64]byte) ([]byte, error) { return f.vm.Quote([64]byte{}) }

func TestNewRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "localhost:8080", "ftp://x", "http://", "::"} {
		if _, err := New(u, Options{}); outcome.Code(err) != outcome.Usage {
			t.Errorf("%q: %v", u, err)
		}
	}
}

func FuzzParsePublicKey(f *testing.F) {
	edPub, _, _ := ed25519.GenerateKey(nil)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecRaw, _ := ec.PublicKey.Bytes()
	der, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	for _, s := range [][]byte{edPub, ecRaw, der, nil, {4}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pub, err := ParsePublicKey(b)
		if err != nil {
			return
		}
		if err := VerifySignature(pub, []byte("m"), make([]byte, 64)); err == nil {
			t.Fatalf("a zero signature verified for %x", b)
		}
	})
}
