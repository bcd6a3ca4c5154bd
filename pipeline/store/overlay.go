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

// UploadAssets uploads a batch to Top, in one operation when Top is a BatchUploader.
func (o Overlay) UploadAssets(ctx context.Context, tag string, uploads []Upload) error {
	if b, ok := o.Top.(BatchUploader); ok {
		return b.UploadAssets(ctx, tag, uploads)
	}
	var errs []error
	for _, u := range uploads {
		errs = append(errs, uploadOne(ctx, o.Top, tag, u))
	}
	return errors.Join(errs...)
}

// uploadOne opens one upload's content and sends it with UploadAsset.
func uploadOne(ctx context.Context, st Store, tag string, u Upload) error {
	rc, err := u.Open()
	if err != nil {
		return fmt.Errorf("upload %s/%s: %w", tag, u.Name, err)
	}
	defer rc.Close()
	return st.UploadAsset(ctx, tag, u.Name, rc, u.Size)
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
