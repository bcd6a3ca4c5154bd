package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"

	"github.com/calimero-network/mero-release/cmd/mero-release/internal/batchgc"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
)

// envCosignPassword holds the password of a cosign private key, as for cosign itself.
const envCosignPassword = "COSIGN_PASSWORD"

// signCommand is `mero-release sign`: Sigstore bundles for files, and `sign keygen`.
func (a *app) signCommand() *cobra.Command {
	var keyPath, fulcioURL, rekorURL, tsaURL, tokenEnv, outDir, trustedRoot string
	var keyless bool
	c := &cobra.Command{
		Use:   "sign (--key cosign.key | --keyless) FILE...",
		Short: "Write a Sigstore bundle FILE.sigstore.json for each FILE (keyless or with a cosign key)",
		Long: `Sign each FILE and write its Sigstore bundle (protobuf bundle v0.3, JSON) as
FILE.sigstore.json, or in --out-dir. The bundles verify with
` + "`cosign verify-blob --bundle`" + ` and ` + "`mero-release verify`" + `.

--keyless: an ephemeral key certified by Fulcio for the OIDC identity, every signature
recorded in Rekor (optionally timestamped by --tsa-url). The identity token is read from
the environment variable named by --oidc-token-env, else requested from GitHub Actions
($ACTIONS_ID_TOKEN_REQUEST_URL, job permission id-token: write).

--key: a cosign private key (cosign generate-key-pair or ` + "`mero-release sign keygen`" + `), its
password in $COSIGN_PASSWORD; with --rekor-url the signatures are also recorded in Rekor.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, files []string) error {
			if len(files) == 0 {
				return outcome.UsageErrorf("sign: no FILE given")
			}
			if (keyPath == "") == !keyless {
				return outcome.UsageErrorf("sign: give exactly one of --key and --keyless")
			}
			var signer sign.Signer
			if keyless {
				s, err := a.keylessSigner(fulcioURL, rekorURL, tsaURL, tokenEnv, trustedRoot)
				if err != nil {
					return err
				}
				signer = s
			} else {
				if fulcioURL != "" || tsaURL != "" || tokenEnv != "" {
					return outcome.UsageErrorf("sign: --fulcio-url, --tsa-url and --oidc-token-env are for --keyless")
				}
				s, err := a.keySigner(keyPath, rekorURL)
				if err != nil {
					return err
				}
				signer = s
			}
			if outDir != "" {
				if err := os.MkdirAll(outDir, 0o755); err != nil {
					return fmt.Errorf("sign: %w", err)
				}
			}
			type signed struct {
				File   string `json:"file"`
				Bundle string `json:"bundle"`
			}
			var done []signed
			for _, f := range files {
				bundleJSON, err := signer.SignFile(cmd.Context(), f)
				if err != nil {
					a.log.Failf("%s: %v", f, err)
					return reported(err)
				}
				dest := release.BundleName(f)
				if outDir != "" {
					dest = filepath.Join(outDir, release.BundleName(filepath.Base(f)))
				}
				if err := writeFileAtomic(dest, bundleJSON); err != nil {
					return err
				}
				a.log.Passf("%s: signed → %s", f, dest)
				done = append(done, signed{File: f, Bundle: dest})
			}
			if a.json {
				return a.printJSON(map[string]any{"signed": done})
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&keyPath, "key", "", "cosign private key file (password in $COSIGN_PASSWORD)")
	f.BoolVar(&keyless, "keyless", false, "sign keyless: Fulcio certificate for the OIDC identity, Rekor entry")
	f.StringVar(&fulcioURL, "fulcio-url", "", "Fulcio URL for --keyless (default "+sign.DefaultFulcioURL+")")
	f.StringVar(&rekorURL, "rekor-url", "", "Rekor URL (--keyless default "+sign.DefaultRekorURL+"; with --key, upload only when set)")
	f.StringVar(&tsaURL, "tsa-url", "", "RFC 3161 timestamp authority URL for --keyless (optional)")
	f.StringVar(&tokenEnv, "oidc-token-env", "", "environment variable holding the OIDC token for --keyless (default: GitHub Actions)")
	f.StringVar(&outDir, "out-dir", "", "directory for the bundles (default: next to each FILE)")
	f.StringVar(&trustedRoot, "trusted-root", "", "trusted_root.json to verify each keyless bundle right after signing (optional)")
	c.AddCommand(a.signKeygenCommand())
	return c
}

// keylessSigner builds the keyless signer from the flags.
func (a *app) keylessSigner(fulcioURL, rekorURL, tsaURL, tokenEnv, trustedRoot string) (*sign.KeylessSigner, error) {
	var tokens sign.TokenSource
	switch {
	case tokenEnv != "":
		tok := a.getenv(tokenEnv)
		if tok == "" {
			return nil, outcome.UsageErrorf("sign: --oidc-token-env %s: the variable is empty or unset", tokenEnv)
		}
		tokens = sign.StaticToken(tok)
	case a.getenv(sign.EnvActionsTokenURL) != "":
		tokens = sign.GitHubActionsTokenSource{Getenv: a.getenv}
	default:
		return nil, outcome.UsageErrorf("sign: --keyless needs an OIDC token: --oidc-token-env VAR, or run in GitHub Actions with permission id-token: write")
	}
	opts := sign.KeylessOptions{FulcioURL: fulcioURL, RekorURL: rekorURL, TSAURL: tsaURL, Token: tokens}
	if trustedRoot != "" {
		tr, err := sign.LoadTrustedRoot(trustedRoot)
		if err != nil {
			return nil, err
		}
		opts.TrustedRoot = tr
	}
	return sign.NewKeylessSigner(opts)
}

// keySigner loads the cosign key with $COSIGN_PASSWORD.
func (a *app) keySigner(keyPath, rekorURL string) (*sign.KeySigner, error) {
	pemBytes, err := os.ReadFile(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, outcome.UsageErrorf("sign: key %s not found", keyPath)
	}
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	priv, err := sign.LoadPrivateKey(pemBytes, []byte(a.getenv(envCosignPassword)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w (password from $%s)", keyPath, err, envCosignPassword)
	}
	return sign.NewKeySigner(priv, sign.KeySignerOptions{RekorURL: rekorURL})
}

func (a *app) signKeygenCommand() *cobra.Command {
	var prefix string
	var force bool
	c := &cobra.Command{
		Use:   "keygen --out-prefix P",
		Short: "Generate a cosign-compatible key pair P.key (encrypted with $COSIGN_PASSWORD) and P.pub",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if prefix == "" {
				return outcome.UsageErrorf("sign keygen: --out-prefix is required")
			}
			password := a.getenv(envCosignPassword)
			if password == "" {
				return outcome.UsageErrorf("sign keygen: set $%s to the password that encrypts the private key", envCosignPassword)
			}
			keyFile, pubFile := prefix+".key", prefix+".pub"
			if !force {
				for _, p := range []string{keyFile, pubFile} {
					if _, err := os.Stat(p); err == nil {
						return outcome.UsageErrorf("sign keygen: %s exists (use --force to overwrite)", p)
					}
				}
			}
			privPEM, pubPEM, err := sign.GenerateKeyPair([]byte(password))
			if err != nil {
				return err
			}
			if err := writeFileAtomic(pubFile, pubPEM); err != nil {
				return err
			}
			if err := writeFileAtomic(keyFile, privPEM); err != nil {
				return err
			}
			if err := os.Chmod(keyFile, 0o600); err != nil {
				return fmt.Errorf("sign keygen: %w", err)
			}
			a.log.Passf("wrote private key %s (encrypted, mode 0600) and public key %s", keyFile, pubFile)
			if a.json {
				return a.printJSON(map[string]string{"private_key": keyFile, "public_key": pubFile})
			}
			return nil
		},
	}
	c.Flags().StringVar(&prefix, "out-prefix", "", "path prefix of the key files (P.key, P.pub)")
	c.Flags().BoolVar(&force, "force", false, "overwrite existing key files")
	return c
}

// verifyCommand is `mero-release verify`: check the Sigstore bundles of files, many in one
// process (sign.Verifier.VerifyAll).
func (a *app) verifyCommand() *cobra.Command {
	var bundlePath, allDir, predicateType string
	var workers int
	var signer signerFlags
	c := &cobra.Command{
		Use:   "verify [--bundle B] FILE... | --bundle X.intoto.sigstore.json [FILE...] | --all DIR  (--key cosign.pub | --certificate-identity[-regexp] X --certificate-oidc-issuer[-regexp] Y)",
		Short: "Verify files' Sigstore bundles against a public key or an expected signer identity",
		Long: `Verify each FILE against its Sigstore bundle (default FILE.sigstore.json; --bundle for a
single FILE), or with --all DIR every DIR/X that has a bundle DIR/X.sigstore.json: the artifact
digest, the signature and, for keyless bundles, the Fulcio certificate chain and SCT, the Rekor
entry and the signer identity (the certificate SAN, e.g. the release workflow
https://github.com/OWNER/REPO/.github/workflows/release-kms-phala.yaml@refs/tags/..., and the
OIDC issuer), optionally the source repository and ref. All files are verified in one process,
--workers at a time; one line per file. Exit 11 when a file or bundle is missing, else 10 when
anything does not match.

An attestation bundle (--bundle X.intoto.sigstore.json, a DSSE envelope of an in-toto
statement such as a release's provenance.intoto.sigstore.json) is verified once — signature,
signer, payload type application/vnd.in-toto+json, --type — and each FILE must be a subject of
its statement with the file's SHA-256 (exit 10 naming the file when not); with no FILE only the
statement is verified and its subjects are listed.

Trusted material: --trusted-root trusted_root.json (offline, private deployments); otherwise
the public Sigstore root is fetched through TUF (network on first use, then cached in
~/.sigstore/root). Key bundles need no trusted root unless their Rekor entry is to be checked.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) > 0 && allDir != "":
				return outcome.UsageErrorf("verify: give either FILE... or --all DIR, not both")
			}
			// An attestation bundle (DSSE) covers any number of files: its statement's subjects.
			var attestation []byte
			if bundlePath != "" {
				if data, err := os.ReadFile(bundlePath); err == nil && sign.IsDSSEBundle(data) {
					attestation = data
				}
			}
			switch {
			case attestation == nil && predicateType != "":
				return outcome.UsageErrorf("verify: --type goes with an attestation bundle (--bundle X.intoto.sigstore.json)")
			case attestation == nil && bundlePath != "" && len(args) != 1:
				return outcome.UsageErrorf("verify: --bundle goes with exactly one FILE (or any number with an attestation bundle)")
			case attestation == nil && len(args) == 0 && allDir == "":
				return outcome.UsageErrorf("verify: give FILE... or --all DIR")
			case attestation != nil && allDir != "":
				return outcome.UsageErrorf("verify: --all does not go with an attestation bundle")
			}
			policy, trusted, err := signer.policy(cmd, "verify")
			if err != nil {
				return err
			}
			files := args
			if allDir != "" {
				if files, err = signedFilesIn(allDir); err != nil {
					return err
				}
			}
			if attestation != nil {
				return a.verifyAttestation(cmd, bundlePath, attestation, files, predicateType, trusted, policy)
			}
			return a.verifyFiles(cmd, files, bundlePath, signer.keyPath, trusted, policy, workers)
		},
	}
	f := c.Flags()
	f.StringVar(&bundlePath, "bundle", "", "Sigstore bundle (default FILE.sigstore.json); an attestation bundle (DSSE, e.g. provenance.intoto.sigstore.json) checks each FILE is a subject, or with no FILE only the statement")
	f.StringVar(&predicateType, "type", "", "with an attestation bundle: the expected predicate type, slsaprovenance1 or a URI (default: any)")
	signer.register(f)
	f.StringVar(&allDir, "all", "", "verify every file of DIR that has a bundle (DIR/X with DIR/X.sigstore.json)")
	f.IntVar(&workers, "workers", 0, "files verified at once (default: the number of CPUs)")
	return c
}

// verifyOutcome is one file's line of `verify --json`.
type verifyOutcome struct {
	File     string       `json:"file"`
	Bundle   string       `json:"bundle"`
	Verified bool         `json:"verified"`
	Result   *sign.Result `json:"result,omitempty"`
	Error    string       `json:"error,omitempty"`
}

// verifyFiles verifies every file against its bundle in one VerifyAll, prints one line per
// file (a JSON object for one file, {"results": [...]} for several) and returns the joined
// failures: a missing file or bundle is exit 11, a mismatch exit 10.
func (a *app) verifyFiles(cmd *cobra.Command, files []string, bundlePath, keyPath string, trusted root.TrustedMaterial, policy sign.Policy, workers int) error {
	outs := make([]verifyOutcome, len(files))
	errs := make([]error, len(files))
	var items []sign.Item
	var at []int // items[j] is files[at[j]]
	for i, file := range files {
		bp := bundlePath
		if bp == "" {
			bp = release.BundleName(file)
		}
		outs[i] = verifyOutcome{File: file, Bundle: bp}
		bundleJSON, err := os.ReadFile(bp)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			errs[i] = outcome.MissingAssetErrorf("bundle %s not found", bp)
			continue
		case err != nil:
			errs[i] = fmt.Errorf("verify %s: %w", file, err)
			continue
		}
		if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
			errs[i] = outcome.MissingAssetErrorf("file not found")
			continue
		}
		items = append(items, sign.Item{Name: file, Bundle: bundleJSON, Open: func() (io.ReadCloser, error) { return os.Open(file) }})
		at = append(at, i)
	}
	endBatch := batchgc.Begin()
	results, err := sign.NewVerifier(trusted).VerifyAll(cmd.Context(), items, policy, workers)
	endBatch()
	if err != nil {
		return err
	}
	for j, r := range results {
		i := at[j]
		outs[i].Result, errs[i] = r.Result, r.Err
		if r.Err == nil && policy.PublicKey != nil && r.Result.TlogEntries == 0 {
			if b, perr := sign.ParseBundle(items[j].Bundle); perr == nil && len(b.GetVerificationMaterial().GetTlogEntries()) > 0 {
				a.log.Warnf("%s: the bundle's Rekor entry was not checked (pass --trusted-root to check it)", files[i])
			}
		}
	}
	failed := 0
	for i, file := range files {
		res := outs[i].Result
		switch {
		case errs[i] != nil:
			failed++
			outs[i].Error = errs[i].Error()
			a.log.Failf("%s: %v", file, errs[i])
		case policy.PublicKey != nil:
			outs[i].Verified = true
			a.log.Passf("%s: signature verified with key %s (%s)", file, keyPath, res.Digest)
		default:
			outs[i].Verified = true
			a.log.Passf("%s: signed by %s (issuer %s), %d Rekor entry verified (%s)", file, res.Identity, res.Issuer, res.TlogEntries, res.Digest)
		}
	}
	if len(files) > 1 {
		a.log.Infof("verify: %d of %d files verified", len(files)-failed, len(files))
	}
	if a.json {
		var v any = outs[0]
		if len(files) > 1 {
			v = map[string]any{"results": outs, "verified": len(files) - failed, "failed": failed}
		}
		if err := a.printJSON(v); err != nil {
			return err
		}
	}
	return reported(errors.Join(errs...))
}

// signedFilesIn lists the files of dir that have a bundle next to them, sorted; a bundle
// without its file is listed too (and reported missing).
func signedFilesIn(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, outcome.UsageErrorf("verify --all: %v", err)
	}
	var files []string
	for _, e := range entries {
		if name, ok := release.IsFileBundle(e.Name()); ok && e.Type().IsRegular() {
			files = append(files, filepath.Join(dir, name))
		}
	}
	if len(files) == 0 {
		return nil, outcome.MissingAssetErrorf("verify --all: no bundle (*%s) in %s", release.BundleSuffix, dir)
	}
	return files, nil
}
