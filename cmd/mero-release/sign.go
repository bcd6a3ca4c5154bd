package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"

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

// verifyCommand is `mero-release verify`: check a Sigstore bundle of a file.
func (a *app) verifyCommand() *cobra.Command {
	var bundlePath, keyPath, trustedRoot, tufCache string
	var id sign.Identity
	c := &cobra.Command{
		Use:   "verify [--bundle B] FILE (--key cosign.pub | --certificate-identity[-regexp] X --certificate-oidc-issuer[-regexp] Y)",
		Short: "Verify a file's Sigstore bundle against a public key or an expected signer identity",
		Long: `Verify FILE against its Sigstore bundle (default FILE.sigstore.json): the artifact digest,
the signature and, for keyless bundles, the Fulcio certificate chain and SCT, the Rekor entry
and the signer identity (the certificate SAN, e.g. the release workflow
https://github.com/OWNER/REPO/.github/workflows/release-kms-phala.yaml@refs/tags/..., and the
OIDC issuer), optionally the source repository and ref. Exit 10 when anything does not match.

Trusted material: --trusted-root trusted_root.json (offline, private deployments); otherwise
the public Sigstore root is fetched through TUF (network on first use, then cached in
~/.sigstore/root). Key bundles need no trusted root unless their Rekor entry is to be checked.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			if bundlePath == "" {
				bundlePath = release.BundleName(file)
			}
			var policy sign.Policy
			keyed := keyPath != ""
			identity := id.SAN != "" || id.SANRegexp != "" || id.Issuer != "" || id.IssuerRegexp != "" || id.Repository != "" || id.Ref != "" || id.RefRegexp != ""
			switch {
			case keyed && identity:
				return outcome.UsageErrorf("verify: give either --key or the certificate identity flags, not both")
			case keyed:
				pemBytes, err := os.ReadFile(keyPath)
				if err != nil {
					return outcome.UsageErrorf("verify: public key: %v", err)
				}
				pub, err := sign.LoadPublicKey(pemBytes)
				if err != nil {
					return fmt.Errorf("%s: %w", keyPath, err)
				}
				policy.PublicKey = pub
			case identity:
				policy.Identity = &id
			default:
				return outcome.UsageErrorf("verify: give --key, or --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp]")
			}
			bundleJSON, err := os.ReadFile(bundlePath)
			if errors.Is(err, fs.ErrNotExist) {
				a.log.Failf("%s: bundle %s not found", file, bundlePath)
				return reported(outcome.MissingAssetErrorf("bundle %s not found", bundlePath))
			}
			if err != nil {
				return fmt.Errorf("verify: %w", err)
			}
			artifact, err := os.Open(file)
			if errors.Is(err, fs.ErrNotExist) {
				a.log.Failf("%s: file not found", file)
				return reported(outcome.MissingAssetErrorf("%s not found", file))
			}
			if err != nil {
				return fmt.Errorf("verify: %w", err)
			}
			defer artifact.Close()
			var trusted root.TrustedMaterial
			switch {
			case trustedRoot != "":
				tr, err := sign.LoadTrustedRoot(trustedRoot)
				if err != nil {
					return err
				}
				trusted = tr
			case !keyed:
				tr, err := sign.PublicGoodTrustedRoot(cmd.Context(), sign.TUFOptions{CacheDir: tufCache})
				if err != nil {
					return err
				}
				trusted = tr
			}
			res, err := sign.NewVerifier(trusted).Verify(cmd.Context(), bundleJSON, artifact, policy)
			if err != nil {
				if outcome.Code(err) == outcome.VerificationFailed {
					a.log.Failf("%s: %v", file, err)
					if a.json {
						_ = a.printJSON(map[string]any{"file": file, "bundle": bundlePath, "verified": false, "error": err.Error()})
					}
					return reported(err)
				}
				return err
			}
			if keyed {
				if b, perr := sign.ParseBundle(bundleJSON); perr == nil && len(b.GetVerificationMaterial().GetTlogEntries()) > 0 && res.TlogEntries == 0 {
					a.log.Warnf("%s: the bundle's Rekor entry was not checked (pass --trusted-root to check it)", file)
				}
				a.log.Passf("%s: signature verified with key %s (%s)", file, keyPath, res.Digest)
			} else {
				a.log.Passf("%s: signed by %s (issuer %s), %d Rekor entry verified (%s)", file, res.Identity, res.Issuer, res.TlogEntries, res.Digest)
			}
			if a.json {
				return a.printJSON(map[string]any{"file": file, "bundle": bundlePath, "verified": true, "result": res})
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&bundlePath, "bundle", "", "Sigstore bundle (default FILE.sigstore.json)")
	f.StringVar(&keyPath, "key", "", "public key (cosign.pub) of a key-pair signature")
	f.StringVar(&id.SAN, "certificate-identity", "", "expected certificate identity (SAN), exact")
	f.StringVar(&id.SANRegexp, "certificate-identity-regexp", "", "expected certificate identity (SAN), Go regexp")
	f.StringVar(&id.Issuer, "certificate-oidc-issuer", "", "expected OIDC issuer, exact (GitHub: https://token.actions.githubusercontent.com)")
	f.StringVar(&id.IssuerRegexp, "certificate-oidc-issuer-regexp", "", "expected OIDC issuer, Go regexp")
	f.StringVar(&id.Repository, "certificate-repository", "", "expected source repository URI, e.g. https://github.com/OWNER/REPO")
	f.StringVar(&id.Ref, "certificate-ref", "", "expected source repository ref, e.g. refs/tags/mero-kms-v1.2.0")
	f.StringVar(&id.RefRegexp, "certificate-ref-regexp", "", "expected source repository ref, Go regexp")
	f.StringVar(&trustedRoot, "trusted-root", "", "trusted_root.json (default: the public Sigstore root through TUF)")
	f.StringVar(&tufCache, "tuf-cache", "", "TUF cache directory for the public root (default ~/.sigstore/root)")
	return c
}
