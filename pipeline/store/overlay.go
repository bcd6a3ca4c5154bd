package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Overlay is a Store that reads from Top first and then from Base, and writes to Top only.
// A release being assembled is staged in Top, so that the auditor and the E2E suites can read
// it together with the counterpart releases already in Base before anything is published there.
type Overlay struct {
	Top, Base Store
}

// Release returns the release from Top, or from Base when Top does not have it.
func (o Overlay) Release(ctx context.Context, tag string) (*Release, error) {
	r, err := o.Top.Release(ctx, tag)
	if errors.Is(err, ErrNotFound) {
		return o.Base.Release(ctx, tag)
	}
	return r, err
}

// Tags is the sorted union of both stores' published tags.
func (o Overlay) Tags(ctx context.Context) ([]string, error) {
	top, err := o.Top.Tags(ctx)
	if err != nil {
		return nil, fmt.Errorf("overlay tags: %w", err)
	}
	base, err := o.Base.Tags(ctx)
	if err != nil {
		return nil, fmt.Errorf("overlay tags: %w", err)
	}
	all := append(top, base...)
	slices.Sort(all)
	return slices.Compact(all), nil
}

// CreateDraft creates the draft in Top.
func (o Overlay) CreateDraft(ctx context.Context, spec DraftSpec) (*Release, error) {
	return o.Top.CreateDraft(ctx, spec)
}

// UploadAsset uploads to Top.
func (o Overlay) UploadAsset(ctx context.Context, tag, name string, content io.Reader, size int64) error {
	return o.Top.UploadAsset(ctx, tag, name, content, size)
}

// OpenAsset opens the asset of the release in Top when Top has that release, else from Base.
// A release is never mixed from both stores.
func (o Overlay) OpenAsset(ctx context.Context, tag, name string) (io.ReadCloser, error) {
	if _, err := o.Top.Release(ctx, tag); err == nil {
		return o.Top.OpenAsset(ctx, tag, name)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	return o.Base.OpenAsset(ctx, tag, name)
}

// Publish publishes in Top.
func (o Overlay) Publish(ctx context.Context, tag string, opts PublishOptions) error {
	return o.Top.Publish(ctx, tag, opts)
}
