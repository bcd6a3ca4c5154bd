package e2e

import (
	"context"
	"crypto/x509"

	"github.com/calimero-network/mero-release/pipeline/policy"
)

// KMSInstance is a running KMS the suite talks to.
type KMSInstance interface {
	// URL is the KMS's base URL.
	URL() string
	// TrustedRoots are the roots the KMS's own quotes chain to.
	TrustedRoots() *x509.CertPool
	// Close stops the KMS; the suite calls it on every path.
	Close() error
}

// KMSLauncher starts a KMS configured with one attestation policy, already checked as the KMS
// checks it at start-up (policy.LoadForKMS: its kms_version and profile are the KMS's
// MERO_KMS_VERSION and MERO_KMS_PROFILE). The in-process launcher of the sample KMS is
// examples/kms/local.InProcessKMS.
type KMSLauncher interface {
	Launch(ctx context.Context, p *policy.Loaded) (KMSInstance, error)
}
