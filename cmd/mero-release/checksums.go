package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/calimero-network/mero-release/pipeline/atomicfile"
	"github.com/calimero-network/mero-release/pipeline/checksum"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// checksumsCommand is `mero-release checksums`: write and verify checksums.sha256.
func (a *app) checksumsCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "checksums",
		Short: "Write and verify checksums.sha256 (sha256sum -c compatible)",
	}
	c.AddCommand(a.checksumsWriteCommand(), a.checksumsVerifyCommand())
	return c
}

// checksumsDefaultFiles lists the regular files directly in dir that a checksum file
// covers: everything but the checksum file itself and Sigstore bundles.
func checksumsDefaultFiles(dir, exclude string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, outcome.UsageErrorf("checksums: directory %s does not exist", dir)
		}
		return nil, fmt.Errorf("checksums: %w", err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if _, bundle := release.IsFileBundle(n); !e.Type().IsRegular() || n == exclude || n == release.ChecksumsFile || bundle {
			continue // an attestation (the provenance) is listed
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return nil, outcome.UsageErrorf("checksums: no files to checksum in %s", dir)
	}
	return names, nil
}

// writeFileAtomic writes data to path atomically (atomicfile.Write), creating its directory.
func writeFileAtomic(path string, data []byte) error { return atomicfile.Write(path, data) }

func (a *app) checksumsWriteCommand() *cobra.Command {
	var dir, out string
	c := &cobra.Command{
		Use:   "write --dir D [FILE...] [-o PATH]",
		Short: "Hash files in a directory and write checksums.sha256 (all files but bundles when none are named)",
		Long: `Hash FILEs (names relative to --dir; default: every regular file directly in --dir except
checksums.sha256 and *.sigstore.json) and write them in sha256sum format, sorted by name,
to -o (default D/checksums.sha256; "-" for stdout). A missing file exits 11.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return outcome.UsageErrorf("checksums write: --dir is required")
			}
			if out == "" {
				out = filepath.Join(dir, release.ChecksumsFile)
			}
			names := args
			if len(names) == 0 {
				exclude := ""
				if absOut, err := filepath.Abs(out); err == nil {
					if absDir, err := filepath.Abs(dir); err == nil && filepath.Dir(absOut) == absDir {
						exclude = filepath.Base(absOut)
					}
				}
				var err error
				if names, err = checksumsDefaultFiles(dir, exclude); err != nil {
					return err
				}
			}
			f, err := checksum.Compute(cmd.Context(), dir, names)
			if err != nil {
				return err
			}
			data := f.Marshal()
			if out == "-" {
				_, err := a.stdout.Write(data)
				return err
			}
			if err := writeFileAtomic(out, data); err != nil {
				return err
			}
			a.log.Passf("wrote %s (%d files)", out, len(f.Entries))
			if a.json {
				return a.printJSON(map[string]any{"file": out, "entries": f.Entries})
			}
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "directory holding the files (required)")
	c.Flags().StringVarP(&out, "output", "o", "", `checksum file to write (default D/checksums.sha256; "-" for stdout)`)
	return c
}

func (a *app) checksumsVerifyCommand() *cobra.Command {
	var dir, file string
	var allow []string
	c := &cobra.Command{
		Use:   "verify --dir D [--file checksums.sha256]",
		Short: "Verify every file in a directory against checksums.sha256 (mismatch or unlisted: 10, missing: 11)",
		Long: `Hash every file listed in --file (default D/checksums.sha256) and report each one:
[PASS] when it matches, [FAIL] when its content differs (exit 10), when it is missing (exit 11),
and for every file in D that is not listed (exit 10) unless it matches --allow-unlisted
(the checksum file itself and *.sigstore.json bundles are always allowed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return outcome.UsageErrorf("checksums verify: --dir is required")
			}
			if file == "" {
				file = filepath.Join(dir, release.ChecksumsFile)
			}
			fh, err := os.Open(file)
			if errors.Is(err, fs.ErrNotExist) {
				return outcome.MissingAssetErrorf("checksums verify: %s not found", file)
			}
			if err != nil {
				return fmt.Errorf("checksums verify: %w", err)
			}
			f, err := checksum.Parse(fh)
			fh.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			opts := checksum.VerifyOptions{AllowUnlisted: append([]string{"*" + release.BundleSuffix, release.ChecksumsFile}, allow...)}
			if absFile, err := filepath.Abs(file); err == nil {
				if absDir, err := filepath.Abs(dir); err == nil {
					if rel, err := filepath.Rel(absDir, absFile); err == nil && !strings.HasPrefix(rel, "..") {
						opts.AllowUnlisted = append(opts.AllowUnlisted, filepath.ToSlash(rel))
					}
				}
			}
			rep, err := checksum.Verify(cmd.Context(), dir, f, opts)
			if err != nil && len(rep.Results) == 0 {
				return err
			}
			for _, r := range rep.Results {
				if r.Status == checksum.StatusOK {
					a.log.Passf("%s: sha256 %s", r.Name, r.Actual)
				} else {
					a.log.Failf("%s: %s", r.Name, r.Detail)
				}
			}
			if a.json {
				if jerr := a.printJSON(map[string]any{"dir": dir, "file": file, "ok": rep.OK(), "results": rep.Results}); jerr != nil {
					return jerr
				}
			}
			if err != nil {
				a.log.Errorf("%s: %d of %d files failed verification", file, len(rep.Problems()), len(rep.Results))
				return reported(err)
			}
			a.log.Passf("%s: all %d files verified", file, len(rep.Results))
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "directory holding the files (required)")
	c.Flags().StringVar(&file, "file", "", "checksum file (default D/checksums.sha256)")
	c.Flags().StringArrayVar(&allow, "allow-unlisted", nil, "glob of files that may be present without being listed (repeatable)")
	return c
}
