package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/trace"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/telemetry"
)

// app carries what every command needs: streams, the environment and the SPEC §9 logger.
// Log lines go to stderr so that stdout stays machine-readable (--json, generated files).
type app struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	log    *outcome.Logger
	json   bool
	// tracer records the release pipelines' stages as spans (nil: none; see pipeline/telemetry).
	tracer trace.Tracer
}

// run executes the CLI and returns the process exit code (SPEC §9).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv, log: outcome.NewLogger(stderr)}
	ctx, tracing, err := telemetry.Start(ctx, getenv)
	if err != nil {
		a.log.Warnf("%v", err)
	}
	a.tracer = tracing.Tracer
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := tracing.Shutdown(sctx); err != nil {
			a.log.Warnf("%v", err)
		}
	}()
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err = root.ExecuteContext(ctx)
	if err == nil {
		return outcome.OK
	}
	var silent *reportedError
	if !errors.As(err, &silent) {
		a.log.Errorf("%v", err)
	}
	return outcome.Code(err)
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "mero-release",
		Short: "Release tooling for mero-kms and mero-tee: guards, policies, catalog, artifacts, audit, E2E",
		Long: `mero-release releases the mero-kms KMS and the mero-tee TDX node image.

Every command logs [INFO]/[WARN]/[ERROR]/[PASS]/[FAIL] lines on stderr and exits with
0 success, 1 general error, 2 usage error, 10 verification failure, 11 missing required asset.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().BoolVar(&a.json, "json", false, "print a machine-readable JSON result on stdout")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return outcome.UsageErrorf("%v", err) })
	for _, c := range a.commands() {
		root.AddCommand(c)
	}
	markUsageErrors(root)
	return root
}

// markUsageErrors makes argument-count errors of every command usage errors (exit 2).
func markUsageErrors(c *cobra.Command) {
	if c.Args != nil {
		inner := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := inner(cmd, args); err != nil {
				return outcome.UsageErrorf("%s: %v", cmd.CommandPath(), err)
			}
			return nil
		}
	}
	if c.HasSubCommands() && c.RunE == nil && c.Run == nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return outcome.UsageErrorf("%s: unknown command %q (see --help)", cmd.CommandPath(), args[0])
			}
			return outcome.UsageErrorf("%s: a subcommand is required (see --help)", cmd.CommandPath())
		}
		c.Args = cobra.ArbitraryArgs
	}
	for _, sub := range c.Commands() {
		markUsageErrors(sub)
	}
}

// reportedError is an error whose [FAIL]/[ERROR] lines were already printed; run only maps it to
// its exit code.
type reportedError struct{ err error }

func (e *reportedError) Error() string { return e.err.Error() }
func (e *reportedError) Unwrap() error { return e.err }

// reported wraps err (nil stays nil) as already logged.
func reported(err error) error {
	if err == nil {
		return nil
	}
	return &reportedError{err: err}
}

// printJSON writes v as indented JSON on stdout.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// envOr returns the flag value when set, else the environment variable.
func (a *app) envOr(flagValue, variable string) string {
	if flagValue != "" {
		return flagValue
	}
	return a.getenv(variable)
}
