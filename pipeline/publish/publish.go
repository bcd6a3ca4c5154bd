// Package publish turns an assembled release directory into a published release, safely:
// every expected asset is checked locally before anything is created, the release is built
// as a draft, every upload is verified against the local files (names, sizes, SHA-256), and
// only then is the draft published. Any failure leaves a draft, never a published partial
// release; a rerun completes the draft without duplicates; publishing over a published
// release is a no-op when its assets are identical and an error when they differ.
package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/calimero-network/mero-release/pipeline/checksum"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/store"
)

// DefaultConcurrency is how many assets are uploaded at once unless Input says otherwise.
const DefaultConcurrency = 4

// Input is what Publish needs.
type Input struct {
	// Tag is the release's tag; its family decides the expected assets.
	Tag release.Tag
	// Rules are the class rules (release.RulesFor): prerelease, may be latest.
	Rules release.Rules
	// Dir holds the assembled assets (release.ExpectedAssets(family).All()).
	Dir string
	// Notes is the release body.
	Notes string
	// Name is the release title (default: the tag).
	Name string
	// Concurrency bounds parallel uploads (default DefaultConcurrency).
	Concurrency int
	// Log receives [INFO]/[PASS]/[FAIL] lines (nil: silent).
	Log *outcome.Logger
}

// local is one asset of the release directory.
type local struct {
	name   string
	path   string
	size   int64
	sha256 string
}

// Publish publishes the release in in.Dir to st. See the package comment for the guarantees.
// A missing local asset is a missing-asset error (exit 11) and nothing is created; assets that
// differ from what the store holds are verification errors (exit 10).
func Publish(ctx context.Context, st store.Store, in Input) error {
	if err := in.validate(); err != nil {
		return err
	}
	tag := in.Tag.String()
	assets, err := collect(ctx, in)
	if err != nil {
		return err
	}
	in.Log.Infof("publish %s: %d assets found in %s", tag, len(assets), in.Dir)

	existing, err := st.Release(ctx, tag)
	switch {
	case err == nil && !existing.Draft:
		if diffs := compare(ctx, st, existing, assets); len(diffs) > 0 {
			for _, d := range diffs {
				in.Log.Failf("%s: %s", tag, d)
			}
			return outcome.VerificationErrorf("publish %s: already published with different assets (%s): %w",
				tag, strings.Join(diffs, "; "), store.ErrAssetConflict)
		}
		in.Log.Passf("%s is already published with identical assets; nothing to do", tag)
		return nil
	case err == nil:
		in.Log.Infof("publish %s: resuming the existing draft (%d assets uploaded)", tag, len(existing.Assets))
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("publish %s: %w", tag, err)
	}

	name := in.Name
	if name == "" {
		name = tag
	}
	if _, err := st.CreateDraft(ctx, store.DraftSpec{Tag: tag, Name: name, Notes: in.Notes, Prerelease: in.Rules.Prerelease}); err != nil {
		return fmt.Errorf("publish %s: create draft: %w", tag, err)
	}
	if err := upload(ctx, st, tag, assets, in); err != nil {
		return err
	}

	draft, err := st.Release(ctx, tag)
	if err != nil {
		return fmt.Errorf("publish %s: re-list the draft: %w", tag, err)
	}
	if diffs := compare(ctx, st, draft, assets); len(diffs) > 0 {
		for _, d := range diffs {
			in.Log.Failf("%s: %s", tag, d)
		}
		return outcome.VerificationErrorf("publish %s: the draft does not match the local assets, left unpublished: %s", tag, strings.Join(diffs, "; "))
	}
	in.Log.Passf("%s: all %d uploaded assets verified (names, sizes, SHA-256)", tag, len(assets))

	latest, err := isLatest(ctx, st, in)
	if err != nil {
		return err
	}
	if err := st.Publish(ctx, tag, store.PublishOptions{Latest: latest}); err != nil {
		return fmt.Errorf("publish %s: %w", tag, err)
	}
	kind := "release"
	if in.Rules.Prerelease {
		kind = "prerelease"
	}
	if latest {
		kind += ", marked latest"
	}
	in.Log.Passf("published %s (%s, %s)", tag, in.Rules.Class, kind)
	return nil
}

func (in Input) validate() error {
	switch {
	case in.Tag.Family == "":
		return outcome.UsageErrorf("publish: no tag")
	case in.Rules.Class == "":
		return outcome.UsageErrorf("publish %s: no release class rules (release.RulesFor)", in.Tag)
	case in.Tag.Version.IsRC() && !in.Rules.Prerelease:
		return outcome.UsageErrorf("publish %s: a release candidate is published as a prerelease (class %s given)", in.Tag, in.Rules.Class)
	case in.Dir == "":
		return outcome.UsageErrorf("publish %s: no asset directory", in.Tag)
	case in.Concurrency < 0:
		return outcome.UsageErrorf("publish %s: concurrency %d is negative", in.Tag, in.Concurrency)
	}
	info, err := os.Stat(in.Dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return outcome.UsageErrorf("publish %s: asset directory %s does not exist", in.Tag, in.Dir)
	case err != nil:
		return fmt.Errorf("publish %s: %w", in.Tag, err)
	case !info.IsDir():
		return outcome.UsageErrorf("publish %s: %s is not a directory", in.Tag, in.Dir)
	}
	return nil
}

// collect checks that every expected asset is a regular file in in.Dir, hashes them, and
// checks that checksums.sha256 agrees with them, before anything is created.
func collect(ctx context.Context, in Input) ([]local, error) {
	expected := release.ExpectedAssets(in.Tag.Family)
	names := expected.All()
	var missing []string
	var errs []error
	assets := make([]local, 0, len(names))
	for _, n := range names {
		p := filepath.Join(in.Dir, n)
		info, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, n)
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("publish %s: %w", in.Tag, err))
			continue
		case !info.Mode().IsRegular():
			errs = append(errs, outcome.UsageErrorf("publish %s: %s is not a regular file", in.Tag, p))
			continue
		}
		assets = append(assets, local{name: n, path: p, size: info.Size()})
	}
	for _, n := range missing {
		in.Log.Failf("%s: required asset %s is missing from %s", in.Tag, n, in.Dir)
	}
	if len(missing) > 0 {
		errs = append(errs, outcome.MissingAssetErrorf("publish %s: %d required asset(s) missing from %s: %s (nothing was created)",
			in.Tag, len(missing), in.Dir, strings.Join(missing, ", ")))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sums, err := checksum.Compute(ctx, in.Dir, names)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", in.Tag, err)
	}
	for i := range assets {
		assets[i].sha256, _ = sums.Lookup(assets[i].name)
	}
	// checksums.sha256 must describe the content that is about to be published.
	data, err := os.ReadFile(filepath.Join(in.Dir, release.ChecksumsFile))
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", in.Tag, err)
	}
	listed, err := checksum.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, outcome.VerificationErrorf("publish %s: %s: %w", in.Tag, release.ChecksumsFile, err)
	}
	var bad []string
	for _, n := range expected.Checksummed() {
		want, ok := listed.Lookup(n)
		got, _ := sums.Lookup(n)
		switch {
		case !ok:
			bad = append(bad, n+" is not listed")
		case want != got:
			bad = append(bad, fmt.Sprintf("%s is listed as %s but is %s", n, want, got))
		}
	}
	if len(bad) > 0 {
		return nil, outcome.VerificationErrorf("publish %s: %s does not match the assets: %s (nothing was created)",
			in.Tag, release.ChecksumsFile, strings.Join(bad, "; "))
	}
	return assets, nil
}

// upload sends every asset with bounded concurrency and reports every failure. A store that
// takes a batch (the directory store) gets every asset in one call and updates its metadata once.
func upload(ctx context.Context, st store.Store, tag string, assets []local, in Input) error {
	if b, ok := st.(store.BatchUploader); ok {
		uploads := make([]store.Upload, len(assets))
		for i, a := range assets {
			uploads[i] = store.Upload{Name: a.name, Size: a.size, Open: func() (io.ReadCloser, error) { return os.Open(a.path) }}
		}
		if err := b.UploadAssets(ctx, tag, uploads); err != nil {
			if errors.Is(err, store.ErrAssetConflict) {
				err = outcome.VerificationErrorf("the draft already holds different content (delete it from the draft, or fix the local file): %w", err)
			}
			in.Log.Failf("%s: upload: %v", tag, err)
			return fmt.Errorf("publish %s: upload failed, the draft is left unpublished (rerun to resume): %w", tag, err)
		}
		in.Log.Infof("publish %s: %d assets uploaded", tag, len(assets))
		return nil
	}
	n := in.Concurrency
	if n == 0 {
		n = DefaultConcurrency
	}
	sem := make(chan struct{}, n)
	errs := make([]error, len(assets))
	var wg sync.WaitGroup
	for i, a := range assets {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			errs[i] = uploadOne(ctx, st, tag, a)
			if errs[i] != nil {
				in.Log.Failf("%s: upload %s: %v", tag, a.name, errs[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("publish %s: upload failed, the draft is left unpublished (rerun to resume): %w", tag, err)
	}
	in.Log.Infof("publish %s: %d assets uploaded", tag, len(assets))
	return nil
}

func uploadOne(ctx context.Context, st store.Store, tag string, a local) error {
	f, err := os.Open(a.path)
	if err != nil {
		return err
	}
	defer f.Close()
	err = st.UploadAsset(ctx, tag, a.name, f, a.size)
	if errors.Is(err, store.ErrAssetConflict) {
		return outcome.VerificationErrorf("the draft already holds a different %s (delete it from the draft, or fix the local file): %w", a.name, err)
	}
	return err
}

// compare lists every difference between a release in the store and the local assets:
// missing, extra, of another size or another SHA-256 (hashing the stored asset when the
// store does not report a digest).
func compare(ctx context.Context, st store.Store, r *store.Release, assets []local) []string {
	var diffs []string
	stored := map[string]store.Asset{}
	for _, a := range r.Assets {
		stored[a.Name] = a
	}
	for _, a := range assets {
		s, ok := stored[a.name]
		delete(stored, a.name)
		switch {
		case !ok:
			diffs = append(diffs, a.name+" is missing from the release")
			continue
		case s.Size != a.size:
			diffs = append(diffs, fmt.Sprintf("%s is %d bytes in the release, %d locally", a.name, s.Size, a.size))
			continue
		}
		sum := s.SHA256
		if sum == "" {
			var err error
			if sum, err = hashStored(ctx, st, r.Tag, a.name); err != nil {
				diffs = append(diffs, fmt.Sprintf("%s cannot be read back: %v", a.name, err))
				continue
			}
		}
		if !strings.EqualFold(sum, a.sha256) {
			diffs = append(diffs, fmt.Sprintf("%s has sha256 %s in the release, %s locally", a.name, sum, a.sha256))
		}
	}
	extra := make([]string, 0, len(stored))
	for n := range stored {
		extra = append(extra, n)
	}
	slices.Sort(extra)
	for _, n := range extra {
		diffs = append(diffs, n+" is in the release but is not an expected asset")
	}
	return diffs
}

func hashStored(ctx context.Context, st store.Store, tag, name string) (string, error) {
	rc, err := st.OpenAsset(ctx, tag, name)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// isLatest decides whether the release is marked latest: its class allows it and no newer
// stable release of its family is published (a hotfix of an older line is not latest).
func isLatest(ctx context.Context, st store.Store, in Input) (bool, error) {
	if !in.Rules.MayBeLatest || in.Rules.Prerelease {
		return false, nil
	}
	names, err := st.Tags(ctx)
	if err != nil {
		return false, fmt.Errorf("publish %s: list published tags: %w", in.Tag, err)
	}
	for _, t := range release.ParseTags(names) {
		if t.Family == in.Tag.Family && !t.Version.IsRC() && t.Version.Compare(in.Tag.Version) > 0 {
			in.Log.Infof("publish %s: not marked latest, %s is newer", in.Tag, t)
			return false, nil
		}
	}
	return true, nil
}
