package flow

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// BuildGoBinary builds a static linux binary of pkg (e.g. ./examples/kms/cmd/mero-kms) from the Go
// module in repoDir into out with the Go toolchain on the PATH. It is the local build path of the
// KMS image; the Dagger module builds the same package in its pinned builder image instead.
func BuildGoBinary(ctx context.Context, repoDir, pkg, out string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("build %s: %w", pkg, err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = repoDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOFLAGS=-buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", pkg, err, b)
	}
	return nil
}
