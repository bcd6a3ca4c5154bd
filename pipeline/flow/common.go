package flow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/calimero-network/mero-release/pipeline/audit"
	"github.com/calimero-network/mero-release/pipeline/catalog"
	"github.com/calimero-network/mero-release/pipeline/checksum"
	"github.com/calimero-network/mero-release/pipeline/e2e"
	"github.com/calimero-network/mero-release/pipeline/guard"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/notes"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/publish"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/store"
)

// draftStage looks in the store for a draft of this release that an earlier run left behind
// (its publish stage failed after the uploads). A complete draft is adopted: its assets become
// the assembled release and the build stages are skipped, so that the staged audit, E2E and
// publish run on exactly what the draft holds and the re-run completes it. Rebuilding instead
// could never complete it: signatures (and quote-bound measurements) are not reproducible, and
// a draft's assets are never replaced. An incomplete draft is reported and the release is
// rebuilt; publishing then fails on any uploaded asset that differs (delete the draft then).
func (r *run) draftStage() Stage {
	return Stage{Name: "draft", Skip: r.unlessPublished, Run: func(ctx context.Context) error {
		tag := r.cfg.Tag.String()
		rel, err := r.cfg.Store.Release(ctx, tag)
		switch {
		case errors.Is(err, store.ErrNotFound):
			r.cfg.Log.Infof("no draft of %s in the store: a new release", tag)
			return nil
		case err != nil:
			return fmt.Errorf("look for a draft of %s: %w", tag, err)
		case !rel.Draft:
			return nil // published meanwhile: the publish stage compares it with the assembled assets
		}
		held := map[string]bool{}
		for _, a := range rel.Assets {
			held[a.Name] = true
		}
		expected := release.ExpectedAssets(r.cfg.Tag.Family).All()
		var missing []string
		for _, name := range expected {
			if !held[name] {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			r.cfg.Log.Warnf("the store holds an incomplete draft of %s from an earlier run (%d of %d assets; missing %s): the release is rebuilt, and publishing fails if an uploaded asset differs (delete the draft then)",
				tag, len(expected)-len(missing), len(expected), strings.Join(missing, ", "))
			return nil
		}
		for _, name := range expected {
			if err := r.downloadAsset(ctx, name); err != nil {
				return fmt.Errorf("adopt the draft of %s: %w", tag, err)
			}
		}
		notes, err := os.ReadFile(filepath.Join(r.assets, release.NotesFile))
		if err != nil {
			return fmt.Errorf("adopt the draft of %s: %w", tag, err)
		}
		r.notes = notes
		r.resumed = true
		r.cfg.Log.Infof("resuming the complete draft of %s an earlier run left in the store: its %d assets are audited, tested and published as they are", tag, len(expected))
		return nil
	}}
}

// downloadAsset copies an asset of the release's draft in the store into the assembled assets.
func (r *run) downloadAsset(ctx context.Context, name string) error {
	rc, err := r.cfg.Store.OpenAsset(ctx, r.cfg.Tag.String(), name)
	if err != nil {
		return fmt.Errorf("download %s: %w", name, err)
	}
	defer rc.Close()
	f, err := os.Create(filepath.Join(r.assets, name))
	if err != nil {
		return fmt.Errorf("download %s: %w", name, err)
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return fmt.Errorf("download %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("download %s: %w", name, err)
	}
	return nil
}

// notesStage writes release-notes.md: git history since the previous release of the family,
// the author's sections, the measurement changes and the compatible counterparts. A section the
// class requires and nobody wrote stops the release here, before anything is published.
func (r *run) notesStage() Stage {
	return Stage{Name: "release-notes", Skip: r.unlessBuilt, Run: func(ctx context.Context) error {
		tag := r.cfg.Tag
		in := notes.Input{Tag: tag, Class: r.class, Measurements: r.measurements, RepoURL: r.cfg.RepoURL}
		if prev, ok := release.Previous(tag, r.published, false); ok {
			in.Previous = &prev
			if pm, err := readPublishedFrom(ctx, r.cfg.Store, prev, r.cfg.Audit); err == nil {
				in.PreviousMeasurements = pm
				r.previousMeasurements = pm
			} else {
				r.cfg.Log.Warnf("notes: no measurements of %s to compare with: %v", prev, err)
			}
		}
		if repo := r.cfg.historyDir(); repo != "" {
			from := ""
			if in.Previous != nil {
				from = in.Previous.String()
			}
			commits, err := notes.History(ctx, repo, from, "HEAD")
			if err != nil && from != "" {
				r.cfg.Log.Warnf("notes: %s is not a git tag of %s (%v); the changelog covers the whole history", from, repo, err)
				commits, err = notes.History(ctx, repo, "", "HEAD")
			}
			if err != nil {
				r.cfg.Log.Warnf("notes: no git history: %v", err)
			}
			in.Commits = commits
		}
		if path := r.cfg.authorNotes(); path != "" {
			if r.cfg.AuthorNotes != "" {
				if _, err := os.Stat(path); err != nil {
					return outcome.UsageErrorf("author notes: %v", err)
				}
			}
			an, err := notes.LoadAuthorFile(path, tag, r.class)
			if err != nil {
				return err
			}
			if len(an.Sections) > 0 || an.Intro != "" {
				r.cfg.Log.Infof("notes: the author's notes are %s", path)
			}
			in.Author = an
		}
		in.FollowUp = r.followUp
		in.Vulnerabilities = r.vulnNotes
		in.Compatible = r.compatibleVersions()
		md, err := notes.Generate(in)
		if err != nil {
			return err
		}
		r.notes = md
		return r.writeAsset(release.NotesFile, md)
	}}
}

// compatibleVersions lists the counterpart versions the catalog pairs this version with, plus the
// counterpart under test.
func (r *run) compatibleVersions() []string {
	seen := map[string]bool{}
	var out []string
	add := func(v string) {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	if r.counterpart != nil {
		add(r.counterpart.Version.String())
	}
	if r.catalog != nil {
		for _, v := range r.catalog.CounterpartVersions(r.cfg.Tag.Family, r.cfg.Tag.Version.String()) {
			add(v)
		}
	}
	return out
}

// checksumStage writes checksums.sha256 over every content asset of the family and the provenance.
func (r *run) checksumStage() Stage {
	return Stage{Name: "checksums", Skip: r.unlessBuilt, Run: func(ctx context.Context) error {
		sums, err := checksum.Compute(ctx, r.assets, release.ExpectedAssets(r.cfg.Tag.Family).Checksummed())
		if err != nil {
			return err
		}
		return r.writeAsset(release.ChecksumsFile, sums.Marshal())
	}}
}

// signStage writes a Sigstore bundle for every signed asset, the checksum file included.
func (r *run) signStage() Stage {
	return Stage{Name: "sign", Skip: r.unlessBuilt, Run: func(ctx context.Context) error {
		for _, name := range release.ExpectedAssets(r.cfg.Tag.Family).Signed() {
			bundle, err := r.cfg.Signer.SignFile(ctx, filepath.Join(r.assets, name))
			if err != nil {
				return fmt.Errorf("sign %s: %w", name, err)
			}
			if err := r.writeAsset(release.BundleName(name), bundle); err != nil {
				return err
			}
		}
		return nil
	}}
}

// publishInput is the publish stage's input for a store.
func (r *run) publishInput() publish.Input {
	return publish.Input{Tag: r.cfg.Tag, Rules: r.rules, Dir: r.assets, Notes: string(r.notes), Log: r.cfg.Log}
}

// stageStage publishes the assembled release into the private staging store, so the auditor and
// E2E see exactly what will be published, while the real store is untouched.
func (r *run) stageStage() Stage {
	return Stage{Name: "stage", Skip: r.unlessPublished, Run: func(ctx context.Context) error {
		return publish.Publish(ctx, r.staging, r.publishInput())
	}}
}

// stagedAuditStage audits the staged release (skipped on a re-run of a published release).
func (r *run) stagedAuditStage() Stage {
	s := r.auditStage("audit-staged", func() store.Store { return r.overlay })
	s.Skip = r.unlessPublished
	return s
}

// auditStage runs the release auditor against st (the staged release, or the published one).
func (r *run) auditStage(name string, st func() store.Store) Stage {
	return Stage{Name: name, Advisory: func() bool { return !r.rules.AuditorRequired }, Run: func(ctx context.Context) error {
		cfg := r.cfg.Audit
		cfg.Log = r.checkLog(!r.rules.AuditorRequired)
		rep, err := audit.Audit(ctx, st(), r.cfg.Tag, cfg)
		if err != nil {
			return err
		}
		return rep.Err()
	}}
}

// e2eStage runs the node suite and guardrails A–D on the staged release and its counterpart. It is
// advisory for release candidates; a blocking class without a counterpart cannot pass it.
func (r *run) e2eStage() Stage {
	return Stage{
		Name:     "e2e",
		Advisory: func() bool { return !r.rules.E2EBlocking },
		Skip: func() string {
			switch {
			case r.alreadyPublished:
				return r.unlessPublished()
			case r.cfg.SkipE2E:
				return "turned off for this run"
			case r.counterpart == nil && !r.rules.E2EBlocking:
				return "no counterpart release to test against (advisory for this class)"
			}
			return ""
		},
		Run: func(ctx context.Context) error {
			if r.counterpart == nil {
				return outcome.VerificationErrorf("%s: E2E is required for a %s release but there is no published %s release to test against",
					r.cfg.Tag, r.class, r.cfg.Tag.Family.Counterpart().Title())
			}
			kmsV, nodeV := r.pair()
			candidate, err := r.candidateCatalog()
			if err != nil {
				return err
			}
			r.e2eRan = true
			rep, err := e2e.Run(ctx, e2e.Options{
				Store:      r.overlay,
				KMSRelease: release.KMS.TagPrefix() + kmsV, NodeRelease: release.Node.TagPrefix() + nodeV,
				Catalog:           candidate,
				CandidatePolicies: r.candidatePolicies,
				Provider:          r.cfg.Provider,
				Images:            e2e.ManifestImages{Store: r.overlay, BaseDir: r.cfg.RepoDir},
				NodeRoots:         r.cfg.NodeRoots,
				KMS:               r.cfg.KMSLauncher,
				// The launched KMS runs the deployment the KMS release recorded, so its quote
				// must match that release's published-mrtds.json too (attestation and guardrail D).
				CheckKMSMeasurements: true,
				RunID:                r.cfg.RunID,
				Log:                  r.checkLog(!r.rules.E2EBlocking),
				// Policies and measurements are read only after their bundles and checksums verify.
				Trust: r.cfg.Audit.Trust,
			})
			if err != nil {
				return err
			}
			if err := r.writeWorkJSON(e2eReportFile, rep); err != nil {
				return err
			}
			if err := rep.Err(); err != nil {
				return err
			}
			r.e2ePassed = true
			return nil
		},
	}
}

// candidateCatalog is the catalog with the pair under test added (as E2E sees it).
func (r *run) candidateCatalog() (*catalog.Catalog, error) {
	cat, err := r.cfg.loadCatalog()
	if err != nil {
		return nil, err
	}
	kmsV, nodeV := r.pair()
	if _, ok := cat.Pair(kmsV, nodeV); !ok {
		if _, err := cat.Add(catalog.Entry{KMS: kmsV, NodeImage: nodeV, Profiles: release.Profiles(), Tested: true,
			Notes: "candidate under test: " + r.cfg.Tag.String()}); err != nil {
			return nil, err
		}
	}
	return cat, nil
}

// publishStage publishes the staged, audited and tested release to the real store.
func (r *run) publishStage() Stage {
	return Stage{Name: "publish", Skip: r.unlessPublished, Run: func(ctx context.Context) error {
		if err := publish.Publish(ctx, r.cfg.Store, r.publishInput()); err != nil {
			return err
		}
		r.report.Published = true
		return nil
	}}
}

// catalogStage adds the tested pair to the compatibility catalog after E2E passed, and hands the
// new file to the catalog pull request when one is configured.
func (r *run) catalogStage() Stage {
	return Stage{
		Name: "catalog",
		Skip: func() string {
			switch {
			case r.alreadyPublished:
				return r.unlessPublished()
			case !r.e2ePassed:
				return "E2E did not pass for this pair: nothing tested to record"
			case r.candidatePolicies != nil:
				return "the pair works only with the candidate KMS policies, not the published ones: " + r.followUp
			}
			return ""
		},
		Run: func(ctx context.Context) error {
			if r.catalogUpdateRequired() {
				r.cfg.Log.Infof("catalog: the %s rules require this update", r.class)
			}
			cat, err := r.cfg.loadCatalog()
			if err != nil {
				return err
			}
			kmsV, nodeV := r.pair()
			changed, err := cat.Add(catalog.Entry{KMS: kmsV, NodeImage: nodeV, Profiles: release.Profiles(), Tested: true,
				Notes: fmt.Sprintf("E2E passed for %s", r.cfg.Tag)})
			if err != nil {
				return err
			}
			if !changed {
				r.cfg.Log.Infof("catalog already lists kms %s / node %s", kmsV, nodeV)
				return nil
			}
			data, err := cat.Marshal()
			if err != nil {
				return err
			}
			if out := r.cfg.catalogOut(); out != "" {
				if err := cat.WriteFile(out); err != nil {
					return err
				}
				r.cfg.Log.Infof("catalog: added kms %s / node %s to %s", kmsV, nodeV, out)
			}
			if r.cfg.CatalogPR != nil {
				return r.cfg.CatalogPR(ctx, data)
			}
			return nil
		},
	}
}

// catalogUpdateRequired says whether the class rules require this release to update the
// catalog: always (stable), or when its measurements differ from the previous release of the
// family (hotfix), as the notes stage read them.
func (r *run) catalogUpdateRequired() bool {
	if r.rules.CatalogUpdateRequired {
		return true
	}
	if !r.rules.CatalogUpdateOnMeasurementChange || r.measurements == nil {
		return false
	}
	if r.previousMeasurements == nil {
		return true // no previous release's measurements to compare with (read by the notes stage)
	}
	for _, p := range release.Profiles() {
		if !r.measurements.Profiles[p].SameRegisters(r.previousMeasurements.Profiles[p]) {
			return true
		}
	}
	return false
}

// dependencyStage is the KMS ↔ node dependency guard (SPEC §4.3), in both pipelines. It runs
// after E2E, so that a pair proven by this run's E2E counts as catalogued (its entry is
// recorded after publishing: SPEC §5); advisory where the class rules say so. policies are the
// KMS release's own policies (nil for a node release).
func (r *run) dependencyStage(policies func() map[release.Profile]*policy.Policy) Stage {
	return Stage{
		Name:     "dependency-guard",
		Advisory: func() bool { return !r.rules.DependencyGuardBlocking },
		Skip: func() string {
			if s := r.unlessPublished(); s != "" {
				return s
			}
			if r.counterpart == nil {
				return "no counterpart release"
			}
			return ""
		},
		Run: func(ctx context.Context) error {
			cat, err := r.cfg.loadCatalog()
			if err != nil {
				return err
			}
			in := guard.DependencyInput{Tag: r.cfg.Tag, Counterpart: *r.counterpart, Store: r.cfg.Store, Catalog: cat, Proven: r.e2ePassed,
				// the node releases' published-mrtds.json, verified before the guard trusts them
				ReadMeasurements: func(ctx context.Context, tag release.Tag) (*measure.Published, error) {
					return readPublishedFrom(ctx, r.cfg.Store, tag, r.cfg.Audit)
				}}
			if r.e2ePassed {
				in.ProvenBy = "E2E passed for " + r.cfg.Tag.String()
				if r.candidatePolicies != nil {
					in.ProvenBy += " against the candidate policies; the KMS release that must follow records it"
				}
			}
			if policies != nil {
				in.Policies = policies()
			}
			rep, err := guard.Dependency(ctx, in)
			rep.Log(r.checkLog(!r.rules.DependencyGuardBlocking))
			return err
		},
	}
}

// measurementsAsset writes published-mrtds.json.
func (r *run) measurementsAsset(p *measure.Published) error {
	r.measurements = p
	data, err := p.Marshal()
	if err != nil {
		return err
	}
	return r.writeAsset(release.PublishedMRTDsFile, data)
}

// execute runs the stages and writes report.json whatever happens.
func (r *run) execute(ctx context.Context, stages []Stage) (*Report, error) {
	if tr := r.cfg.Tracer; tr != nil {
		var span trace.Span
		ctx, span = tr.Start(ctx, "release "+r.cfg.Tag.String(), trace.WithAttributes(attribute.String("mero.release.tag", r.cfg.Tag.String())))
		defer span.End()
		stages = traced(tr, r.cfg.Tag.String(), stages)
	}
	err := runStages(ctx, r.cfg.Log, r.report, stages)
	r.writeReport()
	if err == nil {
		r.cfg.Log.Passf("%s: %s release done (published: %v)", r.cfg.Tag, r.class, r.report.Published || r.alreadyPublished)
	}
	return r.report, err
}

// traced wraps each stage's run in a span named after the stage (skipped stages have none); a
// failed stage's span records the error.
func traced(tr trace.Tracer, tag string, stages []Stage) []Stage {
	out := make([]Stage, len(stages))
	for i, s := range stages {
		run := s.Run
		s.Run = func(ctx context.Context) error {
			ctx, span := tr.Start(ctx, s.Name, trace.WithAttributes(attribute.String("mero.release.tag", tag)))
			defer span.End()
			err := run(ctx)
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			}
			return err
		}
		out[i] = s
	}
	return out
}
