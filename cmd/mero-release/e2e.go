package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/calimero-network/mero-release/examples/kms"
	"github.com/calimero-network/mero-release/examples/kms/local"
	"github.com/calimero-network/mero-release/examples/kms/server"
	"github.com/calimero-network/mero-release/pipeline/catalog"
	"github.com/calimero-network/mero-release/pipeline/e2e"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/store/dir"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
	"github.com/calimero-network/mero-release/pipeline/vm/vmsim"
)

// kmsCommand is `mero-release kms`: the sample KMS (examples/kms).
func (a *app) kmsCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "kms",
		Short: "The sample KMS (examples/kms): serve it as a local process",
	}
	c.AddCommand(a.kmsServeCommand(), a.kmsComposeCommand())
	return c
}

func (a *app) kmsComposeCommand() *cobra.Command {
	var image string
	var plain bool
	c := &cobra.Command{
		Use:   "compose --image NAME@sha256:DIGEST [--docker-compose]",
		Short: "Print the KMS's dstack app-compose (or docker-compose.yaml) running an image pinned by digest",
		Long: `Prints the sample KMS's dstack app-compose as canonical JSON, its docker-compose.yaml
rendered with --image (which must be pinned by digest). The app-compose is what the KMS
measurement hashes (its SHA-256 is the compose hash dstack extends into RTMR3); --json prints
{"image", "compose_hash"} instead. Exit 2 for an unpinned image.`,
		Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if image == "" {
				return outcome.UsageErrorf("kms compose: --image is required (NAME@sha256:<64 hex>)")
			}
			if plain {
				out, err := kms.RenderCompose(image)
				if err != nil {
					return err
				}
				_, err = fmt.Fprint(a.stdout, out)
				return err
			}
			app, err := kms.AppCompose(image)
			if err != nil {
				return err
			}
			if a.json {
				hash, err := kms.ComposeHash(image)
				if err != nil {
					return err
				}
				return a.printJSON(map[string]string{"image": image, "compose_hash": hash})
			}
			_, err = fmt.Fprintf(a.stdout, "%s\n", app)
			return err
		},
	}
	c.Flags().StringVar(&image, "image", "", "the KMS image, pinned by digest (required)")
	c.Flags().BoolVar(&plain, "docker-compose", false, "print the rendered docker-compose.yaml instead of the app-compose")
	return c
}

func (a *app) kmsServeCommand() *cobra.Command {
	var f struct {
		version, profile, policyURL, policySHA, listen, secretFile, quoteSource, trustedRoot, composeHash, ttl, maxChallenges string
	}
	c := &cobra.Command{
		Use:   "serve [--version V --profile P --policy-url URL] [flags]",
		Short: "Run the sample KMS until interrupted (flags mirror the MERO_KMS_* variables)",
		Long: `Runs the sample KMS (GET /health, POST /attest, POST /challenge, POST /get-key; see
examples/kms/README.md) until SIGINT/SIGTERM. Every flag overrides its MERO_KMS_* variable:
--version MERO_KMS_VERSION, --profile MERO_KMS_PROFILE, --policy-url MERO_KMS_POLICY_URL
(http(s):// or file://, fetched once at start-up), --policy-sha256 MERO_KMS_POLICY_SHA256,
--listen MERO_KMS_LISTEN (default 127.0.0.1:8080), --root-secret-file MERO_KMS_ROOT_SECRET_FILE,
--quote-source MERO_KMS_QUOTE_SOURCE (simulator: a simulated dstack VM; configfs: a real TDX guest),
--trusted-root MERO_KMS_TRUSTED_ROOT, --compose-hash MERO_KMS_COMPOSE_HASH,
--challenge-ttl MERO_KMS_CHALLENGE_TTL, --max-challenges MERO_KMS_MAX_CHALLENGES.
The KMS refuses to start (exit 10) when the policy's SHA-256, kms_version or profile does not
match; a bad flag is exit 2.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			get := func(v string) string {
				switch v {
				case server.EnvVersion:
					return a.envOr(f.version, v)
				case server.EnvProfile:
					return a.envOr(f.profile, v)
				case server.EnvPolicyURL:
					return a.envOr(f.policyURL, v)
				case server.EnvPolicySHA256:
					return a.envOr(f.policySHA, v)
				case server.EnvListen:
					return a.envOr(f.listen, v)
				case server.EnvRootSecretFile:
					return a.envOr(f.secretFile, v)
				case server.EnvQuoteSource:
					return a.envOr(f.quoteSource, v)
				case server.EnvTrustedRoot:
					return a.envOr(f.trustedRoot, v)
				case server.EnvComposeHash:
					return a.envOr(f.composeHash, v)
				case server.EnvChallengeTTL:
					return a.envOr(f.ttl, v)
				case server.EnvMaxChallenges:
					return a.envOr(f.maxChallenges, v)
				}
				return a.getenv(v)
			}
			cfg, err := server.ConfigFromEnv(get)
			if err != nil {
				return err
			}
			hash, err := kms.ComposeHash(kms.LocalImage)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			r, err := server.Start(ctx, cfg, hash, a.log)
			if err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				a.log.Infof("kms: stopping")
				if err := r.Close(); err != nil {
					return fmt.Errorf("kms: stop: %w", err)
				}
				return <-r.Done()
			case err := <-r.Done():
				if err != nil {
					return fmt.Errorf("kms: serve: %w", err)
				}
				return nil
			}
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.version, "version", "", "KMS version; must equal the policy's kms_version ($MERO_KMS_VERSION)")
	fl.StringVar(&f.profile, "profile", "", "KMS profile; must equal the policy's profile ($MERO_KMS_PROFILE)")
	fl.StringVar(&f.policyURL, "policy-url", "", "attestation policy URL: http(s)://, file:// or data: ($MERO_KMS_POLICY_URL)")
	fl.StringVar(&f.policySHA, "policy-sha256", "", "optional SHA-256 pin of the policy bytes ($MERO_KMS_POLICY_SHA256)")
	fl.StringVar(&f.listen, "listen", "", "listen address, default 127.0.0.1:8080 ($MERO_KMS_LISTEN)")
	fl.StringVar(&f.secretFile, "root-secret-file", "", "key-derivation root secret file, >= 32 bytes; unset: development secret ($MERO_KMS_ROOT_SECRET_FILE)")
	fl.StringVar(&f.quoteSource, "quote-source", "", "simulator (default) or configfs ($MERO_KMS_QUOTE_SOURCE)")
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "PEM roots node quotes must chain to ($MERO_KMS_TRUSTED_ROOT)")
	fl.StringVar(&f.composeHash, "compose-hash", "", "app-compose hash extended into the simulated VM's RTMR3 ($MERO_KMS_COMPOSE_HASH)")
	fl.StringVar(&f.ttl, "challenge-ttl", "", "challenge lifetime, e.g. 60s ($MERO_KMS_CHALLENGE_TTL)")
	fl.StringVar(&f.maxChallenges, "max-challenges", "", "cap on outstanding challenges, default 4096 ($MERO_KMS_MAX_CHALLENGES)")
	return c
}

// e2eCommand is `mero-release e2e`: the post-release E2E suite and its guardrails (SPEC §7).
func (a *app) e2eCommand() *cobra.Command {
	var kmsRelease, nodeRelease, storeFlag, catalogFlag, nodeImage, imageBase, trustedRoot, profiles, staleProfile, runID, provider, kmsBinary, kmsProvider, policyTemplate string
	var checkKMS, advisory bool
	c := &cobra.Command{
		Use:   "e2e --kms-release TAG --node-release TAG --store dir:PATH [--catalog F] [--json]",
		Short: "Post-release E2E: node suite and guardrails A–D (exit 10 on a blocking failure)",
		Long: `Runs the mero-tee node suite against KMS instances started with the KMS release's attestation
policies and its recorded deployment (compose hash) — the --kms-binary executable as processes on
127.0.0.1, or, without it, the sample KMS in this process: deploy a VM from the node release's image (--provider
simulator: the TDX simulator), boot verification, KMS attestation (POST /attest), key release
(challenge/get-key), cleanup on every path. Then the guardrails:
  A cross-version            every catalog pair with either released version works
  B profile isolation        a debug node gets 403 PolicyViolation from the locked-read-only policy
  C stale policy             the previous KMS policy refuses the new node (measurement mismatch),
                             the released policy accepts it
  D measurement consistency  observed MRTD/RTMR0–3 equal the node release's published-mrtds.json
Node images come from each node release's node-image-manifest.json (profiles.<p>.image), or
from --node-image, a template with {version} and {profile}. --catalog defaults to
$COMPATIBILITY_CATALOG_PATH, then ./compatibility-catalog.json when present; without a catalog
guardrail A is skipped. [PASS]/[FAIL] lines go to stderr, the JSON report (--json) to stdout.
Exit 0 when every check passes, 10 on a blocking failure — a missing asset of a release under
test included, named in its case — (0 with --advisory, for rc releases), 2 for bad arguments or
a release missing from the store.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case kmsRelease == "":
				return outcome.UsageErrorf("e2e: --kms-release is required (e.g. mero-kms-v1.2.0)")
			case nodeRelease == "":
				return outcome.UsageErrorf("e2e: --node-release is required (e.g. mero-tee-v1.2.0)")
			case storeFlag == "":
				return outcome.UsageErrorf("e2e: --store is required (dir:PATH)")
			case provider != "simulator":
				return outcome.UsageErrorf("e2e: --provider %q: only simulator is available to this command", provider)
			}
			st, err := e2eOpenStore(storeFlag)
			if err != nil {
				return err
			}
			cat, catPath, err := a.e2eCatalog(catalogFlag)
			if err != nil {
				return err
			}
			auth, err := tdxsim.NewAuthority([]byte(tdxsim.DefaultSeed))
			if err != nil {
				return err
			}
			roots := auth.RootPool()
			if trustedRoot != "" {
				if roots, err = tdxRootPool(trustedRoot); err != nil {
					return err
				}
			}
			o := e2e.Options{
				Store: st, KMSRelease: kmsRelease, NodeRelease: nodeRelease, Catalog: cat,
				Provider: vmsim.New(auth), Images: e2e.ManifestImages{Store: st, BaseDir: imageBase}, NodeRoots: roots,
				KMS:                  &local.InProcessKMS{Authority: auth, NodeRoots: roots, Log: a.log},
				CheckKMSMeasurements: checkKMS, RunID: runID, Log: a.log,
			}
			if kmsBinary != "" {
				o.KMS = local.Process(kmsBinary, auth, "", a.log)
			}
			switch kmsProvider {
			case kmsProviderLocal:
			case kmsProviderPhala:
				if o.KMS, err = a.phalaKMS("e2e", policyTemplate, "", runID); err != nil {
					return err
				}
			default:
				return outcome.UsageErrorf("e2e: --kms-provider %q: want %s or %s", kmsProvider, kmsProviderLocal, kmsProviderPhala)
			}
			if nodeImage != "" {
				o.Images = e2e.TemplateImages(nodeImage)
			}
			if profiles != "" {
				for _, p := range strings.Split(profiles, ",") {
					prof, err := release.ParseProfile(strings.TrimSpace(p))
					if err != nil {
						return fmt.Errorf("--profiles: %w", err)
					}
					o.Profiles = append(o.Profiles, prof)
				}
			}
			if staleProfile != "" {
				if o.StaleProfile, err = release.ParseProfile(staleProfile); err != nil {
					return fmt.Errorf("--stale-profile: %w", err)
				}
			}
			if catPath != "" {
				a.log.Infof("e2e: catalog %s", catPath)
			}
			start := time.Now()
			rep, err := e2e.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			if a.json {
				if err := a.printJSON(rep); err != nil {
					return err
				}
			}
			failed := rep.Failed()
			if len(failed) == 0 {
				a.log.Passf("E2E %s ↔ %s: %d checks passed in %s", rep.KMSRelease, rep.NodeRelease, len(rep.Checks), time.Since(start).Round(time.Millisecond))
				return nil
			}
			if advisory {
				a.log.Warnf("E2E %s ↔ %s: %d check(s) failed; advisory run (rc): not blocking", rep.KMSRelease, rep.NodeRelease, len(failed))
				return nil
			}
			a.log.Failf("E2E %s ↔ %s: %d check(s) failed: the release is blocked", rep.KMSRelease, rep.NodeRelease, len(failed))
			return reported(rep.Err())
		},
	}
	fl := c.Flags()
	fl.StringVar(&kmsRelease, "kms-release", "", "KMS release tag, e.g. mero-kms-v1.2.0 (required)")
	fl.StringVar(&nodeRelease, "node-release", "", "node-image release tag, e.g. mero-tee-v1.2.0 (required)")
	fl.StringVar(&storeFlag, "store", "", "release store: dir:PATH (required)")
	fl.StringVar(&catalogFlag, "catalog", "", "compatibility catalog (default: $COMPATIBILITY_CATALOG_PATH, then ./compatibility-catalog.json if present)")
	fl.StringVar(&provider, "provider", "simulator", "VM provider: simulator")
	fl.StringVar(&nodeImage, "node-image", "", "node image template with {version} and {profile} (default: each release's node-image-manifest.json)")
	fl.StringVar(&imageBase, "image-base", "", "directory relative image paths of node-image-manifest.json are resolved against")
	fl.StringVar(&trustedRoot, "trusted-root", "", "PEM roots node quotes must chain to (default: the TDX simulator's root)")
	fl.StringVar(&profiles, "profiles", "", "comma-separated profiles of the node suite (default: all three)")
	fl.StringVar(&staleProfile, "stale-profile", "", "profile of guardrail C (default: locked-read-only)")
	fl.StringVar(&runID, "run-id", "", "run id labelling the VMs (default: random)")
	fl.StringVar(&kmsProvider, "kms-provider", kmsProviderLocal, kmsProviderHelp)
	fl.StringVar(&policyTemplate, "policy-url-template", "", "with --kms-provider phala: URL of a release asset the CVM fetches its policy from, with {tag} and {file} ($MERO_KMS_POLICY_URL_TEMPLATE; default: the policy inline in the CVM's encrypted environment)")
	fl.StringVar(&kmsBinary, "kms-binary", "", "KMS executable to run as processes on 127.0.0.1 (default: the sample KMS in this process)")
	fl.BoolVar(&checkKMS, "check-kms-measurements", false, "also compare the KMS quote with the KMS release's published-mrtds.json")
	fl.BoolVar(&advisory, "advisory", false, "report failures but exit 0 (E2E is advisory for rc releases)")
	return c
}

// e2eOpenStore opens a dir:PATH store that must already exist.
func e2eOpenStore(spec string) (*dir.Store, error) {
	root, ok := strings.CutPrefix(spec, "dir:")
	if !ok || root == "" {
		return nil, outcome.UsageErrorf("--store %q: want dir:PATH (a directory in the local release-store layout)", spec)
	}
	if info, err := os.Stat(root); err != nil || !info.IsDir() {
		return nil, outcome.UsageErrorf("--store %s: %s is not a directory", spec, root)
	}
	return dir.New(root)
}

// e2eCatalog loads the catalog named by the flag, $COMPATIBILITY_CATALOG_PATH or the default
// file when it exists; none at all is (nil, "", nil).
func (a *app) e2eCatalog(flag string) (*catalog.Catalog, string, error) {
	path := a.envOr(flag, "COMPATIBILITY_CATALOG_PATH")
	if path == "" {
		if _, err := os.Stat(catalog.DefaultFile); errors.Is(err, os.ErrNotExist) {
			a.log.Warnf("e2e: no compatibility catalog (--catalog, $COMPATIBILITY_CATALOG_PATH, ./%s): guardrail A will be skipped", catalog.DefaultFile)
			return nil, "", nil
		}
		path = catalog.DefaultFile
	}
	c, err := catalog.LoadFile(path)
	if err != nil {
		if _, statErr := os.Stat(path); statErr != nil {
			return nil, "", outcome.UsageErrorf("--catalog %s: %v", path, statErr)
		}
		return nil, "", err
	}
	return c, path, nil
}
