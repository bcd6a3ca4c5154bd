package flow

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/packer"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

// NodeBuild configures BuildNodeImages.
type NodeBuild struct {
	// Tag is the node-image release tag.
	Tag release.Tag
	// Provider is "sim" (the TDX simulator's image description) or "gcp" (Packer).
	Provider string
	// Source is the simulator image description (examples/node-image) for sim, the Packer
	// template directory (examples/node-image/packer) for gcp.
	Source string
	// Dir receives the build: the image description, or the template copy and Packer's manifest.
	Dir string
	// Packer holds the GCP settings, packer executable and environment (gcp only); its
	// Template, Dir and Version are filled in.
	Packer packer.Options
	// Log receives the [INFO] lines.
	Log *outcome.Logger
}

// NodeBuildResult is what BuildNodeImages produced.
type NodeBuildResult struct {
	// Images maps each profile to what the VM provider boots: the description directory (sim)
	// or the GCP image name (gcp).
	Images map[release.Profile]string `json:"images"`
	// PackerManifest is Packer's manifest (gcp): the SBOM input of the release.
	PackerManifest string `json:"packer_manifest,omitempty"`
	// Base is the base image the images are built on.
	Base BaseImage `json:"base_image"`
}

// BuildNodeImages builds the node image of every profile (scripts/build-node-image.sh): with
// the simulator, a checked copy of the image description; on GCP, Packer on the pinned base
// image. Its result feeds release-node-image (--image, or --packer-manifest).
func BuildNodeImages(ctx context.Context, b NodeBuild) (*NodeBuildResult, error) {
	if b.Tag.Family != release.Node {
		return nil, outcome.UsageErrorf("build-node-image: %s is not a mero-tee tag", b.Tag)
	}
	if b.Source == "" || b.Dir == "" {
		return nil, outcome.UsageErrorf("build-node-image: a source and an output directory are required")
	}
	switch b.Provider {
	case "sim":
		return buildSimImages(b)
	case "gcp":
		o := b.Packer
		o.Template, o.Dir, o.Version = b.Source, b.Dir, b.Tag.Version.String()
		b.Log.Infof("packer build of %s (profiles %v) on %s in %s", b.Tag, release.ProfileNames(), orDefault(o.Base.SourceImage, DefaultBaseImage().SourceImage), b.Dir)
		manifest, builds, err := packer.Run(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("build-node-image %s: %w", b.Tag, err)
		}
		images, err := packer.Images(builds)
		if err != nil {
			return nil, err
		}
		base, err := packer.Base(builds)
		if err != nil {
			return nil, err
		}
		return &NodeBuildResult{Images: images, PackerManifest: manifest, Base: base}, nil
	}
	return nil, outcome.UsageErrorf("build-node-image: provider %q: must be sim or gcp", b.Provider)
}

// buildSimImages copies every profile's simulator manifest and the files it names into Dir and
// loads the copy as the simulator will.
func buildSimImages(b NodeBuild) (*NodeBuildResult, error) {
	if err := os.MkdirAll(b.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("build-node-image: %w", err)
	}
	res := &NodeBuildResult{Images: map[release.Profile]string{}, Base: DefaultBaseImage()}
	for _, p := range release.Profiles() {
		src := tdxsim.ManifestPath(b.Source, string(p))
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, outcome.UsageErrorf("build-node-image: %v", err)
		}
		var files struct{ Firmware, Kernel, Initrd string }
		if err := json.Unmarshal(data, &files); err != nil {
			return nil, outcome.UsageErrorf("build-node-image %s: %v", src, err)
		}
		for _, f := range []string{files.Firmware, files.Kernel, files.Initrd} {
			if f == "" || filepath.IsAbs(f) || !filepath.IsLocal(f) {
				return nil, outcome.UsageErrorf("build-node-image %s: %q: want a file beside the manifest", src, f)
			}
			if err := copyFile(filepath.Join(b.Source, f), filepath.Join(b.Dir, f)); err != nil {
				return nil, fmt.Errorf("build-node-image: %w", err)
			}
		}
		if err := os.WriteFile(tdxsim.ManifestPath(b.Dir, string(p)), data, 0o644); err != nil {
			return nil, fmt.Errorf("build-node-image: %w", err)
		}
		if _, err := tdxsim.LoadImage(b.Dir, string(p)); err != nil {
			return nil, err
		}
		res.Images[p] = b.Dir
	}
	b.Log.Infof("simulator image description of %s in %s (profiles %v)", b.Tag, b.Dir, release.ProfileNames())
	return res, nil
}
