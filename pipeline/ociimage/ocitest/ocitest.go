// Package ocitest serves an OCI registry on loopback for tests: go-containerregistry's
// in-memory registry, the same protocol GHCR speaks, with nothing reached outside 127.0.0.1.
package ocitest

import (
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Registry starts a registry on 127.0.0.1, stops it when the test ends, and returns its
// host:port (plain HTTP: push with name.Insecure).
func Registry(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}
