package sign_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/sign"
)

const requestToken = "ghs_request-token-secret"
const idToken = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOngifQ.c2lnbmF0dXJl"

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestGitHubActionsToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+requestToken {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if r.URL.Query().Get("audience") != "sigstore" || r.URL.Query().Get("api-version") != "2.0" {
			http.Error(w, "bad query "+r.URL.RawQuery, http.StatusBadRequest)
			return
		}
		switch r.URL.Path {
		case "/token":
			_, _ = w.Write([]byte(`{"value":"` + idToken + `"}`))
		case "/notjson":
			_, _ = w.Write([]byte(`<html>`))
		case "/nojwt":
			_, _ = w.Write([]byte(`{"value":"` + requestToken + `"}`))
		case "/boom":
			http.Error(w, "boom", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	// GitHub's URL already carries a query (api-version); audience is appended to it.
	good := map[string]string{sign.EnvActionsTokenURL: srv.URL + "/token?api-version=2.0", sign.EnvActionsRequestToken: requestToken}
	tok, err := sign.GitHubActionsToken(context.Background(), srv.Client(), env(good))
	if err != nil || tok != idToken {
		t.Fatalf("token %q, %v", tok, err)
	}
	src := sign.GitHubActionsTokenSource{HTTPClient: srv.Client(), Getenv: env(good)}
	if tok, err := src.Token(context.Background()); err != nil || tok != idToken {
		t.Fatalf("token source: %q, %v", tok, err)
	}
	tests := []struct {
		name, wantErr string
		env           map[string]string
		code          int
	}{
		{"no env", "must be set", map[string]string{}, outcome.Usage},
		{"no request token", "must be set", map[string]string{sign.EnvActionsTokenURL: srv.URL + "/token"}, outcome.Usage},
		{"bad url", "is not a URL", map[string]string{sign.EnvActionsTokenURL: "::", sign.EnvActionsRequestToken: requestToken}, outcome.Usage},
		{"wrong request token", "returned HTTP 401", map[string]string{sign.EnvActionsTokenURL: srv.URL + "/token?api-version=2.0", sign.EnvActionsRequestToken: "wrong"}, outcome.General},
		{"server error", "returned HTTP 500", map[string]string{sign.EnvActionsTokenURL: srv.URL + "/boom?api-version=2.0", sign.EnvActionsRequestToken: requestToken}, outcome.General},
		{"not json", "not JSON", map[string]string{sign.EnvActionsTokenURL: srv.URL + "/notjson?api-version=2.0", sign.EnvActionsRequestToken: requestToken}, outcome.General},
		{"no jwt", "no JWT", map[string]string{sign.EnvActionsTokenURL: srv.URL + "/nojwt?api-version=2.0", sign.EnvActionsRequestToken: requestToken}, outcome.General},
		{"unreachable", "request to", map[string]string{sign.EnvActionsTokenURL: "http://127.0.0.1:1/token", sign.EnvActionsRequestToken: requestToken}, outcome.General},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sign.GitHubActionsToken(context.Background(), srv.Client(), env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || outcome.Code(err) != tt.code {
				t.Fatalf("err = %v (code %d), want %q (code %d)", err, outcome.Code(err), tt.wantErr, tt.code)
			}
			if strings.Contains(err.Error(), requestToken) || strings.Contains(err.Error(), idToken) {
				t.Fatalf("error leaks a token: %v", err)
			}
		})
	}
	if _, err := sign.GitHubActionsToken(context.Background(), nil, nil); outcome.Code(err) != outcome.Usage {
		t.Fatalf("nil getenv: %v", err)
	}
}

func TestStaticToken(t *testing.T) {
	if tok, err := sign.StaticToken(" a.b.c\n").Token(context.Background()); err != nil || tok != "a.b.c" {
		t.Fatalf("%q %v", tok, err)
	}
	if _, err := sign.StaticToken("").Token(context.Background()); outcome.Code(err) != outcome.Usage {
		t.Fatalf("empty: %v", err)
	}
}

func TestTrustedRootFiles(t *testing.T) {
	in := newInstance(t)
	js, err := in.trusted.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "trusted_root.json")
	if err := os.WriteFile(good, js, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := sign.LoadTrustedRoot(good); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct{ name, path, wantErr string }{
		{"missing", filepath.Join(dir, "nope.json"), "file not found"},
		{"not json", write("bad.json", "{"), "trusted root"},
		{"wrong media type", write("media.json", `{"mediaType":"application/json"}`), "trusted root"},
		{"empty", write("empty.json", `{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), "lists no Fulcio certificate authority and no Rekor log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sign.LoadTrustedRoot(tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || outcome.Code(err) != outcome.Usage {
				t.Fatalf("err = %v, want usage error %q", err, tt.wantErr)
			}
		})
	}
}

// TestPublicGoodTrustedRootOffline shows what happens without network: the embedded TUF
// root alone cannot produce trusted_root.json, and the error says to pass a file.
func TestPublicGoodTrustedRootOffline(t *testing.T) {
	mirror := httptest.NewServer(http.NotFoundHandler())
	defer mirror.Close()
	_, err := sign.PublicGoodTrustedRoot(context.Background(), sign.TUFOptions{CacheDir: t.TempDir(), MirrorURL: mirror.URL})
	if err == nil || !strings.Contains(err.Error(), "--trusted-root") {
		t.Fatalf("err = %v", err)
	}
	_, err = sign.PublicGoodTrustedRoot(context.Background(), sign.TUFOptions{CacheDir: t.TempDir(), MirrorURL: mirror.URL, ForceCache: true})
	if err == nil || !strings.Contains(err.Error(), "--trusted-root") {
		t.Fatalf("force cache, empty cache: %v", err)
	}
}
