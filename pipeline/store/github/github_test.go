package github_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/store"
	ghstore "github.com/calimero-network/mero-release/pipeline/store/github"
	"github.com/calimero-network/mero-release/pipeline/store/github/githubtest"
)

const token = "ghs_test-token"

// sleeps records the waits of a RetryPolicy without waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// testPolicy never really waits; a hung request is given up after a short attempt timeout.
func testPolicy(sl *sleeps) ghstore.RetryPolicy {
	return ghstore.RetryPolicy{
		MaxAttempts: 5, BaseDelay: time.Second, MaxDelay: 8 * time.Second,
		AttemptTimeout: 500 * time.Millisecond, Sleep: sl.sleep,
		Jitter: func(time.Duration) time.Duration { return 0 },
	}
}

func newStore(t *testing.T, fake *githubtest.Server, tok string, sl *sleeps) *ghstore.Store {
	t.Helper()
	c, err := ghstore.NewClient(ghstore.ClientOptions{BaseURL: fake.URL, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	s, err := ghstore.New(ghstore.Options{Owner: fake.Owner, Repo: fake.Repo, Client: c, Retry: testPolicy(sl), TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func setup(t *testing.T) (*githubtest.Server, *ghstore.Store, *sleeps) {
	t.Helper()
	fake := githubtest.New("calimero-network", "mero-tee", token, nil)
	t.Cleanup(fake.Close)
	sl := &sleeps{}
	return fake, newStore(t, fake, token, sl), sl
}

func sum(b string) string {
	h := sha256.Sum256([]byte(b))
	return hex.EncodeToString(h[:])
}

func read(t *testing.T, s store.Store, tag, name string) string {
	t.Helper()
	rc, err := s.OpenAsset(context.Background(), tag, name)
	if err != nil {
		t.Fatalf("OpenAsset(%s, %s): %v", tag, name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return string(b)
}

// assets returns name → content of the fake's release, failing on a duplicate name.
func assets(t *testing.T, fake *githubtest.Server, tag string) map[string]string {
	t.Helper()
	out := map[string]string{}
	n := 0
	for _, r := range fake.Releases() {
		if r.Tag != tag {
			continue
		}
		n++
		for _, a := range r.Assets {
			if _, dup := out[a.Name]; dup {
				t.Fatalf("asset %s is duplicated", a.Name)
			}
			if a.State != ghstore.AssetStateUploaded {
				t.Fatalf("asset %s left in state %q", a.Name, a.State)
			}
			out[a.Name] = string(a.Content)
		}
	}
	if n != 1 {
		t.Fatalf("%d releases with tag %s, want 1", n, tag)
	}
	return out
}

// onlyReader hides every interface but io.Reader, so the store must stage the content.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	fake, s, _ := setup(t)
	const tag = "mero-tee-v1.2.0"
	r, err := s.CreateDraft(ctx, store.DraftSpec{Tag: tag, Notes: "the notes"})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Draft || r.Name != tag || r.Notes != "the notes" || len(r.Assets) != 0 {
		t.Fatalf("CreateDraft = %+v", r)
	}
	if err := s.UploadAsset(ctx, tag, "a.json", strings.NewReader(`{"a":1}`), 7); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("0123456789", 50000)
	if err := s.UploadAsset(ctx, tag, "b.bin", onlyReader{strings.NewReader(big)}, int64(len(big))); err != nil {
		t.Fatal(err)
	}
	tags, err := s.Tags(ctx)
	if err != nil || len(tags) != 0 {
		t.Fatalf("Tags with only a draft = %v, %v; want none", tags, err)
	}
	got, err := s.Release(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Asset{{Name: "a.json", Size: 7, SHA256: sum(`{"a":1}`)}, {Name: "b.bin", Size: int64(len(big)), SHA256: sum(big)}}
	if fmt.Sprint(got.Assets) != fmt.Sprint(want) || !got.Draft || got.Latest {
		t.Fatalf("Release = %+v, want assets %v", got, want)
	}
	if c := read(t, s, tag, "b.bin"); c != big {
		t.Fatalf("b.bin read back %d bytes, want %d", len(c), len(big))
	}
	if err := s.Publish(ctx, tag, store.PublishOptions{Latest: true}); err != nil {
		t.Fatal(err)
	}
	got, err = s.Release(ctx, tag)
	if err != nil || got.Draft || !got.Latest {
		t.Fatalf("after Publish: %+v, %v", got, err)
	}
	if tags, _ := s.Tags(ctx); fmt.Sprint(tags) != "["+tag+"]" {
		t.Fatalf("Tags = %v", tags)
	}
	updates := fake.Count(githubtest.OpUpdateRelease)
	if err := s.Publish(ctx, tag, store.PublishOptions{Latest: true}); err != nil {
		t.Fatalf("second Publish: %v", err)
	}
	if fake.Count(githubtest.OpUpdateRelease) != updates {
		t.Fatal("publishing a published release sent an update")
	}
	if _, err := s.CreateDraft(ctx, store.DraftSpec{Tag: tag}); !errors.Is(err, ghstore.ErrPublished) {
		t.Fatalf("CreateDraft of a published tag = %v, want ErrPublished", err)
	}
	if err := s.UploadAsset(ctx, tag, "c.txt", strings.NewReader("c"), 1); !errors.Is(err, ghstore.ErrPublished) {
		t.Fatalf("upload to a published release = %v, want ErrPublished", err)
	}
}

func TestCreateDraftReusesDraft(t *testing.T) {
	ctx := context.Background()
	fake, s, _ := setup(t)
	a, err := s.CreateDraft(ctx, store.DraftSpec{Tag: "mero-kms-v1.0.0", Name: "KMS 1.0.0", Prerelease: true})
	if err != nil {
		t.Fatal(err)
	}
	// A second store value (a rerun) finds the draft by listing: GitHub does not find drafts by tag.
	b, err := newStore(t, fake, token, &sleeps{}).CreateDraft(ctx, store.DraftSpec{Tag: "mero-kms-v1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "KMS 1.0.0" || b.Name != "KMS 1.0.0" || !b.Prerelease || len(fake.Releases()) != 1 {
		t.Fatalf("drafts: %+v / %+v, %d releases", a, b, len(fake.Releases()))
	}
}

func TestCreateDraftLostAnswer(t *testing.T) {
	fake, s, _ := setup(t)
	fake.Inject(githubtest.OpCreateRelease, githubtest.Fault{Status: 502, AfterCommit: true})
	if _, err := s.CreateDraft(context.Background(), store.DraftSpec{Tag: "mero-tee-v2.0.0"}); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Releases()); n != 1 || fake.Count(githubtest.OpCreateRelease) != 1 {
		t.Fatalf("%d releases after %d creates; a lost answer must not create a second draft", n, fake.Count(githubtest.OpCreateRelease))
	}
}

func TestDraftsNeedToken(t *testing.T) {
	ctx := context.Background()
	fake, s, _ := setup(t)
	if _, err := s.CreateDraft(ctx, store.DraftSpec{Tag: "mero-tee-v1.0.0"}); err != nil {
		t.Fatal(err)
	}
	anon := newStore(t, fake, "", &sleeps{})
	if _, err := anon.Release(ctx, "mero-tee-v1.0.0"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("anonymous Release of a draft = %v, want ErrNotFound", err)
	}
	if _, err := anon.CreateDraft(ctx, store.DraftSpec{Tag: "mero-tee-v1.1.0"}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("anonymous CreateDraft = %v, want 401", err)
	}
	bad := newStore(t, fake, "wrong", &sleeps{})
	before := fake.Count(githubtest.OpGetRelease) + fake.Count(githubtest.OpListReleases)
	if _, err := bad.Release(ctx, "mero-tee-v1.0.0"); err == nil || !strings.Contains(err.Error(), "Bad credentials") {
		t.Fatalf("bad token = %v, want Bad credentials", err)
	}
	if n := fake.Count(githubtest.OpGetRelease) + fake.Count(githubtest.OpListReleases) - before; n != 1 {
		t.Fatalf("a 401 was tried %d times, want once (not retried)", n)
	}
}

func TestUploadSameContentIsKept(t *testing.T) {
	for _, omit := range []bool{false, true} {
		t.Run(fmt.Sprintf("omitDigest=%v", omit), func(t *testing.T) {
			ctx := context.Background()
			fake, s, _ := setup(t)
			fake.OmitDigest(omit)
			const tag = "mero-kms-v1.0.0"
			if _, err := s.CreateDraft(ctx, store.DraftSpec{Tag: tag}); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if err := s.UploadAsset(ctx, tag, "x.txt", strings.NewReader("same"), 4); err != nil {
					t.Fatal(err)
				}
			}
			if fake.Count(githubtest.OpUpload) != 1 {
				t.Fatalf("%d uploads, want 1", fake.Count(githubtest.OpUpload))
			}
			if omit != (fake.Count(githubtest.OpDownload) > 0) {
				t.Fatalf("downloads = %d with omitDigest=%v: without a digest the store must hash the stored bytes, with one it must not", fake.Count(githubtest.OpDownload), omit)
			}
			for _, other := range []string{"diff", "longer"} {
				err := s.UploadAsset(ctx, tag, "x.txt", strings.NewReader(other), int64(len(other)))
				if !errors.Is(err, store.ErrAssetConflict) {
					t.Fatalf("upload of different content %q = %v, want ErrAssetConflict", other, err)
				}
			}
			if got := assets(t, fake, tag); got["x.txt"] != "same" {
				t.Fatalf("asset replaced: %q", got["x.txt"])
			}
		})
	}
}

func TestUploadSurvivesFaults(t *testing.T) {
	reset := time.Now().Add(42 * time.Second)
	cases := []struct {
		name     string
		op       githubtest.Op
		fault    githubtest.Fault
		wantWait time.Duration // a wait at least this long must have been asked for
		deletes  int
	}{
		{name: "502", op: githubtest.OpUpload, fault: githubtest.Fault{Status: 502}},
		{name: "503 on list", op: githubtest.OpListAssets, fault: githubtest.Fault{Status: 503}},
		{name: "429 Retry-After", op: githubtest.OpUpload, fault: githubtest.Fault{Status: 429, RetryAfter: "7"}, wantWait: 7 * time.Second},
		{name: "secondary rate limit", op: githubtest.OpUpload, fault: githubtest.Fault{Status: 403, Secondary: true, RetryAfter: "11"}, wantWait: 11 * time.Second},
		{name: "secondary without Retry-After", op: githubtest.OpListAssets, fault: githubtest.Fault{Status: 429, Secondary: true}, wantWait: time.Minute},
		{name: "primary rate limit", op: githubtest.OpUpload, fault: githubtest.Fault{Status: 403, RateLimitReset: reset}, wantWait: 30 * time.Second},
		{name: "timeout", op: githubtest.OpUpload, fault: githubtest.Fault{Hang: true}},
		{name: "dropped connection", op: githubtest.OpUpload, fault: githubtest.Fault{Drop: true}},
		{name: "truncated upload", op: githubtest.OpUpload, fault: githubtest.Fault{Truncate: true}, deletes: 1},
		{name: "lost answer", op: githubtest.OpUpload, fault: githubtest.Fault{Status: 502, AfterCommit: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			fake, s, sl := setup(t)
			const tag = "mero-tee-v1.0.0"
			if _, err := s.CreateDraft(ctx, store.DraftSpec{Tag: tag}); err != nil {
				t.Fatal(err)
			}
			content := strings.Repeat("payload-", 4096)
			fake.Inject(tc.op, tc.fault)
			// another Store value (another process) uploads: it holds no asset list yet and lists
			up := newStore(t, fake, token, sl)
			if err := up.UploadAsset(ctx, tag, "asset.bin", strings.NewReader(content), int64(len(content))); err != nil {
				t.Fatalf("upload: %v", err)
			}
			if fake.Pending(tc.op) != 0 {
				t.Fatal("the fault was not triggered")
			}
			if got := assets(t, fake, tag); len(got) != 1 || got["asset.bin"] != content {
				t.Fatalf("assets after the fault: %d, content ok=%v", len(got), got["asset.bin"] == content)
			}
			waits := sl.all()
			if len(waits) == 0 {
				t.Fatal("no retry happened")
			}
			if tc.wantWait > 0 && waits[0] < tc.wantWait {
				t.Fatalf("waited %v, GitHub asked for at least %v", waits[0], tc.wantWait)
			}
			if d := fake.Count(githubtest.OpDeleteAsset); d != tc.deletes {
				t.Fatalf("%d assets deleted, want %d", d, tc.deletes)
			}
		})
	}
}

func TestBackoffGrowsAndGivesUp(t *testing.T) {
	ctx := context.Background()
	fake, s, sl := setup(t)
	if _, err := s.CreateDraft(ctx, store.DraftSpec{Tag: "mero-tee-v1.0.0"}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		fake.Inject(githubtest.OpUpload, githubtest.Fault{Status: 500})
	}
	err := s.UploadAsset(ctx, "mero-tee-v1.0.0", "a.txt", strings.NewReader("a"), 1)
	if err == nil || !strings.Contains(err.Error(), "giving up after 5 attempts") {
		t.Fatalf("err = %v, want giving up after 5 attempts", err)
	}
	waits := sl.all()
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second}
	if fmt.Sprint(waits) != fmt.Sprint(want) {
		t.Fatalf("waits = %v, want %v (equal jitter, jitter 0)", waits, want)
	}
	if got := assets(t, fake, "mero-tee-v1.0.0"); len(got) != 0 {
		t.Fatalf("assets = %v", got)
	}
}

func TestRetryRefusesLongWaitAndPermanentErrors(t *testing.T) {
	ctx := context.Background()
	fake, s, sl := setup(t)
	if _, err := s.CreateDraft(ctx, store.DraftSpec{Tag: "mero-tee-v1.0.0"}); err != nil {
		t.Fatal(err)
	}
	fake.Inject(githubtest.OpUpload, githubtest.Fault{Status: 429, RetryAfter: "3600"})
	err := s.UploadAsset(ctx, "mero-tee-v1.0.0", "a.txt", strings.NewReader("a"), 1)
	if err == nil || !strings.Contains(err.Error(), "more than the 10m0s allowed") {
		t.Fatalf("err = %v, want a refusal to wait an hour", err)
	}
	fake.Inject(githubtest.OpUpload, githubtest.Fault{Status: 422})
	before := fake.Count(githubtest.OpUpload)
	if err := s.UploadAsset(ctx, "mero-tee-v1.0.0", "a.txt", strings.NewReader("a"), 1); err == nil {
		t.Fatal("a 422 passed")
	}
	if n := fake.Count(githubtest.OpUpload) - before; n != 1 {
		t.Fatalf("a 422 was sent %d times, want 1", n)
	}
	if len(sl.all()) != 0 {
		t.Fatalf("waited %v for errors that are not transient", sl.all())
	}
}

func TestCancelledContextStopsRetries(t *testing.T) {
	fake, s, _ := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := s.CreateDraft(ctx, store.DraftSpec{Tag: "mero-tee-v1.0.0"}); err != nil {
		t.Fatal(err)
	}
	cancel()
	fake.Inject(githubtest.OpUpload, githubtest.Fault{Status: 502})
	if err := s.UploadAsset(ctx, "mero-tee-v1.0.0", "a.txt", strings.NewReader("a"), 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestUploadValidation(t *testing.T) {
	ctx := context.Background()
	_, s, _ := setup(t)
	if _, err := s.CreateDraft(ctx, store.DraftSpec{Tag: "mero-tee-v1.0.0"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, tag, asset, content string
		size                      int64
		usage                     bool
		want                      string
	}{
		{name: "space", tag: "mero-tee-v1.0.0", asset: "a b", content: "x", size: 1, usage: true, want: "GitHub keeps only"},
		{name: "leading dot", tag: "mero-tee-v1.0.0", asset: ".hidden", content: "x", size: 1, usage: true},
		{name: "trailing dot", tag: "mero-tee-v1.0.0", asset: "a.", content: "x", size: 1, usage: true},
		{name: "slash", tag: "mero-tee-v1.0.0", asset: "a/b", content: "x", size: 1, usage: true},
		{name: "empty", tag: "mero-tee-v1.0.0", asset: "", content: "x", size: 1, usage: true},
		{name: "negative size", tag: "mero-tee-v1.0.0", asset: "a", content: "x", size: -1, usage: true},
		{name: "bad tag", tag: "a b", asset: "a", content: "x", size: 1, usage: true},
		{name: "short", tag: "mero-tee-v1.0.0", asset: "a", content: "x", size: 2, want: "short read"},
		{name: "long", tag: "mero-tee-v1.0.0", asset: "a", content: "xyz", size: 2, want: "longer than 2 bytes"},
		{name: "no release", tag: "mero-tee-v9.0.0", asset: "a", content: "x", size: 1, want: "not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []io.Reader{strings.NewReader(tc.content), onlyReader{strings.NewReader(tc.content)}} {
				err := s.UploadAsset(ctx, tc.tag, tc.asset, r, tc.size)
				if err == nil || (tc.usage && outcome.Code(err) != outcome.Usage) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("UploadAsset(%q, %q, size %d) = %v (usage=%v, want %q)", tc.tag, tc.asset, tc.size, err, tc.usage, tc.want)
				}
			}
		})
	}
}

func TestOpenAsset(t *testing.T) {
	ctx := context.Background()
	fake, s, _ := setup(t)
	const tag = "mero-tee-v1.0.0"
	if _, err := s.CreateDraft(ctx, store.DraftSpec{Tag: tag}); err != nil {
		t.Fatal(err)
	}
	content := strings.Repeat("abc", 10000)
	if err := s.UploadAsset(ctx, tag, "a.bin", bytes.NewReader([]byte(content)), int64(len(content))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenAsset(ctx, tag, "missing.bin"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing asset = %v, want ErrNotFound", err)
	}
	if _, err := s.OpenAsset(ctx, "mero-tee-v7.0.0", "a.bin"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing release = %v, want ErrNotFound", err)
	}
	fake.AddAsset(tag, "partial.bin", "starter", []byte("par"))
	if _, err := s.OpenAsset(ctx, tag, "partial.bin"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a starter asset = %v, want ErrNotFound", err)
	}
	// Faults on the API answer and on the redirected download are retried.
	fake.Inject(githubtest.OpGetAsset, githubtest.Fault{Status: 503})
	fake.Inject(githubtest.OpDownload, githubtest.Fault{Status: 500})
	if got := read(t, s, tag, "a.bin"); got != content {
		t.Fatal("content differs after retried download")
	}
	// A download cut short is an error, never a short asset.
	fake.Inject(githubtest.OpDownload, githubtest.Fault{Truncate: true})
	rc, err := s.OpenAsset(ctx, tag, "a.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, err := io.ReadAll(rc); err == nil {
		t.Fatalf("truncated download read %d of %d bytes without error", len(b), len(content))
	}
}

func TestLatestAndPrerelease(t *testing.T) {
	ctx := context.Background()
	_, s, _ := setup(t)
	for _, tag := range []string{"mero-kms-v1.0.0", "mero-kms-v1.1.0"} {
		if _, err := s.CreateDraft(ctx, store.DraftSpec{Tag: tag}); err != nil {
			t.Fatal(err)
		}
		if err := s.Publish(ctx, tag, store.PublishOptions{Latest: true}); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := s.Release(ctx, "mero-kms-v1.0.0")
	b, _ := s.Release(ctx, "mero-kms-v1.1.0")
	if a.Latest || !b.Latest {
		t.Fatalf("latest: 1.0.0=%v 1.1.0=%v, want only 1.1.0", a.Latest, b.Latest)
	}
	if _, err := s.CreateDraft(ctx, store.DraftSpec{Tag: "mero-kms-v1.2.0-rc.1", Prerelease: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(ctx, "mero-kms-v1.2.0-rc.1", store.PublishOptions{Latest: true}); outcome.Code(err) != outcome.Usage {
		t.Fatalf("latest prerelease = %v, want a usage error", err)
	}
	if err := s.Publish(ctx, "mero-kms-v1.2.0-rc.1", store.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	rc, _ := s.Release(ctx, "mero-kms-v1.2.0-rc.1")
	if rc.Latest || !rc.Prerelease || rc.Draft {
		t.Fatalf("rc = %+v", rc)
	}
}

func TestPublishLostAnswer(t *testing.T) {
	ctx := context.Background()
	fake, s, _ := setup(t)
	if _, err := s.CreateDraft(ctx, store.DraftSpec{Tag: "mero-kms-v1.0.0"}); err != nil {
		t.Fatal(err)
	}
	fake.Inject(githubtest.OpUpdateRelease, githubtest.Fault{Status: 504, AfterCommit: true})
	if err := s.Publish(ctx, "mero-kms-v1.0.0", store.PublishOptions{Latest: true}); err != nil {
		t.Fatal(err)
	}
	if n := fake.Count(githubtest.OpUpdateRelease); n != 1 {
		t.Fatalf("%d updates, want 1: the retry must see the release is published", n)
	}
}

func TestPagination(t *testing.T) {
	ctx := context.Background()
	fake, s, _ := setup(t)
	fake.AddRelease("mero-kms-v0.0.1", true, false) // the oldest: on the last page
	var want []string
	for i := range 130 {
		tag := fmt.Sprintf("mero-tee-v1.%d.0", i)
		fake.AddRelease(tag, false, false)
		want = append(want, tag)
	}
	tags, err := s.Tags(ctx)
	if err != nil || len(tags) != len(want) {
		t.Fatalf("Tags: %d, %v; want %d", len(tags), err, len(want))
	}
	r, err := s.Release(ctx, "mero-kms-v0.0.1")
	if err != nil || !r.Draft {
		t.Fatalf("draft on page 2: %+v, %v", r, err)
	}
	if fake.Count(githubtest.OpListReleases) < 3 {
		t.Fatalf("only %d list requests: pages were not followed", fake.Count(githubtest.OpListReleases))
	}
}

func TestConcurrentUploads(t *testing.T) {
	ctx := context.Background()
	fake, s, _ := setup(t)
	const tag = "mero-tee-v3.0.0"
	if _, err := s.CreateDraft(ctx, store.DraftSpec{Tag: tag}); err != nil {
		t.Fatal(err)
	}
	fake.Inject(githubtest.OpUpload, githubtest.Fault{Status: 502}, githubtest.Fault{Truncate: true}, githubtest.Fault{Status: 429, RetryAfter: "1"})
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range 8 {
		wg.Go(func() {
			c := strings.Repeat(fmt.Sprint(i), 1000+i)
			errs[i] = s.UploadAsset(ctx, tag, fmt.Sprintf("f%d.txt", i), strings.NewReader(c), int64(len(c)))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	got := assets(t, fake, tag)
	for i := range 8 {
		if got[fmt.Sprintf("f%d.txt", i)] != strings.Repeat(fmt.Sprint(i), 1000+i) {
			t.Fatalf("f%d.txt wrong", i)
		}
	}
}

func TestNewClientAndRepository(t *testing.T) {
	if _, err := ghstore.NewClient(ghstore.ClientOptions{BaseURL: "ftp://x"}); outcome.Code(err) != outcome.Usage {
		t.Fatalf("ftp base URL = %v", err)
	}
	for _, base := range []string{"", ghstore.PublicAPIURL, "https://ghe.example.com/api/v3", "http://127.0.0.1:9"} {
		if _, err := ghstore.NewClient(ghstore.ClientOptions{BaseURL: base, HTTPClient: http.DefaultClient}); err != nil {
			t.Fatalf("NewClient(%q): %v", base, err)
		}
	}
	for in, ok := range map[string]bool{"a/b": true, "calimero-network/mero-tee": true, "a": false, "a/b/c": false, "/b": false, "a/": false, "a/..": false, "a b/c": false} {
		if _, _, err := ghstore.ParseRepository(in); (err == nil) != ok {
			t.Errorf("ParseRepository(%q) = %v, want ok=%v", in, err, ok)
		}
	}
	if _, err := ghstore.New(ghstore.Options{Owner: "a", Repo: "b"}); outcome.Code(err) != outcome.Usage {
		t.Fatalf("New without a client = %v", err)
	}
}

// An operation lists a release's assets once: an audit-like read (Release, then every asset)
// and a publish-like write (CreateDraft, then every upload) make one list call each, and the
// results are those of a fresh listing.
func TestAssetsListedOncePerOperation(t *testing.T) {
	ctx := context.Background()
	fake, s, _ := setup(t)
	const tag = "mero-tee-v1.0.0"
	if _, err := s.CreateDraft(ctx, store.DraftSpec{Tag: tag}); err != nil {
		t.Fatal(err)
	}
	const n = 12
	before := fake.Count(githubtest.OpListAssets)
	for i := range n {
		c := fmt.Sprintf("content %d", i)
		if err := s.UploadAsset(ctx, tag, fmt.Sprintf("a%02d.bin", i), strings.NewReader(c), int64(len(c))); err != nil {
			t.Fatal(err)
		}
	}
	// the same content again is kept without a second upload, different content conflicts
	if err := s.UploadAsset(ctx, tag, "a00.bin", strings.NewReader("content 0"), 9); err != nil {
		t.Fatal(err)
	}
	if err := s.UploadAsset(ctx, tag, "a01.bin", strings.NewReader("changed 1"), 9); !errors.Is(err, store.ErrAssetConflict) {
		t.Fatalf("different content: %v, want ErrAssetConflict", err)
	}
	if got := fake.Count(githubtest.OpListAssets) - before; got != 0 {
		t.Errorf("%d asset lists during %d uploads after CreateDraft, want 0", got, n)
	}
	if got := fake.Count(githubtest.OpUpload); got != n {
		t.Errorf("%d uploads, want %d", got, n)
	}

	reader := newStore(t, fake, token, &sleeps{})
	before = fake.Count(githubtest.OpListAssets)
	r, err := reader.Release(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Assets) != n {
		t.Fatalf("%d assets, want %d", len(r.Assets), n)
	}
	for i := range n {
		if got, want := read(t, reader, tag, fmt.Sprintf("a%02d.bin", i)), fmt.Sprintf("content %d", i); got != want {
			t.Errorf("a%02d.bin = %q, want %q", i, got, want)
		}
	}
	if got := fake.Count(githubtest.OpListAssets) - before; got != 1 {
		t.Errorf("%d asset lists for Release and %d opens, want 1", got, n)
	}
	// an asset another writer added after the list is still found (a miss lists again)
	if err := s.UploadAsset(ctx, tag, "late.bin", strings.NewReader("late"), 4); err != nil {
		t.Fatal(err)
	}
	if got := read(t, reader, tag, "late.bin"); got != "late" {
		t.Errorf("late.bin = %q", got)
	}
	if _, err := reader.OpenAsset(ctx, tag, "absent.bin"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("absent asset: %v, want ErrNotFound", err)
	}
}
