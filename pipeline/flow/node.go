package flow

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sbom"
	"github.com/calimero-network/mero-release/pipeline/store"
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
// the VM) → SBOM → notes → checksums → sign → stage → audit (staged) → E2E → publish → audit →
// catalog. A re-run after a failed publish completes the draft that run left, as it is.
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
		n.sbomStage(),
		r.notesStage(),
		r.checksumStage(),
		r.signStage(),
		r.stageStage(),
		r.stagedAuditStage(),
		r.e2eStage(),
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
