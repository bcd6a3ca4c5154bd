package flow

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/calimero-network/mero-release/pipeline/atomicfile"
	"github.com/calimero-network/mero-release/pipeline/audit"
	"github.com/calimero-network/mero-release/pipeline/catalog"
	"github.com/calimero-network/mero-release/pipeline/guard"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/notes"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/provenance"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/store"
	"github.com/calimero-network/mero-release/pipeline/store/dir"
	"github.com/calimero-network/mero-release/pipeline/verified"
)

// ImagesDir is where a release run in workDir keeps the images of tag: the KMS profile images
// it built or took, as OCI archives (NAME-<profile>.oci.tar), and their app-compose files.
func ImagesDir(workDir, tag string) string {
	return filepath.Join(workDir, tag, "images")
}

// run is the state one pipeline run shares between its stages.
type run struct {
	cfg    *Config
	report *Report

	class release.Class
	rules release.Rules
	// published are the store's published tags; alreadyPublished is true when Tag is among them.
	published        []release.Tag
	alreadyPublished bool
	// counterpart is the release of the other family this one pairs with (nil: none).
	counterpart *release.Tag

	started time.Time // when the run started (the provenance's startedOn)
	// provenance is what the provenance stage signed (nil before it ran or when it was skipped).
	provenance *provenance.Input

	assets   string // assembled release assets
	imageDir string // built images and their compose files
	staging  store.Store
	overlay  store.Store

	// resumed is true when the assets are those of a complete draft an earlier run left in the
	// store (draftStage): nothing is rebuilt.
	resumed bool

	measurements *measure.Published
	// previousMeasurements are the previous release's of the family, when the notes stage found them.
	previousMeasurements *measure.Published
	catalog              *catalog.Catalog
	notes                []byte
	// vulnNotes is the release-notes section of the vulnerability gate (its Markdown).
	vulnNotes string
	e2eRan    bool
	e2ePassed bool

	// candidatePolicies are the KMS policies a node release whose measurements the counterpart
	// KMS's published policies do not hold is tested against (by profile, JSON); followUp says
	// which KMS release must follow with them. Both empty otherwise.
	candidatePolicies map[release.Profile][]byte
	followUp          string
}

func newRun(cfg *Config) (*run, error) {
	if cfg.Store == nil {
		return nil, outcome.UsageErrorf("release %s: no store configured", cfg.Tag)
	}
	if cfg.WorkDir == "" {
		return nil, outcome.UsageErrorf("release %s: no work directory configured", cfg.Tag)
	}
	if cfg.Signer == nil {
		return nil, outcome.UsageErrorf("release %s: no signer configured", cfg.Tag)
	}
	base := filepath.Join(cfg.WorkDir, cfg.Tag.String())
	r := &run{cfg: cfg, report: &Report{Tag: cfg.Tag.String()}, started: cfg.now(),
		assets: filepath.Join(base, "assets"), imageDir: ImagesDir(cfg.WorkDir, cfg.Tag.String())}
	// a fresh assembly every run: stale assets of an earlier attempt are never published
	for _, d := range []string{r.assets, r.imageDir, filepath.Join(base, "staging")} {
		if err := os.RemoveAll(d); err != nil {
			return nil, fmt.Errorf("release %s: clean %s: %w", cfg.Tag, d, err)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("release %s: %w", cfg.Tag, err)
		}
	}
	staging, err := dir.New(filepath.Join(base, "staging"))
	if err != nil {
		return nil, fmt.Errorf("release %s: staging store: %w", cfg.Tag, err)
	}
	r.staging = staging
	r.overlay = store.Overlay{Top: staging, Base: cfg.Store}
	return r, nil
}

// writeReport stores report.json next to the assets.
func (r *run) writeReport() {
	b, err := r.report.JSON()
	if err != nil {
		return
	}
	_ = os.WriteFile(filepath.Join(r.cfg.WorkDir, r.cfg.Tag.String(), "report.json"), b, 0o644)
}

// Published reports whether cfg.Tag is already published in cfg.Store: a re-run, which only
// re-audits the release. Callers check it before assembling a product (building a binary,
// reading images) that such a run never uses.
func Published(ctx context.Context, cfg Config) (bool, error) {
	if cfg.Store == nil {
		return false, outcome.UsageErrorf("release %s: no store configured", cfg.Tag)
	}
	names, err := cfg.Store.Tags(ctx)
	if err != nil {
		return false, fmt.Errorf("list published releases: %w", err)
	}
	return slices.Contains(release.ParseTags(names), cfg.Tag), nil
}

// e2eReportFile is the E2E report (e2e.Report as JSON) a run keeps next to report.json.
const e2eReportFile = "e2e-report.json"

// writeWorkJSON writes v as indented JSON to name in the run's work folder of the tag.
func (r *run) writeWorkJSON(name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return atomicfile.Write(filepath.Join(r.cfg.WorkDir, r.cfg.Tag.String(), name), append(b, '\n'))
}

// checkLog is the log of a check the class may make advisory: on an advisory one a failed check
// is written as a warning (the check's report keeps the failure), so that a release that
// succeeds prints no [FAIL] line.
func (r *run) checkLog(advisory bool) *outcome.Logger {
	if advisory {
		return r.cfg.Log.Advisory()
	}
	return r.cfg.Log
}

// unlessPublished skips a stage when the release is already published (a re-run).
func (r *run) unlessPublished() string {
	if r.alreadyPublished {
		return "already published: nothing to rebuild, the audit re-checks it"
	}
	return ""
}

// unlessBuilt skips a build stage on a re-run of a published release, and when the assets are
// adopted from the draft of an earlier run.
func (r *run) unlessBuilt() string {
	if s := r.unlessPublished(); s != "" {
		return s
	}
	if r.resumed {
		return "resuming the draft of an earlier run: its assets are kept as they are"
	}
	return ""
}

// versionStage is the version sync guard, the progression rule and the release class.
func (r *run) versionStage() Stage {
	return Stage{Name: "version-sync", Run: func(ctx context.Context) error {
		tag := r.cfg.Tag
		if err := guard.VersionSync(tag, r.cfg.ConfiguredVersion); err != nil {
			return err
		}
		r.cfg.Log.Passf("version sync: %s matches %s=%s", tag, tag.Family.VersionVariable(), r.cfg.ConfiguredVersion)
		names, err := r.cfg.Store.Tags(ctx)
		if err != nil {
			return fmt.Errorf("list published releases: %w", err)
		}
		r.published = release.ParseTags(names)
		r.alreadyPublished = slices.Contains(r.published, tag)
		if err := release.Progression(tag, r.published); err != nil {
			return err
		}
		r.class = release.Classify(tag, r.published)
		r.rules = release.RulesFor(r.class)
		r.report.Class = string(r.class)
		r.cfg.Log.Infof("%s is a %s release (E2E %s, policy_not_ready %s)", tag, r.class,
			map[bool]string{true: "blocking", false: "advisory"}[r.rules.E2EBlocking],
			map[bool]string{true: "allowed", false: "refused"}[r.rules.PolicyNotReadyAllowed])
		if r.cfg.SkipE2E && r.rules.E2EBlocking {
			return outcome.UsageErrorf("%s: E2E cannot be skipped for a %s release", tag, r.class)
		}
		if !r.alreadyPublished {
			// the author's notes a stable or hotfix release needs exist before anything is built
			if err := notes.RequireAuthorFile(r.cfg.authorNotes(), tag, r.class); err != nil {
				return err
			}
		}
		if r.rules.BuiltFromBase && !r.alreadyPublished {
			if err := r.checkBuiltFromBase(ctx); err != nil {
				return err
			}
		}
		if (r.rules.CatalogUpdateRequired || r.rules.CatalogUpdateOnMeasurementChange) && !r.alreadyPublished &&
			r.cfg.catalogOut() == "" && r.cfg.CatalogPR == nil {
			return outcome.UsageErrorf("%s: a %s release must be able to update the compatibility catalog: configure a catalog file or the catalog pull request", tag, r.class)
		}
		return nil
	}}
}

// checkBuiltFromBase refuses a hotfix whose source is not a branch of the stable release it
// patches: the base tag must be an ancestor of HEAD in the repository. A repository without the
// base tag (a shallow checkout) cannot tell and is warned about.
func (r *run) checkBuiltFromBase(ctx context.Context) error {
	base, err := release.HotfixBase(r.cfg.Tag)
	if err != nil {
		return err
	}
	repo := r.cfg.historyDir()
	if repo == "" {
		r.cfg.Log.Warnf("%s: no repository to check that it is built from a branch of %s", r.cfg.Tag, base)
		return nil
	}
	tags, err := notes.Tags(ctx, repo)
	if err != nil || !slices.Contains(tags, base) {
		r.cfg.Log.Warnf("%s: %s is not a tag of %s (a shallow checkout? fetch the tags): cannot check that the hotfix is built from a branch of it", r.cfg.Tag, base, repo)
		return nil
	}
	ok, err := notes.IsAncestor(ctx, repo, base.String(), "HEAD")
	if err != nil {
		return fmt.Errorf("%s: %w", r.cfg.Tag, err)
	}
	if !ok {
		return outcome.VerificationErrorf("%s is a hotfix of %s but HEAD of %s is not on a branch of %s: build it from that tag", r.cfg.Tag, base, repo, base)
	}
	r.cfg.Log.Passf("%s is built from a branch of %s", r.cfg.Tag, base)
	return nil
}

// counterpartStage resolves the counterpart release: the configured version (it must be
// published) or the newest published release of the other family.
func (r *run) counterpartStage() Stage {
	return Stage{Name: "counterpart", Skip: r.unlessPublished, Run: func(ctx context.Context) error {
		other := r.cfg.Tag.Family.Counterpart()
		if r.cfg.Counterpart != "" {
			v, err := release.ParseVersion(r.cfg.Counterpart)
			if err != nil {
				return fmt.Errorf("counterpart: %w", err)
			}
			t := release.Tag{Family: other, Version: v}
			if !slices.Contains(r.published, t) {
				return outcome.VerificationErrorf("counterpart %s is not a published release in the store", t)
			}
			r.counterpart = &t
		} else {
			for _, p := range r.published {
				if p.Family == other && (r.counterpart == nil || p.Version.Compare(r.counterpart.Version) > 0) {
					p := p
					r.counterpart = &p
				}
			}
		}
		if r.counterpart == nil {
			r.cfg.Log.Warnf("no published %s release to pair %s with: policies stay not ready and E2E cannot run", other.Title(), r.cfg.Tag)
			return nil
		}
		r.cfg.Log.Infof("counterpart: %s", r.counterpart)
		cat, err := r.cfg.loadCatalog()
		if err != nil {
			return err
		}
		r.catalog = cat
		return nil
	}}
}

// pair returns the (kms, node) versions of this release and its counterpart.
func (r *run) pair() (kms, node string) {
	if r.counterpart == nil {
		return "", ""
	}
	if r.cfg.Tag.Family == release.KMS {
		return r.cfg.Tag.Version.String(), r.counterpart.Version.String()
	}
	return r.counterpart.Version.String(), r.cfg.Tag.Version.String()
}

// readPublishedFrom reads published-mrtds.json of another release in the store, verified first
// (its bundle by the signer expected for that release, its digest against the release's signed
// checksums.sha256: pipeline/verified): outside material is never used unverified.
func readPublishedFrom(ctx context.Context, st store.Store, tag release.Tag, signer audit.Config) (*measure.Published, error) {
	trust, err := signer.Trust(tag)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tag, err)
	}
	v, err := verified.Fetch(ctx, st, tag.String(), release.PublishedMRTDsFile, trust)
	if err != nil {
		return nil, err
	}
	p, err := measure.ReadPublished(bytes.NewReader(v.Data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tag, err)
	}
	return p, nil
}

// writeAsset writes one assembled asset.
func (r *run) writeAsset(name string, data []byte) error {
	if err := os.WriteFile(filepath.Join(r.assets, name), data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
