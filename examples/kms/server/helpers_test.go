package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calimero-network/mero-release/pipeline/dstack"
	"github.com/calimero-network/mero-release/pipeline/kmsclient"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

// clock is an injectable clock for the challenge TTL.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// nodeImage is a node image of profile; variant changes the kernel (another node version).
func nodeImage(profile release.Profile, variant string) *tdxsim.Image {
	return &tdxsim.Image{
		Name: "node-" + string(profile) + variant, Profile: string(profile),
		Firmware: []byte("test firmware"), Kernel: []byte("test kernel" + variant), Initrd: []byte("test initrd"),
		Cmdline: "console=ttyS0 mero.profile=" + string(profile), VCPUs: 4, MemoryMB: 16384,
	}
}

func record(t testing.TB, img *tdxsim.Image) measure.Record {
	t.Helper()
	m, _, err := tdxsim.Measure(img)
	if err != nil {
		t.Fatal(err)
	}
	h := m.Hex()
	return measure.Record{MRTD: h.MRTD, RTMR0: h.RTMR0, RTMR1: h.RTMR1, RTMR2: h.RTMR2, RTMR3: h.RTMR3, Source: "tdx-simulator", MeasuredAt: "2026-01-01T00:00:00Z"}
}

// pinnedOSRecord is the pinned dstack OS's MRTD and RTMR0–2 with a zero RTMR3.
func pinnedOSRecord(t testing.TB) measure.Record {
	t.Helper()
	m, err := dstack.PinnedOSImage().Measurements()
	if err != nil {
		t.Fatal(err)
	}
	h := m.Hex()
	return measure.Record{MRTD: h.MRTD, RTMR0: h.RTMR0, RTMR1: h.RTMR1, RTMR2: h.RTMR2, RTMR3: h.RTMR3, Source: "tdx-simulator", MeasuredAt: "2026-01-01T00:00:00Z"}
}

// policyFor generates the policy of profile accepting the given node images.
func policyFor(t testing.TB, profile release.Profile, imgs ...*tdxsim.Image) *LoadedPolicy {
	t.Helper()
	pub := &measure.Published{SchemaVersion: measure.PublishedSchemaVersion, Family: release.Node, Version: "1.2.0", Profiles: map[release.Profile]measure.Record{}}
	for _, img := range imgs {
		pub.Profiles[release.Profile(img.Profile)] = record(t, img)
	}
	p, err := policy.Generate("1.2.0", profile, []*measure.Published{pub}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return loaded(t, p)
}

func loaded(t testing.TB, p *policy.Policy) *LoadedPolicy {
	t.Helper()
	data, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	lp, err := LoadPolicyBytes(data, "test", "", p.KMSVersion, string(p.Profile))
	if err != nil {
		t.Fatal(err)
	}
	return lp
}

// fixture is a KMS with a simulated dstack quoter, a node authority and a fake clock.
type fixture struct {
	t      testing.TB
	auth   *tdxsim.Authority
	srv    *Server
	clock  *clock
	logBuf *syncBuffer
	kmsVM  *tdxsim.VM
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixtureOpts struct {
	policy        *LoadedPolicy
	maxChallenges int
	perPeer       int
	perSource     int
	ttl           time.Duration
	// platform, when set, is the simulated platform of the authority (node and KMS quotes);
	// tcb, when set, the KMS's TCB evaluator.
	platform *tdxsim.Platform
	tcb      TCBEvaluator
}

func newFixture(t testing.TB, o fixtureOpts) *fixture {
	t.Helper()
	platform := tdxsim.DefaultPlatform()
	if o.platform != nil {
		platform = *o.platform
	}
	auth, err := tdxsim.NewPlatformAuthority([]byte("kms server test authority"), platform)
	if err != nil {
		t.Fatal(err)
	}
	if o.policy == nil {
		o.policy = policyFor(t, release.LockedReadOnly, nodeImage(release.LockedReadOnly, ""))
	}
	kmsVM, err := BootSimulatedDstack(context.Background(), auth, strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, auth: auth, clock: &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, logBuf: &syncBuffer{}, kmsVM: kmsVM}
	f.srv, err = New(Options{
		Policy: o.policy, RootSecret: []byte("0123456789abcdef0123456789abcdef"), Quoter: kmsVM,
		TrustedRoots: auth.RootPool(), ChallengeTTL: o.ttl, MaxChallenges: o.maxChallenges,
		MaxChallengesPerPeer: o.perPeer, MaxChallengesPerSource: o.perSource, TCB: o.tcb,
		Now: f.clock.now, Log: outcome.NewLogger(f.logBuf),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kmsVM.Shutdown)
	return f
}

// boot boots a node VM from img on the fixture's authority.
func (f *fixture) boot(img *tdxsim.Image) *tdxsim.VM {
	f.t.Helper()
	vm, err := f.auth.Boot(context.Background(), img)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(vm.Shutdown)
	return vm
}

// do sends a request to the handler directly and returns the status and body.
func (f *fixture) do(method, path string, body []byte) (int, []byte) {
	return serve(f.srv, method, path, body)
}

// serve sends one request to h (no test helpers: fuzz targets call it).
func serve(h http.Handler, method, path string, body []byte) (int, []byte) {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// postFrom posts v as JSON from the source address remote (host:port) and returns the
// status, the Retry-After header and the body.
func (f *fixture) postFrom(remote, path string, v any) (int, string, []byte) {
	f.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		f.t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(b))
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return rec.Code, rec.Header().Get("Retry-After"), rec.Body.Bytes()
}

func (f *fixture) post(path string, v any) (int, []byte) {
	f.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.do(http.MethodPost, path, b)
}

// challenge issues a challenge for peerID and returns it with its decoded nonce.
func (f *fixture) challenge(peerID string) (kmsclient.ChallengeResponse, []byte) {
	f.t.Helper()
	code, body := f.post("/challenge", kmsclient.ChallengeRequest{PeerID: peerID})
	if code != http.StatusOK {
		f.t.Fatalf("challenge: %d %s", code, body)
	}
	var ch kmsclient.ChallengeResponse
	if err := json.Unmarshal(body, &ch); err != nil {
		f.t.Fatal(err)
	}
	nonce, err := base64.StdEncoding.DecodeString(ch.NonceB64)
	if err != nil {
		f.t.Fatal(err)
	}
	return ch, nonce
}

// getKeyRequest builds a correct get-key request for vm and peer on challenge ch.
func (f *fixture) getKeyRequest(vm *tdxsim.VM, peer *kmsclient.Peer, ch kmsclient.ChallengeResponse, nonce []byte) kmsclient.GetKeyRequest {
	f.t.Helper()
	sig, err := peer.Sign(nil, kmsclient.SignatureMessage(ch.ChallengeID, nonce, peer.ID))
	if err != nil {
		f.t.Fatal(err)
	}
	rd, err := kmsclient.PeerReportData(nonce, peer.PublicKey())
	if err != nil {
		f.t.Fatal(err)
	}
	q, err := vm.Quote(rd)
	if err != nil {
		f.t.Fatal(err)
	}
	return kmsclient.GetKeyRequest{
		ChallengeID: ch.ChallengeID, QuoteB64: base64.StdEncoding.EncodeToString(q), PeerID: peer.ID,
		PeerPublicKeyB64: base64.StdEncoding.EncodeToString(peer.PublicKey()), SignatureB64: base64.StdEncoding.EncodeToString(sig),
	}
}

func newPeer(t testing.TB, id string) *kmsclient.Peer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := kmsclient.NewPeerWithKey(id, priv)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// wantError checks an error answer: status, code, a details substring, and the StatusOf table.
func wantError(t testing.TB, code int, body []byte, wantStatus int, wantCode, wantDetails string) {
	t.Helper()
	if code != wantStatus {
		t.Fatalf("status %d, want %d (body %s)", code, wantStatus, body)
	}
	var e kmsclient.ErrorResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if e.Error != wantCode {
		t.Fatalf("error %q (%s), want %q", e.Error, e.Details, wantCode)
	}
	if kmsclient.StatusOf(e.Error) != code {
		t.Fatalf("StatusOf(%s) = %d, answered %d", e.Error, kmsclient.StatusOf(e.Error), code)
	}
	if !strings.Contains(e.Details, wantDetails) {
		t.Fatalf("details %q, want it to mention %q", e.Details, wantDetails)
	}
}

// measurementsOf returns the measurements of img.
func measurementsOf(t testing.TB, img *tdxsim.Image) tdx.Measurements {
	t.Helper()
	m, _, err := tdxsim.Measure(img)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
