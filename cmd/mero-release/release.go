package main

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	kms "github.com/calimero-network/mero-release/examples/kms"
	"github.com/calimero-network/mero-release/examples/kms/local"
	"github.com/calimero-network/mero-release/pipeline/atomicfile"
	"github.com/calimero-network/mero-release/pipeline/catalogpr"
	"github.com/calimero-network/mero-release/pipeline/dstack"
	"github.com/calimero-network/mero-release/pipeline/flow"
	"github.com/calimero-network/mero-release/pipeline/ociimage"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/packer"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
	ghstore "github.com/calimero-network/mero-release/pipeline/store/github"
	"github.com/calimero-network/mero-release/pipeline/tdx"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
	"github.com/calimero-network/mero-release/pipeline/vm/vmsim"
	"github.com/calimero-network/mero-release/pipeline/vuln"
)

// releaseFlags are the flags both release pipelines share.
type releaseFlags struct {
	tag, version, counterpart, storeSpec, work, repo, history, notes, repoURL string
	catalog, catalogOut                                                       string
	catalogPR                                                                 bool
	key, fulcioURL, rekorURL, tsaURL, tokenEnv, trustedRoot                   string
	keyless, skipE2E                                                          bool
	provider, runID, kmsProvider, kmsQuoteRoot                                string
	builderImages                                                             []string
	vulnDB, vulnAllowList, failOn                                             string
	gcp                                                                       gcpFlags
}

func (f *releaseFlags) register(c *cobra.Command, family release.Family) {
	fl := c.Flags()
	fl.StringVar(&f.tag, "tag", "", "release tag, e.g. "+family.TagPrefix()+"1.3.0 (required)")
	fl.StringVar(&f.version, "version", "", "the repository's version variable (default $"+family.VersionVariable()+")")
	fl.StringVar(&f.counterpart, "counterpart", "", "version of the "+family.Counterpart().Title()+" release to pair with (default: the newest published)")
	fl.StringVar(&f.storeSpec, "store", "dir:out/releases", "release store: dir:PATH or github:OWNER/REPO (token $GITHUB_TOKEN)")
	fl.StringVar(&f.work, "work", "out/work", "work directory: assembled assets, images, staging store, report.json")
	fl.StringVar(&f.repo, "repo", ".", "git repository whose history feeds the release notes; images and examples are resolved from it")
	fl.StringVar(&f.history, "history", "", "git repository whose history, tags and release-notes/<tag>.md feed the notes and the hotfix rule (default --repo)")
	fl.StringVar(&f.notes, "author-notes", "", "release author's notes (Markdown, ## sections the class requires; default HISTORY/release-notes/<tag>.md, required for stable and hotfix tags)")
	fl.StringVar(&f.repoURL, "repo-url", "", "repository URL for links in the notes (default from $GITHUB_SERVER_URL/$GITHUB_REPOSITORY)")
	fl.StringVar(&f.catalog, "catalog", "compatibility-catalog.json", "compatibility catalog to read (default $COMPATIBILITY_CATALOG_PATH or ./compatibility-catalog.json)")
	fl.StringVar(&f.catalogOut, "catalog-out", "", "where the catalog with the newly tested pair is written (default WORK/compatibility-catalog.json)")
	fl.BoolVar(&f.catalogPR, "catalog-pr", false, "open or update the catalog pull request on GitHub ($GITHUB_REPOSITORY, $GITHUB_TOKEN)")
	fl.StringVar(&f.key, "key", "", "cosign private key ($COSIGN_PASSWORD); default: a local key pair kept in WORK/keys")
	fl.BoolVar(&f.keyless, "keyless", false, "sign keyless with Fulcio + Rekor and the CI's OIDC token")
	fl.StringVar(&f.fulcioURL, "fulcio-url", "https://fulcio.sigstore.dev", "Fulcio URL (--keyless)")
	fl.StringVar(&f.rekorURL, "rekor-url", "https://rekor.sigstore.dev", "Rekor URL (--keyless)")
	fl.StringVar(&f.tsaURL, "tsa-url", "", "timestamp authority URL (--keyless, optional)")
	fl.StringVar(&f.tokenEnv, "oidc-token-env", "", "variable holding an OIDC token (--keyless outside GitHub Actions)")
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "trusted_root.json for keyless verification (default: the public Sigstore root)")
	fl.BoolVar(&f.skipE2E, "skip-e2e", false, "do not run E2E (refused for stable and hotfix releases)")
	fl.StringVar(&f.provider, "provider", "sim", "VM provider for measurement and E2E nodes: sim (TDX simulator) or gcp")
	fl.StringVar(&f.runID, "run-id", "", "run id labelling VMs (default $GITHUB_RUN_ID or local)")
	fl.StringArrayVar(&f.builderImages, "builder-image", nil, "a builder image pinned by digest (REF@sha256:HEX), recorded in the provenance's resolved inputs (repeatable)")
	fl.StringVar(&f.kmsProvider, "kms-provider", kmsProviderLocal, kmsProviderHelp)
	fl.StringVar(&f.kmsQuoteRoot, "kms-quote-root", "", "with --kms-provider phala: PEM roots the CVMs' quotes chain to (default: Intel's SGX Root CA)")
	fl.StringVar(&f.vulnDB, "vuln-db", "", "grype vulnerability database directory (vulnerability.db in it or in DIR/6/, as vulndb update writes it), or local:FILE, an advisory list built into one (default $"+envVulnDB+", else local:REPO/"+vuln.DefaultAdvisoriesFile+" when that file exists; stable and hotfix releases need one)")
	fl.StringVar(&f.vulnAllowList, "vuln-allowlist", "", "vulnerability allow-list (YAML: id, optional package, reason, expires per entry; default REPO/"+vuln.DefaultAllowListFile+" when present)")
	fl.StringVar(&f.failOn, "fail-on", vuln.DefaultFailOn.String(), "stable and hotfix releases fail on fixable vulnerabilities at or above this severity: negligible, low, medium, high or critical (rc releases report only)")
	f.gcp.register(c)
}

// envVulnDB is the variable naming the grype database when --vuln-db is not given.
const envVulnDB = "MERO_RELEASE_VULN_DB"

// releaseVuln configures the vulnerability gate: the database (--vuln-db, $MERO_RELEASE_VULN_DB,
// else the repository's local advisory list when it has one), the allow-list and the threshold.
func (a *app) releaseVuln(f *releaseFlags, repo string, cfg *flow.Config) error {
	failOn, err := vuln.ParseSeverity(f.failOn)
	if err != nil {
		return outcome.UsageErrorf("--fail-on: %v", err)
	}
	cfg.Vuln.FailOn = failOn
	cfg.Vuln.DB = a.envOr(f.vulnDB, envVulnDB)
	if cfg.Vuln.DB == "" {
		if list := filepath.Join(repo, vuln.DefaultAdvisoriesFile); fileExists(list) {
			cfg.Vuln.DB = vuln.LocalPrefix + list
		}
	}
	cfg.Vuln.AllowList = f.vulnAllowList
	if cfg.Vuln.AllowList == "" {
		cfg.Vuln.AllowList, cfg.Vuln.AllowListOptional = filepath.Join(repo, vuln.DefaultAllowListFile), true
	}
	return nil
}

// fileExists reports whether path is a regular file.
func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// config turns the flags into a flow.Config; closers release what it opened.
func (a *app) releaseConfig(cmd *cobra.Command, f *releaseFlags, family release.Family) (flow.Config, error) {
	ctx := cmd.Context()
	tag, err := parseTagFlag(cmd, f.tag)
	if err != nil {
		return flow.Config{}, err
	}
	if tag.Family != family {
		return flow.Config{}, outcome.UsageErrorf("%s: %s is not a %s tag", cmd.CommandPath(), tag, family)
	}
	st, err := a.openStore(cmd, f.storeSpec)
	if err != nil {
		return flow.Config{}, err
	}
	repo, err := filepath.Abs(f.repo)
	if err != nil {
		return flow.Config{}, err
	}
	created, err := flow.CreatedTime(a.getenv, repo)
	if err != nil {
		return flow.Config{}, err
	}
	history := ""
	if f.history != "" {
		if history, err = filepath.Abs(f.history); err != nil {
			return flow.Config{}, err
		}
	}
	cfg := flow.Config{
		Tag: tag, ConfiguredVersion: a.envOr(f.version, family.VersionVariable()), Counterpart: f.counterpart,
		Store: st, WorkDir: f.work, RepoDir: repo, HistoryDir: history, AuthorNotes: f.notes, RepoURL: f.repoURL,
		CatalogPath: a.envOr(a.flagIfSet(cmd, "catalog", f.catalog), envCatalogPath), CatalogOut: f.catalogOut,
		SkipE2E: f.skipE2E, Created: created, RunID: a.envOr(f.runID, "GITHUB_RUN_ID"), Log: a.log, Tracer: a.tracer,
	}
	if cfg.CatalogPath == "" {
		cfg.CatalogPath = f.catalog
	}
	if cfg.CatalogOut == "" {
		cfg.CatalogOut = filepath.Join(f.work, "compatibility-catalog.json")
	}
	if cfg.RepoURL == "" && a.getenv("GITHUB_REPOSITORY") != "" {
		cfg.RepoURL = strings.TrimRight(a.envOr(a.getenv("GITHUB_SERVER_URL"), "GITHUB_SERVER_URL"), "/") + "/" + a.getenv("GITHUB_REPOSITORY")
	}
	if cfg.Build, err = a.provenanceBuild(cfg.RepoURL, f.builderImages); err != nil {
		return flow.Config{}, err
	}
	if err := a.releaseVuln(f, repo, &cfg); err != nil {
		return flow.Config{}, err
	}
	if err := a.releaseSigning(ctx, f, &cfg); err != nil {
		return flow.Config{}, err
	}
	if err := a.releaseTDX(ctx, f, &cfg); err != nil {
		return flow.Config{}, err
	}
	if f.catalogPR {
		owner, name, err := ghstore.ParseRepository(a.getenv("GITHUB_REPOSITORY"))
		if err != nil {
			return flow.Config{}, outcome.UsageErrorf("--catalog-pr: $GITHUB_REPOSITORY: %v", err)
		}
		client, err := ghstore.NewClient(ghstore.ClientOptions{Token: a.getenv(envGitHubToken), BaseURL: a.getenv(envGitHubAPIURL)})
		if err != nil {
			return flow.Config{}, err
		}
		cfg.CatalogPR = func(ctx context.Context, content []byte) error {
			_, err := catalogpr.Ensure(ctx, client, catalogpr.Options{Owner: owner, Repo: name, Tag: tag, Content: content, Log: a.log})
			return err
		}
	}
	return cfg, nil
}

// flagIfSet returns the flag's value when the user set it, else "".
func (a *app) flagIfSet(cmd *cobra.Command, name, value string) string {
	if cmd.Flags().Changed(name) {
		return value
	}
	return ""
}

// releaseSigning configures the signer and the auditor's expectations.
func (a *app) releaseSigning(ctx context.Context, f *releaseFlags, cfg *flow.Config) error {
	cfg.Audit.Repository = a.getenv("GITHUB_REPOSITORY")
	if f.trustedRoot != "" {
		tr, err := sign.LoadTrustedRoot(f.trustedRoot)
		if err != nil {
			return err
		}
		cfg.Audit.TrustedRoot = tr
	}
	if f.keyless {
		s, err := a.keylessSigner(f.fulcioURL, f.rekorURL, f.tsaURL, f.tokenEnv, f.trustedRoot)
		if err != nil {
			return err
		}
		cfg.Signer = s
		if cfg.Audit.TrustedRoot == nil {
			tr, err := sign.PublicGoodTrustedRoot(ctx, sign.TUFOptions{})
			if err != nil {
				return err
			}
			cfg.Audit.TrustedRoot = tr
		}
		return nil
	}
	keyPath := f.key
	if keyPath == "" {
		var err error
		if keyPath, err = a.localKey(filepath.Join(f.work, "keys")); err != nil {
			return err
		}
	}
	// With the public half beside the key (P.pub next to P.key, as keygen writes it), the key
	// is decrypted (scrypt) only when something is signed: a re-run of a published release
	// signs nothing.
	if pubPEM, err := os.ReadFile(strings.TrimSuffix(keyPath, ".key") + ".pub"); err == nil && strings.HasSuffix(keyPath, ".key") {
		pub, err := sign.LoadPublicKey(pubPEM)
		if err != nil {
			return fmt.Errorf("%s.pub: %w", strings.TrimSuffix(keyPath, ".key"), err)
		}
		cfg.Signer = sign.NewLazy(func() (sign.Signer, error) {
			s, err := a.keySigner(keyPath, "")
			if err != nil {
				return nil, err
			}
			if k, ok := s.PublicKey().(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(pub) {
				return nil, outcome.UsageErrorf("%s does not belong to the public key beside it (%s.pub)", keyPath, strings.TrimSuffix(keyPath, ".key"))
			}
			return s, nil
		})
		cfg.Audit.PublicKey = pub
		return nil
	}
	s, err := a.keySigner(keyPath, "")
	if err != nil {
		return err
	}
	cfg.Signer = s
	cfg.Audit.PublicKey = crypto.PublicKey(s.PublicKey())
	return nil
}

// localKey returns dir/cosign.key, generating the pair (password $COSIGN_PASSWORD) the first time.
func (a *app) localKey(dir string) (string, error) {
	priv := filepath.Join(dir, "cosign.key")
	if _, err := os.Stat(priv); err == nil {
		return priv, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	privPEM, pubPEM, err := sign.GenerateKeyPair([]byte(a.getenv(envCosignPassword)))
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(priv, privPEM, 0o600); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "cosign.pub"), pubPEM, 0o644); err != nil {
		return "", err
	}
	a.log.Infof("generated a local signing key pair in %s (cosign format)", dir)
	return priv, nil
}

// releaseTDX configures the VM provider, the node roots and the local KMS platform.
func (a *app) releaseTDX(ctx context.Context, f *releaseFlags, cfg *flow.Config) error {
	auth, err := tdxsim.NewAuthority([]byte(tdxsim.DefaultSeed))
	if err != nil {
		return err
	}
	cfg.Authority = auth
	switch f.provider {
	case "sim":
		p := vmsim.New(auth)
		cfg.Provider, cfg.NodeRoots = p, p.RootPool()
	case "gcp":
		p, err := a.gcpProvider(ctx, &f.gcp)
		if err != nil {
			return err
		}
		roots, err := tdx.IntelRootPool()
		if err != nil {
			return err
		}
		// real TDX VMs: node quotes chain to Intel's SGX root (measurement, and the KMS in E2E)
		cfg.Provider, cfg.NodeRoots = p, roots
		cfg.NodeRootFile = filepath.Join(f.work, "intel-sgx-root.pem")
		if err := atomicfile.Write(cfg.NodeRootFile, tdx.IntelRootPEM()); err != nil {
			return err
		}
	default:
		return outcome.UsageErrorf("--provider %q: must be sim or gcp", f.provider)
	}
	cfg.KMSLauncher = &local.InProcessKMS{Authority: auth, NodeRoots: cfg.NodeRoots, Log: a.log}
	return nil
}

// runRelease runs a pipeline and prints its report as JSON with --json.
func (a *app) runRelease(rep *flow.Report, err error) error {
	if rep != nil && a.json {
		if jerr := a.printJSON(rep); jerr != nil && err == nil {
			err = jerr
		}
	}
	switch {
	case err == nil:
		return nil
	case rep == nil:
		// refused before any stage ran: no stage logged it, so the error is printed
		return err
	}
	return reported(err)
}

// releaseKMSCommand is `mero-release release-kms`.
func (a *app) releaseKMSCommand() *cobra.Command {
	var f releaseFlags
	var binary, registry string
	var images []string
	c := &cobra.Command{
		Use:   "release-kms",
		Short: "Release the KMS: build, policies, measure, SBOM, sign, stage, audit, E2E, publish, catalog",
		Long: `release-kms runs the KMS release pipeline of SPEC §3 for --tag. Its defaults are local: a
directory store, a key pair in WORK/keys and the TDX simulator. The profile images are built
around --kms-binary, or taken as they are with --image PROFILE=OCI-ARCHIVE (the Dagger module
builds them from the KMS's Dockerfile). E2E runs the KMS binary of the release's image as a
process on 127.0.0.1, or, with --kms-provider phala, deploys each profile's image as a Phala
Cloud CVM ($PHALA_DSTACK_URL, $PHALA_API_KEY), probes it (/health, a nonce-bound /attest whose
quote and event log must match the published measurements) and deletes every CVM on every
path. With --registry the images are pushed after the staged release passed its audit and E2E
(for phala, by digest and untagged before E2E, so the CVMs can pull them), and the registry
must hold the measured digests; each pushed digest is then signed and attested (SBOM,
SLSA provenance) with the release's signer where cosign looks (check with verify-image or
cosign verify/verify-attestation). Nothing is published
before the staged release passes the audit and, for stable and hotfix releases, E2E; a
published release is never changed, and a re-run only re-audits it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.releaseConfig(cmd, &f, release.KMS)
			if err != nil {
				return err
			}
			published, err := flow.Published(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			// a re-run only re-audits: no binary is built, no image read
			product, err := a.kmsProduct(cmd.Context(), cfg, binary, registry, images, !published)
			if err != nil {
				return err
			}
			if !published {
				e2eBinary, err := a.e2eKMSBinary(cfg, product)
				if err != nil {
					return err
				}
				cfg.KMSLauncher = local.Process(e2eBinary, cfg.Authority, cfg.NodeRootFile, a.log)
				if err := a.releaseKMSProvider("release-kms", &f, &cfg); err != nil {
					return err
				}
			}
			return a.runRelease(flow.ReleaseKMS(cmd.Context(), cfg, product))
		},
	}
	f.register(c, release.KMS)
	c.Flags().StringVar(&binary, "kms-binary", "", "the built KMS binary (linux/amd64, static); default: go build ./examples/kms/cmd/mero-kms")
	c.Flags().StringVar(&registry, "registry", "", "push the profile images to this registry after audit and E2E (e.g. ghcr.io/OWNER; token $GHCR_TOKEN, user $GITHUB_ACTOR)")
	c.Flags().StringArrayVar(&images, "image", nil, "PROFILE=OCI-ARCHIVE: a prebuilt profile image, released as it is (all three profiles, or none)")
	return c
}

// kmsProduct describes the sample KMS of examples/kms: prebuilt profile images, or the binary
// the images are built around (default, when build is set: go build ./examples/kms/cmd/mero-kms
// into WORK/bin).
func (a *app) kmsProduct(ctx context.Context, cfg flow.Config, binary, registry string, images []string, build bool) (flow.KMSProduct, error) {
	product := flow.KMSProduct{
		Registry: a.envOr(registry, "GHCR_REGISTRY"), RegistryUser: a.getenv("GITHUB_ACTOR"), RegistryToken: a.getenv("GHCR_TOKEN"),
		AppCompose: kms.AppCompose, OSImage: dstack.PinnedOSImage(),
	}
	if len(images) > 0 {
		m, err := parseProfileMap("image", images)
		if err != nil {
			return flow.KMSProduct{}, err
		}
		for _, p := range release.Profiles() {
			if m[p] == "" {
				return flow.KMSProduct{}, outcome.UsageErrorf("--image: no image for profile %s (give all three profiles)", p)
			}
		}
		if binary != "" {
			return flow.KMSProduct{}, outcome.UsageErrorf("--kms-binary and --image: give one (prebuilt images already hold the binary)")
		}
		product.Images = m
		return product, nil
	}
	if binary == "" && build {
		binary = filepath.Join(cfg.WorkDir, "bin", "mero-kms")
		a.log.Infof("building ./examples/kms/cmd/mero-kms")
		if err := flow.BuildGoBinary(ctx, cfg.RepoDir, "./examples/kms/cmd/mero-kms", binary); err != nil {
			return flow.KMSProduct{}, err
		}
	}
	product.Binary = binary
	return product, nil
}

// e2eKMSBinary is the KMS executable release-kms runs in E2E: with prebuilt images, the
// entrypoint of the locked-read-only image (the binary that ships); otherwise the binary the
// images are built around.
func (a *app) e2eKMSBinary(cfg flow.Config, product flow.KMSProduct) (string, error) {
	archive, ok := product.Images[release.LockedReadOnly]
	if !ok {
		return product.Binary, nil
	}
	bin := filepath.Join(cfg.WorkDir, "bin", "mero-kms-from-image")
	entry, err := ociimage.ExtractEntrypoint(archive, bin)
	if err != nil {
		return "", fmt.Errorf("--image %s=%s: %w", release.LockedReadOnly, archive, err)
	}
	a.log.Infof("E2E runs %s of the %s image", entry, release.LockedReadOnly)
	return bin, nil
}

// releaseNodeCommand is `mero-release release-node-image`.
func (a *app) releaseNodeCommand() *cobra.Command {
	var f releaseFlags
	var images []string
	var sbomPath, sbomKind, kmsBinary, packerManifest string
	c := &cobra.Command{
		Use:   "release-node-image",
		Short: "Release the node image: measure on TDX VMs, SBOM, sign, stage, audit, E2E, publish, catalog",
		Long: `release-node-image runs the node-image release pipeline of SPEC §3 for --tag: every profile's image
is booted on an ephemeral TDX VM (the simulator locally, a GCP Confidential VM with --provider gcp),
its quote verified and its MRTD/RTMR0–3 published; the VM is deleted on every path.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.releaseConfig(cmd, &f, release.Node)
			if err != nil {
				return err
			}
			product, err := nodeProduct(cfg, images, sbomPath, sbomKind, packerManifest)
			if err != nil {
				return err
			}
			if kmsBinary != "" {
				if f.kmsProvider == kmsProviderPhala {
					return outcome.UsageErrorf("release-node-image: --kms-binary runs the KMS locally; --kms-provider phala runs the KMS release's images: give one")
				}
				cfg.KMSLauncher = local.Process(kmsBinary, cfg.Authority, cfg.NodeRootFile, a.log)
			}
			if err := a.releaseKMSProvider("release-node-image", &f, &cfg); err != nil {
				return err
			}
			return a.runRelease(flow.ReleaseNode(cmd.Context(), cfg, product))
		},
	}
	f.register(c, release.Node)
	c.Flags().StringArrayVar(&images, "image", nil, "PROFILE=IMAGE the provider boots (default: examples/node-image for every profile)")
	c.Flags().StringVar(&sbomPath, "sbom-input", "", "what the SBOM describes: the image directory or a Packer manifest (default examples/node-image)")
	c.Flags().StringVar(&sbomKind, "sbom-kind", "dir", "dir or packer-manifest")
	c.Flags().StringVar(&packerManifest, "packer-manifest", "", "Packer's manifest of build-node-image --provider gcp: the images of the profiles, the base image and the SBOM input")
	c.Flags().StringVar(&kmsBinary, "kms-binary", "", "the KMS executable E2E runs as a process on 127.0.0.1 (default: the sample KMS in this process)")
	return c
}

func nodeProduct(cfg flow.Config, images []string, sbomPath, sbomKind, packerManifest string) (flow.NodeProduct, error) {
	if packerManifest != "" {
		if len(images) > 0 || sbomPath != "" {
			return flow.NodeProduct{}, outcome.UsageErrorf("--packer-manifest names the images and the SBOM input: drop --image and --sbom-input")
		}
		f, err := os.Open(packerManifest)
		if err != nil {
			return flow.NodeProduct{}, outcome.UsageErrorf("--packer-manifest: %v", err)
		}
		defer f.Close()
		builds, err := packer.ReadManifest(f, packerManifest)
		if err != nil {
			return flow.NodeProduct{}, err
		}
		m, err := packer.Images(builds)
		if err != nil {
			return flow.NodeProduct{}, err
		}
		base, err := packer.Base(builds)
		if err != nil {
			return flow.NodeProduct{}, err
		}
		return flow.NodeProduct{Images: m, SBOMPath: packerManifest, SBOMKind: "packer-manifest", BaseImage: base}, nil
	}
	m, err := parseProfileMap("image", images)
	if err != nil {
		return flow.NodeProduct{}, err
	}
	for _, p := range release.Profiles() {
		if m[p] == "" {
			m[p] = "examples/node-image"
		}
	}
	if sbomPath == "" {
		sbomPath = filepath.Join(cfg.RepoDir, "examples/node-image")
	}
	return flow.NodeProduct{Images: m, SBOMPath: sbomPath, SBOMKind: sbomKind}, nil
}

// releaseLocalCommand is `mero-release release-local`: README's first command.
func (a *app) releaseLocalCommand() *cobra.Command {
	var nodeTag, kmsTag, storeSpec, work, repo, line string
	var lifecycle bool
	c := &cobra.Command{
		Use:   "release-local",
		Short: "A full local release: a node-image rc, then a KMS rc paired with it, audited and E2E-tested",
		Long: `release-local runs release-node-image and then release-kms on the embedded defaults (examples/,
the TDX simulator, a local key pair) into a directory store, with the version variables set to
the tags' versions. Run it again and both releases are found published and only re-audited.

With --lifecycle it runs the whole promotion path instead (SPEC §1, §5): node and KMS X.Y.0-rc.1
→ node and KMS X.Y.0 → a node-image hotfix X.Y.1 whose measurements changed (E2E against
candidate KMS policies) → the KMS hotfix X.Y.1 with the updated policies, into one store. The
history the releases are built from is a scratch git repository in WORK/lifecycle/history (the
tags, the hotfix branch of the stable tag, and the authors' release-notes/<tag>.md); the catalog
is WORK/compatibility-catalog.json, and each release's catalog pull request is written to
WORK/lifecycle/catalog-pr/<tag>/.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if lifecycle {
				return a.runLifecycle(cmd.Context(), lifecycleOptions{line: line, store: storeSpec, work: work, repo: repo})
			}
			nt, err := release.ParseTag(nodeTag)
			if err != nil {
				return err
			}
			kt, err := release.ParseTag(kmsTag)
			if err != nil {
				return err
			}
			start := time.Now()
			common := []string{"--store", storeSpec, "--work", work, "--repo", repo}
			steps := [][]string{
				append([]string{"release-node-image", "--tag", nodeTag, "--version", nt.Version.String()}, common...),
				append([]string{"release-kms", "--tag", kmsTag, "--version", kt.Version.String(), "--counterpart", nt.Version.String()}, common...),
			}
			for _, args := range steps {
				a.log.Infof("=== mero-release %s", strings.Join(args, " "))
				sub := a.rootCommand()
				sub.SetArgs(args)
				sub.SetOut(a.stdout)
				sub.SetErr(a.stderr)
				if err := sub.ExecuteContext(cmd.Context()); err != nil {
					return err
				}
			}
			a.log.Passf("local release of %s and %s done in %.1fs: store %s, work %s", nodeTag, kmsTag, time.Since(start).Seconds(), storeSpec, work)
			return nil
		},
	}
	c.Flags().StringVar(&nodeTag, "node-tag", "mero-tee-v1.3.0-rc.1", "node-image tag")
	c.Flags().StringVar(&kmsTag, "kms-tag", "mero-kms-v1.3.0-rc.1", "KMS tag")
	c.Flags().StringVar(&storeSpec, "store", "dir:out/releases", "release store")
	c.Flags().StringVar(&work, "work", "out/work", "work directory")
	c.Flags().StringVar(&repo, "repo", ".", "the source repository (examples/, the KMS's source)")
	c.Flags().BoolVar(&lifecycle, "lifecycle", false, "run the whole promotion path: rc → stable → node hotfix with changed measurements → KMS hotfix")
	c.Flags().StringVar(&line, "line", "1.3", "the minor line X.Y of --lifecycle")
	return c
}
