package main

import (
	"context"
	"crypto/x509"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/calimero-network/mero-release/examples/kms"
	"github.com/calimero-network/mero-release/pipeline/e2e"
	"github.com/calimero-network/mero-release/pipeline/flow"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/phala"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx"
)

// The environment of --kms-provider phala.
const (
	envPhalaURL       = phala.EnvURL
	envPhalaAPIKey    = phala.EnvAPIKey
	envPolicyTemplate = "MERO_KMS_POLICY_URL_TEMPLATE"
)

// KMS providers of `mero-release e2e` and the release commands' E2E.
const (
	kmsProviderLocal = "local"
	kmsProviderPhala = "phala"
)

// kmsProviderHelp is the help of --kms-provider.
const kmsProviderHelp = "where each KMS of E2E runs: local (a process or this process) or phala (a Phala Cloud CVM per policy running the release's image; $PHALA_DSTACK_URL, $PHALA_API_KEY)"

// phalaKMS is the launcher of --kms-provider phala: each KMS a Phala Cloud CVM running the
// release's image, its quotes rooted in quoteRoot (a PEM file; empty: Intel's SGX root). With a
// policy template ({tag}, {file}: the release asset) the CVM fetches its policy from that URL;
// without one the policy travels inline in the CVM's encrypted environment (policy.DataURL), as
// it must for a release whose E2E runs before its assets are published.
func (a *app) phalaKMS(cmdName, policyTemplate, quoteRoot, runID string) (*e2e.PhalaKMS, error) {
	base, key := a.getenv(envPhalaURL), a.getenv(envPhalaAPIKey)
	policyTemplate = a.envOr(policyTemplate, envPolicyTemplate)
	switch {
	case base == "":
		return nil, outcome.UsageErrorf("%s: --kms-provider phala needs $%s (the Phala Cloud API, …/api/v1)", cmdName, envPhalaURL)
	case key == "":
		return nil, outcome.UsageErrorf("%s: --kms-provider phala needs $%s", cmdName, envPhalaAPIKey)
	case policyTemplate != "" && (!strings.Contains(policyTemplate, "{tag}") || !strings.Contains(policyTemplate, "{file}")):
		return nil, outcome.UsageErrorf("%s: --policy-url-template (or $%s) %q needs {tag} and {file}: where a CVM downloads a release's policy", cmdName, envPolicyTemplate, policyTemplate)
	}
	client, err := phala.New(base, key, phala.Options{})
	if err != nil {
		return nil, err
	}
	var roots *x509.CertPool
	if quoteRoot != "" {
		roots, err = tdxRootPool(quoteRoot)
	} else {
		roots, err = tdx.IntelRootPool()
	}
	if err != nil {
		return nil, err
	}
	l := &e2e.PhalaKMS{Client: client, AppCompose: kms.AppCompose, TrustedRoots: roots, RunID: runID, Log: a.log}
	if policyTemplate != "" {
		l.PolicyURL = func(_ context.Context, p *policy.Loaded) (string, error) {
			tag := release.KMS.TagPrefix() + p.Policy.KMSVersion
			return strings.NewReplacer("{tag}", tag, "{file}", p.Policy.Profile.PolicyFile()).Replace(policyTemplate), nil
		}
	}
	return l, nil
}

// releaseKMSProvider applies --kms-provider of a release command: local keeps the launcher the
// command chose; phala deploys each KMS of E2E as a Phala CVM running the release's recorded
// image (release-kms pushes it by digest first, so it needs --registry).
func (a *app) releaseKMSProvider(cmdName string, f *releaseFlags, cfg *flow.Config) error {
	switch f.kmsProvider {
	case kmsProviderLocal:
		return nil
	case kmsProviderPhala:
		if f.skipE2E {
			return nil
		}
		l, err := a.phalaKMS(cmdName, "", f.kmsQuoteRoot, cfg.RunID)
		if err != nil {
			return err
		}
		cfg.KMSLauncher = l
		return nil
	}
	return outcome.UsageErrorf("%s: --kms-provider %q: want %s or %s", cmdName, f.kmsProvider, kmsProviderLocal, kmsProviderPhala)
}

// phalaCommand is `mero-release phala`: maintenance of the CVMs E2E deploys on Phala Cloud.
func (a *app) phalaCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "phala",
		Short: "Phala Cloud maintenance: sweep leftover E2E KMS CVMs",
	}
	c.AddCommand(a.phalaSweepCommand())
	return c
}

func (a *app) phalaSweepCommand() *cobra.Command {
	var olderThan time.Duration
	c := &cobra.Command{
		Use:   "sweep [--older-than 24h]",
		Short: "Delete the E2E KMS CVMs (" + phala.NamePrefix + "*) older than --older-than (default 24h)",
		Long: `Lists the CVMs of the Phala Cloud account ($PHALA_DSTACK_URL, $PHALA_API_KEY) and deletes those
named ` + phala.NamePrefix + `… created more than --older-than ago: leftovers of E2E runs that could not
delete their CVMs (a killed job). Other CVMs are never touched. One [PASS] line per deleted CVM;
--json prints the deleted app ids. Exit 1 when a listing or deletion failed, 2 for bad arguments.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if olderThan <= 0 {
				return outcome.UsageErrorf("phala sweep: --older-than %s: want a positive duration such as 24h", olderThan)
			}
			base, key := a.getenv(envPhalaURL), a.getenv(envPhalaAPIKey)
			if base == "" || key == "" {
				return outcome.UsageErrorf("phala sweep: needs $%s and $%s", envPhalaURL, envPhalaAPIKey)
			}
			client, err := phala.New(base, key, phala.Options{})
			if err != nil {
				return err
			}
			deleted, err := phala.Sweep(cmd.Context(), client, olderThan, time.Now())
			for _, id := range deleted {
				a.log.Passf("phala sweep: deleted the CVM of app %s", id)
			}
			a.log.Infof("phala sweep: deleted %d CVM(s) older than %s", len(deleted), olderThan)
			if a.json {
				if jerr := a.printJSON(map[string]any{"deleted": deleted}); jerr != nil && err == nil {
					err = jerr
				}
			}
			return err
		},
	}
	c.Flags().DurationVar(&olderThan, "older-than", phala.SweepAge, "minimum age of a CVM to delete")
	return c
}
