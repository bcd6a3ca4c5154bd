// Package store is where releases live: one interface with a GitHub Releases implementation
// and a local-directory implementation of the same semantics.
package store

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned (wrapped) when a release or asset does not exist.
var ErrNotFound = errors.New("not found")

// ErrAssetConflict is returned (wrapped) when an upload would replace an existing asset
// with different content: a published release is never modified silently.
var ErrAssetConflict = errors.New("asset exists with different content")

// Release describes a release in a store.
type Release struct {
	Tag        string    `json:"tag"`
	Name       string    `json:"name"`
	Draft      bool      `json:"draft"`
	Prerelease bool      `json:"prerelease"`
	Latest     bool      `json:"latest"`
	Notes      string    `json:"notes,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	Assets     []Asset   `json:"assets"`
}

// Asset is one file of a release.
type Asset struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	// SHA256 is the hex digest when the store knows it (the directory store always does).
	SHA256 string `json:"sha256,omitempty"`
}

// DraftSpec is what CreateDraft needs.
type DraftSpec struct {
	Tag        string
	Name       string
	Notes      string
	Prerelease bool
}

// PublishOptions controls how a draft is published.
type PublishOptions struct {
	// Latest marks the release as the family's latest; never set for a prerelease.
	Latest bool
}

// Store is a place releases are read from and written to.
type Store interface {
	// Release returns the release with the tag (draft or published), or ErrNotFound.
	Release(ctx context.Context, tag string) (*Release, error)
	// Tags lists the tags of every published (non-draft) release.
	Tags(ctx context.Context) ([]string, error)
	// CreateDraft creates a draft release, or returns the existing draft with that tag.
	// It fails if a published release with that tag exists.
	CreateDraft(ctx context.Context, spec DraftSpec) (*Release, error)
	// UploadAsset adds an asset to a draft. An asset with the same name and content is kept
	// (no duplicate); one with different content is ErrAssetConflict.
	UploadAsset(ctx context.Context, tag, name string, content io.Reader, size int64) error
	// OpenAsset opens an asset for reading, or returns ErrNotFound.
	OpenAsset(ctx context.Context, tag, name string) (io.ReadCloser, error)
	// Publish turns a draft into a published release.
	Publish(ctx context.Context, tag string, opts PublishOptions) error
}

// Upload is one asset of a batch upload: its name, exact size and how to open its content.
type Upload struct {
	Name string
	Size int64
	// Open is called once, when the content is read; the uploader closes what it returns.
	Open func() (io.ReadCloser, error)
}

// BatchUploader is a Store that adds many assets to a draft in one operation, updating the
// release's metadata once (the directory store). Each asset follows UploadAsset's rules; the
// error joins one error per failed asset and the others are kept.
type BatchUploader interface {
	UploadAssets(ctx context.Context, tag string, uploads []Upload) error
}
