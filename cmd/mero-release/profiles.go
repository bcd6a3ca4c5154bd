package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/calimero-network/mero-release/pipeline/release"
)

// profilesInfo is `mero-release --json profiles`: the rules the Dagger module asks for instead
// of repeating them.
type profilesInfo struct {
	// Profiles are the release profiles, in the order every per-profile argument uses.
	Profiles []string `json:"profiles"`
	// BundleSuffix is appended to an asset's name for its Sigstore bundle.
	BundleSuffix string `json:"bundle_suffix"`
}

// profilesCommand is `mero-release profiles`: the profile list (one a line, or with --json
// the list and the bundle suffix), or, with --check, the validation of one profile name.
func (a *app) profilesCommand() *cobra.Command {
	var check string
	c := &cobra.Command{
		Use:   "profiles [--check PROFILE]",
		Short: "List the release profiles (with --json: and the Sigstore bundle suffix); --check validates one",
		Long: `Prints the release profiles, one a line, in the order every per-profile argument uses; with
--json, {"profiles": [...], "bundle_suffix": ".sigstore.json"}. With --check PROFILE, checks that
PROFILE is one of them and prints it (exit 2 naming the profiles otherwise). The Dagger module asks
this command instead of repeating the list.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if check != "" {
				p, err := release.ParseProfile(check)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(a.stdout, p)
				return err
			}
			if a.json {
				return a.printJSON(profilesInfo{Profiles: release.ProfileNames(), BundleSuffix: release.BundleSuffix})
			}
			for _, p := range release.ProfileNames() {
				if _, err := fmt.Fprintln(a.stdout, p); err != nil {
					return err
				}
			}
			return nil
		},
	}
	c.Flags().StringVar(&check, "check", "", "validate one profile name (exit 2 if it is not a profile)")
	return c
}
