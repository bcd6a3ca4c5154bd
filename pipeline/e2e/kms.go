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

// KMSDeployment is what a KMS instance runs besides its policy, as the KMS release recorded it
// in published-mrtds.json; zero fields mean "not recorded" and leave the launcher's default.
type KMSDeployment struct {
	// ComposeHash is the hex SHA-256 of the profile's app-compose (dstack extends it into the
	// KMS VM's RTMR3).
	ComposeHash string
	// Image is the KMS image reference, pinned by digest, the release measured for the
	// profile (a deployed KMS runs exactly that image).
	Image string
}

// KMSLauncher starts a KMS configured with one attestation policy, already checked as the KMS
// checks it at start-up (policy.LoadForKMS: its kms_version and profile are the KMS's
// MERO_KMS_VERSION and MERO_KMS_PROFILE), deployed as d describes. Launchers:
// examples/kms/local.InProcessKMS (the sample KMS in this process) and pipeline/kmsproc (a KMS
// executable as a process on 127.0.0.1).
type KMSLauncher interface {
	Launch(ctx context.Context, p *policy.Loaded, d KMSDeployment) (KMSInstance, error)
}

// ImagePuller is implemented by launchers whose KMS instances pull the release's recorded image
// from its registry (a CVM on Phala Cloud), rather than running a local executable: a release
// run must push the images (by digest) before its E2E can use such a launcher.
type ImagePuller interface {
	// PullsImages reports whether the instances run the recorded image pulled by digest.
	PullsImages() bool
}
