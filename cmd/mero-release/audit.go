package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/calimero-network/mero-release/pipeline/audit"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/sign"
)

// auditCommand is `mero-release audit`: the release auditor (SPEC §6).
func (a *app) auditCommand() *cobra.Command {
	var tagText, storeSpec, repository, workflow, refPattern, issuer, keyPath, trustedRoot, summary, identity, repoDir string
	c := &cobra.Command{
		Use:   "audit --tag T --store dir:PATH|github:OWNER/REPO [--key cosign.pub | --certificate-identity ID | --repository OWNER/REPO]",
		Short: "Audit a release: asset completeness, signatures, checksums, attestation policies",
		Long: `Audit the release --tag in --store with the four checks of the release auditor:
asset completeness (the family's asset list; a missing asset is exit 11), signature validity
(every Sigstore bundle re-verified against its asset and signed by the expected identity),
checksum consistency (every asset downloaded once and hashed against checksums.sha256) and,
for KMS releases, policy validation (schema, measurements, allowed_tcb_status, no
policy_not_ready in a stable or hotfix release, profile isolation).

Expected signer, always from the caller or the repository, never from the store audited:
keyless, the workflow --workflow (default: the family's release workflow) of --repository
(default $GITHUB_REPOSITORY) at a ref matching --ref-pattern (default refs/tags/<tag>), issued
by --issuer, or all of it as one --certificate-identity
https://github.com/OWNER/REPO/.github/workflows/FILE@REF; or, for key-signed releases, --key,
else the key the repository pins as ` + audit.PinnedKeyFile + ` (under --repo-dir). Without any
of these the audit is a usage error (2). Keyless verification needs a trusted root:
--trusted-root trusted_root.json, else the public Sigstore root through TUF (network).

Every finding is a [PASS]/[FAIL] line on stderr; --json prints the JSON report on stdout;
--summary FILE (default $GITHUB_STEP_SUMMARY) appends a Markdown summary. Exit 0 when every
check passes, 11 when an asset is missing, else 10.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tag, err := parseTagFlag(cmd, tagText)
			if err != nil {
				return err
			}
			cfg := audit.Config{Workflow: workflow, RefPattern: refPattern, Issuer: issuer, Log: a.log}
			if identity != "" {
				if keyPath != "" || repository != "" || workflow != "" || refPattern != "" {
					return outcome.UsageErrorf("audit: --certificate-identity replaces --key, --repository, --workflow and --ref-pattern")
				}
				id, err := audit.ParseCertificateIdentity(identity)
				if err != nil {
					return fmt.Errorf("audit: --certificate-identity: %w", err)
				}
				cfg.Repository, cfg.Workflow, cfg.RefPattern = id.Repository, id.Workflow, id.RefPattern
			}
			if keyPath == "" && cfg.Repository == "" && a.envOr(repository, envGitHubRepository) == "" {
				pinned := filepath.Join(repoDir, filepath.FromSlash(audit.PinnedKeyFile))
				if _, err := os.Stat(pinned); err != nil {
					return outcome.UsageErrorf("audit: no expected signer: %s", audit.NoSignerHint)
				}
				if workflow != "" || refPattern != "" || issuer != "" {
					return outcome.UsageErrorf("audit: --workflow, --ref-pattern and --issuer need --repository or --certificate-identity")
				}
				keyPath = pinned
				a.log.Infof("audit: expected signer: the key the repository pins (%s)", pinned)
			}
			switch {
			case cfg.Repository != "": // from --certificate-identity
			case keyPath != "":
				if repository != "" || workflow != "" || refPattern != "" || issuer != "" {
					return outcome.UsageErrorf("audit: --key replaces --repository, --workflow, --ref-pattern and --issuer")
				}
				pemBytes, err := os.ReadFile(keyPath)
				if errors.Is(err, fs.ErrNotExist) {
					return outcome.UsageErrorf("audit: --key %s: file not found", keyPath)
				} else if err != nil {
					return fmt.Errorf("audit: %w", err)
				}
				if cfg.PublicKey, err = sign.LoadPublicKey(pemBytes); err != nil {
					return fmt.Errorf("audit: --key %s: %w", keyPath, err)
				}
			default:
				cfg.Repository = a.envOr(repository, envGitHubRepository)
			}
			switch {
			case trustedRoot != "":
				tr, err := sign.LoadTrustedRoot(trustedRoot)
				if err != nil {
					return err
				}
				cfg.TrustedRoot = tr
			case keyPath == "":
				tr, err := sign.PublicGoodTrustedRoot(cmd.Context(), sign.TUFOptions{})
				if err != nil {
					return err
				}
				cfg.TrustedRoot = tr
			}
			st, err := a.openStore(cmd, storeSpec)
			if err != nil {
				return err
			}
			rep, err := audit.Audit(cmd.Context(), st, tag, cfg)
			if rep == nil {
				return err
			}
			if path := a.envOr(summary, envStepSummary); path != "" {
				if werr := appendFile(path, []byte(rep.Markdown()+"\n")); werr != nil {
					a.log.Errorf("audit: write summary %s: %v", path, werr)
					return reported(errors.Join(err, werr))
				}
			}
			if a.json {
				if jerr := a.printJSON(rep); jerr != nil {
					a.log.Errorf("%v", jerr)
					return reported(errors.Join(err, jerr))
				}
			}
			return reported(err)
		},
	}
	f := c.Flags()
	f.StringVar(&tagText, "tag", "", "release tag, e.g. mero-kms-v1.2.0")
	f.StringVar(&storeSpec, "store", "", "release store: dir:PATH or github:OWNER/REPO")
	f.StringVar(&repository, "repository", "", "repository of the signing workflow, OWNER/REPO (default $GITHUB_REPOSITORY)")
	f.StringVar(&workflow, "workflow", "", "signing workflow file (default: the family's release workflow)")
	f.StringVar(&refPattern, "ref-pattern", "", "regular expression for the signing run's git ref; <tag> stands for the tag (default "+audit.DefaultRefPattern+")")
	f.StringVar(&issuer, "issuer", "", "expected OIDC issuer (default "+audit.GitHubIssuer+")")
	f.StringVar(&keyPath, "key", "", "public key (cosign.pub) of a key-signed release, instead of a keyless identity")
	f.StringVar(&trustedRoot, "trusted-root", "", "Sigstore trusted_root.json (default for keyless: the public root via TUF)")
	f.StringVar(&summary, "summary", "", "append a Markdown summary to this file (default $GITHUB_STEP_SUMMARY)")
	f.StringVar(&identity, "certificate-identity", "", "keyless signer as one identity: https://github.com/OWNER/REPO/.github/workflows/FILE@REF (<tag> in REF stands for the tag)")
	f.StringVar(&repoDir, "repo-dir", ".", "repository whose pinned key ("+audit.PinnedKeyFile+") is the signer when no other is given")
	return c
}

// appendFile appends data to path, creating it (as $GITHUB_STEP_SUMMARY is used).
func appendFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
