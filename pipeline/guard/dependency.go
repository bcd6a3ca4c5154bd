package guard

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/catalog"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/store"
)

// DependencyInput is what the KMS ↔ node dependency guard needs.
type DependencyInput struct {
	// Tag is the release being made.
	Tag release.Tag
	// Counterpart is the release of the other family it must work with: the node image for a
	// KMS tag, the KMS for a node tag.
	Counterpart release.Tag
	// Store is where published releases are read from.
	Store store.Store
	// Catalog is the compatibility catalog that must list the pair.
	Catalog *catalog.Catalog
	// Proven says the pair passed the KMS–node E2E suite in the run that makes this release,
	// for every profile: the catalog entry that E2E records is accepted in place of a listed
	// one (SPEC §5: entries are added after E2E, so a stable release's own pair cannot be
	// listed before it). ProvenBy says how (shown in the report).
	Proven   bool
	ProvenBy string
	// Policies are the attestation policies being released, by profile (KMS releases only).
	// Their allowlists are checked against the counterpart's published-mrtds.json.
	Policies map[release.Profile]*policy.Policy
	// ReadMeasurements, when set, reads a node release's published-mrtds.json in place of a
	// plain read from Store: the release pipeline passes its verified read (bundle by the
	// expected signer, digest against the signed checksums.sha256), so counterpart material
	// is never used unverified. A missing asset is exit 11, a failed verification exit 10.
	ReadMeasurements func(ctx context.Context, tag release.Tag) (*measure.Published, error)
}

// Check names of the dependency guard; per-profile checks append " (profile)".
const (
	CheckCounterpart        = "counterpart release"
	CheckCatalogPair        = "catalog pair"
	CheckPolicyMeasurements = "policy measurements"
	CheckPolicyAccepts      = "policy accepts counterpart"
)

// Dependency is the KMS ↔ node dependency guard (SPEC §4.3). It checks, and reports each as a
// named check:
//
//   - counterpart release: the counterpart tag is a published (non-draft) release in the store;
//   - catalog pair: the catalog lists the (kms, node) pair as tested for every profile the
//     policies cover (every profile of the pair's entry when no policies are given), or the
//     pair is Proven by the E2E of the same run (its entry is recorded after publishing);
//   - for a KMS release, per profile: policy measurements — every MRTD/RTMR0–3 value in a ready
//     policy's allowlists appears in the counterpart's published-mrtds.json for that profile, or
//     in that of another node release the policy names in node_versions (a policy generated for
//     several node versions); and policy accepts counterpart — the counterpart's measurements
//     are in the allowlists, so its nodes get keys. A policy_not_ready policy accepts anything:
//     it is a WARN, not a failure (the class rules decide whether it may ship).
//
// Failed checks make a verification error (exit 10); a counterpart release without
// published-mrtds.json adds a missing-asset error (exit 11, the higher code wins). Bad input
// (wrong counterpart family, no store or catalog, policies for a node release) is a usage error;
// a store that cannot be read is a general error. The report holds every check that ran.
func Dependency(ctx context.Context, in DependencyInput) (Report, error) {
	var r Report
	if err := in.validate(); err != nil {
		return r, err
	}
	kms, node := in.Tag.Version.String(), in.Counterpart.Version.String()
	if in.Tag.Family == release.Node {
		kms, node = node, kms
	}
	d := &depState{ctx: ctx, st: in.Store, read: storeRead(in.Store), published: map[string]*measure.Published{}}
	if in.ReadMeasurements != nil {
		d.read = verifiedRead(in.ReadMeasurements)
	}

	// (a) the counterpart is published
	counterpartOK, err := d.checkPublished(&r, CheckCounterpart, in.Counterpart, "counterpart")
	if err != nil {
		return r, err
	}

	// (b) the catalog lists the pair
	profiles := slices.Collect(maps.Keys(in.Policies))
	sortProfiles(profiles)
	entry, listed := in.Catalog.Pair(kms, node)
	switch {
	case in.Proven && (!listed || !entry.Tested):
		r.add(CheckCatalogPair, Pass, "kms %s with node image %s is proven in this run (%s): the catalog gains the pair after publishing", kms, node, cmp.Or(in.ProvenBy, "E2E passed"))
	case !listed:
		r.add(CheckCatalogPair, Fail, "the compatibility catalog does not list kms %s with node image %s", kms, node)
	case !entry.Tested:
		r.add(CheckCatalogPair, Fail, "the compatibility catalog lists kms %s with node image %s as not tested", kms, node)
	case len(profiles) == 0:
		r.add(CheckCatalogPair, Pass, "kms %s with node image %s is listed and tested for %s", kms, node, profileList(entry))
	default:
		for _, p := range profiles {
			name := CheckCatalogPair + " (" + string(p) + ")"
			if in.Catalog.Lists(kms, node, p) {
				r.add(name, Pass, "kms %s with node image %s is listed and tested for %s", kms, node, p)
			} else {
				r.add(name, Fail, "kms %s with node image %s is listed for %s but not for %s", kms, node, profileList(entry), p)
			}
		}
	}

	// (c) the KMS policies only allow what the counterpart (and the node versions they name) published
	var missing []error
	if in.Tag.Family == release.KMS {
		if len(profiles) == 0 {
			r.add(CheckPolicyMeasurements, Skip, "no attestation policies given")
		}
		for _, prof := range profiles {
			m, err := d.policyChecks(&r, in, prof, counterpartOK)
			if err != nil {
				return r, err
			}
			missing = append(missing, m...)
		}
	}
	return r, r.verdict("dependency", missing...)
}

func (in DependencyInput) validate() error {
	switch {
	case in.Counterpart.Family != in.Tag.Family.Counterpart():
		return outcome.UsageErrorf("dependency guard: counterpart %s: the counterpart of a %s release is a %s release", in.Counterpart, in.Tag.Family, in.Tag.Family.Counterpart())
	case in.Store == nil:
		return outcome.UsageErrorf("dependency guard: no release store given")
	case in.Catalog == nil:
		return outcome.UsageErrorf("dependency guard: no compatibility catalog given")
	case in.Tag.Family == release.Node && len(in.Policies) > 0:
		return outcome.UsageErrorf("dependency guard: attestation policies belong to a KMS release, not to %s", in.Tag)
	}
	for prof, p := range in.Policies {
		if p == nil {
			return outcome.UsageErrorf("dependency guard: %s: missing", prof.PolicyFile())
		}
		if p.Profile != prof {
			return outcome.UsageErrorf("dependency guard: %s holds the %q policy", prof.PolicyFile(), p.Profile)
		}
	}
	return nil
}

func sortProfiles(ps []release.Profile) {
	slices.SortFunc(ps, func(a, b release.Profile) int {
		return slices.Index(release.Profiles(), a) - slices.Index(release.Profiles(), b)
	})
}

// depState caches what the guard reads from the store.
type depState struct {
	ctx       context.Context
	st        store.Store
	read      readFunc
	published map[string]*measure.Published // by tag; nil value: not available
}

// checkPublished checks that tag is a published release and records the check; a store failure other
// than "not found" is returned.
func (d *depState) checkPublished(r *Report, name string, tag release.Tag, role string) (bool, error) {
	rel, err := d.st.Release(d.ctx, tag.String())
	switch {
	case errors.Is(err, store.ErrNotFound):
		r.add(name, Fail, "%s release %s does not exist in the store", role, tag)
		return false, nil
	case err != nil:
		return false, fmt.Errorf("dependency guard: read release %s: %w", tag, err)
	case rel.Draft:
		r.add(name, Fail, "%s release %s is a draft, not published", role, tag)
		return false, nil
	}
	r.add(name, Pass, "%s release %s is published", role, tag)
	return true, nil
}

// measurements reads and caches published-mrtds.json of a node release. pub is nil when it is
// not available, and problem says why; missingErr is the missing-asset error (exit 11), returned
// the first time the file is found absent.
func (d *depState) measurements(tag release.Tag) (pub *measure.Published, problem string, missingErr error, err error) {
	key := tag.String()
	if p, seen := d.published[key]; seen {
		if p == nil {
			return nil, fmt.Sprintf("%s of %s is missing or invalid", release.PublishedMRTDsFile, tag), nil, nil
		}
		return p, "", nil, nil
	}
	d.published[key] = nil
	pub, problem, missingErr, err = d.read(d.ctx, tag)
	if pub == nil {
		return nil, problem, missingErr, err
	}
	if pub.Family != release.Node || pub.Version != tag.Version.String() {
		return nil, fmt.Sprintf("%s of %s describes %s %s", release.PublishedMRTDsFile, tag, pub.Family, pub.Version), nil, nil
	}
	d.published[key] = pub
	return pub, "", nil, nil
}

// readFunc is how measurements reads a node release's published-mrtds.json: through the
// caller's verified read when given, else directly from the store. pub is nil when it is not
// available; problem, missingErr and err are as in measurements.
type readFunc func(ctx context.Context, tag release.Tag) (pub *measure.Published, problem string, missingErr error, err error)

// verifiedRead adapts DependencyInput.ReadMeasurements: a missing asset is exit 11, a failed
// verification a failed check.
func verifiedRead(read func(ctx context.Context, tag release.Tag) (*measure.Published, error)) readFunc {
	return func(ctx context.Context, tag release.Tag) (*measure.Published, string, error, error) {
		pub, err := read(ctx, tag)
		switch {
		case outcome.Is(err, outcome.KindMissingAsset):
			problem := fmt.Sprintf("%s of %s: %v", release.PublishedMRTDsFile, tag, err)
			return nil, problem, outcome.MissingAssetErrorf("dependency guard: %s", problem), nil
		case outcome.Is(err, outcome.KindVerification):
			return nil, fmt.Sprintf("%s of %s did not verify: %v", release.PublishedMRTDsFile, tag, err), nil, nil
		case err != nil:
			return nil, "", nil, fmt.Errorf("dependency guard: read %s of %s: %w", release.PublishedMRTDsFile, tag, err)
		}
		return pub, "", nil, nil
	}
}

// storeRead reads published-mrtds.json from the store as it is.
func storeRead(st store.Store) readFunc {
	return func(ctx context.Context, tag release.Tag) (*measure.Published, string, error, error) {
		rc, err := st.OpenAsset(ctx, tag.String(), release.PublishedMRTDsFile)
		if errors.Is(err, store.ErrNotFound) {
			problem := fmt.Sprintf("release %s has no %s", tag, release.PublishedMRTDsFile)
			return nil, problem, outcome.MissingAssetErrorf("dependency guard: %s", problem), nil
		}
		if err != nil {
			return nil, "", nil, fmt.Errorf("dependency guard: open %s of %s: %w", release.PublishedMRTDsFile, tag, err)
		}
		defer rc.Close()
		pub, err := measure.ReadPublished(rc)
		if err != nil {
			if outcome.Is(err, outcome.KindVerification) {
				return nil, fmt.Sprintf("%s of %s: %v", release.PublishedMRTDsFile, tag, err), nil, nil
			}
			return nil, "", nil, fmt.Errorf("dependency guard: read %s of %s: %w", release.PublishedMRTDsFile, tag, err)
		}
		return pub, "", nil, nil
	}
}

// policyChecks runs the measurement checks of one profile's policy.
func (d *depState) policyChecks(r *Report, in DependencyInput, prof release.Profile, counterpartOK bool) ([]error, error) {
	p := in.Policies[prof]
	measName := CheckPolicyMeasurements + " (" + string(prof) + ")"
	acceptName := CheckPolicyAccepts + " (" + string(prof) + ")"
	if p.NotReady() {
		r.add(measName, Warn, "the %s policy is %s: it accepts any measurement, so its allowlists were not checked", prof, policy.StatusNotReady)
		return nil, nil
	}
	if !counterpartOK {
		r.add(measName, Skip, "counterpart release %s is not published", in.Counterpart)
		return nil, nil
	}
	var missing []error
	var problems []string
	// known[register][value] = the releases that published it
	known := map[string]map[string][]string{}
	sources := []release.Tag{in.Counterpart}
	for _, v := range p.NodeVersions {
		ver, err := release.ParseVersion(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("node_versions: %v", err))
			continue
		}
		if t := (release.Tag{Family: release.Node, Version: ver}); t != in.Counterpart {
			sources = append(sources, t)
		}
	}
	var counterpartRecord *measure.Record
	for _, src := range sources {
		if src != in.Counterpart {
			rel, err := d.st.Release(d.ctx, src.String())
			if errors.Is(err, store.ErrNotFound) || (err == nil && rel.Draft) {
				problems = append(problems, fmt.Sprintf("node_versions names %s, which is not a published release", src))
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("dependency guard: read release %s: %w", src, err)
			}
		}
		pub, problem, missingErr, err := d.measurements(src)
		if err != nil {
			return nil, err
		}
		if missingErr != nil {
			missing = append(missing, missingErr)
		}
		if pub == nil {
			problems = append(problems, problem)
			continue
		}
		rec, ok := pub.Profiles[prof]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s publishes no %s measurements", src, prof))
			continue
		}
		if src == in.Counterpart {
			counterpartRecord = &rec
		}
		for _, f := range rec.Fields() {
			if known[f[0]] == nil {
				known[f[0]] = map[string][]string{}
			}
			known[f[0]][f[1]] = append(known[f[0]][f[1]], src.String())
		}
	}
	allow := allowlists(p)
	var unknown []string
	count := 0
	for _, reg := range registers {
		for _, v := range allow[reg] {
			count++
			if len(known[reg][strings.ToLower(v)]) == 0 {
				unknown = append(unknown, fmt.Sprintf("allowed_%s %s", reg, short(v)))
			}
		}
	}
	switch {
	case counterpartRecord == nil:
		r.add(measName, Fail, "%s", strings.Join(problems, "; "))
	case len(unknown) > 0:
		msg := fmt.Sprintf("the %s policy allows %d value(s) that %s did not publish for %s: %s", prof, len(unknown), tagList(sources), prof, strings.Join(unknown, ", "))
		if len(problems) > 0 {
			msg += " (" + strings.Join(problems, "; ") + ")"
		}
		r.add(measName, Fail, "%s", msg)
	case len(problems) > 0:
		r.add(measName, Fail, "%s", strings.Join(problems, "; "))
	default:
		r.add(measName, Pass, "all %d allowlisted value(s) of the %s policy were published by %s", count, prof, tagList(sources))
	}

	if counterpartRecord == nil {
		r.add(acceptName, Skip, "no %s measurements of %s to compare", prof, in.Counterpart)
		return missing, nil
	}
	var refused []string
	for _, f := range counterpartRecord.Fields() {
		if !slices.Contains(lower(allow[f[0]]), f[1]) {
			refused = append(refused, fmt.Sprintf("%s %s not in allowed_%s", f[0], short(f[1]), f[0]))
		}
	}
	if len(refused) > 0 {
		r.add(acceptName, Fail, "a %s %s node would be refused by the %s policy: %s", in.Counterpart, prof, prof, strings.Join(refused, ", "))
	} else {
		r.add(acceptName, Pass, "the %s policy accepts the %s measurements of %s", prof, prof, in.Counterpart)
	}
	return missing, nil
}

// registers are the measurement registers in measure.Record.Fields order.
var registers = []string{"mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"}

func allowlists(p *policy.Policy) map[string][]string {
	return map[string][]string{
		"mrtd": p.AllowedMRTD, "rtmr0": p.AllowedRTMR0, "rtmr1": p.AllowedRTMR1, "rtmr2": p.AllowedRTMR2, "rtmr3": p.AllowedRTMR3,
	}
}

func lower(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strings.ToLower(v)
	}
	return out
}

// short abbreviates a 96-hex register value for messages.
func short(v string) string {
	if len(v) > 16 {
		return v[:16] + "…"
	}
	return v
}

func tagList(tags []release.Tag) string {
	var s []string
	for _, t := range tags {
		s = append(s, t.String())
	}
	return strings.Join(s, " or ")
}
