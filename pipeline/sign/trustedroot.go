package sign

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tuf"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// maxTrustedRootSize bounds a trusted_root.json file (the public one is about 10 KiB).
const maxTrustedRootSize = 8 << 20

// ParseTrustedRoot parses a Sigstore trusted_root.json (media type
// application/vnd.dev.sigstore.trustedroot+json;version=0.1) and checks it can verify
// something: at least one Fulcio CA or Rekor log.
func ParseTrustedRoot(data []byte) (*root.TrustedRoot, error) {
	if len(data) > maxTrustedRootSize {
		return nil, outcome.UsageErrorf("trusted root is %d bytes, more than the %d allowed", len(data), maxTrustedRootSize)
	}
	tr, err := root.NewTrustedRootFromJSON(data)
	if err != nil {
		return nil, outcome.UsageErrorf("trusted root: %v", err)
	}
	if len(tr.FulcioCertificateAuthorities()) == 0 && len(tr.RekorLogs()) == 0 {
		return nil, outcome.UsageErrorf("trusted root lists no Fulcio certificate authority and no Rekor log")
	}
	return tr, nil
}

// LoadTrustedRoot reads a trusted_root.json file, for offline and private deployments.
func LoadTrustedRoot(path string) (*root.TrustedRoot, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, outcome.UsageErrorf("trusted root %s: file not found", path)
	case err != nil:
		return nil, fmt.Errorf("trusted root: %w", err)
	}
	tr, err := ParseTrustedRoot(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return tr, nil
}

// TUFOptions locates the public Sigstore TUF repository.
type TUFOptions struct {
	// CacheDir holds the TUF metadata and targets (default: sigstore-go's ~/.sigstore/root).
	CacheDir string
	// MirrorURL is the TUF repository (default https://tuf-repo-cdn.sigstore.dev).
	MirrorURL string
	// ForceCache uses unexpired cached metadata without contacting the mirror.
	ForceCache bool
}

// PublicGoodTrustedRoot returns the public-good Sigstore trusted root through TUF.
//
// What works without network: sigstore-go embeds only the TUF *root of trust*
// (tuf/repository/root.json), not trusted_root.json itself, so the first use must reach
// the TUF mirror. Afterwards the verified metadata and trusted_root.json are cached in
// CacheDir and, with ForceCache, reused offline until the TUF metadata expires (days to
// weeks). An air-gapped verifier therefore passes a trusted_root.json file (LoadTrustedRoot;
// `mero-release verify --trusted-root`), e.g. one copied from a cache filled online.
func PublicGoodTrustedRoot(ctx context.Context, o TUFOptions) (*root.TrustedRoot, error) {
	opts := tuf.DefaultOptions().WithContext(ctx)
	if o.CacheDir != "" {
		opts = opts.WithCachePath(o.CacheDir)
	}
	if o.MirrorURL != "" {
		opts = opts.WithRepositoryBaseURL(o.MirrorURL)
	}
	if o.ForceCache {
		opts = opts.WithForceCache()
	}
	client, err := tuf.New(opts)
	if err != nil {
		return nil, fmt.Errorf("public Sigstore trusted root unavailable (TUF %s: %v); offline, pass a trusted_root.json file (--trusted-root)", opts.RepositoryBaseURL, err)
	}
	tr, err := root.GetTrustedRoot(client)
	if err != nil {
		return nil, fmt.Errorf("public Sigstore trusted root unavailable (%v); offline, pass a trusted_root.json file (--trusted-root)", err)
	}
	return tr, nil
}
