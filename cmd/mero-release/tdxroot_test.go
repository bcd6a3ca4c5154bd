package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

func TestTDXRootPool(t *testing.T) {
	dir := t.TempDir()
	auth, err := tdxsim.NewAuthority([]byte(tdxsim.DefaultSeed))
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "root.pem")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(good, auth.RootPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	if pool, err := tdxRootPool(good); err != nil || !pool.Equal(auth.RootPool()) {
		t.Errorf("the simulator's root: %v", err)
	}
	for _, tt := range []struct {
		path string
		code int
		want string
	}{
		{filepath.Join(dir, "missing.pem"), outcome.Usage, "--trusted-root: "},
		{garbage, outcome.Usage, "--trusted-root " + garbage + ": trusted root: no PEM CERTIFICATE block"},
	} {
		if _, err := tdxRootPool(tt.path); outcome.Code(err) != tt.code || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v (exit %d), want exit %d with %q", tt.path, err, outcome.Code(err), tt.code, tt.want)
		}
	}
}
