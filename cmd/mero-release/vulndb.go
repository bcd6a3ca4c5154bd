package main

import (
	"github.com/spf13/cobra"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/vuln"
)

// vulndbCommand is `mero-release vulndb`: the vulnerability database the release gate reads.
// Only `vulndb update` uses the network; no release command ever fetches a database.
func (a *app) vulndbCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "vulndb",
		Short: "The grype vulnerability database of the release gate: update (online, or from a mirror), build (from an advisory list), mirror, status",
	}
	var dir, advisories string
	var updateOpts vuln.UpdateOptions
	update := &cobra.Command{
		Use:   "update --dir DIR [--listing-url URL]",
		Short: "Download the newest grype vulnerability database into DIR (the only online step; give DIR to --vuln-db)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return outcome.UsageErrorf("vulndb update: --dir is required")
			}
			updated, info, err := vuln.Update(cmd.Context(), dir, updateOpts)
			if err != nil {
				return err
			}
			a.log.Passf("vulndb: %s holds the grype database %s built %s (updated: %v)", dir, info.Schema, info.Built.Format("2006-01-02T15:04:05Z"), updated)
			if a.json {
				return a.printJSON(info)
			}
			return nil
		},
	}
	update.Flags().StringVar(&dir, "dir", "", "database root directory (the database is DIR/6/vulnerability.db)")
	update.Flags().StringVar(&updateOpts.ListingURL, "listing-url", "", "grype database listing: a latest.json URL, or a base URL holding v6/latest.json and the archives it names (a mirror); default grype's public listing")
	update.Flags().StringVar(&updateOpts.CACert, "ca-cert", "", "PEM file of extra CAs for the listing's TLS server")
	build := &cobra.Command{
		Use:   "build --advisories FILE --dir DIR",
		Short: "Build a grype v6 database in DIR from a local advisory list (JSON), with grype's own DB writer",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" || advisories == "" {
				return outcome.UsageErrorf("vulndb build: --advisories and --dir are required")
			}
			list, err := vuln.LoadAdvisories(advisories)
			if err != nil {
				return err
			}
			if err := vuln.BuildDB(cmd.Context(), dir, list); err != nil {
				return err
			}
			a.log.Passf("vulndb: built %s from %s (%d advisories)", dir, advisories, len(list))
			return nil
		},
	}
	build.Flags().StringVar(&dir, "dir", "", "database directory to write (replaced)")
	build.Flags().StringVar(&advisories, "advisories", "", "advisory list: {\"advisories\": [{id, aliases, ecosystem, package, affected, fixed, severity, …}]}")
	status := &cobra.Command{
		Use:   "status --dir DIR",
		Short: "Show the schema and build time of the database in DIR (offline)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return outcome.UsageErrorf("vulndb status: --dir is required")
			}
			db, err := vuln.OpenDB(cmd.Context(), dir, "")
			if err != nil {
				return err
			}
			defer db.Close()
			a.log.Infof("vulndb: %s: grype database %s built %s", dir, db.Info.Schema, db.Info.Built.Format("2006-01-02T15:04:05Z"))
			if a.json {
				return a.printJSON(db.Info)
			}
			return nil
		},
	}
	status.Flags().StringVar(&dir, "dir", "", "database directory")
	var out string
	mirror := &cobra.Command{
		Use:   "mirror --dir DB --out DIR",
		Short: "Write the database in DB as a grype listing in DIR (v6/latest.json and its archive): host DIR on any web server and point vulndb update --listing-url at it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" || out == "" {
				return outcome.UsageErrorf("vulndb mirror: --dir and --out are required")
			}
			info, err := vuln.Mirror(cmd.Context(), dir, out)
			if err != nil {
				return err
			}
			a.log.Passf("vulndb: %s lists the grype database %s built %s", out, info.Schema, info.Built.Format("2006-01-02T15:04:05Z"))
			return nil
		},
	}
	mirror.Flags().StringVar(&dir, "dir", "", "database directory (or the root vulndb update writes)")
	mirror.Flags().StringVar(&out, "out", "", "listing directory to write")
	c.AddCommand(update, build, status, mirror)
	return c
}
