package main

import (
	"context"
	"strings"

	"github.com/calimero-network/mero-release/examples/kms"
	"github.com/calimero-network/mero-release/pipeline/e2e"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/phala"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx"
)

// The environment of --kms-provider phala (SPEC §2: PHALA_DSTACK_URL is a repository
// variable; the key is a secret).
const (
	envPhalaURL       = "PHALA_DSTACK_URL"
	envPhalaAPIKey    = "PHALA_API_KEY"
	envPolicyTemplate = "MERO_KMS_POLICY_URL_TEMPLATE"
)

// KMS providers of `mero-release e2e`.
const (
	kmsProviderLocal = "local"
	kmsProviderPhala = "phala"
)

// phalaKMS is the launcher of --kms-provider phala: each KMS a Phala Cloud CVM running the
// release's image, fetching its policy from the template's URL ({tag}, {file}: the release
// asset), its quotes rooted in Intel's SGX root.
func (a *app) phalaKMS(policyTemplate, runID string) (*e2e.PhalaKMS, error) {
	base, key := a.getenv(envPhalaURL), a.getenv(envPhalaAPIKey)
	policyTemplate = a.envOr(policyTemplate, envPolicyTemplate)
	switch {
	case base == "":
		return nil, outcome.UsageErrorf("e2e: --kms-provider phala needs $%s (the Phala Cloud API, …/api/v1)", envPhalaURL)
	case key == "":
		return nil, outcome.UsageErrorf("e2e: --kms-provider phala needs $%s", envPhalaAPIKey)
	case !strings.Contains(policyTemplate, "{tag}") || !strings.Contains(policyTemplate, "{file}"):
		return nil, outcome.UsageErrorf("e2e: --kms-provider phala needs --policy-url-template (or $%s) with {tag} and {file}: where a CVM downloads a release's policy", envPolicyTemplate)
	}
	client, err := phala.New(base, key, phala.Options{})
	if err != nil {
		return nil, err
	}
	roots, err := tdx.IntelRootPool()
	if err != nil {
		return nil, err
	}
	return &e2e.PhalaKMS{
		Client: client, AppCompose: kms.AppCompose, TrustedRoots: roots, RunID: runID, Log: a.log,
		PolicyURL: func(_ context.Context, p *policy.Loaded) (string, error) {
			tag := release.KMS.TagPrefix() + p.Policy.KMSVersion
			return strings.NewReplacer("{tag}", tag, "{file}", p.Policy.Profile.PolicyFile()).Replace(policyTemplate), nil
		},
	}, nil
}
