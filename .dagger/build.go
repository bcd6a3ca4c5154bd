package main

import (
	"context"
	"fmt"

	"dagger/mero-release/internal/dagger"
)

// defaultPackerImage runs Packer for the GCP node-image build (hashicorp/packer:1.11.2, pinned).
const defaultPackerImage = "hashicorp/packer:1.11.2@sha256:12c441b8a3994e7df9f0e2692d9298f14c387e70bcc06139420977dbf80a137b"

// nodeBuildOut is where build-node-image writes in its container.
const nodeBuildOut = "/out/node-image"

// agentPath is where the mero-tee-agent executable Packer installs into every image is mounted.
const agentPath = "/usr/local/lib/mero-release/mero-tee-agent"

// BuildNodeImage builds the node image of every profile and returns the build directory.
//
// With --provider gcp it runs Packer (in the pinned hashicorp/packer image, the CLI mounted
// beside it) on examples/node-image/packer: one GCP image per profile on the pinned TDX base
// image, each running mero-tee-agent (built from ./cmd/mero-tee-agent in the builder image);
// the directory holds Packer's packer-manifest.json and the records it names. With sim it holds the TDX
// simulator's image description.
func (m *MeroRelease) BuildNodeImage(
	ctx context.Context,
	// Release tag, e.g. mero-tee-v1.3.0.
	tag string,
	// sim (the simulator's image description) or gcp (Packer).
	// +optional
	// +default="sim"
	provider string,
	// The image description (sim) or Packer template (gcp); default: the source's examples/node-image(/packer).
	// +optional
	source *dagger.Directory,
	// GCP project (GCP_PROJECT_ID), for gcp.
	// +optional
	gcpProject string,
	// TDX-capable GCP zone of the build VM (GCP_ZONE), for gcp.
	// +optional
	gcpZone string,
	// Image family prefix (GCP_IMAGE_FAMILY): images go to <family>-<profile>.
	// +optional
	imageFamily string,
	// GCP service-account key (GCP_SERVICE_ACCOUNT_KEY), for gcp.
	// +optional
	gcpServiceAccountKey *dagger.Secret,
	// The Packer image, for gcp.
	// +optional
	// +default="hashicorp/packer:1.11.2@sha256:12c441b8a3994e7df9f0e2692d9298f14c387e70bcc06139420977dbf80a137b"
	packerImage string,
) (*dagger.Directory, error) {
	ctr := m.Container()
	src := "examples/node-image"
	switch provider {
	case "sim":
	case "gcp":
		if packerImage == "" {
			packerImage = defaultPackerImage
		}
		if gcpServiceAccountKey == nil {
			return nil, fmt.Errorf("build-node-image %s: --gcp-service-account-key is required for gcp", tag)
		}
		ctr = m.withCLI(dag.Container().From(packerImage)).
			WithMountedFile(agentPath, goBuild(m.Source, m.BuilderImage, "./cmd/mero-tee-agent")).
			WithMountedDirectory(srcPath, m.Source).
			WithWorkdir(srcPath).
			WithSecretVariable("GCP_SERVICE_ACCOUNT_KEY", gcpServiceAccountKey)
		src = "examples/node-image/packer"
	default:
		return nil, fmt.Errorf("build-node-image %s: provider %q: want sim or gcp", tag, provider)
	}
	ctr, given := withDir(ctr, "node-source", source)
	if given != "" {
		src = given
	}
	args := nodeBuildArgs(tag, provider, src, nodeBuildOut, gcpProject, gcpZone, imageFamily)
	if provider == "gcp" {
		args = append(args, "--agent-binary", agentPath)
	}
	ran := exec(ctr, args...)
	if _, err := result(ctx, ran, args); err != nil {
		return nil, err
	}
	return ran.Directory(nodeBuildOut), nil
}

// nodeBuildArgs are the arguments of `mero-release build-node-image`.
func nodeBuildArgs(tag, provider, source, out, gcpProject, gcpZone, imageFamily string) []string {
	args := []string{"build-node-image", "--tag", tag, "--provider", provider, "--source", source, "-o", out}
	args = append(args, flag("gcp-project", gcpProject)...)
	args = append(args, flag("gcp-zone", gcpZone)...)
	return append(args, flag("image-family", imageFamily)...)
}
