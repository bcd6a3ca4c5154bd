package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/tdx"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

// parseQuoteCommand is `mero-release parse-quote FILE`: print a TDX quote's measurements,
// optionally verifying its signature chain and replaying an event log against it.
func (a *app) parseQuoteCommand() *cobra.Command {
	var (
		doVerify bool
		rootPath string
		logPath  string
		at       string
	)
	c := &cobra.Command{
		Use:   "parse-quote FILE",
		Short: "Print the MRTD/RTMR0-3 of a TDX v4 quote; --verify checks its signature chain (exit 10 when it fails)",
		Long: `parse-quote reads a TDX v4 quote (FILE, or - for stdin) and prints its measurements.

--verify checks the PCK certificate chain, the QE report and the attestation-key signature offline
(go-tdx-guest), against Intel's SGX root or the --trusted-root PEM (the simulator's root, from
'mero-release tdxsim root'). --event-log replays a JSON event log or a raw CCEL and compares it
with RTMR0-3. A malformed quote or a failed check exits 10; an unreadable file or bad flag exits 2.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := a.readInput(args[0])
			if err != nil {
				return err
			}
			opts := tdx.VerifyOptions{}
			if rootPath != "" {
				doVerify = true
				if opts.TrustedRoots, err = tdxRootPool(rootPath); err != nil {
					return err
				}
			}
			if at != "" {
				if opts.Now, err = time.Parse(time.RFC3339, at); err != nil {
					return outcome.UsageErrorf("--at: %q is not an RFC 3339 time: %v", at, err)
				}
			}
			var events []tdx.Event
			if logPath != "" {
				data, err := os.ReadFile(logPath)
				if err != nil {
					return outcome.UsageErrorf("--event-log: %v", err)
				}
				if events, err = parseAnyEventLog(data); err != nil {
					a.log.Failf("%s: %v", logPath, err)
					return reported(err)
				}
			}
			return a.parseQuote(args[0], raw, doVerify, opts, logPath, events)
		},
	}
	c.Flags().BoolVar(&doVerify, "verify", false, "verify the quote's signature chain (PCK chain, QE report, attestation key)")
	c.Flags().StringVar(&rootPath, "trusted-root", "", "PEM root certificate(s) to verify against instead of Intel's SGX root (implies --verify)")
	c.Flags().StringVar(&logPath, "event-log", "", "replay this event log (JSON array or raw CCEL) and compare it with RTMR0-3")
	c.Flags().StringVar(&at, "at", "", "verify certificate validity at this RFC 3339 time instead of now")
	return c
}

// quoteResult is the --json output of parse-quote.
type quoteResult struct {
	File string `json:"file"`
	tdx.Summary
	Verified         bool   `json:"verified"`
	EventLogReplayed bool   `json:"event_log_replayed"`
	Error            string `json:"error,omitempty"`
}

func (a *app) parseQuote(name string, raw []byte, doVerify bool, opts tdx.VerifyOptions, logPath string, events []tdx.Event) error {
	res := quoteResult{File: name}
	fail := func(err error) error {
		a.log.Failf("%s: %v", name, err)
		if a.json {
			res.Error = err.Error()
			if perr := a.printJSON(res); perr != nil {
				return perr
			}
		}
		return reported(err)
	}
	q, err := tdx.ParseQuote(raw)
	if err != nil {
		return fail(err)
	}
	res.Summary = q.Summary()
	a.log.Infof("%s: TDX v%d quote, %d bytes, sha256 %s", name, q.Version, len(raw), q.SHA256())
	if q.Debug() {
		a.log.Warnf("%s: TD_ATTRIBUTES has DEBUG set: the TD's memory is visible to the host", name)
	}
	if doVerify {
		if err := q.Verify(opts); err != nil {
			return fail(err)
		}
		res.Verified = true
		root := "Intel SGX root"
		if opts.TrustedRoots != nil {
			root = "the --trusted-root"
		}
		a.log.Passf("%s: signature chain verified against %s", name, root)
	}
	if logPath != "" {
		if err := tdx.ReplayAndCheck(events, q); err != nil {
			return fail(fmt.Errorf("event log %s: %w", logPath, err))
		}
		res.EventLogReplayed = true
		a.log.Passf("%s: event log %s (%d events) replays to RTMR0-3", name, logPath, len(events))
	}
	if a.json {
		return a.printJSON(res)
	}
	return printMeasurements(a.stdout, q.Measurements(), [][2]string{
		{"report_data", res.ReportData},
		{"td_attributes", res.TDAttributes},
		{"quote_sha256", res.QuoteSHA256},
	})
}

// printMeasurements prints "name  hex" lines: the five registers, then extra.
func printMeasurements(w io.Writer, m tdx.Measurements, extra [][2]string) error {
	var b strings.Builder
	for _, f := range append(m.Hex().Fields(), extra...) {
		fmt.Fprintf(&b, "%-14s%s\n", f[0], f[1])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// parseAnyEventLog accepts a JSON event log (an array) or a raw CCEL.
func parseAnyEventLog(data []byte) ([]tdx.Event, error) {
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '[' {
		return tdx.ParseEventLog(data)
	}
	return tdx.ParseCCEL(data)
}

// readInput reads FILE, or stdin for "-"; an unreadable file is a usage error.
func (a *app) readInput(path string) ([]byte, error) {
	var (
		data []byte
		err  error
	)
	if path == "-" {
		data, err = io.ReadAll(a.stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, outcome.UsageErrorf("read %s: %v", path, err)
	}
	return data, nil
}

// tdxsimCommand is `mero-release tdxsim`: the local TDX simulator for scripts.
func (a *app) tdxsimCommand() *cobra.Command {
	var seed string
	c := &cobra.Command{
		Use:   "tdxsim",
		Short: "Local TDX simulator: boot a node-image description and produce verifiable TDX v4 quotes",
		Long: `tdxsim stands in for a GCP Confidential VM. Its quotes are real TDX v4 quotes signed through a
simulated attestation chain whose root ('tdxsim root') is derived from --seed (or MERO_TDXSIM_SEED),
so it is the same on every run. They verify only against that root, never against Intel's.`,
	}
	c.PersistentFlags().StringVar(&seed, "seed", "", "authority seed (default $MERO_TDXSIM_SEED, else the built-in local seed)")
	authority := func() (*tdxsim.Authority, error) {
		s := a.envOr(seed, "MERO_TDXSIM_SEED")
		if s == "" {
			s = tdxsim.DefaultSeed
		}
		return tdxsim.NewAuthority([]byte(s))
	}
	c.AddCommand(a.tdxsimRootCommand(authority), a.tdxsimMeasureCommand(), a.tdxsimQuoteCommand(authority))
	return c
}

func (a *app) tdxsimRootCommand(authority func() (*tdxsim.Authority, error)) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "root",
		Short: "Write the simulator's root certificate (PEM), the --trusted-root of its quotes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			auth, err := authority()
			if err != nil {
				return outcome.UsageErrorf("%v", err)
			}
			if out == "" || out == "-" {
				_, err := a.stdout.Write(auth.RootPEM())
				return err
			}
			if err := os.WriteFile(out, auth.RootPEM(), 0o644); err != nil {
				return fmt.Errorf("write %s: %w", out, err)
			}
			a.log.Infof("wrote simulator root certificate %s", out)
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "write the PEM to FILE instead of stdout")
	return c
}

// imageFlags are the flags naming a node image and profile.
type imageFlags struct{ dir, profile string }

func (f *imageFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.dir, "image", "", "node-image directory holding PROFILE.json manifests (e.g. examples/node-image)")
	c.Flags().StringVar(&f.profile, "profile", "", "profile to boot (debug, debug-read-only, locked-read-only)")
}

func (f *imageFlags) load() (*tdxsim.Image, error) {
	if f.dir == "" || f.profile == "" {
		return nil, outcome.UsageErrorf("--image and --profile are required")
	}
	return tdxsim.LoadImage(f.dir, f.profile)
}

func (a *app) tdxsimMeasureCommand() *cobra.Command {
	var img imageFlags
	c := &cobra.Command{
		Use:   "measure",
		Short: "Print the MRTD/RTMR0-3 booting a node image yields (no quote)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			image, err := img.load()
			if err != nil {
				return err
			}
			m, events, err := tdxsim.Measure(image)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"image": image.Name, "profile": image.Profile, "measurements": m.Hex(), "event_log": events})
			}
			return printMeasurements(a.stdout, m, nil)
		},
	}
	img.register(c)
	return c
}

func (a *app) tdxsimQuoteCommand(authority func() (*tdxsim.Authority, error)) *cobra.Command {
	var (
		img        imageFlags
		reportHex  string
		out        string
		logOut     string
		rtmr3Specs []string
	)
	c := &cobra.Command{
		Use:   "quote",
		Short: "Boot a node image in the simulator and write a TDX v4 quote (and optionally its event log)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return outcome.UsageErrorf("-o/--output is required")
			}
			reportData, err := parseReportData(reportHex)
			if err != nil {
				return err
			}
			var runtime []tdx.Event
			for _, spec := range rtmr3Specs {
				name, value, ok := strings.Cut(spec, "=")
				if !ok || name == "" {
					return outcome.UsageErrorf("--rtmr3 %q: want EVENT=VALUE", spec)
				}
				runtime = append(runtime, tdx.NewEvent(3, "runtime", name, []byte(value)))
			}
			image, err := img.load()
			if err != nil {
				return err
			}
			auth, err := authority()
			if err != nil {
				return outcome.UsageErrorf("%v", err)
			}
			vm, err := auth.Boot(cmd.Context(), image)
			if err != nil {
				return err
			}
			defer vm.Shutdown()
			for _, ev := range runtime {
				if err := vm.ExtendRTMR3(ev); err != nil {
					return err
				}
			}
			raw, err := vm.Quote(reportData)
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, raw, 0o644); err != nil {
				return fmt.Errorf("write %s: %w", out, err)
			}
			sum := sha256.Sum256(raw)
			a.log.Infof("booted %s (%s) in the simulator; wrote quote %s (%d bytes, sha256 %s)", image.Name, image.Profile, out, len(raw), hex.EncodeToString(sum[:]))
			if logOut != "" {
				data, err := tdx.MarshalEventLog(vm.EventLog())
				if err != nil {
					return err
				}
				if err := os.WriteFile(logOut, data, 0o644); err != nil {
					return fmt.Errorf("write %s: %w", logOut, err)
				}
				a.log.Infof("wrote event log %s (%d events)", logOut, len(vm.EventLog()))
			}
			if a.json {
				return a.printJSON(map[string]any{"quote": out, "quote_sha256": hex.EncodeToString(sum[:]), "image": image.Name,
					"profile": image.Profile, "measurements": vm.Measurements().Hex(), "report_data": hex.EncodeToString(reportData[:])})
			}
			return nil
		},
	}
	img.register(c)
	c.Flags().StringVar(&reportHex, "report-data", "", "report data as hex, at most 64 bytes, zero-padded on the right")
	c.Flags().StringVarP(&out, "output", "o", "", "write the quote to FILE (required)")
	c.Flags().StringVar(&logOut, "event-log", "", "also write the event log (JSON) to FILE")
	c.Flags().StringArrayVar(&rtmr3Specs, "rtmr3", nil, "extend RTMR3 with a runtime event EVENT=VALUE (SHA-384 of VALUE) before quoting; repeatable")
	return c
}

// parseReportData decodes up to 64 bytes of hex, zero-padded on the right.
func parseReportData(s string) ([64]byte, error) {
	var rd [64]byte
	b, err := hex.DecodeString(s)
	if err != nil {
		return rd, outcome.UsageErrorf("--report-data: %v", err)
	}
	if len(b) > len(rd) {
		return rd, outcome.UsageErrorf("--report-data: %d bytes, at most %d", len(b), len(rd))
	}
	copy(rd[:], b)
	return rd, nil
}
