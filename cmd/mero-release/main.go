// Command mero-release is the CLI over the pipeline library: guards, catalog and policy tools,
// artifacts, measurements, publishing, audit and E2E. Scripts, CI and the Dagger module call it;
// it holds no rule of its own.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/calimero-network/mero-release/cmd/mero-release/internal/initgc"
	"github.com/calimero-network/mero-release/pipeline/sbom"
	_ "golang.org/x/crypto/x509roots/fallback" // trusted roots when the container has no CA bundle
)

// init turns the collector back on: this package initialises after every package it imports,
// so here all library initialisation is done (also in the test binary, which has no main).
func init() { initgc.Restore() }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runProcess(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// runProcess runs the CLI as a whole process does: run, then the removal of what syft's image
// readers left in the temporary folder for the life of the process.
func runProcess(ctx context.Context, args []string) int {
	defer sbom.Cleanup()
	return run(ctx, args, os.Stdin, os.Stdout, os.Stderr, os.Getenv)
}
