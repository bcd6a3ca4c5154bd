package flow

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/audit"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sbom"
	"github.com/calimero-network/mero-release/pipeline/store"
	"github.com/calimero-network/mero-release/pipeline/verified"
)

// NodeImage is one profile's node image, as recorded in node-image-manifest.json.
type NodeImage struct {
	// Image is what the VM provider boots: a GCP image name, or a simulator image directory.
	Image string `json:"image"`
}

// NodeImageManifest is node-image-manifest.json.
type NodeImageManifest struct {
	SchemaVersion string                        `json:"schema_version"`
	Version       string                        `json:"version"`
	BaseImage     BaseImage                     `json:"base_image"`
	Profiles      map[release.Profile]NodeImage `json:"profiles"`
}

// ReleaseNode runs the node-image pipeline (SPEC §3): version sync → draft → counterpart → image
// manifest → measure (boot an ephemeral TDX VM per profile, quote, extract MRTD/RTMR0–3, delete
// the VM) → candidate KMS policies (when the counterpart's published policies do not hold the
// new measurements) → SBOM → notes → provenance → checksums → sign → stage → audit (staged) → E2E →
// dependency guard → publish → audit → catalog. A re-run after a failed publish completes the draft that run left, as it is.
func ReleaseNode(ctx context.Context, cfg Config, product NodeProduct) (*Report, error) {
	if cfg.Tag.Family != release.Node {
		return nil, outcome.UsageErrorf("release-node-image: %s is not a mero-tee tag", cfg.Tag)
	}
	if cfg.Provider == nil {
		return nil, outcome.UsageErrorf("release-node-image: no VM provider configured")
	}
	for _, p := range release.Profiles() {
		if product.Images[p] == "" {
			return nil, outcome.UsageErrorf("release-node-image: no image for profile %s", p)
		}
	}
	r, err := newRun(&cfg)
	if err != nil {
		return nil, err
	}
	n := &nodeRun{run: r, product: product}
	return r.execute(ctx, []Stage{
		r.versionStage(),
		r.draftStage(),
		r.counterpartStage(),
		n.manifestStage(),
		n.measureStage(),
		n.candidatePolicyStage(),
		n.sbomStage(),
		r.vulnStage(),
		r.notesStage(),
		r.provenanceStage(n.provenanceInputs),
		r.checksumStage(),
		r.signStage(),
		r.stageStage(),
		r.stagedAuditStage(),
		r.e2eStage(),
		r.dependencyStage(nil),
		r.publishStage(),
		r.auditStage("audit", func() store.Store { return cfg.Store }),
		r.catalogStage(),
	})
}

type nodeRun struct {
	*run
	product NodeProduct
}

// manifestStage records the images of every profile and the pinned base image.
func (n *nodeRun) manifestStage() Stage {
	return Stage{Name: "image-manifest", Skip: n.unlessBuilt, Run: func(ctx context.Context) error {
		base := n.product.BaseImage
		if base == (BaseImage{}) {
			base = DefaultBaseImage()
		}
		m := NodeImageManifest{SchemaVersion: "1", Version: n.cfg.Tag.Version.String(), BaseImage: base, Profiles: map[release.Profile]NodeImage{}}
		for _, p := range release.Profiles() {
			m.Profiles[p] = NodeImage{Image: n.product.Images[p]}
		}
		data, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return fmt.Errorf("node image manifest: %w", err)
		}
		return n.writeAsset(release.NodeImageManifest, append(data, '\n'))
	}}
}

// measureStage boots each profile's image on the VM provider and records its quoted registers.
func (n *nodeRun) measureStage() Stage {
	return Stage{Name: "measure", Skip: n.unlessBuilt, Run: func(ctx context.Context) error {
		pub, err := measure.MeasureNode(ctx, n.cfg.Provider, n.product.Images, measure.NodeOptions{
			Version: n.cfg.Tag.Version.String(), TrustedRoots: n.cfg.NodeRoots, RunID: n.cfg.RunID,
			Tag: n.cfg.Tag.String(), Now: n.cfg.now, Log: n.cfg.Log,
		})
		if err != nil {
			return err
		}
		if err := measure.CheckDistinct(pub); err != nil {
			return err
		}
		return n.measurementsAsset(pub)
	}}
}

// sbomStage generates the SBOM of the node image (its directory or Packer manifest).
func (n *nodeRun) sbomStage() Stage {
	return Stage{Name: "sbom", Skip: n.unlessBuilt, Run: func(ctx context.Context) error {
		kind, err := sbom.ParseKind(orDefault(n.product.SBOMKind, string(sbom.Dir)))
		if err != nil {
			return err
		}
		if n.product.SBOMPath == "" {
			return outcome.UsageErrorf("node SBOM: no image path (directory or Packer manifest) given")
		}
		doc, err := sbom.Generate(ctx, sbom.Input{Path: n.product.SBOMPath, Kind: kind, Name: "mero-tee", Version: n.cfg.Tag.Version.String(), Created: n.cfg.Created})
		if err != nil {
			return err
		}
		return n.writeAsset(release.SBOMFile, doc)
	}}
}

// candidatePolicyStage compares the new measurements with the attestation policies the
// counterpart KMS release published. When those hold every profile's measurements, E2E tests
// the node against them as they are. When they do not (the node image changed: a new base
// image, kernel or command line), no published policy can pass a blocking E2E; the stage then
// promotes the published policies with the new measurements added (policy.Promote, the one
// home of that rule) into candidate policies, E2E runs the node against those and guardrail C
// shows that the published ones refuse it with an MRTD/RTMR mismatch, and the release states
// which KMS release must follow with the updated policies (notes, report.json). The
// candidates are kept in WORK/<tag>/candidate-policies for that KMS release's author to check.
func (n *nodeRun) candidatePolicyStage() Stage {
	return Stage{
		Name: "candidate-policy",
		Skip: func() string {
			if s := n.unlessPublished(); s != "" {
				return s
			}
			if n.counterpart == nil {
				return "no counterpart KMS release whose policies could hold the measurements"
			}
			return ""
		},
		Run: func(ctx context.Context) error {
			if n.measurements == nil { // a resumed draft: its published-mrtds.json
				data, err := os.ReadFile(filepath.Join(n.assets, release.PublishedMRTDsFile))
				if err != nil {
					return fmt.Errorf("candidate policy: %w", err)
				}
				if n.measurements, err = measure.ReadPublished(bytes.NewReader(data)); err != nil {
					return fmt.Errorf("candidate policy: %w", err)
				}
			}
			kmsTag := *n.counterpart
			published := map[release.Profile]*policy.Policy{}
			var refused []string
			for _, p := range release.Profiles() {
				pol, err := readPolicyFrom(ctx, n.cfg.Store, kmsTag, p, n.cfg.Audit)
				if err != nil {
					return err
				}
				published[p] = pol
				if err := holds(pol, n.measurements.Profiles[p]); err != nil {
					refused = append(refused, fmt.Sprintf("%s: %v", p, err))
				}
			}
			if len(refused) == 0 {
				n.cfg.Log.Passf("the published policies of %s hold the measurements of %s", kmsTag, n.cfg.Tag)
				return nil
			}
			n.cfg.Log.Warnf("the published policies of %s do not hold the new measurements of %s (%s): E2E tests the node against candidate policies",
				kmsTag, n.cfg.Tag, strings.Join(refused, "; "))
			nodes, err := n.policyNodes(ctx, published)
			if err != nil {
				return err
			}
			dir := filepath.Join(n.cfg.WorkDir, n.cfg.Tag.String(), "candidate-policies")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("candidate policy: %w", err)
			}
			n.candidatePolicies = map[release.Profile][]byte{}
			for _, p := range release.Profiles() {
				cand, err := policy.Promote(published[p], nodes)
				if err != nil {
					return fmt.Errorf("candidate policy of %s: %w", kmsTag, err)
				}
				data, err := cand.Marshal()
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, p.PolicyFile()), data, 0o644); err != nil {
					return fmt.Errorf("candidate policy: %w", err)
				}
				n.candidatePolicies[p] = data
			}
			next := release.Tag{Family: release.KMS, Version: kmsTag.Version.Base()}
			if !kmsTag.Version.IsRC() {
				next.Version.Patch++
			}
			n.followUp = fmt.Sprintf("The attestation policies of %s do not hold the measurements of %s. A KMS release with updated policies must follow (e.g. %s, released with %s as its counterpart); until then nodes of %s get no keys from %s. The candidate policies E2E passed with are in %s.",
				kmsTag, n.cfg.Tag, next, n.cfg.Tag, n.cfg.Tag.Version, kmsTag, dir)
			n.report.FollowUp = n.followUp
			n.cfg.Log.Warnf("%s", n.followUp)
			return nil
		},
	}
}

// policyNodes returns the published measurements the candidate policies are made of: those of
// every node release the published policies were made for, and this release's.
func (n *nodeRun) policyNodes(ctx context.Context, published map[release.Profile]*policy.Policy) ([]*measure.Published, error) {
	seen := map[string]bool{n.cfg.Tag.Version.String(): true}
	nodes := []*measure.Published{n.measurements}
	for _, p := range release.Profiles() {
		for _, v := range published[p].NodeVersions {
			if seen[v] {
				continue
			}
			seen[v] = true
			ver, err := release.ParseVersion(v)
			if err != nil {
				return nil, fmt.Errorf("%s: node_versions: %w", p.PolicyFile(), err)
			}
			pub, err := readPublishedFrom(ctx, n.cfg.Store, release.Tag{Family: release.Node, Version: ver}, n.cfg.Audit)
			if err != nil {
				n.cfg.Log.Warnf("candidate policy: node image %s, which the published policy lists, is left out: %v", v, err)
				continue
			}
			nodes = append(nodes, pub)
		}
	}
	return nodes, nil
}

// holds says whether a ready policy lets a node with record r get a key (any TCB status the
// policy allows); nil when it does.
func holds(p *policy.Policy, r measure.Record) error {
	tcb := policy.TCBUpToDate
	if len(p.AllowedTCBStatus) > 0 {
		tcb = p.AllowedTCBStatus[0]
	}
	return p.Accepts(r, tcb)
}

// readPolicyFrom reads attestation-policy-{p}.json of a KMS release in the store, verified
// first like every counterpart material (pipeline/verified, the signer of signer).
func readPolicyFrom(ctx context.Context, st store.Store, tag release.Tag, p release.Profile, signer audit.Config) (*policy.Policy, error) {
	trust, err := signer.Trust(tag)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tag, err)
	}
	v, err := verified.Fetch(ctx, st, tag.String(), p.PolicyFile(), trust)
	if err != nil {
		return nil, err
	}
	pol, err := policy.Load(bytes.NewReader(v.Data))
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", tag, p.PolicyFile(), err)
	}
	return pol, nil
}
