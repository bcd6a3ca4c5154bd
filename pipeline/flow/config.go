package flow

import (
	"context"
	"crypto/x509"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/calimero-network/mero-release/pipeline/audit"
	"github.com/calimero-network/mero-release/pipeline/catalog"
	"github.com/calimero-network/mero-release/pipeline/dstack"
	"github.com/calimero-network/mero-release/pipeline/e2e"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/notes"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/packer"
	"github.com/calimero-network/mero-release/pipeline/provenance"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/store"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
	"github.com/calimero-network/mero-release/pipeline/vm"
	"github.com/calimero-network/mero-release/pipeline/vuln"
)

// Config is what both pipelines need. The CLI and the Dagger module fill it; the defaults of
// those callers are local (a directory store, key signing, the TDX simulator).
type Config struct {
	// Tag is the release tag.
	Tag release.Tag
	// ConfiguredVersion is the repository's MERO_KMS_VERSION / MERO_TEE_VERSION (version sync guard).
	ConfiguredVersion string
	// Counterpart is the version of the other family's release this one pairs with; empty means
	// the newest published release of that family in Store.
	Counterpart string
	// Store is where releases are published (and counterparts read from).
	Store store.Store
	// WorkDir receives the assembled assets, images, the staging store and report.json.
	WorkDir string
	// RepoDir is the source repository: relative node images are resolved from it, and, unless
	// HistoryDir is set, its git history and tags feed the notes and the hotfix rule.
	RepoDir string
	// HistoryDir is the git repository whose history, tags and release-notes/<tag>.md feed the
	// release notes and the hotfix rule BuiltFromBase (default RepoDir).
	HistoryDir string
	// AuthorNotes is the release author's notes file (Markdown with ## sections); empty means the
	// notes convention, HistoryDir/release-notes/<tag>.md (notes.ConventionFile), which a stable
	// or hotfix release must have.
	AuthorNotes string
	// RepoURL turns PR references into links in the notes; optional.
	RepoURL string
	// CatalogPath is the compatibility catalog to read; CatalogOut is where the updated catalog is
	// written after E2E passes (empty: CatalogPath).
	CatalogPath, CatalogOut string
	// CatalogPR, when set, is called with the updated catalog instead of (or after) writing it:
	// the GitHub path opens or updates the catalog pull request.
	CatalogPR func(ctx context.Context, content []byte) error
	// Build says who builds the release and from what, for its provenance: the builder id (the
	// GitHub workflow ref, or provenance.LocalBuilder), the source repository and commit (empty:
	// HEAD of RepoDir) and the builder images.
	Build provenance.Build
	// Signer signs every asset; Audit is how the auditor checks the signatures.
	Signer sign.Signer
	Audit  audit.Config
	// Provider boots node VMs (measurement and E2E); NodeRoots verify their quotes.
	Provider  vm.Provider
	NodeRoots *x509.CertPool
	// NodeRootFile is NodeRoots as a PEM file, for KMS processes; empty means the simulator's.
	NodeRootFile string
	// Authority is the TDX simulator platform of local KMS instances in E2E.
	Authority *tdxsim.Authority
	// KMSLauncher starts KMS instances for E2E (default: in process on 127.0.0.1).
	KMSLauncher e2e.KMSLauncher
	// SkipE2E turns the E2E stage off (reported as skipped; refused for classes where E2E blocks).
	SkipE2E bool
	// Created is the fixed time of generated artifacts (SOURCE_DATE_EPOCH or the commit time).
	Created time.Time
	// Now is the clock of measurements (default time.Now).
	Now func() time.Time
	// RunID labels VMs (CI run id).
	RunID string
	// Vuln configures the vulnerability gate that follows the SBOM stage.
	Vuln VulnConfig
	// Log receives the SPEC §9 lines.
	Log *outcome.Logger
	// Tracer, when set, records one span per stage that runs, under one span of the release
	// (pipeline/telemetry makes it from the OTEL_EXPORTER_OTLP_* and TRACEPARENT the Dagger engine
	// hands its execs); nil records nothing.
	Tracer trace.Tracer
}

// VulnConfig configures the vulnerability gate (pipeline/vuln): the release's SBOM is matched
// against a grype database; for stable and hotfix releases fixable findings at or above FailOn
// that the allow-list does not accept stop the release before anything is published, and a
// release with no database is refused; a release candidate's findings are reported only.
type VulnConfig struct {
	// DB is a grype v6 database directory (vulnerability.db in it or in DB/6/), or
	// local:FILE, an advisory list built into a database for the run; empty: not scanned.
	DB string
	// AllowList is the allow-list file (empty: none); when AllowListOptional, a missing file
	// is an empty list (the default path at the repository root).
	AllowList         string
	AllowListOptional bool
	// FailOn is the gate's threshold (zero: vuln.DefaultFailOn, high).
	FailOn vuln.Severity
}

// KMSProduct is what the KMS pipeline releases: the product supplies its binary and deployment.
type KMSProduct struct {
	// Images are prebuilt profile images, OCI archives (e.g. built from the KMS's Dockerfile by
	// the Dagger module). When set, they are measured, SBOM'd and pushed as they are and Binary
	// is not used; otherwise the pipeline builds each profile's image from Binary.
	Images map[release.Profile]string
	// Binary is the KMS executable (linux/amd64, static) placed in each profile's image.
	Binary string
	// BinaryPath is where the binary sits in the image (default /usr/local/bin/mero-kms).
	BinaryPath string
	// ImageName names the image (default mero-kms); Registry, when set (e.g. ghcr.io/owner),
	// makes deployments reference Registry/ImageName@digest and the push-images stage push each
	// profile's image there (after audit and E2E, before publish), checking that the registry
	// holds exactly the measured digest.
	ImageName, Registry string
	// RegistryUser and RegistryToken authenticate the push (GHCR: a packages:write token).
	RegistryUser, RegistryToken string
	// AppCompose renders the dstack app-compose of the KMS pinned to an image reference.
	AppCompose func(imageRef string) ([]byte, error)
	// OSImage is the dstack guest OS the KMS runs on (dstack.PinnedOSImage); Dstack are its
	// RTMR3 deployment inputs.
	OSImage *dstack.OSImage
	Dstack  measure.DstackBoot
	// TCBStatus is the allowed TCB statuses of generated policies (default UpToDate).
	TCBStatus []string
}

// NodeProduct is what the node-image pipeline releases.
type NodeProduct struct {
	// Images maps each profile to the image the VM provider boots: a simulator image directory
	// locally, a GCP image name in production.
	Images map[release.Profile]string
	// SBOMPath and SBOMKind say what the SBOM describes (the image directory, or the Packer manifest).
	SBOMPath, SBOMKind string
	// BaseImage records the pinned GCP base image (family, project, source image).
	BaseImage BaseImage
}

// BaseImage is the pinned GCP TDX base image of the node image (SPEC §3).
type BaseImage = packer.BaseImage

// DefaultBaseImage is the base image of SPEC §3.
func DefaultBaseImage() BaseImage { return packer.DefaultBaseImage() }

func (c *Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now().UTC()
}

// historyDir is the repository the notes and the hotfix rule read.
func (c *Config) historyDir() string {
	if c.HistoryDir != "" {
		return c.HistoryDir
	}
	return c.RepoDir
}

// authorNotes is the author notes file of the release: the configured one, or the convention's.
func (c *Config) authorNotes() string {
	if c.AuthorNotes != "" || c.historyDir() == "" {
		return c.AuthorNotes
	}
	return notes.ConventionFile(c.historyDir(), c.Tag)
}

func (c *Config) catalogOut() string {
	if c.CatalogOut != "" {
		return c.CatalogOut
	}
	return c.CatalogPath
}

// loadCatalog loads the catalog, or an empty one when no path is configured.
func (c *Config) loadCatalog() (*catalog.Catalog, error) {
	if c.CatalogPath == "" {
		return catalog.New(), nil
	}
	return catalog.LoadFile(c.CatalogPath)
}
