package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/kmsclient"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/store"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
	"github.com/calimero-network/mero-release/pipeline/vm"
)

// ImageResolver says which image a node-image release boots for a profile: the vm.Spec.Image
// the provider is given (a GCP image name, or for the simulator a tdxsim manifest or directory).
type ImageResolver interface {
	Image(ctx context.Context, nodeVersion string, profile release.Profile) (string, error)
}

// TemplateImages resolves images from a template in which {version} and {profile} are
// replaced, e.g. "images/{version}" (a simulator directory holding PROFILE.json) or
// "mero-tee-{version}-{profile}" (GCP image names, dots kept).
type TemplateImages string

// Image implements ImageResolver.
func (t TemplateImages) Image(_ context.Context, version string, profile release.Profile) (string, error) {
	if t == "" {
		return "", outcome.UsageErrorf("node image template: empty")
	}
	return strings.NewReplacer("{version}", version, "{profile}", string(profile)).Replace(string(t)), nil
}

// ManifestImages resolves images from the node-image-manifest.json asset of each node release
// in Store. The suite reads only this part of the manifest:
//
//	{"profiles": {"<profile>": {"image": "<vm.Spec.Image>", …}, …}, …}
//
// A relative image path is taken relative to BaseDir (the simulator's images on disk).
type ManifestImages struct {
	Store   store.Store
	BaseDir string
}

// Image implements ImageResolver. A release without the manifest is a missing asset (exit 11);
// a manifest without the profile, a verification error.
func (m ManifestImages) Image(ctx context.Context, version string, profile release.Profile) (string, error) {
	tag := release.Node.TagPrefix() + version
	rc, err := m.Store.OpenAsset(ctx, tag, release.NodeImageManifest)
	if errors.Is(err, store.ErrNotFound) {
		return "", outcome.MissingAssetErrorf("%s: %s: not found", tag, release.NodeImageManifest)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %s: %w", tag, release.NodeImageManifest, err)
	}
	defer rc.Close()
	var manifest struct {
		Profiles map[release.Profile]struct {
			Image string `json:"image"`
		} `json:"profiles"`
	}
	if err := json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&manifest); err != nil {
		return "", outcome.VerificationErrorf("%s: %s: %v", tag, release.NodeImageManifest, err)
	}
	entry, ok := manifest.Profiles[profile]
	if !ok || entry.Image == "" {
		return "", outcome.VerificationErrorf("%s: %s: profiles.%s.image: missing (the release has no %s image)", tag, release.NodeImageManifest, profile, profile)
	}
	img := entry.Image
	if m.BaseDir != "" && !filepath.IsAbs(img) {
		if candidate := filepath.Join(m.BaseDir, img); exists(candidate) {
			img = candidate
		}
	}
	return img, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// ReportDataQuoter is implemented by VM instances whose guest agent quotes report data chosen
// by the caller — what a node does for key release (its quote must bind the KMS challenge
// nonce and its public key, which exist only after boot). GCP instances implement it through
// mero-tee-agent (a quote request in the instance metadata, answered in guest attributes).
type ReportDataQuoter interface {
	QuoteReportData(ctx context.Context, reportData [64]byte) ([]byte, error)
}

// simulatedVMs is implemented by vmsim.Provider: the booted simulator VM behind an instance.
type simulatedVMs interface {
	Booted(name string) *tdxsim.VM
}

// NodeQuoter adapts a deployed node to kmsclient.Quoter for key release: quotes over the report
// data the KMS asks for come from the instance's ReportDataQuoter or, for a vmsim provider, from
// the simulator VM behind the instance.
func NodeQuoter(ctx context.Context, inst vm.Instance, p vm.Provider) kmsclient.Quoter {
	return nodeQuoter{ctx: ctx, inst: inst, p: p}
}

// nodeQuoter is NodeQuoter's kmsclient.Quoter.
type nodeQuoter struct {
	ctx  context.Context
	inst vm.Instance
	p    vm.Provider
}

// Quote implements kmsclient.Quoter: through the instance's ReportDataQuoter, or the simulator
// VM behind a vmsim instance.
func (n nodeQuoter) Quote(rd [64]byte) ([]byte, error) {
	if q, ok := n.inst.(ReportDataQuoter); ok {
		return q.QuoteReportData(n.ctx, rd)
	}
	if sim, ok := n.p.(simulatedVMs); ok {
		if v := sim.Booted(n.inst.Name()); v != nil {
			return v.Quote(rd)
		}
		return nil, fmt.Errorf("vm %s: not running", n.inst.Name())
	}
	return nil, fmt.Errorf("vm %s: instances of provider %T take no quotes over caller-chosen report data (they implement no e2e.ReportDataQuoter), which key release needs", n.inst.Name(), n.p)
}
