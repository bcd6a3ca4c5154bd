package main

import (
	"context"
	"encoding/json"
	"fmt"

	"dagger/mero-release/internal/dagger"
)

// releaseRules are the facts of pipeline/release the module needs, asked of the CLI
// (`mero-release --json profiles`) instead of repeated here: the profiles, in the order every
// per-profile argument uses, and the suffix of a Sigstore bundle's name.
type releaseRules struct {
	Profiles     []string `json:"profiles"`
	BundleSuffix string   `json:"bundle_suffix"`
}

// rules asks the CLI for the release rules.
func (m *MeroRelease) rules(ctx context.Context) (releaseRules, error) {
	args := []string{"--json", "profiles"}
	ran := exec(m.Container(), args...)
	if _, err := result(ctx, ran, args); err != nil {
		return releaseRules{}, err
	}
	out, err := ran.Stdout(ctx)
	if err != nil {
		return releaseRules{}, fmt.Errorf("mero-release profiles: %w", err)
	}
	var r releaseRules
	if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.Profiles) == 0 || r.BundleSuffix == "" {
		return releaseRules{}, fmt.Errorf("mero-release profiles: unexpected output %q (%v)", out, err)
	}
	return r, nil
}

// prebuiltKMSPath is where a prebuilt KMS binary is placed in the Dockerfile's build context.
const prebuiltKMSPath = ".mero-release/mero-kms"

// kmsBuild says how the KMS images are built from a Dockerfile.
type kmsBuild struct {
	source     *dagger.Directory
	dockerfile string
	binary     *dagger.File
	builder    string
}

// image builds one profile's image: the Dockerfile with MERO_KMS_PROFILE and MERO_KMS_VERSION
// as build arguments, and, when a prebuilt binary is given, KMS_BINARY_SOURCE=prebuilt with the
// binary added to the context (nothing is pulled then).
func (b kmsBuild) image(profile, version string) *dagger.Container {
	ctx := b.source
	args := []dagger.BuildArg{
		{Name: "MERO_KMS_PROFILE", Value: profile},
		{Name: "MERO_KMS_VERSION", Value: version},
	}
	if b.builder != "" {
		args = append(args, dagger.BuildArg{Name: "BUILDER_IMAGE", Value: b.builder})
	}
	if b.binary != nil {
		ctx = ctx.WithFile(prebuiltKMSPath, b.binary, dagger.DirectoryWithFileOpts{Permissions: 0o755})
		args = append(args, dagger.BuildArg{Name: "KMS_BINARY_SOURCE", Value: "prebuilt"},
			dagger.BuildArg{Name: "KMS_BINARY", Value: prebuiltKMSPath})
	}
	return ctx.DockerBuild(dagger.DirectoryDockerBuildOpts{Dockerfile: b.dockerfile, BuildArgs: args, Platform: "linux/amd64"})
}

// kmsBuildOf fills the defaults of the KMS build arguments.
func (m *MeroRelease) kmsBuildOf(source *dagger.Directory, dockerfile string, binary *dagger.File) kmsBuild {
	if source == nil {
		source = m.Source
	}
	if dockerfile == "" {
		dockerfile = "examples/kms/Dockerfile"
	}
	return kmsBuild{source: source, dockerfile: dockerfile, binary: binary, builder: m.BuilderImage}
}

// KmsImage builds one profile's KMS image from its Dockerfile (the sample KMS by default).
//
// The Dockerfile gets MERO_KMS_PROFILE and MERO_KMS_VERSION as build arguments; with a
// prebuilt binary also KMS_BINARY_SOURCE=prebuilt and KMS_BINARY (see examples/kms/Dockerfile).
func (m *MeroRelease) KmsImage(
	ctx context.Context,
	// KMS profile: debug, debug-read-only or locked-read-only.
	profile string,
	// KMS release version, e.g. 1.3.0.
	version string,
	// Source directory of a Dockerfile-based KMS (default: this repository).
	// +optional
	kmsSource *dagger.Directory,
	// Dockerfile path inside the KMS source.
	// +optional
	// +default="examples/kms/Dockerfile"
	dockerfile string,
	// A prebuilt static KMS binary (linux/amd64) for builders that reach no registry.
	// +optional
	kmsBinary *dagger.File,
) (*dagger.Container, error) {
	// The CLI validates the profile (exit 2 naming the profiles).
	if _, err := m.run(ctx, m.Container(), "profiles", "--check", profile); err != nil {
		return nil, fmt.Errorf("kms-image: %w", err)
	}
	return m.kmsBuildOf(kmsSource, dockerfile, kmsBinary).image(profile, version), nil
}

// archives builds the profile images and returns them as OCI archives, in the order of
// profiles. Dagger builds them concurrently when the archives are used.
func (b kmsBuild) archives(profiles []string, version string) []*dagger.File {
	var out []*dagger.File
	for _, p := range profiles {
		out = append(out, b.image(p, version).AsTarball(dagger.ContainerAsTarballOpts{MediaTypes: dagger.ImageMediaTypesOcimediaTypes}))
	}
	return out
}
