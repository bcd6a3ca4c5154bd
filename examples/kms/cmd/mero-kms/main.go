// Command mero-kms runs the sample KMS (examples/kms/server) configured by the MERO_KMS_*
// environment variables (examples/kms/README.md) until SIGINT or SIGTERM. Exit codes follow
// SPEC §9: 2 for a bad configuration, 10 for a refused policy (SHA-256 pin, version or profile
// mismatch), 1 otherwise.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/calimero-network/mero-release/examples/kms"
	"github.com/calimero-network/mero-release/examples/kms/server"
	"github.com/calimero-network/mero-release/pipeline/outcome"

	_ "golang.org/x/crypto/x509roots/fallback" // CA roots for https:// policy URLs in a scratch image
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Getenv, outcome.NewLogger(os.Stderr))
	stop()
	os.Exit(code)
}

// run starts the KMS and serves until ctx is done; it returns the exit code.
func run(ctx context.Context, getenv func(string) string, log *outcome.Logger) int {
	cfg, err := server.ConfigFromEnv(getenv)
	if err != nil {
		log.Errorf("%v", err)
		return outcome.Code(err)
	}
	hash, err := kms.ComposeHash(kms.LocalImage)
	if err != nil {
		log.Errorf("%v", err)
		return outcome.General
	}
	r, err := server.Start(ctx, cfg, hash, log)
	if err != nil {
		log.Errorf("%v", err)
		return outcome.Code(err)
	}
	select {
	case <-ctx.Done():
		log.Infof("kms: stopping")
		if err := r.Close(); err != nil {
			log.Errorf("kms: stop: %v", err)
			return outcome.General
		}
		<-r.Done()
		return outcome.OK
	case err := <-r.Done():
		if err != nil {
			log.Errorf("kms: serve: %v", err)
			return outcome.General
		}
		return outcome.OK
	}
}
