package ita_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/calimero-network/mero-release/pipeline/ita"
	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// fakeITA speaks the appraisal call and serves its token-signing keys: it signs a token with
// key (kid "k1") holding the claims the test sets.
type fakeITA struct {
	srv      *httptest.Server
	key      *rsa.PrivateKey
	signWith *rsa.PrivateKey // the key tokens are signed with (key unless a test forges)
	claims   map[string]any
	expiry   time.Time
	status   int
	quotes   [][]byte
}

func newFake(t *testing.T) *fakeITA {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeITA{key: key, signWith: key, status: http.StatusOK, expiry: time.Now().Add(5 * time.Minute)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+ita.AttestPath, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("x-api-key") != "ita-key" {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		if f.status != http.StatusOK {
			http.Error(w, `{"error":"injected"}`, f.status)
			return
		}
		var req struct {
			Quote []byte `json:"quote"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Quote) == 0 {
			http.Error(w, `{"error":"bad quote"}`, http.StatusBadRequest)
			return
		}
		f.quotes = append(f.quotes, req.Quote)
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS384, Key: f.signWith}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		std := jwt.Claims{Issuer: "Intel Trust Authority", IssuedAt: jwt.NewNumericDate(time.Now()), Expiry: jwt.NewNumericDate(f.expiry)}
		tok, err := jwt.Signed(signer).Claims(std).Claims(f.claims).Serialize()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"token": tok})
	})
	mux.HandleFunc("GET /certs", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &f.key.PublicKey, KeyID: "k1", Algorithm: string(jose.PS384), Use: "sig"}}})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeITA) client(t *testing.T, key string) *ita.Client {
	t.Helper()
	c, err := ita.New(f.srv.URL, key, ita.Options{CertsURL: f.srv.URL + "/certs", HTTPClient: f.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAppraise(t *testing.T) {
	f := newFake(t)
	quote := []byte("a TDX quote")
	for _, status := range []string{"UpToDate", "OutOfDate"} {
		f.claims = map[string]any{"attester_tcb_status": status, "attester_type": "TDX", "tdx_mrtd": strings.Repeat("ab", 48),
			"attester_advisory_ids": []string{"INTEL-SA-00837"}}
		got, err := f.client(t, "ita-key").Appraise(context.Background(), quote)
		if err != nil {
			t.Fatalf("%s: %v", status, err)
		}
		if got.TCBStatus != status || got.AttesterType != "TDX" || got.MRTD != strings.Repeat("ab", 48) || len(got.AdvisoryIDs) != 1 || got.Token == "" {
			t.Errorf("%s: appraisal %+v", status, got)
		}
	}
	if string(f.quotes[0]) != string(quote) {
		t.Errorf("ITA received %q, want the quote", f.quotes[0])
	}
}

func TestAppraiseRefusals(t *testing.T) {
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		setup func(f *fakeITA)
		key   string
		code  int
		want  string
	}{
		"wrong API key": {nil, "nope", outcome.General, "401"},
		"ITA fails":     {func(f *fakeITA) { f.status = http.StatusServiceUnavailable }, "ita-key", outcome.General, "503"},
		"forged token":  {func(f *fakeITA) { f.signWith = other }, "ita-key", outcome.VerificationFailed, "attestation token"},
		"expired token": {func(f *fakeITA) { f.expiry = time.Now().Add(-time.Hour) }, "ita-key", outcome.VerificationFailed, "expired"},
		"no TCB status": {func(f *fakeITA) { f.claims = map[string]any{"attester_type": "TDX"} }, "ita-key", outcome.VerificationFailed, "attester_tcb_status"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFake(t)
			f.claims = map[string]any{"attester_tcb_status": "UpToDate", "attester_type": "TDX"}
			if tc.setup != nil {
				tc.setup(f)
			}
			_, err := f.client(t, tc.key).Appraise(context.Background(), []byte("q"))
			if err == nil || outcome.Code(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v (exit %d), want exit %d mentioning %q", err, outcome.Code(err), tc.code, tc.want)
			}
		})
	}
	for _, bad := range [][2]string{{"ftp://x", "k"}, {"https://api.example", ""}} {
		if _, err := ita.New(bad[0], bad[1], ita.Options{}); outcome.Code(err) != outcome.Usage {
			t.Errorf("New(%q, %q): %v, want a usage error", bad[0], bad[1], err)
		}
	}
}
