package agent

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// Main is mero-tee-agent's command line: it parses args (flags only), runs the agent with q
// until ctx ends, and returns the exit code (0, or 2 for bad flags).
//
//	mero-tee-agent [-metadata-url URL] [-poll-interval D] [-part-size N]
func Main(ctx context.Context, args []string, stderr io.Writer, q Quoter, version string) int {
	fs := flag.NewFlagSet("mero-tee-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := Config{Quoter: q, Version: version, Log: outcome.NewLogger(stderr)}
	fs.StringVar(&cfg.MetadataURL, "metadata-url", DefaultMetadataURL, "root of the GCE metadata server")
	fs.DurationVar(&cfg.PollInterval, "poll-interval", DefaultPollInterval, "pause between reads of the instance metadata")
	fs.IntVar(&cfg.PartSize, "part-size", 0, "characters per published guest-attribute part (0: the default)")
	if err := fs.Parse(args); err != nil {
		return outcome.Usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "[ERROR] mero-tee-agent takes no arguments (got %q)\n", fs.Args())
		return outcome.Usage
	}
	if cfg.PartSize < 0 || cfg.PollInterval <= 0 {
		fmt.Fprintln(stderr, "[ERROR] mero-tee-agent: -part-size must be ≥ 0 and -poll-interval > 0")
		return outcome.Usage
	}
	cfg.Log.Infof("mero-tee-agent %s: metadata server %s", version, cfg.MetadataURL)
	if err := Run(ctx, cfg); err != nil {
		cfg.Log.Errorf("mero-tee-agent: %v", err)
		return outcome.Code(err)
	}
	return 0
}
