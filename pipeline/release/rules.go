package release

// Section is a release-notes section a class may require.
type Section string

// Release-notes sections (SPEC §1).
const (
	SectionChangelog       Section = "Changelog"
	SectionBreakingChanges Section = "Breaking changes"
	SectionUpgradePath     Section = "Upgrade path"
	SectionMeasurements    Section = "MRTD/RTMR changes"
	SectionCompatibility   Section = "Compatible versions"
	SectionIncident        Section = "CVE or incident"
	SectionChangeDetail    Section = "Exact change"
	SectionRollback        Section = "Rollback"
	SectionWhyPatch        Section = "Why a patch release"
)

// Rules are what the pipeline enforces for a class (SPEC §1), as data: stages consult these
// instead of testing the class themselves.
type Rules struct {
	Class Class
	// E2EBlocking: a failing E2E suite stops the release (false: reported, advisory).
	E2EBlocking bool
	// DependencyGuardBlocking: a failing KMS ↔ node dependency guard stops the release (false:
	// reported; an rc's pair reaches the catalog only after its own E2E).
	DependencyGuardBlocking bool
	// PolicyNotReadyAllowed: attestation policies may carry "status": "policy_not_ready".
	PolicyNotReadyAllowed bool
	// CatalogUpdateRequired: the compatibility catalog must gain the tested pairs.
	CatalogUpdateRequired bool
	// CatalogUpdateOnMeasurementChange: the catalog (and policy) must be updated when MRTD/RTMRs changed.
	CatalogUpdateOnMeasurementChange bool
	// AuditorRequired: the release auditor must pass.
	AuditorRequired bool
	// BuiltFromBase: the release must be built from a branch of its base (the stable release it
	// patches): the base tag is an ancestor of what is released.
	BuiltFromBase bool
	// VulnerabilityGateBlocking: fixable vulnerabilities at or above the gate's severity in the
	// release's SBOM stop the release, and an unscanned release is refused (false: reported).
	VulnerabilityGateBlocking bool
	// Prerelease marks the published release as a prerelease.
	Prerelease bool
	// MayBeLatest: the release may be marked "latest".
	MayBeLatest bool
	// RequiredSections must appear in the release notes (written or generated).
	RequiredSections []Section
}

// RulesFor returns the rules of a class.
func RulesFor(c Class) Rules {
	switch c {
	case RC:
		return Rules{
			Class:       RC,
			E2EBlocking: false,
			// DependencyGuardBlocking false: its pair is catalogued after its E2E.
			PolicyNotReadyAllowed: true,
			AuditorRequired:       true,
			Prerelease:            true,
			MayBeLatest:           false,
			RequiredSections:      []Section{SectionChangelog},
		}
	case Hotfix:
		return Rules{
			Class:                            Hotfix,
			E2EBlocking:                      true,
			DependencyGuardBlocking:          true,
			PolicyNotReadyAllowed:            false,
			CatalogUpdateOnMeasurementChange: true,
			BuiltFromBase:                    true,
			AuditorRequired:                  true,
			VulnerabilityGateBlocking:        true,
			MayBeLatest:                      true,
			RequiredSections: []Section{
				SectionChangelog, SectionIncident, SectionChangeDetail, SectionRollback, SectionWhyPatch,
			},
		}
	default:
		return Rules{
			Class:                     Stable,
			E2EBlocking:               true,
			DependencyGuardBlocking:   true,
			PolicyNotReadyAllowed:     false,
			CatalogUpdateRequired:     true,
			AuditorRequired:           true,
			VulnerabilityGateBlocking: true,
			MayBeLatest:               true,
			RequiredSections: []Section{
				SectionChangelog, SectionBreakingChanges, SectionUpgradePath, SectionMeasurements, SectionCompatibility,
			},
		}
	}
}
