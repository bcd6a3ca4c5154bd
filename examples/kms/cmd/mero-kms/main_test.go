package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
)

func TestRunExitCodes(t *testing.T) {
	p, err := policy.Generate("1.2.0", release.Debug, nil, nil) // policy_not_ready
	if err != nil {
		t.Fatal(err)
	}
	data, _ := p.Marshal()
	path := filepath.Join(t.TempDir(), "attestation-policy-debug.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	env := func(kv ...string) func(string) string {
		m := map[string]string{"MERO_KMS_VERSION": "1.2.0", "MERO_KMS_PROFILE": "debug", "MERO_KMS_POLICY_URL": "file://" + path, "MERO_KMS_LISTEN": "127.0.0.1:0"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	// A KMS that starts serves until its context ends.
	ctx, cancel := context.WithCancel(context.Background())
	log := &signalWriter{seen: make(chan struct{}), want: "listening on http://127.0.0.1:"}
	done := make(chan int, 1)
	go func() { done <- run(ctx, env(), outcome.NewLogger(log)) }()
	select {
	case <-log.seen:
		cancel()
	case code := <-done:
		t.Fatalf("exited %d before listening:\n%s", code, log.String())
	}
	if code := <-done; code != outcome.OK || !strings.Contains(log.String(), "[INFO] kms: stopping") {
		t.Errorf("exit %d:\n%s", code, log.String())
	}
	stopped, stop := context.WithCancel(context.Background())
	stop()
	for _, c := range []struct {
		name string
		env  func(string) string
		code int
		want string
	}{
		{"cancelled before start", env(), outcome.General, "context canceled"},
		{"bad compose hash", env("MERO_KMS_COMPOSE_HASH", "xyz"), outcome.Usage, "MERO_KMS_COMPOSE_HASH"},
		{"version mismatch", env("MERO_KMS_VERSION", "1.3.0"), outcome.VerificationFailed, "refusing to start"},
		{"bad max challenges", env("MERO_KMS_MAX_CHALLENGES", "many"), outcome.Usage, "MERO_KMS_MAX_CHALLENGES"},
		{"no policy url", env("MERO_KMS_POLICY_URL", ""), outcome.Usage, "MERO_KMS_POLICY_URL: required"},
		{"unreachable policy", env("MERO_KMS_POLICY_URL", "file:///nonexistent/p.json"), outcome.General, "no such file"},
	} {
		var log bytes.Buffer
		if code := run(stopped, c.env, outcome.NewLogger(&log)); code != c.code || !strings.Contains(log.String(), c.want) {
			t.Errorf("%s: exit %d, want %d with %q:\n%s", c.name, code, c.code, c.want, log.String())
		}
	}
}

// signalWriter collects log lines and closes seen once they contain want.
type signalWriter struct {
	mu   sync.Mutex
	b    bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.b.Write(p)
	if strings.Contains(w.b.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, err
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
