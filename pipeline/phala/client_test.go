package phala_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/calimero-network/mero-release/pipeline/phala"
)

func TestEnvRoundTrip(t *testing.T) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := phala.EncryptEnv(hex.EncodeToString(priv.PublicKey().Bytes()), map[string]string{"B": "2", "A": "1"}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	vars, err := phala.DecryptEnv(priv, enc)
	if err != nil || len(vars) != 2 || vars[0] != (phala.EnvVar{Key: "A", Value: "1"}) || vars[1].Value != "2" {
		t.Fatalf("decrypted %+v, %v", vars, err)
	}
	other, _ := ecdh.X25519().GenerateKey(rand.Reader)
	if _, err := phala.DecryptEnv(other, enc); err == nil {
		t.Error("another key decrypted the environment")
	}
	b, _ := hex.DecodeString(enc)
	b[len(b)-1] ^= 1
	if _, err := phala.DecryptEnv(priv, hex.EncodeToString(b)); err == nil {
		t.Error("a tampered environment decrypted")
	}
	if _, err := phala.EncryptEnv("zz", nil, rand.Reader); err == nil {
		t.Error("a malformed public key was accepted")
	}
}

func TestClientErrorsAndHeaders(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-API-Key") != "k" || r.Header.Get("X-Phala-Version") != phala.APIVersion {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"detail":"bad key"}`))
			return
		}
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = w.Write([]byte(`{"detail":[{"loc":["body","name"],"msg":"field required"}]}`))
	}))
	defer srv.Close()
	ctx := context.Background()
	c, err := phala.New(srv.URL+"/api/v1", "k", phala.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Provision(ctx, phala.ProvisionRequest{})
	if err == nil || !strings.Contains(err.Error(), "HTTP 422") || !strings.Contains(err.Error(), "field required") {
		t.Errorf("provision: %v, want the 422 detail", err)
	}
	bad, _ := phala.New(srv.URL+"/api/v1", "wrong", phala.Options{})
	if _, err := bad.List(ctx); err == nil || !strings.Contains(err.Error(), "bad key") {
		t.Errorf("wrong key: %v", err)
	}
	for _, id := range []string{"", "../cvms", "APP"} {
		if err := c.Delete(ctx, id); err == nil {
			t.Errorf("Delete(%q) accepted a malformed app id", id)
		}
	}
	if _, err := phala.New("ftp://x", "k", phala.Options{}); err == nil {
		t.Error("a non-HTTP URL was accepted")
	}
	if _, err := phala.New(srv.URL, "", phala.Options{}); err == nil {
		t.Error("an empty API key was accepted")
	}
}

func TestWaitRunningBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"app_id":"abcdef0123","status":"starting"}`))
	}))
	defer srv.Close()
	c, _ := phala.New(srv.URL+"/api/v1", "k", phala.Options{})
	_, err := c.WaitRunning(context.Background(), "abcdef0123", time.Millisecond, 3)
	if err == nil || !strings.Contains(err.Error(), "after 3 polls (status starting)") {
		t.Errorf("WaitRunning: %v", err)
	}
}
