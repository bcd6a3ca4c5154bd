package main

import (
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/calimero-network/mero-release/pipeline/imagesign"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/sign"
)

// signerFlags are the signer policy flags of `verify` (--key, or the certificate identity
// flags) and the trusted material (--trusted-root, else the public Sigstore root).
type signerFlags struct {
	keyPath, trustedRoot, tufCache string
	id                             sign.Identity
}

func (s *signerFlags) register(f *pflag.FlagSet) {
	f.StringVar(&s.keyPath, "key", "", "public key (cosign.pub) of a key-pair signature")
	f.StringVar(&s.id.SAN, "certificate-identity", "", "expected certificate identity (SAN), exact")
	f.StringVar(&s.id.SANRegexp, "certificate-identity-regexp", "", "expected certificate identity (SAN), Go regexp")
	f.StringVar(&s.id.Issuer, "certificate-oidc-issuer", "", "expected OIDC issuer, exact (GitHub: https://token.actions.githubusercontent.com)")
	f.StringVar(&s.id.IssuerRegexp, "certificate-oidc-issuer-regexp", "", "expected OIDC issuer, Go regexp")
	f.StringVar(&s.id.Repository, "certificate-repository", "", "expected source repository URI, e.g. https://github.com/OWNER/REPO")
	f.StringVar(&s.id.Ref, "certificate-ref", "", "expected source repository ref, e.g. refs/tags/mero-kms-v1.2.0")
	f.StringVar(&s.id.RefRegexp, "certificate-ref-regexp", "", "expected source repository ref, Go regexp")
	f.StringVar(&s.trustedRoot, "trusted-root", "", "trusted_root.json (default: the public Sigstore root through TUF)")
	f.StringVar(&s.tufCache, "tuf-cache", "", "TUF cache directory for the public root (default ~/.sigstore/root)")
}

// policy builds the signer policy and the trusted material from the flags.
func (s *signerFlags) policy(cmd *cobra.Command, what string) (sign.Policy, root.TrustedMaterial, error) {
	var policy sign.Policy
	id := s.id
	keyed := s.keyPath != ""
	identity := id.SAN != "" || id.SANRegexp != "" || id.Issuer != "" || id.IssuerRegexp != "" || id.Repository != "" || id.Ref != "" || id.RefRegexp != ""
	switch {
	case keyed && identity:
		return policy, nil, outcome.UsageErrorf("%s: give either --key or the certificate identity flags, not both", what)
	case keyed:
		pemBytes, err := os.ReadFile(s.keyPath)
		if err != nil {
			return policy, nil, outcome.UsageErrorf("%s: public key: %v", what, err)
		}
		pub, err := sign.LoadPublicKey(pemBytes)
		if err != nil {
			return policy, nil, fmt.Errorf("%s: %w", s.keyPath, err)
		}
		policy.PublicKey = pub
	case identity:
		policy.Identity = &id
	default:
		return policy, nil, outcome.UsageErrorf("%s: give --key, or --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp]", what)
	}
	switch {
	case s.trustedRoot != "":
		tr, err := sign.LoadTrustedRoot(s.trustedRoot)
		if err != nil {
			return policy, nil, err
		}
		return policy, tr, nil
	case !keyed:
		tr, err := sign.PublicGoodTrustedRoot(cmd.Context(), sign.TUFOptions{CacheDir: s.tufCache})
		if err != nil {
			return policy, nil, err
		}
		return policy, tr, nil
	}
	return policy, nil, nil
}

// verifyImageCommand is `mero-release verify-image REF`: check the signature and the SBOM and
// provenance attestations of a registry image (pipeline/imagesign).
func (a *app) verifyImageCommand() *cobra.Command {
	var signer signerFlags
	var insecure bool
	c := &cobra.Command{
		Use:   "verify-image REF  (--key cosign.pub | --certificate-identity[-regexp] X --certificate-oidc-issuer[-regexp] Y)",
		Short: "Verify a registry image's signature and its SBOM and provenance attestations",
		Long: `Verify that the image REF (REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:...) carries, where
cosign looks, a signature of its digest and the SBOM (https://spdx.dev/Document) and SLSA
provenance (https://slsa.dev/provenance/v1) attestations signed by the expected signer: both as
Sigstore bundles attached as OCI 1.1 referrers and in cosign's tag scheme (sha256-<hex>.sig /
.att), as release-kms attaches them. The signer flags are those of verify. Registry credentials
come from the Docker config (docker login); public images need none. Exit 10 when a signature or
attestation is missing or does not verify, or the signer is not the expected one.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return outcome.UsageErrorf("verify-image: give exactly one image reference")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var opts []name.Option
			if insecure {
				opts = append(opts, name.Insecure)
			}
			ref, err := name.ParseReference(args[0], opts...)
			if err != nil {
				return outcome.UsageErrorf("verify-image: image reference %q: %v", args[0], err)
			}
			policy, trusted, err := signer.policy(cmd, "verify-image")
			if err != nil {
				return err
			}
			res, verr := imagesign.Verify(cmd.Context(), ref, imagesign.VerifyOptions{
				Verifier: sign.NewVerifier(trusted),
				Policy:   policy,
				Remote:   []remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain)},
			})
			if res != nil {
				for _, c := range res.Checks {
					who := c.Signer.Identity
					if who == "" {
						who = "key " + signer.keyPath
					}
					a.log.Passf("%s: %s (%s) signed by %s", res.Digest, c.PredicateType, c.Where, who)
				}
			}
			if verr != nil {
				return verr
			}
			a.log.Passf("%s: signature, SBOM and provenance attestations verified", ref)
			if a.json {
				return a.printJSON(res)
			}
			return nil
		},
	}
	signer.register(c.Flags())
	c.Flags().BoolVar(&insecure, "insecure", false, "reach the registry over plain HTTP (loopback test registries; 127.0.0.1 and localhost are plain HTTP anyway)")
	return c
}
