package packer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// ManifestName is the file the template's manifest post-processor writes, next to the template.
const ManifestName = "packer-manifest.json"

// AgentName is the mero-tee-agent executable the template uploads into every image (its
// variable agent_binary, relative to the template): a static linux/amd64 build of
// cmd/mero-tee-agent.
const AgentName = "mero-tee-agent"

// BaseImage is the pinned GCP TDX base image of the node image (SPEC §3).
type BaseImage struct {
	SourceImageFamily  string `json:"source_image_family"`
	SourceImageProject string `json:"source_image_project"`
	SourceImage        string `json:"source_image"`
}

// DefaultBaseImage is the base image of SPEC §3; the template's variable defaults are the same.
func DefaultBaseImage() BaseImage {
	return BaseImage{SourceImageFamily: "ubuntu-2404-tdx", SourceImageProject: "confidential-vm-images", SourceImage: "ubuntu-2404-tdx-v20250101"}
}

// Images returns the image each profile's build produced (its artifact_id). A build's profile is
// its custom_data "profile", else its name; every profile needs exactly one build.
func Images(builds []Build) (map[release.Profile]string, error) {
	out := map[release.Profile]string{}
	for _, b := range builds {
		name := b.CustomData["profile"]
		if name == "" {
			name = b.Name
		}
		p, err := release.ParseProfile(name)
		if err != nil {
			return nil, outcome.UsageErrorf("packer build %q: %v", b.Name, err)
		}
		if prev, dup := out[p]; dup {
			return nil, outcome.UsageErrorf("packer builds: two images for profile %s (%s and %s)", p, prev, b.ArtifactID)
		}
		out[p] = b.ArtifactID
	}
	for _, p := range release.Profiles() {
		if out[p] == "" {
			return nil, outcome.UsageErrorf("packer builds: no image for profile %s", p)
		}
	}
	return out, nil
}

// Base returns the base image the builds record in custom_data; every build must name the same.
func Base(builds []Build) (BaseImage, error) {
	var base BaseImage
	for i, b := range builds {
		got := BaseImage{SourceImageFamily: b.CustomData["source_image_family"], SourceImageProject: b.CustomData["source_image_project"],
			SourceImage: b.CustomData["source_image"]}
		if got.SourceImage == "" {
			return BaseImage{}, outcome.UsageErrorf("packer build %q: custom_data.source_image: empty (the base image must be pinned)", b.Name)
		}
		if i > 0 && got != base {
			return BaseImage{}, outcome.VerificationErrorf("packer builds disagree on the base image: %q has %+v, %q has %+v", builds[0].Name, base, b.Name, got)
		}
		base = got
	}
	return base, nil
}

// Options configure Run.
type Options struct {
	// Template is the directory of the Packer template (examples/node-image/packer).
	Template string
	// Dir receives a copy of the template, where Packer runs and writes its manifest.
	Dir string
	// Version is the node-image release version.
	Version string
	// Project, Zone and ImageFamily are the GCP project, a TDX-capable zone and the image
	// family prefix (GCP_PROJECT_ID, GCP_ZONE, GCP_IMAGE_FAMILY).
	Project, Zone, ImageFamily string
	// Base is the pinned base image (default DefaultBaseImage).
	Base BaseImage
	// Packer is the packer executable (default "packer" on the PATH).
	Packer string
	// Env is the environment of packer (e.g. GOOGLE_APPLICATION_CREDENTIALS); nil means the
	// caller's.
	Env []string
	// Output receives Packer's output.
	Output io.Writer
	// AgentBinary is the mero-tee-agent executable to install (CGO_ENABLED=0 GOOS=linux
	// GOARCH=amd64 go build ./cmd/mero-tee-agent); it is copied into Dir as AgentName. Empty
	// means the template directory already holds AgentName.
	AgentBinary string
}

// Run copies the template into Dir, runs `packer init` and `packer build` there with the
// version, GCP settings and pinned base image as variables, and returns the manifest's path and
// the builds of this run, one image per profile. A failed Packer run is an error quoting its
// last lines.
func Run(ctx context.Context, o Options) (string, []Build, error) {
	switch {
	case o.Template == "" || o.Dir == "":
		return "", nil, outcome.UsageErrorf("packer: a template directory and a work directory are required")
	case o.Version == "":
		return "", nil, outcome.UsageErrorf("packer: the release version is required")
	case o.Project == "":
		return "", nil, outcome.UsageErrorf("packer: the GCP project is required (GCP_PROJECT_ID)")
	}
	if _, err := release.ParseVersion(o.Version); err != nil {
		return "", nil, outcome.UsageErrorf("packer: version: %v", err)
	}
	if o.Base == (BaseImage{}) {
		o.Base = DefaultBaseImage()
	}
	if o.Packer == "" {
		o.Packer = "packer"
	}
	if err := copyTemplate(o.Template, o.Dir); err != nil {
		return "", nil, err
	}
	if err := installAgent(o.AgentBinary, o.Dir); err != nil {
		return "", nil, err
	}
	manifest := filepath.Join(o.Dir, ManifestName)
	if err := os.Remove(manifest); err != nil && !os.IsNotExist(err) {
		return "", nil, fmt.Errorf("packer: %w", err)
	}
	vars := [][2]string{{"version", o.Version}, {"project_id", o.Project}, {"source_image", o.Base.SourceImage},
		{"source_image_family", o.Base.SourceImageFamily}, {"source_image_project", o.Base.SourceImageProject}}
	if o.Zone != "" {
		vars = append(vars, [2]string{"zone", o.Zone})
	}
	if o.ImageFamily != "" {
		vars = append(vars, [2]string{"image_family", o.ImageFamily})
	}
	build := []string{"build", "-color=false", "-timestamp-ui"}
	for _, v := range vars {
		build = append(build, "-var", v[0]+"="+v[1])
	}
	for _, args := range [][]string{{"init", "."}, append(build, ".")} {
		if err := o.packer(ctx, args); err != nil {
			return "", nil, err
		}
	}
	f, err := os.Open(manifest)
	if err != nil {
		return "", nil, outcome.UsageErrorf("packer build wrote no %s (does the template keep its manifest post-processor?): %v", ManifestName, err)
	}
	defer f.Close()
	builds, err := ReadManifest(f, manifest)
	if err != nil {
		return "", nil, err
	}
	if _, err := Images(builds); err != nil {
		return "", nil, err
	}
	if base, err := Base(builds); err != nil {
		return "", nil, err
	} else if base != o.Base {
		return "", nil, outcome.VerificationErrorf("packer built on %+v, not the pinned %+v", base, o.Base)
	}
	// Every build recorded its packages and identity (the SBOM's content): check them now.
	for _, b := range builds {
		if _, ok, err := ReadRecord(o.Dir, b); err != nil {
			return "", nil, err
		} else if !ok {
			return "", nil, outcome.UsageErrorf("packer build %q: custom_data names no %s/%s (the template records the image's packages)", b.Name, CustomPackagesFile, CustomIdentityFile)
		}
	}
	return manifest, builds, nil
}

// packer runs one packer command in Dir, its output to Output and, on failure, in the error.
func (o Options) packer(ctx context.Context, args []string) error {
	cmd := exec.CommandContext(ctx, o.Packer, args...)
	cmd.Dir = o.Dir
	cmd.Env = o.Env
	var tail bytes.Buffer
	out := io.Writer(&tail)
	if o.Output != nil {
		out = io.MultiWriter(&tail, o.Output)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		lines := strings.Split(strings.TrimSpace(tail.String()), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		return fmt.Errorf("packer %s: %w\n%s", args[0], err, strings.Join(lines, "\n"))
	}
	return nil
}

// installAgent copies the agent executable into dir as AgentName (mode 0755), or checks that
// dir has one when bin is empty.
func installAgent(bin, dir string) error {
	dst := filepath.Join(dir, AgentName)
	if bin == "" {
		if st, err := os.Stat(dst); err != nil || !st.Mode().IsRegular() {
			return outcome.UsageErrorf("packer: no %s to install in the image: build it (CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -o %s ./cmd/mero-tee-agent) and pass --agent-binary", AgentName, AgentName)
		}
		return nil
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return outcome.UsageErrorf("packer: agent binary: %v", err)
	}
	if len(data) < 4 || string(data[:4]) != "\x7fELF" {
		return outcome.UsageErrorf("packer: agent binary %s: not an ELF executable", bin)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		return fmt.Errorf("packer: install agent: %w", err)
	}
	return nil
}

// copyTemplate copies the template's regular files (not a manifest of an earlier run) into dir.
func copyTemplate(template, dir string) error {
	entries, err := os.ReadDir(template)
	if err != nil {
		return outcome.UsageErrorf("packer template: %v", err)
	}
	if !slices.ContainsFunc(entries, func(e os.DirEntry) bool { return strings.HasSuffix(e.Name(), ".pkr.hcl") }) {
		return outcome.UsageErrorf("packer template %s: no *.pkr.hcl file", template)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("packer: %w", err)
	}
	same, err := sameDir(template, dir)
	if err != nil || same {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || e.Name() == ManifestName {
			continue
		}
		data, err := os.ReadFile(filepath.Join(template, e.Name()))
		if err != nil {
			return fmt.Errorf("packer template: %w", err)
		}
		info, err := e.Info()
		if err != nil {
			return fmt.Errorf("packer template: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, info.Mode().Perm()); err != nil {
			return fmt.Errorf("packer: %w", err)
		}
	}
	return nil
}

func sameDir(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}
