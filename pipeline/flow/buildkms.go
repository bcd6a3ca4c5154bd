package flow

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// BuildKMSImages runs the KMS pipeline's build-images stage on its own (scripts/build-kms-image.sh):
// the three profile images — built around product.Binary, or product.Images checked and copied —
// as OCI archives in dir, each profile's app-compose pinned by digest, and
// kms-image-manifest.json with digests and compose hashes. With product.Registry the images are
// then pushed (an explicit build-and-push; release-kms pushes only after audit and E2E).
func BuildKMSImages(ctx context.Context, product KMSProduct, tag release.Tag, created time.Time, dir string, log *outcome.Logger) (*KMSImageManifest, error) {
	if tag.Family != release.KMS {
		return nil, outcome.UsageErrorf("build-kms-image: %s is not a mero-kms tag", tag)
	}
	if product.AppCompose == nil {
		return nil, outcome.UsageErrorf("build-kms-image: the KMS product needs an app-compose renderer")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("build-kms-image: %w", err)
	}
	k := &kmsRun{run: &run{cfg: &Config{Tag: tag, Created: created, Log: log}, imageDir: dir}, product: product, images: map[release.Profile]KMSImage{}}
	if err := k.buildStage().Run(ctx); err != nil {
		return nil, err
	}
	manifest := &KMSImageManifest{SchemaVersion: "1", Version: tag.Version.String(), Profiles: map[release.Profile]KMSImage{}}
	for _, p := range release.Profiles() {
		img := k.images[p]
		compose, err := measure.LoadCompose(img.compose)
		if err != nil {
			return nil, err
		}
		img.ComposeHash = compose.HashHex()
		manifest.Profiles[p] = img
	}
	data, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("kms image manifest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, release.KMSImageManifest), append(data, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("kms image manifest: %w", err)
	}
	if product.Registry != "" {
		if err := k.pushStage().Run(ctx); err != nil {
			return nil, err
		}
	}
	return manifest, nil
}
