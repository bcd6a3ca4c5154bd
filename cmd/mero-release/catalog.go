package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/calimero-network/mero-release/pipeline/catalog"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// catalogCommand is `mero-release catalog`: validate, add to and query the compatibility catalog.
func (a *app) catalogCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "catalog",
		Short: "Validate, update and query the compatibility catalog (compatibility-catalog.json)",
	}
	c.AddCommand(a.catalogValidateCommand(), a.catalogAddCommand(), a.catalogQueryCommand())
	return c
}

// catalogFile resolves the catalog path: the flag, else COMPATIBILITY_CATALOG_PATH, else the
// repository default.
func (a *app) catalogFile(flag string) string {
	if p := a.envOr(flag, "COMPATIBILITY_CATALOG_PATH"); p != "" {
		return p
	}
	return catalog.DefaultFile
}

// catalogLoad loads the catalog; a refused file is logged as [FAIL] and returned as reported.
func (a *app) catalogLoad(path string) (*catalog.Catalog, error) {
	c, err := catalog.LoadFile(path)
	if err != nil && outcome.Code(err) == outcome.VerificationFailed {
		a.log.Failf("%v", err)
		return nil, reported(err)
	}
	return c, err
}

// catalogIsCanonical reports whether the file holds exactly what Marshal writes.
func catalogIsCanonical(path string, c *catalog.Catalog) bool {
	onDisk, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	want, err := c.Marshal()
	return err == nil && bytes.Equal(onDisk, want)
}

func (a *app) catalogValidateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a compatibility catalog strictly (exit 10 naming the entry and field when it is wrong)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			c, err := a.catalogLoad(path)
			if err != nil {
				if a.json {
					_ = a.printJSON(map[string]any{"file": path, "valid": false, "error": err.Error()})
				}
				return err
			}
			canonical := catalogIsCanonical(path, c)
			if !canonical {
				a.log.Warnf("%s: valid but not in canonical form (sorted, 2-space indent); `mero-release catalog add` rewrites it canonically", path)
			}
			a.log.Passf("%s: compatibility catalog valid (%d entries)", path, len(c.Entries))
			if a.json {
				return a.printJSON(map[string]any{"file": path, "valid": true, "entries": len(c.Entries), "canonical": canonical})
			}
			return nil
		},
	}
}

func (a *app) catalogAddCommand() *cobra.Command {
	var kms, node, notes, file string
	var profiles []string
	c := &cobra.Command{
		Use:   "add --kms V --node V --profiles P[,P…] [--notes TEXT] [--file FILE]",
		Short: "Record a tested KMS / node-image pair and rewrite the catalog canonically",
		Long: `Record a pair that passed the KMS–node E2E suite. An existing pair gains the union of the
profiles (and the new notes, when given). The file is rewritten in canonical form (sorted,
stable formatting) atomically; a missing file is created. The file defaults to
$COMPATIBILITY_CATALOG_PATH, else compatibility-catalog.json.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			entry, err := catalogEntryFromFlags(kms, node, profiles, notes)
			if err != nil {
				return err
			}
			path := a.catalogFile(file)
			cat, err := a.catalogLoad(path)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				a.log.Infof("%s does not exist: creating it", path)
				cat = catalog.New()
			case err != nil:
				return err
			}
			wasCanonical := catalogIsCanonical(path, cat)
			changed, err := cat.Add(entry)
			if err != nil {
				a.log.Failf("%v", err)
				return reported(err)
			}
			if changed || !wasCanonical {
				if err := cat.WriteFile(path); err != nil {
					return err
				}
			}
			got, _ := cat.Pair(entry.KMS, entry.NodeImage)
			if changed {
				a.log.Passf("%s: recorded %s (profiles %s)", path, got, catalogProfileList(got.Profiles))
			} else {
				a.log.Infof("%s: already records %s (profiles %s); nothing to add", path, got, catalogProfileList(got.Profiles))
			}
			if a.json {
				return a.printJSON(map[string]any{"file": path, "changed": changed, "entry": got})
			}
			return nil
		},
	}
	c.Flags().StringVar(&kms, "kms", "", "KMS version X.Y.Z[-rc.N] (required)")
	c.Flags().StringVar(&node, "node", "", "node-image version X.Y.Z[-rc.N] (required)")
	c.Flags().StringSliceVar(&profiles, "profiles", nil, "comma-separated profiles the pair was tested under (required): "+strings.Join(release.ProfileNames(), ", "))
	c.Flags().StringVar(&notes, "notes", "", "a remark for operators")
	c.Flags().StringVar(&file, "file", "", "catalog file (default $COMPATIBILITY_CATALOG_PATH or compatibility-catalog.json)")
	return c
}

// catalogEntryFromFlags checks the add flags; bad values are usage errors (exit 2).
func catalogEntryFromFlags(kms, node string, profiles []string, notes string) (catalog.Entry, error) {
	if kms == "" || node == "" || len(profiles) == 0 {
		return catalog.Entry{}, outcome.UsageErrorf("catalog add: --kms, --node and --profiles are required")
	}
	if _, err := release.ParseVersion(kms); err != nil {
		return catalog.Entry{}, outcome.UsageErrorf("--kms: %w", err)
	}
	if _, err := release.ParseVersion(node); err != nil {
		return catalog.Entry{}, outcome.UsageErrorf("--node: %w", err)
	}
	e := catalog.Entry{KMS: kms, NodeImage: node, Tested: true, Notes: notes}
	for _, s := range profiles {
		p, err := release.ParseProfile(strings.TrimSpace(s))
		if err != nil {
			return catalog.Entry{}, outcome.UsageErrorf("--profiles: %w", err)
		}
		if !slices.Contains(e.Profiles, p) {
			e.Profiles = append(e.Profiles, p)
		}
	}
	return e, nil
}

func catalogProfileList(ps []release.Profile) string {
	var names []string
	for _, p := range ps {
		names = append(names, string(p))
	}
	return strings.Join(names, ", ")
}

func (a *app) catalogQueryCommand() *cobra.Command {
	var kms, node, file string
	c := &cobra.Command{
		Use:   "query (--kms V | --node V | --kms V --node V) [--file FILE] [--json]",
		Short: "List the counterparts of a version, or look up one pair (exit 10 when the pair is not listed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if kms == "" && node == "" {
				return outcome.UsageErrorf("catalog query: give --kms, --node or both")
			}
			for _, f := range [][2]string{{"--kms", kms}, {"--node", node}} {
				if f[1] == "" {
					continue
				}
				if _, err := release.ParseVersion(f[1]); err != nil {
					return outcome.UsageErrorf("%s: %w", f[0], err)
				}
			}
			path := a.catalogFile(file)
			cat, err := a.catalogLoad(path)
			if err != nil {
				return err
			}
			var entries []catalog.Entry
			var missing error
			switch {
			case kms != "" && node != "":
				if e, ok := cat.Pair(kms, node); ok {
					entries = append(entries, e)
				} else {
					missing = outcome.VerificationErrorf("%s: no entry for kms %s ↔ node image %s", path, kms, node)
				}
			case kms != "":
				entries = cat.Compatible(release.KMS, kms)
			default:
				entries = cat.Compatible(release.Node, node)
			}
			if entries == nil {
				entries = []catalog.Entry{}
			}
			if a.json {
				if err := a.printJSON(entries); err != nil {
					return err
				}
			} else {
				for _, e := range entries {
					line := fmt.Sprintf("kms %s\tnode_image %s\tprofiles %s\ttested %t", e.KMS, e.NodeImage, catalogProfileList(e.Profiles), e.Tested)
					if e.Notes != "" {
						line += "\tnotes " + e.Notes
					}
					if _, err := fmt.Fprintln(a.stdout, line); err != nil {
						return err
					}
				}
			}
			if missing != nil {
				a.log.Failf("%v", missing)
				return reported(missing)
			}
			a.log.Infof("%s: %d matching entries", path, len(entries))
			return nil
		},
	}
	c.Flags().StringVar(&kms, "kms", "", "KMS version: list its compatible node images")
	c.Flags().StringVar(&node, "node", "", "node-image version: list its compatible KMS versions")
	c.Flags().StringVar(&file, "file", "", "catalog file (default $COMPATIBILITY_CATALOG_PATH or compatibility-catalog.json)")
	return c
}
