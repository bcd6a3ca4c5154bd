// Command registry serves an in-memory OCI registry (go-containerregistry's pkg/registry) on
// 127.0.0.1 for scripts/ci/cosign-interop.sh: the real cosign CLI reads what mero-release
// attached to images pushed there. It writes its host:port to -addr-file once it listens and
// serves until it is killed.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	addrFile := flag.String("addr-file", "", "file to write the registry's host:port to (required)")
	referrers := flag.Bool("referrers", false, "serve the OCI 1.1 referrers API (default: the fallback tag scheme, as GHCR)")
	flag.Parse()
	if *addrFile == "" {
		fmt.Fprintln(os.Stderr, "registry: -addr-file is required")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(os.Stderr, "registry: %v\n", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*addrFile, []byte(ln.Addr().String()), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "registry: %v\n", err)
		os.Exit(1)
	}
	srv := &http.Server{
		Handler:           registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(*referrers)),
		ReadHeaderTimeout: 10 * time.Second,
	}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintf(os.Stderr, "registry: %v\n", err)
		os.Exit(1)
	}
}
