// Package github is the release store over GitHub Releases (go-github): the same semantics
// as the directory store (pipeline/store/dir), made safe against an unreliable network.
//
//   - Every call is retried by a RetryPolicy: exponential backoff with jitter on 5xx
//     answers, timeouts and dropped connections, and the announced wait on 429 and on
//     primary and secondary rate limits (Retry-After, x-ratelimit-reset).
//   - Uploads are resumable and never duplicate an asset: each attempt lists the release's
//     assets first; an asset GitHub left half-uploaded (state other than "uploaded") is
//     deleted and uploaded again; one with the same size and SHA-256 (GitHub's "digest"
//     field, or the downloaded bytes when the field is absent) is kept; one with different
//     content is store.ErrAssetConflict and is never replaced.
//   - Drafts are visible only to authorized tokens and are not found by tag, so a draft is
//     found by listing the releases.
package github

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v93/github"

	"github.com/calimero-network/mero-release/pipeline/internal/ctxio"
	"github.com/calimero-network/mero-release/pipeline/internal/lazyre"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/store"
)

// ErrPublished is returned (wrapped) when a write would modify a published release:
// CreateDraft of a published tag, or an upload to it.
var ErrPublished = errors.New("release is already published")

// AssetStateUploaded is the state of a completely uploaded asset; GitHub shows "starter"
// (or another state) for an upload that did not finish.
const AssetStateUploaded = "uploaded"

// DefaultMinUploadRate is the slowest upload the per-attempt timeout of an upload allows for.
const DefaultMinUploadRate = 256 << 10 // bytes per second

const perPage = 100

// Options configures a Store.
type Options struct {
	// Owner and Repo name the repository (see ParseRepository).
	Owner, Repo string
	// Client is the go-github client (see NewClient); required.
	Client *gh.Client
	// Retry paces retries; the zero value uses the defaults.
	Retry RetryPolicy
	// MinUploadRate sets an upload's per-attempt timeout to at least size / MinUploadRate
	// (default DefaultMinUploadRate).
	MinUploadRate int64
	// TempDir stages upload content that cannot be re-read (not an io.ReaderAt) so that
	// retries can send it again (default os.TempDir()).
	TempDir string
	// DownloadClient fetches the redirected asset downloads (default: a client with
	// http.DefaultTransport); the GitHub token is never sent to the redirect target.
	DownloadClient *http.Client
}

// Store is a release store in a GitHub repository. It is safe for concurrent use.
type Store struct {
	owner, repo string
	client      *gh.Client
	retry       RetryPolicy
	minRate     int64
	tempDir     string
	download    *http.Client

	mu     sync.Mutex
	ids    map[string]int64             // tag → release ID, learnt by lookups
	assets map[int64][]*gh.ReleaseAsset // release ID → its assets as last listed or uploaded
}

var _ store.Store = (*Store)(nil)

// New returns a Store for the repository.
func New(o Options) (*Store, error) {
	if o.Client == nil {
		return nil, outcome.UsageErrorf("github store: no client")
	}
	if _, _, err := ParseRepository(o.Owner + "/" + o.Repo); err != nil {
		return nil, err
	}
	s := &Store{
		owner: o.Owner, repo: o.Repo, client: o.Client, retry: o.Retry,
		minRate: o.MinUploadRate, tempDir: o.TempDir, download: o.DownloadClient,
		ids: map[string]int64{}, assets: map[int64][]*gh.ReleaseAsset{},
	}
	if s.minRate <= 0 {
		s.minRate = DefaultMinUploadRate
	}
	if s.download == nil {
		s.download = &http.Client{Transport: http.DefaultTransport}
	}
	return s, nil
}

// Repository is "OWNER/REPO".
func (s *Store) Repository() string { return s.owner + "/" + s.repo }

var assetNameRE = lazyre.New(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)

// ValidateAssetName refuses names GitHub would rename on upload (special characters, a
// leading or trailing period) or that are not one plain file name.
func ValidateAssetName(name string) error {
	switch {
	case name == "":
		return outcome.UsageErrorf("asset name is empty")
	case len(name) > 255:
		return outcome.UsageErrorf("asset name %q is longer than 255 bytes", name)
	case !assetNameRE().MatchString(name) || strings.HasSuffix(name, "."):
		return outcome.UsageErrorf("asset name %q: GitHub keeps only names of letters, digits, '.', '_', '+' and '-' that start with a letter or digit and do not end with '.'", name)
	}
	return nil
}

func validateTag(tag string) error {
	if tag == "" || strings.ContainsAny(tag, " \t\n\r~^:?*[\\") || strings.Contains(tag, "..") {
		return outcome.UsageErrorf("tag %q is not a valid git tag name", tag)
	}
	return nil
}

// Release returns the release with the tag, draft or published.
func (s *Store) Release(ctx context.Context, tag string) (*store.Release, error) {
	if err := validateTag(tag); err != nil {
		return nil, err
	}
	r, err := s.find(ctx, tag)
	if err != nil {
		return nil, err
	}
	return s.convert(ctx, r)
}

// Tags lists the tags of every published release, sorted lexically.
func (s *Store) Tags(ctx context.Context) ([]string, error) {
	all, err := s.listReleases(ctx)
	if err != nil {
		return nil, err
	}
	var tags []string
	for _, r := range all {
		if !r.Draft && !slices.Contains(tags, r.TagName) {
			tags = append(tags, r.TagName)
		}
	}
	slices.Sort(tags)
	return tags, nil
}

// CreateDraft creates a draft, or returns the existing draft of the tag unchanged. A
// published release with the tag is ErrPublished. A retried create first looks again, so
// a create whose answer was lost does not leave a second draft.
func (s *Store) CreateDraft(ctx context.Context, spec store.DraftSpec) (*store.Release, error) {
	if err := validateTag(spec.Tag); err != nil {
		return nil, err
	}
	existing, err := s.find(ctx, spec.Tag)
	switch {
	case err == nil && existing.Draft:
		return s.convert(ctx, existing)
	case err == nil:
		return nil, fmt.Errorf("create draft %s: %w", spec.Tag, ErrPublished)
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	name := spec.Name
	if name == "" {
		name = spec.Tag
	}
	var created *gh.RepositoryRelease
	err = s.retry.Do(ctx, "create draft "+spec.Tag, func(ctx context.Context, attempt int) error {
		if attempt > 1 {
			r, err := s.findOnce(ctx, spec.Tag)
			if err == nil {
				created = r
				return nil
			}
			if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		r, _, err := s.client.Repositories.CreateRelease(ctx, s.owner, s.repo, gh.CreateReleaseRequest{
			TagName: spec.Tag, Name: gh.Ptr(name), Body: gh.Ptr(spec.Notes),
			Draft: gh.Ptr(true), Prerelease: gh.Ptr(spec.Prerelease), MakeLatest: gh.Ptr("false"),
		})
		created = r
		return err
	})
	if err != nil {
		return nil, err
	}
	if !created.Draft {
		return nil, fmt.Errorf("create draft %s: %w", spec.Tag, ErrPublished)
	}
	s.remember(spec.Tag, created.ID)
	return s.convert(ctx, created)
}

// UploadAsset adds an asset to a draft. The content must be exactly size bytes; content that
// is not an io.ReaderAt is staged in a temporary file so that a retry can send it again.
func (s *Store) UploadAsset(ctx context.Context, tag, name string, content io.Reader, size int64) error {
	if err := validateTag(tag); err != nil {
		return err
	}
	if err := ValidateAssetName(name); err != nil {
		return err
	}
	if size < 0 {
		return outcome.UsageErrorf("upload %s/%s: size %d is negative", tag, name, size)
	}
	src, err := s.stage(ctx, content, size)
	if err != nil {
		return fmt.Errorf("upload %s/%s: %w", tag, name, err)
	}
	defer src.close()
	r, err := s.find(ctx, tag)
	if err != nil {
		return fmt.Errorf("upload %s/%s: %w", tag, name, err)
	}
	if !r.Draft {
		return fmt.Errorf("upload %s/%s: %w", tag, name, ErrPublished)
	}
	timeout := max(s.retry.withDefaults().AttemptTimeout, time.Duration(size/s.minRate)*time.Second)
	what := fmt.Sprintf("upload %s/%s", tag, name)
	return s.retry.DoTimeout(ctx, what, timeout, func(ctx context.Context, attempt int) error {
		return s.uploadAttempt(ctx, r.ID, name, src, attempt)
	})
}

// uploadAttempt is one try: look at what is there, clean up a broken upload, upload. The first
// attempt looks at the asset list this Store already holds (listed once per operation and
// kept up to date by its own uploads); a retry lists again, since another writer or a lost
// answer may have changed the release.
func (s *Store) uploadAttempt(ctx context.Context, id int64, name string, src *staged, attempt int) error {
	assets, ok := s.knownAssets(id)
	if !ok || attempt > 1 {
		var err error
		if assets, err = s.listAssetsOnce(ctx, id); err != nil {
			return err
		}
		s.rememberAssets(id, assets)
	}
	if i := slices.IndexFunc(assets, func(a *gh.ReleaseAsset) bool { return a.GetName() == name }); i >= 0 {
		a := assets[i]
		if a.GetState() != AssetStateUploaded {
			// A partial upload GitHub kept ("starter"): it blocks the name until deleted.
			if _, err := s.client.Repositories.DeleteReleaseAsset(ctx, s.owner, s.repo, a.GetID()); err != nil && statusCode(err) != http.StatusNotFound {
				return err
			}
			s.dropAsset(id, a.GetID())
		} else {
			same, detail, err := s.sameContent(ctx, a, src.size, src.sum)
			if err != nil {
				return err
			}
			if same {
				return nil
			}
			return Permanent(fmt.Errorf("%s: %w", detail, store.ErrAssetConflict))
		}
	}
	body, err := src.reader()
	if err != nil {
		return Permanent(err)
	}
	u := fmt.Sprintf("repos/%s/%s/releases/%d/assets?name=%s", url.PathEscape(s.owner), url.PathEscape(s.repo), id, url.QueryEscape(name))
	req, err := s.client.NewUploadRequest(ctx, u, body, src.size, mediaType(name))
	if err != nil {
		return Permanent(err)
	}
	var got *gh.ReleaseAsset
	if _, err := s.client.Do(req, &got); err != nil {
		if alreadyExists(err) {
			// Another attempt (whose answer was lost) or another writer got there first:
			// the next attempt compares what is there.
			return Retryable(fmt.Errorf("asset %s appeared during the upload: %w", name, err))
		}
		return err
	}
	if got == nil {
		return Retryable(errors.New("upload answered without an asset"))
	}
	ok = got.GetState() == AssetStateUploaded && int64(got.GetSize()) == src.size
	if d, has := digestOf(got); has && d != src.sum {
		ok = false
	}
	if !ok {
		// The upload was cut short but GitHub stored something: remove it and try again.
		_, _ = s.client.Repositories.DeleteReleaseAsset(ctx, s.owner, s.repo, got.GetID())
		return Retryable(fmt.Errorf("GitHub stored %s as %d bytes (state %q, digest %q), sent %d bytes sha256:%s",
			name, got.GetSize(), got.GetState(), got.GetDigest(), src.size, src.sum))
	}
	s.addAsset(id, got)
	return nil
}

// sameContent compares an uploaded asset with size and SHA-256: by GitHub's digest when it
// reports one, else by downloading and hashing the asset.
func (s *Store) sameContent(ctx context.Context, a *gh.ReleaseAsset, size int64, sum string) (bool, string, error) {
	if int64(a.GetSize()) != size {
		return false, fmt.Sprintf("stored asset is %d bytes, new content %d bytes", a.GetSize(), size), nil
	}
	if d, ok := digestOf(a); ok {
		if d != sum {
			return false, fmt.Sprintf("stored asset has sha256 %s, new content %s", d, sum), nil
		}
		return true, "", nil
	}
	rc, err := s.downloadOnce(ctx, a.GetID())
	if err != nil {
		return false, "", err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return false, "", err
	}
	if n != size {
		return false, "", Retryable(fmt.Errorf("download of stored asset %s: %d bytes, listed as %d", a.GetName(), n, size))
	}
	if d := hex.EncodeToString(h.Sum(nil)); d != sum {
		return false, fmt.Sprintf("stored asset has sha256 %s, new content %s", d, sum), nil
	}
	return true, "", nil
}

// OpenAsset opens an asset of a draft or published release for reading. The stream fails
// with io.ErrUnexpectedEOF if it ends before the asset's listed size.
func (s *Store) OpenAsset(ctx context.Context, tag, name string) (io.ReadCloser, error) {
	if err := validateTag(tag); err != nil {
		return nil, err
	}
	r, err := s.find(ctx, tag)
	if err != nil {
		return nil, fmt.Errorf("open %s/%s: %w", tag, name, err)
	}
	// The asset list is fetched once per operation (Release lists it; an audit then opens
	// every asset): a name not in the held list, or a release not listed yet, lists again.
	isIt := func(a *gh.ReleaseAsset) bool { return a.GetName() == name && a.GetState() == AssetStateUploaded }
	assets, known := s.knownAssets(r.ID)
	i := slices.IndexFunc(assets, isIt)
	if i < 0 || !known {
		if assets, err = s.listAssets(ctx, r.ID); err != nil {
			return nil, fmt.Errorf("open %s/%s: %w", tag, name, err)
		}
		i = slices.IndexFunc(assets, isIt)
	}
	if i < 0 {
		return nil, fmt.Errorf("open %s/%s: asset %w", tag, name, store.ErrNotFound)
	}
	a := assets[i]
	var rc io.ReadCloser
	err = s.retry.Do(ctx, fmt.Sprintf("download %s/%s", tag, name), func(actx context.Context, _ int) error {
		// The attempt's deadline covers getting the answer, not reading the whole body:
		// the stream lives on the caller's context.
		dctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(actx, cancel)
		body, err := s.downloadOnce(dctx, a.GetID())
		if !stop() || err != nil {
			cancel()
			if err == nil {
				body.Close()
				return actx.Err()
			}
			return err
		}
		rc = &sizedReader{rc: body, cancel: cancel, want: int64(a.GetSize())}
		return nil
	})
	if err != nil {
		if statusCode(err) == http.StatusNotFound {
			return nil, fmt.Errorf("open %s/%s: asset %w", tag, name, store.ErrNotFound)
		}
		return nil, err
	}
	return rc, nil
}

// Publish turns a draft into a published release; publishing a published release is a no-op.
// With opts.Latest the release is marked latest; a prerelease may not be latest.
func (s *Store) Publish(ctx context.Context, tag string, opts store.PublishOptions) error {
	if err := validateTag(tag); err != nil {
		return err
	}
	r, err := s.find(ctx, tag)
	if err != nil {
		return fmt.Errorf("publish %s: %w", tag, err)
	}
	if !r.Draft {
		return nil
	}
	if opts.Latest && r.Prerelease {
		return outcome.UsageErrorf("publish %s: a prerelease is never marked latest", tag)
	}
	latest := "false"
	if opts.Latest {
		latest = "true"
	}
	return s.retry.Do(ctx, "publish "+tag, func(ctx context.Context, attempt int) error {
		if attempt > 1 { // the previous answer may have been lost after the change
			cur, _, err := s.client.Repositories.GetRelease(ctx, s.owner, s.repo, r.ID)
			if err != nil {
				return err
			}
			if !cur.Draft {
				return nil
			}
		}
		_, _, err := s.client.Repositories.UpdateRelease(ctx, s.owner, s.repo, r.ID, gh.UpdateReleaseRequest{
			Draft: gh.Ptr(false), MakeLatest: gh.Ptr(latest),
		})
		return err
	})
}

// find returns the release of a tag: the published one when there is one (by tag), else
// the oldest draft (drafts are only found by listing).
func (s *Store) find(ctx context.Context, tag string) (*gh.RepositoryRelease, error) {
	var r *gh.RepositoryRelease
	err := s.retry.Do(ctx, "find release "+tag, func(ctx context.Context, _ int) error {
		var err error
		r, err = s.findOnce(ctx, tag)
		if errors.Is(err, store.ErrNotFound) {
			return Permanent(err)
		}
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("release %s: %w", tag, store.ErrNotFound)
		}
		return nil, err
	}
	return r, nil
}

// findOnce is one lookup without retries.
func (s *Store) findOnce(ctx context.Context, tag string) (*gh.RepositoryRelease, error) {
	if id, ok := s.known(tag); ok {
		r, _, err := s.client.Repositories.GetRelease(ctx, s.owner, s.repo, id)
		switch {
		case err == nil && r.TagName == tag:
			return r, nil
		case err == nil || statusCode(err) == http.StatusNotFound:
			s.forget(tag) // deleted or retagged
		default:
			return nil, err
		}
	}
	r, _, err := s.client.Repositories.GetReleaseByTag(ctx, s.owner, s.repo, tag)
	if err == nil {
		s.remember(tag, r.ID)
		return r, nil
	}
	if statusCode(err) != http.StatusNotFound {
		return nil, err
	}
	var draft *gh.RepositoryRelease
	for page := 1; page != 0; {
		rs, resp, err := s.client.Repositories.ListReleases(ctx, s.owner, s.repo, &gh.ListOptions{Page: page, PerPage: perPage})
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			if r.TagName != tag {
				continue
			}
			if !r.Draft {
				s.remember(tag, r.ID)
				return r, nil
			}
			if draft == nil || r.ID < draft.ID {
				draft = r
			}
		}
		page = resp.NextPage
	}
	if draft == nil {
		return nil, store.ErrNotFound
	}
	s.remember(tag, draft.ID)
	return draft, nil
}

func (s *Store) known(tag string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.ids[tag]
	return id, ok
}

func (s *Store) remember(tag string, id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids[tag] = id
}

func (s *Store) forget(tag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.ids, tag)
}

// listReleases lists every release the token can see, drafts included.
func (s *Store) listReleases(ctx context.Context) ([]*gh.RepositoryRelease, error) {
	var all []*gh.RepositoryRelease
	for page := 1; page != 0; {
		var rs []*gh.RepositoryRelease
		var next int
		err := s.retry.Do(ctx, fmt.Sprintf("list releases (page %d)", page), func(ctx context.Context, _ int) error {
			var resp *gh.Response
			var err error
			rs, resp, err = s.client.Repositories.ListReleases(ctx, s.owner, s.repo, &gh.ListOptions{Page: page, PerPage: perPage})
			if err == nil {
				next = resp.NextPage
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		all = append(all, rs...)
		page = next
	}
	return all, nil
}

// listAssets lists every asset of a release, with retries, and keeps the list.
func (s *Store) listAssets(ctx context.Context, id int64) ([]*gh.ReleaseAsset, error) {
	var assets []*gh.ReleaseAsset
	err := s.retry.Do(ctx, fmt.Sprintf("list assets of release %d", id), func(ctx context.Context, _ int) error {
		var err error
		assets, err = s.listAssetsOnce(ctx, id)
		return err
	})
	if err == nil {
		s.rememberAssets(id, assets)
	}
	return assets, err
}

// knownAssets returns the asset list held for a release; never modify it.
func (s *Store) knownAssets(id int64) ([]*gh.ReleaseAsset, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	as, ok := s.assets[id]
	return as, ok
}

// rememberAssets holds a fresh asset list of a release.
func (s *Store) rememberAssets(id int64, assets []*gh.ReleaseAsset) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assets[id] = assets
}

// addAsset records an asset this Store uploaded (the held list is replaced, never changed).
func (s *Store) addAsset(id int64, a *gh.ReleaseAsset) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if as, ok := s.assets[id]; ok {
		as = slices.DeleteFunc(slices.Clone(as), func(x *gh.ReleaseAsset) bool { return x.GetName() == a.GetName() })
		s.assets[id] = append(as, a)
	}
}

// dropAsset forgets an asset this Store deleted.
func (s *Store) dropAsset(id, assetID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if as, ok := s.assets[id]; ok {
		s.assets[id] = slices.DeleteFunc(slices.Clone(as), func(x *gh.ReleaseAsset) bool { return x.GetID() == assetID })
	}
}

// listAssetsOnce lists every asset of a release (all pages) without retries.
func (s *Store) listAssetsOnce(ctx context.Context, id int64) ([]*gh.ReleaseAsset, error) {
	var all []*gh.ReleaseAsset
	for page := 1; page != 0; {
		as, resp, err := s.client.Repositories.ListReleaseAssets(ctx, s.owner, s.repo, id, &gh.ListOptions{Page: page, PerPage: perPage})
		if err != nil {
			return nil, err
		}
		all = append(all, as...)
		page = resp.NextPage
	}
	return all, nil
}

// downloadOnce starts the download of an asset, following GitHub's redirect.
func (s *Store) downloadOnce(ctx context.Context, id int64) (io.ReadCloser, error) {
	rc, _, err := s.client.Repositories.DownloadReleaseAsset(ctx, s.owner, s.repo, id, s.download)
	if err != nil {
		return nil, err
	}
	return rc, nil
}

// convert turns a GitHub release into a store.Release with its uploaded assets.
func (s *Store) convert(ctx context.Context, r *gh.RepositoryRelease) (*store.Release, error) {
	assets, err := s.listAssets(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	out := &store.Release{
		Tag: r.TagName, Name: r.GetName(), Draft: r.Draft, Prerelease: r.Prerelease,
		Notes: r.GetBody(), CreatedAt: r.CreatedAt.Time, Assets: []store.Asset{},
	}
	for _, a := range assets {
		if a.GetState() != AssetStateUploaded {
			continue
		}
		d, _ := digestOf(a)
		out.Assets = append(out.Assets, store.Asset{Name: a.GetName(), Size: int64(a.GetSize()), SHA256: d})
	}
	slices.SortFunc(out.Assets, func(a, b store.Asset) int { return strings.Compare(a.Name, b.Name) })
	if !r.Draft && !r.Prerelease {
		var latest *gh.RepositoryRelease
		err := s.retry.Do(ctx, "get latest release", func(ctx context.Context, _ int) error {
			var err error
			latest, _, err = s.client.Repositories.GetLatestRelease(ctx, s.owner, s.repo)
			if statusCode(err) == http.StatusNotFound {
				latest, err = nil, nil
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		out.Latest = latest != nil && latest.ID == r.ID
	}
	return out, nil
}

// digestOf returns the hex SHA-256 of GitHub's "digest" field ("sha256:<hex>").
func digestOf(a *gh.ReleaseAsset) (string, bool) {
	d, ok := strings.CutPrefix(a.GetDigest(), "sha256:")
	if !ok || len(d) != 64 {
		return "", false
	}
	if _, err := hex.DecodeString(d); err != nil {
		return "", false
	}
	return strings.ToLower(d), true
}

// mediaType is the content type an asset is uploaded with.
func mediaType(name string) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// staged is upload content that every attempt can read again from the start.
type staged struct {
	ra      io.ReaderAt
	off     int64
	size    int64
	sum     string
	cleanup func()
}

func (st *staged) reader() (io.Reader, error) {
	return io.NewSectionReader(st.ra, st.off, st.size), nil
}

func (st *staged) close() {
	if st.cleanup != nil {
		st.cleanup()
	}
}

// stage hashes content and makes it re-readable: an io.ReaderAt that is also an io.Seeker
// (a file, a bytes.Reader) is read in place from its current offset; anything else is
// copied to a temporary file. The content must be exactly size bytes.
func (s *Store) stage(ctx context.Context, content io.Reader, size int64) (*staged, error) {
	if ra, ok := content.(interface {
		io.ReaderAt
		io.Seeker
	}); ok {
		off, err := ra.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, fmt.Errorf("read content: %w", err)
		}
		sum, err := hashExact(ctx, io.NewSectionReader(ra, off, size+1), size)
		if err != nil {
			return nil, err
		}
		return &staged{ra: ra, off: off, size: size, sum: sum}, nil
	}
	f, err := os.CreateTemp(s.tempDir, "mero-release-upload-*")
	if err != nil {
		return nil, fmt.Errorf("stage content: %w", err)
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(ctxio.Reader(ctx, content), size))
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("read content: %w", err)
	}
	if n != size {
		cleanup()
		return nil, fmt.Errorf("content is %d bytes, want %d (short read)", n, size)
	}
	var one [1]byte
	if m, _ := io.ReadFull(ctxio.Reader(ctx, content), one[:]); m > 0 {
		cleanup()
		return nil, fmt.Errorf("content is longer than %d bytes", size)
	}
	return &staged{ra: f, size: size, sum: hex.EncodeToString(h.Sum(nil)), cleanup: cleanup}, nil
}

// hashExact hashes r, which must hold exactly size bytes (r may offer one more to detect
// content that is too long).
func hashExact(ctx context.Context, r io.Reader, size int64) (string, error) {
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(ctxio.Reader(ctx, r), size))
	if err != nil {
		return "", fmt.Errorf("read content: %w", err)
	}
	if n != size {
		return "", fmt.Errorf("content is %d bytes, want %d (short read)", n, size)
	}
	var one [1]byte
	if m, _ := io.ReadFull(ctxio.Reader(ctx, r), one[:]); m > 0 {
		return "", fmt.Errorf("content is longer than %d bytes", size)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// sizedReader is a download stream that must deliver exactly want bytes.
type sizedReader struct {
	rc     io.ReadCloser
	cancel context.CancelFunc
	want   int64
	got    int64
}

func (r *sizedReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.got += int64(n)
	switch {
	case r.got > r.want:
		return n, fmt.Errorf("download: more than the %d bytes listed", r.want)
	case err == io.EOF && r.got < r.want:
		return n, fmt.Errorf("download: %d of %d bytes: %w", r.got, r.want, io.ErrUnexpectedEOF)
	}
	return n, err
}

func (r *sizedReader) Close() error {
	err := r.rc.Close()
	r.cancel()
	return err
}
