// Command mero-tee-agent runs inside the mero-tee node image (a systemd unit that starts at
// boot): it publishes the VM's boot TDX quote and answers quote requests over caller-chosen
// report data through the GCE metadata server. Everything it does is package
// pipeline/agent; this adapter only opens the kernel's configfs-tsm and handles signals.
//
//	mero-tee-agent [-metadata-url URL] [-poll-interval D] [-part-size N]
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/google/go-configfs-tsm/configfs/linuxtsm"

	"github.com/calimero-network/mero-release/pipeline/agent"
)

// version is set at build time: -ldflags "-X main.version=1.3.0".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var q agent.Quoter
	if client, err := linuxtsm.MakeClient(); err != nil {
		q = agent.Unavailable(err) // published as tdx-quote-error: the runner fails at once
	} else {
		q = agent.TSMQuoter{Client: client}
	}
	code := agent.Main(ctx, os.Args[1:], os.Stderr, q, version)
	stop()
	os.Exit(code)
}
