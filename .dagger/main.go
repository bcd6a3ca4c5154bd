// Module mero-release releases the mero-kms KMS and the mero-tee TDX node image.
//
// Every function runs the mero-release CLI (cmd/mero-release, built from this repository) in a
// container: the rules live once in pipeline/, and this module only moves files, secrets and
// arguments between Dagger and the CLI. Defaults are local (a directory store, the TDX simulator,
// key signing); flags and secrets switch each concern to the real backend.
package main

import (
	"context"
	"fmt"
	"strings"

	"dagger/mero-release/internal/dagger"
)

// defaultBuilderImage is the Go toolchain that builds the CLI when no prebuilt one is given
// (golang:1.26.8-bookworm, pinned by digest; the version matches go.mod).
const defaultBuilderImage = "golang:1.26.8-bookworm@sha256:a688600ca24f8a4d3ca77f95b0dd40704a9fc787c826660eb7ba0b641b8b175d"

// cliPath is where the CLI sits in every stage container.
const cliPath = "/usr/local/bin/mero-release"

// srcPath is where the repository is mounted in every stage container.
const srcPath = "/src"

// MeroRelease is the release pipeline of mero-kms and mero-tee.
type MeroRelease struct {
	// The repository being released.
	// +private
	Source *dagger.Directory
	// The mero-release CLI run by every stage (linux/amd64, static).
	// +private
	Cli *dagger.File
	// Token for GitHub releases and pull requests.
	// +private
	GithubToken *dagger.Secret
	// The Go image that builds binaries from source.
	// +private
	BuilderImage string
}

// New configures the pipeline.
func New(
	// The repository to release (defaults to the repository this module is in).
	// +defaultPath="/"
	// +ignore=["bin", "out", "dist", "mero-release", "**/*.test", ".dagger/internal", ".dagger/dagger.gen.go"]
	source *dagger.Directory,
	// A prebuilt mero-release CLI (linux/amd64, CGO_ENABLED=0). When absent the CLI is built from
	// source in the builder image; pass one where no image registry is reachable.
	// +optional
	cli *dagger.File,
	// The Go image that builds the CLI from source.
	// +optional
	// +default="golang:1.26.8-bookworm@sha256:a688600ca24f8a4d3ca77f95b0dd40704a9fc787c826660eb7ba0b641b8b175d"
	builderImage string,
	// GitHub token (contents:write, pull-requests:write) for the GitHub release store and catalog PRs.
	// +optional
	githubToken *dagger.Secret,
) *MeroRelease {
	if builderImage == "" {
		builderImage = defaultBuilderImage
	}
	if cli == nil {
		cli = goBuild(source, builderImage, "./cmd/mero-release")
	}
	return &MeroRelease{Source: source, Cli: cli, GithubToken: githubToken, BuilderImage: builderImage}
}

// goBuild compiles a package of the repository statically in the builder image, with cached
// modules and builds.
func goBuild(source *dagger.Directory, builderImage, pkg string) *dagger.File {
	return dag.Container().
		From(builderImage).
		WithMountedCache("/go/pkg/mod", dag.CacheVolume("mero-release-go-mod")).
		WithMountedCache("/root/.cache/go-build", dag.CacheVolume("mero-release-go-build")).
		WithEnvVariable("CGO_ENABLED", "0").
		WithEnvVariable("GOFLAGS", "-trimpath -buildvcs=false").
		WithDirectory(srcPath, source, dagger.ContainerWithDirectoryOpts{
			Include: []string{"go.mod", "go.sum", "cmd/**", "pipeline/**", "policies/**", "examples/**"},
		}).
		WithWorkdir(srcPath).
		WithExec([]string{"go", "build", "-o", "/out/binary", pkg}).
		File("/out/binary")
}

// Container is the base of every stage: the CLI on the PATH and the repository at /src.
//
// The image is empty apart from those (the CLI is static and carries its own CA roots).
// Functions mount their inputs (WithMountedDirectory/WithMountedFile) and read results back
// from those mounts or from paths the CLI creates: on the offline engine (v0.19.10), copying a
// directory the caller passed in (WithDirectory) left the next exec waiting forever.
func (m *MeroRelease) Container() *dagger.Container {
	return m.withCLI(dag.Container()).
		WithMountedTemp("/tmp").
		WithEnvVariable("HOME", "/tmp").
		WithEnvVariable("TMPDIR", "/tmp").
		WithMountedDirectory(srcPath, m.Source).
		WithWorkdir(srcPath)
}

// withCLI mounts the CLI at cliPath. It is mounted, not copied: a copy is a new ~150 MB layer
// in the engine's cache for every call that passes --cli (measured: 55 copies, 8 GB, in one CI
// run), while a mount reuses the file the engine already holds. The file must be executable, as
// `go build` output and a host binary are.
func (m *MeroRelease) withCLI(ctr *dagger.Container) *dagger.Container {
	return ctr.WithMountedFile(cliPath, m.Cli)
}

// exec runs `mero-release args…` and returns the container after it, whatever the exit code.
func exec(ctr *dagger.Container, args ...string) *dagger.Container {
	return ctr.WithExec(append([]string{cliPath}, args...), dagger.ContainerWithExecOpts{Expect: dagger.ReturnTypeAny})
}

// result turns a finished CLI run into its combined log (stderr, then stdout) or an error that
// carries the CLI's exit code and its [FAIL]/[ERROR] lines.
func result(ctx context.Context, ran *dagger.Container, args []string) (string, error) {
	code, err := ran.ExitCode(ctx)
	if err != nil {
		return "", fmt.Errorf("mero-release %s: %w", strings.Join(args, " "), err)
	}
	stdout, err := ran.Stdout(ctx)
	if err != nil {
		return "", fmt.Errorf("mero-release %s: read stdout: %w", strings.Join(args, " "), err)
	}
	stderr, err := ran.Stderr(ctx)
	if err != nil {
		return "", fmt.Errorf("mero-release %s: read stderr: %w", strings.Join(args, " "), err)
	}
	out := joinOutput(stderr, stdout)
	if code != 0 {
		return out, fmt.Errorf("mero-release %s: exit code %d\n%s", args[0], code, out)
	}
	return out, nil
}

// run executes the CLI in the stage container and returns its output, or an error when it exits non-zero.
func (m *MeroRelease) run(ctx context.Context, ctr *dagger.Container, args ...string) (string, error) {
	return result(ctx, exec(ctr, args...), args)
}

// runFile executes the CLI, requires success, and returns the file it wrote at path.
func (m *MeroRelease) runFile(ctx context.Context, ctr *dagger.Container, path string, args ...string) (*dagger.File, error) {
	ran := exec(ctr, args...)
	if _, err := result(ctx, ran, args); err != nil {
		return nil, err
	}
	return ran.File(path), nil
}

func joinOutput(stderr, stdout string) string {
	switch {
	case stderr == "":
		return stdout
	case stdout == "":
		return stderr
	default:
		return strings.TrimRight(stderr, "\n") + "\n" + stdout
	}
}
