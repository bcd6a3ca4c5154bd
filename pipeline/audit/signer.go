package audit

import (
	"regexp"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/internal/lazyre"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/verified"
)

// PinnedKeyFile is where a repository pins the public key its key-signed releases are audited
// against (relative to the repository root). The auditor never takes the key from the release
// or the state being audited: a caller gives the signer, or the repository pins it here.
const PinnedKeyFile = ".github/release-signer.pub"

// NoSignerHint says what to pass when no expected signer was given.
const NoSignerHint = "give the expected signer: --key cosign.pub (key-signed releases), " +
	"--certificate-identity https://github.com/OWNER/REPO/.github/workflows/FILE@refs/tags/TAG or --repository OWNER/REPO (keyless releases), " +
	"or commit the release public key as " + PinnedKeyFile + " in the repository; the auditor never trusts a key found in the store it audits"

// identityRE is a GitHub Actions workflow identity: the certificate's SAN.
var identityRE = lazyre.New(`^https://github\.com/([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)/(\.github/workflows/[A-Za-z0-9_./-]+\.ya?ml)@(refs/(?:tags|heads)/[^\s]+)$`)

// ParseCertificateIdentity splits a keyless signer identity, as cosign's
// --certificate-identity names it (https://github.com/OWNER/REPO/.github/workflows/FILE@REF),
// into the Config fields: Repository, Workflow and a RefPattern matching exactly REF (the
// literal "<tag>" in REF stands for the audited tag). A malformed identity is a usage error.
func ParseCertificateIdentity(identity string) (Config, error) {
	m := identityRE().FindStringSubmatch(identity)
	if m == nil || strings.Contains(m[2], "..") {
		return Config{}, outcome.UsageErrorf("certificate identity %q: want https://github.com/OWNER/REPO/.github/workflows/FILE@refs/tags/TAG", identity)
	}
	ref := strings.ReplaceAll(regexp.QuoteMeta(m[3]), regexp.QuoteMeta(tagPlaceholder), tagPlaceholder)
	return Config{Repository: m[1], Workflow: m[2], RefPattern: ref}, nil
}

// tagPlaceholder stands for the audited tag in a ref pattern.
const tagPlaceholder = "<tag>"

// Trust is the expected signer of the release tag as pipeline/verified takes it: the key or the
// keyless identity the auditor checks for that tag (for keyless releases, the workflow of the
// tag's family at refs/tags/<tag>). Stages use it to verify a counterpart release's material
// before they read it. A Config without a signer is a usage error.
func (cfg Config) Trust(tag release.Tag) (verified.Trust, error) {
	p, _, err := cfg.signaturePolicy(tag)
	if err != nil {
		return verified.Trust{}, err
	}
	return verified.Trust{Policy: p, Verifier: sign.NewVerifier(cfg.TrustedRoot)}, nil
}
