package main

import (
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/calimero-network/mero-release/pipeline/e2e"
	"github.com/calimero-network/mero-release/pipeline/flow"
	"github.com/calimero-network/mero-release/pipeline/migrate"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/tdx"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
	"github.com/calimero-network/mero-release/pipeline/vm/vmsim"
)

// envGitHubServerURL is the GitHub web URL release downloads come from (set by GitHub Actions).
const envGitHubServerURL = "GITHUB_SERVER_URL"

// trustFlags name the expected signer of a KMS release.
type trustFlags struct {
	key, identity, identityRE, issuer, issuerRE, trustedRoot, tufCache string
}

func (f *trustFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.key, "key", "", "public key (cosign.pub) of a key-signed release")
	fl.StringVar(&f.identity, "certificate-identity", "", "expected signer identity (certificate SAN), e.g. https://github.com/OWNER/REPO/.github/workflows/release-kms-phala.yaml@refs/tags/mero-kms-v1.3.0")
	fl.StringVar(&f.identityRE, "certificate-identity-regexp", "", "expected signer identity, Go regexp")
	fl.StringVar(&f.issuer, "certificate-oidc-issuer", "", "expected OIDC issuer (GitHub Actions: https://token.actions.githubusercontent.com)")
	fl.StringVar(&f.issuerRE, "certificate-oidc-issuer-regexp", "", "expected OIDC issuer, Go regexp")
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "Sigstore trusted_root.json for keyless bundles (default: the public Sigstore root through TUF)")
	fl.StringVar(&f.tufCache, "tuf-cache", "", "TUF cache directory for the public root (default ~/.sigstore/root)")
}

// trust builds the expected signer and its verifier from the flags.
func (f *trustFlags) trust(cmd *cobra.Command) (migrate.Trust, error) {
	keyless := f.identity != "" || f.identityRE != "" || f.issuer != "" || f.issuerRE != ""
	name := cmd.CommandPath()
	switch {
	case f.key != "" && keyless:
		return migrate.Trust{}, outcome.UsageErrorf("%s: give either --key or the certificate identity flags, not both", name)
	case f.key != "":
		pemBytes, err := os.ReadFile(f.key)
		if err != nil {
			return migrate.Trust{}, outcome.UsageErrorf("%s: --key: %v", name, err)
		}
		pub, err := sign.LoadPublicKey(pemBytes)
		if err != nil {
			return migrate.Trust{}, fmt.Errorf("--key %s: %w", f.key, err)
		}
		var trusted root.TrustedMaterial
		if f.trustedRoot != "" {
			tr, err := sign.LoadTrustedRoot(f.trustedRoot)
			if err != nil {
				return migrate.Trust{}, err
			}
			trusted = tr
		}
		return migrate.Trust{Policy: sign.Policy{PublicKey: pub}, Verifier: sign.NewVerifier(trusted)}, nil
	case !keyless:
		return migrate.Trust{}, outcome.UsageErrorf("%s: give the release's signer: --key cosign.pub, or --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp]", name)
	case f.identity == "" && f.identityRE == "", f.issuer == "" && f.issuerRE == "":
		return migrate.Trust{}, outcome.UsageErrorf("%s: a keyless signer needs both --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp]", name)
	}
	var trusted root.TrustedMaterial
	if f.trustedRoot != "" {
		tr, err := sign.LoadTrustedRoot(f.trustedRoot)
		if err != nil {
			return migrate.Trust{}, err
		}
		trusted = tr
	} else {
		tr, err := sign.PublicGoodTrustedRoot(cmd.Context(), sign.TUFOptions{CacheDir: f.tufCache})
		if err != nil {
			return migrate.Trust{}, err
		}
		trusted = tr
	}
	id := &sign.Identity{SAN: f.identity, SANRegexp: f.identityRE, Issuer: f.issuer, IssuerRegexp: f.issuerRE}
	return migrate.Trust{Policy: sign.Policy{Identity: id}, Verifier: sign.NewVerifier(trusted)}, nil
}

// failed logs a verification failure or missing asset as [FAIL] and marks it reported; other
// errors are returned for run to print.
func (a *app) failed(err error) error {
	if c := outcome.Code(err); c == outcome.VerificationFailed || c == outcome.MissingAsset {
		a.log.Failf("%v", err)
		return reported(err)
	}
	return err
}

// migrateProfile parses --profile, defaulting to $MERO_KMS_PROFILE.
func (a *app) migrateProfile(cmd *cobra.Command, flag string) (release.Profile, error) {
	p := a.envOr(flag, policy.EnvKMSProfile)
	if p == "" {
		return "", outcome.UsageErrorf("%s: --profile is required (or $%s): one of %s", cmd.CommandPath(), policy.EnvKMSProfile, strings.Join(release.ProfileNames(), ", "))
	}
	prof, err := release.ParseProfile(p)
	if err != nil {
		return "", fmt.Errorf("--profile: %w", err)
	}
	return prof, nil
}

// migratePolicyCommand is `mero-release migrate-policy` (SPEC §10, steps 1–3).
func (a *app) migratePolicyCommand() *cobra.Command {
	var kmsVersion, nodeVersion, profile, storeSpec, catalogFlag, urlBase, output, workDir, imageArchive string
	var allowNotReady bool
	var tf trustFlags
	c := &cobra.Command{
		Use:   "migrate-policy --kms-version V --node-version V --profile P --store dir:PATH|github:OWNER/REPO (--key cosign.pub | --certificate-identity I --certificate-oidc-issuer U [--trusted-root F])",
		Short: "Prepare a KMS policy migration: verify the target pair's policy and print the KMS environment to set",
		Long: `Step 1–3 of the KMS policy migration (SPEC §10, docs/operators.md):
  1. the target pair kms --kms-version ↔ node image --node-version must be listed as tested in
     the compatibility catalog for --profile (--catalog, default $COMPATIBILITY_CATALOG_PATH or
     ./compatibility-catalog.json); otherwise exit 10 naming the pair;
  2. attestation-policy-{profile}.json is downloaded from the release mero-kms-v<kms-version>,
     its Sigstore bundle verified against the expected signer (--key, or the release workflow's
     certificate identity and issuer), and its SHA-256 checked against the release's signed
     checksums.sha256; the policy must load as the KMS loads it, must not be policy_not_ready
     (unless --allow-not-ready) and must accept the node release's published measurements;
  3. the environment to set is printed on stdout as export lines (--json: a JSON object):
     MERO_KMS_VERSION, MERO_KMS_PROFILE, MERO_KMS_POLICY_URL (the release asset's download URL,
     or --policy-url-base/<tag>/<asset> for a mirror) and MERO_KMS_POLICY_SHA256.
     --json also gives the image the release recorded (kms_image, by digest), its app-compose
     hash, pull_image when a registry serves that image by digest, and with --work the OCI
     archive the release run kept of that very image (kept_image; --image checks a given
     archive is that image instead).
Then restart the KMS instances one by one and run migrate-check.
Exit 0 ready, 10 verification failure, 11 release or asset missing, 2 bad arguments.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case kmsVersion == "":
				return outcome.UsageErrorf("migrate-policy: --kms-version is required (the target KMS release, e.g. 1.3.0)")
			case nodeVersion == "":
				return outcome.UsageErrorf("migrate-policy: --node-version is required (the node image the KMS must serve, e.g. 1.3.0)")
			}
			prof, err := a.migrateProfile(cmd, profile)
			if err != nil {
				return err
			}
			trust, err := tf.trust(cmd)
			if err != nil {
				return err
			}
			st, err := a.openStore(cmd, storeSpec)
			if err != nil {
				return err
			}
			catPath := a.catalogFile(catalogFlag)
			cat, err := a.catalogLoad(catPath)
			if err != nil {
				return err
			}
			opts := migrate.PolicyOptions{
				Store: st, Catalog: cat, KMSVersion: kmsVersion, NodeVersion: nodeVersion, Profile: prof, Trust: trust,
				Locator:       migrate.AssetLocator{Base: urlBase, StoreSpec: storeSpec, ServerURL: a.getenv(envGitHubServerURL)},
				AllowNotReady: allowNotReady, Log: a.log,
			}
			if workDir != "" {
				opts.KeptImages = flow.ImagesDir(workDir, release.KMS.TagPrefix()+kmsVersion)
			}
			opts.ImageArchive = imageArchive
			res, err := migrate.MigratePolicy(cmd.Context(), opts)
			if err != nil {
				return a.failed(err)
			}
			if output != "" {
				if err := writeFileAtomic(output, res.Policy); err != nil {
					return err
				}
				a.log.Infof("wrote the verified policy to %s", output)
			}
			a.log.Passf("migration target verified: kms %s (%s) for node image %s; set the variables and restart the KMS instances one at a time", kmsVersion, prof, nodeVersion)
			if a.json {
				return a.printJSON(res)
			}
			_, err = fmt.Fprint(a.stdout, res.Environment.Exports())
			return err
		},
	}
	fl := c.Flags()
	fl.StringVar(&kmsVersion, "kms-version", "", "target KMS version, e.g. 1.3.0 (required)")
	fl.StringVar(&nodeVersion, "node-version", "", "node-image version the KMS must serve, e.g. 1.3.0 (required)")
	fl.StringVar(&profile, "profile", "", "KMS profile: debug, debug-read-only, locked-read-only (default $MERO_KMS_PROFILE)")
	fl.StringVar(&storeSpec, "store", "", "release store: dir:PATH or github:OWNER/REPO (token $GITHUB_TOKEN)")
	fl.StringVar(&catalogFlag, "catalog", "", "compatibility catalog (default $COMPATIBILITY_CATALOG_PATH or compatibility-catalog.json)")
	fl.StringVar(&urlBase, "policy-url-base", "", "serve the policy from this mirror: MERO_KMS_POLICY_URL = BASE/<tag>/<asset> (default: the store's download URL)")
	fl.BoolVar(&allowNotReady, "allow-not-ready", false, "accept a policy_not_ready policy (release candidates only: the KMS then releases keys to any node)")
	fl.StringVarP(&output, "output", "o", "", "also write the verified policy to this file")
	fl.StringVar(&workDir, "work", "", "the work directory of the run that released the KMS: report its kept archive of the released image (kept_image)")
	fl.StringVar(&imageArchive, "image", "", "an OCI archive that must be the released image of the profile: its digest is checked (exit 10 otherwise) and reported as kept_image")
	tf.register(fl)
	return c
}

// migrateCheckCommand is `mero-release migrate-check` (SPEC §10, the verification after the restart).
func (a *app) migrateCheckCommand() *cobra.Command {
	var kmsURL, profile, nodeRelease, nodeVersion, storeSpec, trustedRoot, imageBase, nodeImage, kmsVersion, policySHA, runID string
	c := &cobra.Command{
		Use:   "migrate-check --kms-url URL --profile P (--node-release TAG | --node-version V) --store dir:PATH|github:OWNER/REPO [--trusted-root F]",
		Short: "Post-migration check: the KMS attests with a nonce-bound quote and releases a key to a node of the release",
		Long: `Step 5 of the KMS policy migration (SPEC §10): checks a migrated KMS at --kms-url.
  health             GET /health reports --profile, the expected version (--kms-version,
                     default $MERO_KMS_VERSION) and a ready policy
  KMS attestation    POST /attest with a fresh nonce: the quote verifies against --trusted-root
                     (PEM roots; "intel" for Intel's SGX root; default: the TDX simulator's root)
                     and its report data binds the nonce; the KMS reports the expected version,
                     profile and policy SHA-256 (--policy-sha256, default $MERO_KMS_POLICY_SHA256)
  deploy, boot       a node is booted in the TDX simulator from --node-release's image of the
  verification       profile (its node-image-manifest.json, or --node-image) and its quote verified
  key release        challenge/get-key from that node must return a key
  cleanup            the node VM is deleted on every path
[PASS]/[FAIL] per step on stderr; --json prints the report. Exit 0 when every step passes,
10 when one fails, 11 when the node release or its manifest is missing, 2 for bad arguments.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case kmsURL == "":
				return outcome.UsageErrorf("migrate-check: --kms-url is required")
			case nodeRelease != "" && nodeVersion != "":
				return outcome.UsageErrorf("migrate-check: give --node-release or --node-version, not both")
			case nodeRelease == "" && nodeVersion == "":
				return outcome.UsageErrorf("migrate-check: --node-release is required (e.g. mero-tee-v1.3.0)")
			case nodeVersion != "":
				v, err := release.ParseVersion(nodeVersion)
				if err != nil {
					return outcome.UsageErrorf("migrate-check: --node-version: %v", err)
				}
				nodeRelease = release.Node.TagPrefix() + v.String()
			}
			prof, err := a.migrateProfile(cmd, profile)
			if err != nil {
				return err
			}
			st, err := a.openStore(cmd, storeSpec)
			if err != nil {
				return err
			}
			seed := a.getenv("MERO_TDXSIM_SEED")
			if seed == "" {
				seed = tdxsim.DefaultSeed
			}
			auth, err := tdxsim.NewAuthority([]byte(seed))
			if err != nil {
				return err
			}
			var kmsRoots *x509.CertPool
			switch trustedRoot {
			case "":
				kmsRoots = auth.RootPool()
			case "intel":
				if kmsRoots, err = tdx.IntelRootPool(); err != nil {
					return err
				}
			default:
				if kmsRoots, err = tdxRootPool(trustedRoot); err != nil {
					return err
				}
			}
			o := migrate.CheckOptions{
				KMSURL: kmsURL, Profile: prof, NodeRelease: nodeRelease, Store: st,
				Images:   e2e.ManifestImages{Store: st, BaseDir: imageBase},
				Provider: vmsim.New(auth), NodeRoots: auth.RootPool(), KMSRoots: kmsRoots,
				KMSVersion: a.envOr(kmsVersion, policy.EnvKMSVersion), PolicySHA256: a.envOr(policySHA, policy.EnvPolicySHA256),
				RunID: runID, Log: a.log,
			}
			if nodeImage != "" {
				o.Images = e2e.TemplateImages(nodeImage)
			}
			rep, err := migrate.Check(cmd.Context(), o)
			if err != nil {
				return a.failed(err)
			}
			if a.json {
				if err := a.printJSON(rep); err != nil {
					return err
				}
			}
			if err := rep.Err(); err != nil {
				a.log.Failf("post-migration check of %s (%s): %d step(s) failed", kmsURL, prof, countFailed(rep))
				return reported(err)
			}
			a.log.Passf("post-migration check of %s (%s) passed: attested, and a %s node of %s got its key", kmsURL, prof, prof, rep.NodeRelease)
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&kmsURL, "kms-url", "", "the migrated KMS, e.g. https://kms.example.com (required)")
	fl.StringVar(&profile, "profile", "", "the KMS's profile (default $MERO_KMS_PROFILE)")
	fl.StringVar(&nodeRelease, "node-release", "", "node-image release whose image the test node boots, e.g. mero-tee-v1.3.0 (or --node-version)")
	fl.StringVar(&nodeVersion, "node-version", "", "that release's version, e.g. 1.3.0 (instead of --node-release)")
	fl.StringVar(&storeSpec, "store", "", "release store holding the node release: dir:PATH or github:OWNER/REPO")
	fl.StringVar(&trustedRoot, "trusted-root", "", `PEM roots the KMS quote must chain to; "intel" for Intel's SGX root (default: the TDX simulator's root)`)
	fl.StringVar(&imageBase, "image-base", "", "directory relative image paths of node-image-manifest.json are resolved against")
	fl.StringVar(&nodeImage, "node-image", "", "node image template with {version} and {profile} (default: the release's node-image-manifest.json)")
	fl.StringVar(&kmsVersion, "kms-version", "", "version the KMS must report (default $MERO_KMS_VERSION)")
	fl.StringVar(&policySHA, "policy-sha256", "", "policy SHA-256 the KMS must report (default $MERO_KMS_POLICY_SHA256)")
	fl.StringVar(&runID, "run-id", "", "run id labelling the node VM (default: random)")
	return c
}

func countFailed(r *migrate.CheckReport) int {
	n := 0
	for _, s := range r.Steps {
		if s.Status == migrate.Fail {
			n++
		}
	}
	return n
}

// kmsAttestationConfigCommand is `mero-release kms-attestation-config`: the merod side of a KMS
// release (scripts/generate-merod-kms-phala-attestation-config.sh).
func (a *app) kmsAttestationConfigCommand() *cobra.Command {
	var kmsRelease, profile, storeSpec, kmsURL, output string
	var tcb []string
	var tf trustFlags
	c := &cobra.Command{
		Use:   "kms-attestation-config --kms-release TAG --profile P --store dir:PATH|github:OWNER/REPO --kms-url URL (--key cosign.pub | --certificate-identity I --certificate-oidc-issuer U) [-o FILE]",
		Short: "Write the merod config that verifies the KMS: the KMS release's measurements for a profile and its URL",
		Long: `Writes the [tee.kms.phala] section a merod node uses to verify the KMS before it asks for
keys: url = --kms-url, and under [tee.kms.phala.attestation] the KMS release's published
MRTD/RTMR0–3 and compose hash for --profile (from published-mrtds.json, whose Sigstore bundle
and checksums.sha256 entry are verified first), the accepted TCB statuses (--tcb-status,
default UpToDate), kms_version and profile. TOML goes to stdout or -o FILE; --json prints the
values as JSON instead. Exit 10 when verification fails or the release has no record for the
profile, 11 when the release or an asset is missing, 2 for bad arguments.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if kmsRelease == "" {
				return outcome.UsageErrorf("kms-attestation-config: --kms-release is required (e.g. mero-kms-v1.3.0)")
			}
			prof, err := a.migrateProfile(cmd, profile)
			if err != nil {
				return err
			}
			trust, err := tf.trust(cmd)
			if err != nil {
				return err
			}
			st, err := a.openStore(cmd, storeSpec)
			if err != nil {
				return err
			}
			cfg, err := migrate.KMSAttestationConfig(cmd.Context(), migrate.AttestationConfigOptions{
				Store: st, KMSRelease: kmsRelease, Profile: prof, KMSURL: kmsURL, TCBStatus: tcb, Trust: trust, Log: a.log,
			})
			if err != nil {
				return a.failed(err)
			}
			if a.json {
				return a.printJSON(cfg)
			}
			out, err := cfg.TOML()
			if err != nil {
				return err
			}
			if output == "" {
				_, err = a.stdout.Write(out)
				return err
			}
			if err := writeFileAtomic(output, out); err != nil {
				return err
			}
			a.log.Passf("wrote the merod KMS attestation config of %s (%s) to %s", cfg.KMSRelease, prof, output)
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&kmsRelease, "kms-release", "", "KMS release tag, e.g. mero-kms-v1.3.0 (required)")
	fl.StringVar(&profile, "profile", "", "the KMS's profile (default $MERO_KMS_PROFILE)")
	fl.StringVar(&storeSpec, "store", "", "release store: dir:PATH or github:OWNER/REPO")
	fl.StringVar(&kmsURL, "kms-url", "", "the KMS URL the node connects to (required)")
	fl.StringSliceVar(&tcb, "tcb-status", nil, "accepted TCB statuses of the KMS platform, comma-separated (default UpToDate)")
	fl.StringVarP(&output, "output", "o", "", "write the TOML to this file instead of stdout")
	tf.register(fl)
	return c
}
