// Package dir is the local-directory release store: the same semantics as GitHub Releases,
// kept in a directory tree so that a laptop or a test needs no credentials.
//
// Layout:
//
//	ROOT/<tag>/release.json     the store.Release metadata, assets with size and SHA-256
//	ROOT/<tag>/assets/<name>    the asset bytes
//
// Every file is written atomically (a temporary file in the same directory, fsync, rename,
// fsync of the directory), so an interrupted upload never leaves a partial asset or a torn
// release.json. Metadata changes are serialised by a mutex of the Store value and, between
// processes, by an advisory lock on ROOT/.lock (on systems that have flock).
package dir

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/calimero-network/mero-release/pipeline/internal/ctxio"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/store"
)

// ErrPublished is returned (wrapped) when a write would modify a published release:
// CreateDraft of a published tag, or an upload to it.
var ErrPublished = errors.New("release is already published")

const (
	metadataFile = "release.json"
	assetsDir    = "assets"
	lockFile     = ".lock"
	tempPrefix   = ".tmp-"
)

// Store is a release store in a local directory. It is safe for concurrent use.
//
// Each release.json is parsed once and kept in memory with an index of its assets; a stat of
// the file (same file, size and modification time) tells whether another process replaced it
// since, so that opening or checking an asset costs no re-read and an operation over n assets
// stays linear.
type Store struct {
	root string
	now  func() time.Time
	mu   sync.Mutex // serialises metadata changes of this Store value

	cacheMu sync.Mutex
	cache   map[string]*cachedRecord // tag → the last release.json read or written
}

// cachedRecord is a parsed release.json, the file it was read from and an index of its
// assets. It is never modified once cached: readers share it, writers cache a new one.
type cachedRecord struct {
	info  fs.FileInfo
	rec   *record
	index map[string]int // asset name → position in rec.Assets
}

// asset returns the record of the named asset.
func (c *cachedRecord) asset(name string) (store.Asset, bool) {
	i, ok := c.index[name]
	if !ok {
		return store.Asset{}, false
	}
	return c.rec.Assets[i], true
}

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock used for CreatedAt (tests use a fixed one).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// New opens the store at root, creating the directory when it does not exist.
func New(root string, opts ...Option) (*Store, error) {
	if root == "" {
		return nil, outcome.UsageErrorf("directory store: root path is empty")
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("directory store %s: %w", root, err)
	}
	s := &Store{root: root, now: time.Now, cache: map[string]*cachedRecord{}}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Root is the directory the store lives in.
func (s *Store) Root() string { return s.root }

var _ store.Store = (*Store)(nil)

// record is release.json: the release with its asset records (size and SHA-256).
type record = store.Release

// ValidateName checks that a tag or asset name is one plain path element: not empty, no
// path separator, no "..", no leading dot (reserved for temporary files), no control character.
func ValidateName(kind, name string) error {
	switch {
	case name == "":
		return outcome.UsageErrorf("%s name is empty", kind)
	case strings.ContainsAny(name, `/\`):
		return outcome.UsageErrorf("%s name %q contains a path separator", kind, name)
	case strings.Contains(name, ".."):
		return outcome.UsageErrorf("%s name %q contains \"..\"", kind, name)
	case strings.HasPrefix(name, "."):
		return outcome.UsageErrorf("%s name %q starts with a dot", kind, name)
	case len(name) > 255:
		return outcome.UsageErrorf("%s name %q is longer than 255 bytes", kind, name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return outcome.UsageErrorf("%s name %q contains a control character", kind, name)
		}
	}
	return nil
}

func (s *Store) releaseDir(tag string) string { return filepath.Join(s.root, tag) }
func (s *Store) assetPath(tag, name string) string {
	return filepath.Join(s.root, tag, assetsDir, name)
}

// readRecord returns a copy of release.json of tag that the caller may change; a missing
// release is store.ErrNotFound.
func (s *Store) readRecord(tag string) (*record, error) {
	c, err := s.loadRecord(tag)
	if err != nil {
		return nil, err
	}
	r := *c.rec
	r.Assets = slices.Clone(c.rec.Assets)
	return &r, nil
}

// loadRecord returns release.json of tag, parsed once and then served from the cache while
// the file on disk is the one that was parsed. The result is shared: never modify it.
func (s *Store) loadRecord(tag string) (*cachedRecord, error) {
	path := filepath.Join(s.releaseDir(tag), metadataFile)
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("release %s: %w", tag, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", tag, err)
	}
	s.cacheMu.Lock()
	c := s.cache[tag]
	s.cacheMu.Unlock()
	if c != nil && sameFile(c.info, info) {
		return c, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("release %s: %w", tag, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", tag, err)
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("release %s: %s: %w", tag, path, err)
	}
	if r.Tag != tag {
		return nil, fmt.Errorf("release %s: %s names tag %q", tag, path, r.Tag)
	}
	// Were the file replaced between the stat and the read, the next stat differs from info
	// and the new file is read then: a record is never kept under a newer file's stat.
	return s.remember(info, &r), nil
}

// remember caches r as the content of the release.json described by info.
func (s *Store) remember(info fs.FileInfo, r *record) *cachedRecord {
	c := newCachedRecord(info, r)
	s.cacheMu.Lock()
	s.cache[r.Tag] = c
	s.cacheMu.Unlock()
	return c
}

func newCachedRecord(info fs.FileInfo, r *record) *cachedRecord {
	c := &cachedRecord{info: info, rec: r, index: make(map[string]int, len(r.Assets))}
	for i, a := range r.Assets {
		c.index[a.Name] = i
	}
	return c
}

// sameFile reports whether two stats describe the same unchanged file: release.json is only
// ever replaced by a rename, which gives it a new inode, a new modification time or both.
func sameFile(a, b fs.FileInfo) bool {
	return a != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// writeRecord replaces release.json of r.Tag atomically and caches r, which the caller must
// not change afterwards.
func (s *Store) writeRecord(r *record) error {
	slices.SortFunc(r.Assets, func(a, b store.Asset) int { return strings.Compare(a.Name, b.Name) })
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode release %s: %w", r.Tag, err)
	}
	data = append(data, '\n')
	dir := s.releaseDir(r.Tag)
	if err := writeFileAtomic(dir, metadataFile, data); err != nil {
		return fmt.Errorf("write release %s: %w", r.Tag, err)
	}
	if info, err := os.Stat(filepath.Join(dir, metadataFile)); err == nil {
		s.remember(info, r)
	}
	return nil
}

// Release returns the release with the tag, draft or published.
func (s *Store) Release(ctx context.Context, tag string) (*store.Release, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := ValidateName("tag", tag); err != nil {
		return nil, err
	}
	return s.readRecord(tag)
}

// Tags lists the tags of every published release, sorted lexically.
func (s *Store) Tags(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("list releases in %s: %w", s.root, err)
	}
	var tags []string
	for _, e := range entries {
		if !e.IsDir() || ValidateName("tag", e.Name()) != nil {
			continue
		}
		r, err := s.readRecord(e.Name())
		if errors.Is(err, store.ErrNotFound) {
			continue // a directory without release.json is not a release
		}
		if err != nil {
			return nil, err
		}
		if !r.Draft {
			tags = append(tags, r.Tag)
		}
	}
	slices.Sort(tags)
	return tags, nil
}

// CreateDraft creates a draft, or returns the existing draft of the tag unchanged. A published
// release with the tag is ErrPublished.
func (s *Store) CreateDraft(ctx context.Context, spec store.DraftSpec) (*store.Release, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := ValidateName("tag", spec.Tag); err != nil {
		return nil, err
	}
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	existing, err := s.readRecord(spec.Tag)
	switch {
	case err == nil && existing.Draft:
		return existing, nil
	case err == nil:
		return nil, fmt.Errorf("create draft %s: %w", spec.Tag, ErrPublished)
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(s.releaseDir(spec.Tag), assetsDir), 0o755); err != nil {
		return nil, fmt.Errorf("create draft %s: %w", spec.Tag, err)
	}
	name := spec.Name
	if name == "" {
		name = spec.Tag
	}
	r := &record{
		Tag: spec.Tag, Name: name, Draft: true, Prerelease: spec.Prerelease, Notes: spec.Notes,
		CreatedAt: s.now().UTC(), Assets: []store.Asset{},
	}
	if err := s.writeRecord(r); err != nil {
		return nil, err
	}
	return s.readRecord(spec.Tag)
}

// UploadAsset adds an asset to a draft. The content must be exactly size bytes. Uploading the
// same name with the same SHA-256 again is a no-op; different content is store.ErrAssetConflict.
// Uploads of different assets may run concurrently; the bytes are staged in a temporary file
// outside the lock and only the final check-and-rename is serialised.
func (s *Store) UploadAsset(ctx context.Context, tag, name string, content io.Reader, size int64) error {
	open := func() (io.ReadCloser, error) { return io.NopCloser(content), nil }
	return s.UploadAssets(ctx, tag, []store.Upload{{Name: name, Size: size, Open: open}})
}

// stagedUpload is one upload of a batch whose bytes are in a temporary file.
type stagedUpload struct {
	store.Upload
	tmp, sum string
	err      error
}

// UploadAssets adds many assets to a draft with one update of release.json: every content is
// staged (hashed into a temporary file) outside the lock, with bounded concurrency, then one
// locked step checks each against the release, renames it into place and writes the record
// once. Each asset follows UploadAsset's rules; the error joins one error per failed asset and
// the others are kept.
func (s *Store) UploadAssets(ctx context.Context, tag string, uploads []store.Upload) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ValidateName("tag", tag); err != nil {
		return err
	}
	seen := make(map[string]bool, len(uploads))
	for _, u := range uploads {
		if err := ValidateName("asset", u.Name); err != nil {
			return err
		}
		if u.Size < 0 {
			return outcome.UsageErrorf("upload %s/%s: size %d is negative", tag, u.Name, u.Size)
		}
		if seen[u.Name] {
			return outcome.UsageErrorf("upload %s/%s: given twice in one batch", tag, u.Name)
		}
		seen[u.Name] = true
	}
	if len(uploads) == 0 {
		return nil
	}
	c, err := s.loadRecord(tag)
	if err != nil {
		return fmt.Errorf("upload %s/%s: %w", tag, uploads[0].Name, err)
	}
	if !c.rec.Draft {
		return fmt.Errorf("upload %s/%s: %w", tag, uploads[0].Name, ErrPublished)
	}
	dir := filepath.Join(s.releaseDir(tag), assetsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("upload %s: %w", tag, err)
	}
	staged := s.stageAll(ctx, dir, uploads)
	defer func() {
		for _, st := range staged {
			if st.tmp != "" {
				os.Remove(st.tmp) // no-op once renamed
			}
		}
	}()

	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	r, err := s.readRecord(tag) // re-read under the lock: another upload or a publish may have run
	if err != nil {
		return fmt.Errorf("upload %s/%s: %w", tag, uploads[0].Name, err)
	}
	if !r.Draft {
		return fmt.Errorf("upload %s/%s: %w", tag, uploads[0].Name, ErrPublished)
	}
	index := make(map[string]int, len(r.Assets))
	for i, a := range r.Assets {
		index[a.Name] = i
	}
	var errs []error
	renamed := false
	for _, st := range staged {
		added, err := s.commit(r, index, dir, st)
		if err != nil {
			errs = append(errs, fmt.Errorf("upload %s/%s: %w", tag, st.Name, err))
		}
		renamed = renamed || added
	}
	if renamed {
		if err := syncDir(dir); err != nil {
			return fmt.Errorf("upload %s: %w", tag, err)
		}
		if err := s.writeRecord(r); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// stageAll stages every upload into a temporary file of dir, a few at a time.
func (s *Store) stageAll(ctx context.Context, dir string, uploads []store.Upload) []*stagedUpload {
	staged := make([]*stagedUpload, len(uploads))
	sem := make(chan struct{}, min(len(uploads), max(2, runtime.GOMAXPROCS(0))))
	var wg sync.WaitGroup
	for i, u := range uploads {
		st := &stagedUpload{Upload: u}
		staged[i] = st
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			rc, err := u.Open()
			if err != nil {
				st.err = err
				return
			}
			defer rc.Close()
			st.tmp, st.sum, st.err = stage(ctx, dir, u.Name, rc, u.Size)
		})
	}
	wg.Wait()
	return staged
}

// commit moves one staged upload into place and records it in r (the caller holds the lock
// and writes r). It reports whether r changed.
func (s *Store) commit(r *record, index map[string]int, dir string, st *stagedUpload) (bool, error) {
	if st.err != nil {
		return false, st.err
	}
	final := filepath.Join(dir, st.Name)
	if i, ok := index[st.Name]; ok {
		if r.Assets[i].SHA256 != st.sum || r.Assets[i].Size != st.Size {
			return false, fmt.Errorf("sha256 %s, stored %s: %w", st.sum, r.Assets[i].SHA256, store.ErrAssetConflict)
		}
		if _, err := os.Stat(final); err == nil {
			return false, nil // same content: keep the existing asset
		}
	} else if existing, err := fileSHA256(final); err == nil && existing != st.sum {
		// a file left by an interrupted run between rename and metadata update
		return false, fmt.Errorf("sha256 %s, stored file %s: %w", st.sum, existing, store.ErrAssetConflict)
	}
	if err := os.Rename(st.tmp, final); err != nil {
		return false, err
	}
	st.tmp = ""
	a := store.Asset{Name: st.Name, Size: st.Size, SHA256: st.sum}
	if i, ok := index[st.Name]; ok {
		r.Assets[i] = a
	} else {
		index[st.Name] = len(r.Assets)
		r.Assets = append(r.Assets, a)
	}
	return true, nil
}

// OpenAsset opens an asset of a draft or published release.
func (s *Store) OpenAsset(ctx context.Context, tag, name string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := ValidateName("tag", tag); err != nil {
		return nil, err
	}
	if err := ValidateName("asset", name); err != nil {
		return nil, err
	}
	c, err := s.loadRecord(tag)
	if err != nil {
		return nil, fmt.Errorf("open %s/%s: %w", tag, name, err)
	}
	if _, ok := c.asset(name); !ok {
		return nil, fmt.Errorf("open %s/%s: asset %w", tag, name, store.ErrNotFound)
	}
	f, err := os.Open(s.assetPath(tag, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open %s/%s: listed in release.json but the file is missing: %w", tag, name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s/%s: %w", tag, name, err)
	}
	return f, nil
}

// Publish turns a draft into a published release; publishing a published release is a no-op.
// With opts.Latest the release becomes the only one marked latest; a prerelease may not be latest.
func (s *Store) Publish(ctx context.Context, tag string, opts store.PublishOptions) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ValidateName("tag", tag); err != nil {
		return err
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	r, err := s.readRecord(tag)
	if err != nil {
		return fmt.Errorf("publish %s: %w", tag, err)
	}
	if !r.Draft {
		return nil
	}
	if opts.Latest && r.Prerelease {
		return outcome.UsageErrorf("publish %s: a prerelease is never marked latest", tag)
	}
	if opts.Latest {
		entries, err := os.ReadDir(s.root)
		if err != nil {
			return fmt.Errorf("publish %s: %w", tag, err)
		}
		for _, e := range entries {
			if !e.IsDir() || e.Name() == tag || ValidateName("tag", e.Name()) != nil {
				continue
			}
			other, err := s.readRecord(e.Name())
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return fmt.Errorf("publish %s: %w", tag, err)
			}
			if other.Latest {
				other.Latest = false
				if err := s.writeRecord(other); err != nil {
					return fmt.Errorf("publish %s: %w", tag, err)
				}
			}
		}
	}
	r.Draft = false
	r.Latest = opts.Latest
	return s.writeRecord(r)
}

// lock takes the in-process mutex and the cross-process file lock.
func (s *Store) lock() (func(), error) {
	s.mu.Lock()
	release, err := lockPath(filepath.Join(s.root, lockFile))
	if err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("lock directory store %s: %w", s.root, err)
	}
	return func() { release(); s.mu.Unlock() }, nil
}

// stage copies exactly size bytes of content into a temporary file in dir, fsyncs it and returns
// its path and SHA-256. A short or long reader, or a cancelled context, removes the file.
func stage(ctx context.Context, dir, name string, content io.Reader, size int64) (path, sum string, err error) {
	f, err := os.CreateTemp(dir, tempPrefix+name+"-*")
	if err != nil {
		return "", "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(ctxio.Reader(ctx, content), size))
	if err != nil {
		return "", "", fmt.Errorf("read content: %w", err)
	}
	if n != size {
		return "", "", fmt.Errorf("content is %d bytes, want %d (short read)", n, size)
	}
	var one [1]byte
	if m, _ := io.ReadFull(ctxio.Reader(ctx, content), one[:]); m > 0 {
		return "", "", fmt.Errorf("content is longer than %d bytes", size)
	}
	if err := ctx.Err(); err != nil {
		return "", "", err
	}
	if err := f.Sync(); err != nil {
		return "", "", err
	}
	if err := f.Close(); err != nil {
		return "", "", err
	}
	return f.Name(), hex.EncodeToString(h.Sum(nil)), nil
}

// writeFileAtomic writes dir/name through a temporary file, fsync and rename.
func writeFileAtomic(dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, tempPrefix+name+"-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// fileSHA256 hashes a file.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
