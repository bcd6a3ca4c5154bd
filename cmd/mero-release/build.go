package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/calimero-network/mero-release/pipeline/flow"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/packer"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// buildKMSImageCommand is `mero-release build-kms-image`: the build-images stage of release-kms
// on its own.
func (a *app) buildKMSImageCommand() *cobra.Command {
	var tag, binary, registry, out, repo string
	var images []string
	c := &cobra.Command{
		Use:   "build-kms-image --tag mero-kms-vX.Y.Z[-rc.N] [--kms-binary FILE | --image PROFILE=OCI-ARCHIVE...] [-o DIR] [--registry ghcr.io/OWNER]",
		Short: "Build the KMS image of every profile (OCI archives, app-composes pinned by digest, kms-image-manifest.json)",
		Long: `Builds the mero-kms image of each profile (debug, debug-read-only, locked-read-only) around
--kms-binary (default: go build ./examples/kms/cmd/mero-kms), reproducibly (SOURCE_DATE_EPOCH or
the commit time), or checks and copies prebuilt --image archives; writes DIR/mero-kms-<profile>.oci.tar,
DIR/app-compose-<profile>.json pinned by digest and DIR/kms-image-manifest.json (digest and
compose hash per profile). With --registry (token $GHCR_TOKEN, user $GITHUB_ACTOR) the images are
pushed and the registry must hold the built digests. release-kms runs the same stage, and
pushes only after the staged release passed its audit and E2E.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := parseTagFlag(cmd, tag)
			if err != nil {
				return err
			}
			root, err := filepath.Abs(repo)
			if err != nil {
				return err
			}
			created, err := flow.CreatedTime(a.getenv, root)
			if err != nil {
				return err
			}
			cfg := flow.Config{Tag: t, WorkDir: filepath.Join(out, ".work"), RepoDir: root}
			product, err := a.kmsProduct(cmd.Context(), cfg, binary, registry, images, true)
			if err != nil {
				return err
			}
			m, err := flow.BuildKMSImages(cmd.Context(), product, t, created, out, a.log)
			if err != nil {
				return err
			}
			if err := os.RemoveAll(cfg.WorkDir); err != nil {
				return err
			}
			for _, p := range release.Profiles() {
				a.log.Passf("%s image %s (compose hash %s)", p, m.Profiles[p].Image, m.Profiles[p].ComposeHash)
			}
			if a.json {
				return a.printJSON(m)
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&tag, "tag", "", "KMS release tag, e.g. mero-kms-v1.3.0 (required)")
	fl.StringVar(&binary, "kms-binary", "", "the KMS binary (linux/amd64, static); default: go build ./examples/kms/cmd/mero-kms")
	fl.StringArrayVar(&images, "image", nil, "PROFILE=OCI-ARCHIVE: a prebuilt profile image to check and take as it is")
	fl.StringVar(&registry, "registry", "", "push the images to this registry, e.g. ghcr.io/OWNER (default $GHCR_REGISTRY)")
	fl.StringVarP(&out, "output", "o", "out/kms-images", "directory of the archives, app-composes and kms-image-manifest.json")
	fl.StringVar(&repo, "repo", ".", "repository the KMS is built from and whose commit time stamps the images")
	return c
}

// buildNodeImageCommand is `mero-release build-node-image`.
func (a *app) buildNodeImageCommand() *cobra.Command {
	var tag, provider, source, out, imageFamily, packerBin, agentBin string
	var g gcpFlags
	c := &cobra.Command{
		Use:   "build-node-image --tag mero-tee-vX.Y.Z[-rc.N] --provider sim|gcp [-o DIR]",
		Short: "Build the node image of every profile: Packer on the pinned GCP TDX base image, or the simulator's description",
		Long: `Builds the mero-tee node image of each profile.
  --provider gcp  runs Packer (packer on the PATH, or --packer) on the template --source
                  (default examples/node-image/packer) copied into DIR: one GCP image per profile
                  on the pinned base image ubuntu-2404-tdx-v20250101 of confidential-vm-images,
                  in --gcp-project ($GCP_PROJECT_ID), built in --gcp-zone ($GCP_ZONE), families
                  <--image-family>-<profile> ($GCP_IMAGE_FAMILY); credentials from
                  --gcp-credentials-file or $GCP_SERVICE_ACCOUNT_KEY; --agent-binary is the
                  mero-tee-agent every image runs (a static linux/amd64 build of
                  cmd/mero-tee-agent). Packer's manifest,
                  DIR/packer-manifest.json, is what release-node-image --packer-manifest takes.
  --provider sim  copies and checks the TDX simulator's image description --source (default
                  examples/node-image) into DIR, for release-node-image --image PROFILE=DIR.
Prints the image of each profile ([PASS] lines; --json: images, manifest, base image).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := parseTagFlag(cmd, tag)
			if err != nil {
				return err
			}
			b := flow.NodeBuild{Tag: t, Provider: provider, Source: source, Dir: out, Log: a.log}
			if b.Source == "" {
				b.Source = "examples/node-image"
				if provider == "gcp" {
					b.Source = "examples/node-image/packer"
				}
			}
			if provider == "gcp" {
				env, cleanup, err := a.packerEnv(&g)
				if err != nil {
					return err
				}
				defer cleanup()
				b.Packer = packer.Options{Project: a.envOr(g.project, "GCP_PROJECT_ID"), Zone: a.envOr(g.zone, "GCP_ZONE"),
					ImageFamily: a.envOr(imageFamily, "GCP_IMAGE_FAMILY"), Packer: packerBin, Env: env, Output: a.stderr, AgentBinary: agentBin}
			}
			res, err := flow.BuildNodeImages(cmd.Context(), b)
			if err != nil {
				return err
			}
			for _, p := range release.Profiles() {
				a.log.Passf("%s: %s", p, res.Images[p])
			}
			if a.json {
				return a.printJSON(res)
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&tag, "tag", "", "node-image release tag, e.g. mero-tee-v1.3.0 (required)")
	fl.StringVar(&provider, "provider", "sim", "sim (the TDX simulator's image description) or gcp (Packer)")
	fl.StringVar(&source, "source", "", "image description (sim) or Packer template directory (gcp)")
	fl.StringVarP(&out, "output", "o", "out/node-images", "directory of the build")
	fl.StringVar(&imageFamily, "image-family", "", "GCP image family prefix (default $GCP_IMAGE_FAMILY, else mero-tee)")
	fl.StringVar(&packerBin, "packer", "", "packer executable (default: packer on the PATH)")
	fl.StringVar(&agentBin, "agent-binary", "", "mero-tee-agent executable installed in every image (gcp; default: mero-tee-agent in the template)")
	fl.StringVar(&g.project, "gcp-project", "", "GCP project (default $GCP_PROJECT_ID)")
	fl.StringVar(&g.zone, "gcp-zone", "", "TDX-capable GCP zone of the build VM (default $GCP_ZONE)")
	fl.StringVar(&g.credentialsFile, "gcp-credentials-file", "", "service-account key file (default: $GCP_SERVICE_ACCOUNT_KEY)")
	return c
}

// packerEnv is Packer's environment: the caller's, with GOOGLE_APPLICATION_CREDENTIALS pointing at
// the service-account key (a private temporary file for $GCP_SERVICE_ACCOUNT_KEY, removed by
// cleanup).
func (a *app) packerEnv(g *gcpFlags) ([]string, func(), error) {
	env := os.Environ()
	cleanup := func() {}
	switch {
	case g.credentialsFile != "":
		env = append(env, "GOOGLE_APPLICATION_CREDENTIALS="+g.credentialsFile)
	case a.getenv("GCP_SERVICE_ACCOUNT_KEY") != "":
		dir, err := os.MkdirTemp("", "mero-packer-*")
		if err != nil {
			return nil, nil, err
		}
		key := filepath.Join(dir, "key.json")
		if err := os.WriteFile(key, []byte(a.getenv("GCP_SERVICE_ACCOUNT_KEY")), 0o600); err != nil {
			os.RemoveAll(dir)
			return nil, nil, fmt.Errorf("service-account key: %w", err)
		}
		env = append(env, "GOOGLE_APPLICATION_CREDENTIALS="+key)
		cleanup = func() { os.RemoveAll(dir) }
	default:
		return nil, nil, outcome.UsageErrorf("build-node-image --provider gcp: no credentials (--gcp-credentials-file or $GCP_SERVICE_ACCOUNT_KEY)")
	}
	return env, cleanup, nil
}
