package dir

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/store"
)

var fixed = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(t.TempDir(), WithClock(func() time.Time { return fixed }))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func draft(t *testing.T, s *Store, tag string, prerelease bool) {
	t.Helper()
	if _, err := s.CreateDraft(context.Background(), store.DraftSpec{Tag: tag, Notes: "notes of " + tag, Prerelease: prerelease}); err != nil {
		t.Fatal(err)
	}
}

func upload(s *Store, tag, name, content string) error {
	return s.UploadAsset(context.Background(), tag, name, strings.NewReader(content), int64(len(content)))
}

func read(t *testing.T, s *Store, tag, name string) string {
	t.Helper()
	rc, err := s.OpenAsset(context.Background(), tag, name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// noTemps asserts that no temporary file is left anywhere under the root.
func noTemps(t *testing.T, s *Store) {
	t.Helper()
	filepath.WalkDir(s.Root(), func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), tempPrefix) {
			t.Errorf("temporary file left behind: %s", path)
		}
		return nil
	})
}

func TestNewEmptyRoot(t *testing.T) {
	if _, err := New(""); outcome.Code(err) != outcome.Usage {
		t.Fatalf("New(\"\") = %v, want a usage error", err)
	}
	root := filepath.Join(t.TempDir(), "a", "b")
	if _, err := New(root); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		t.Fatalf("root not created: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := New(filepath.Join(file, "x")); err == nil {
		t.Fatal("New under a regular file succeeded")
	}
}

func TestLifecycleAndLayout(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	r, err := s.CreateDraft(ctx, store.DraftSpec{Tag: "mero-kms-v1.3.0", Name: "KMS 1.3.0", Notes: "first"})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Draft || r.Name != "KMS 1.3.0" || r.Notes != "first" || !r.CreatedAt.Equal(fixed) {
		t.Fatalf("draft = %+v", r)
	}
	// an existing draft is returned unchanged
	again, err := s.CreateDraft(ctx, store.DraftSpec{Tag: "mero-kms-v1.3.0", Notes: "second"})
	if err != nil || again.Notes != "first" || again.Name != "KMS 1.3.0" {
		t.Fatalf("second CreateDraft = %+v, %v", again, err)
	}
	for _, a := range []string{"b.json", "a.json"} {
		if err := upload(s, "mero-kms-v1.3.0", a, "content "+a); err != nil {
			t.Fatal(err)
		}
	}
	if tags, _ := s.Tags(ctx); len(tags) != 0 {
		t.Fatalf("Tags lists a draft: %v", tags)
	}
	if err := s.Publish(ctx, "mero-kms-v1.3.0", store.PublishOptions{Latest: true}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Release(ctx, "mero-kms-v1.3.0")
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Asset{{Name: "a.json", Size: 14, SHA256: sum("content a.json")}, {Name: "b.json", Size: 14, SHA256: sum("content b.json")}}
	if got.Draft || !got.Latest || !slices.Equal(got.Assets, want) {
		t.Fatalf("published = %+v", got)
	}
	// the on-disk layout is the documented one
	data, err := os.ReadFile(filepath.Join(s.Root(), "mero-kms-v1.3.0", "release.json"))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk store.Release
	if err := json.Unmarshal(data, &onDisk); err != nil || onDisk.Tag != "mero-kms-v1.3.0" || len(onDisk.Assets) != 2 {
		t.Fatalf("release.json = %s (%v)", data, err)
	}
	if b, err := os.ReadFile(filepath.Join(s.Root(), "mero-kms-v1.3.0", "assets", "a.json")); err != nil || string(b) != "content a.json" {
		t.Fatalf("asset file = %q, %v", b, err)
	}
	if read(t, s, "mero-kms-v1.3.0", "b.json") != "content b.json" {
		t.Fatal("OpenAsset returned other content")
	}
	// a published release cannot be re-drafted nor uploaded to
	if _, err := s.CreateDraft(ctx, store.DraftSpec{Tag: "mero-kms-v1.3.0"}); !errors.Is(err, ErrPublished) || !strings.Contains(err.Error(), "mero-kms-v1.3.0") {
		t.Fatalf("CreateDraft of a published tag = %v", err)
	}
	if err := upload(s, "mero-kms-v1.3.0", "c.json", "x"); !errors.Is(err, ErrPublished) {
		t.Fatalf("upload to published = %v", err)
	}
	if err := upload(s, "mero-kms-v1.3.0", "a.json", "content a.json"); !errors.Is(err, ErrPublished) {
		t.Fatalf("re-upload to published = %v", err)
	}
	noTemps(t, s)
}

func TestDraftNameDefaultsToTag(t *testing.T) {
	s := newStore(t)
	r, err := s.CreateDraft(context.Background(), store.DraftSpec{Tag: "mero-tee-v1.0.0"})
	if err != nil || r.Name != "mero-tee-v1.0.0" || r.Assets == nil {
		t.Fatalf("%+v %v", r, err)
	}
}

func TestUploadSameAndConflict(t *testing.T) {
	s := newStore(t)
	tag := "mero-tee-v1.0.0"
	draft(t, s, tag, false)
	if err := upload(s, tag, "x.json", "one"); err != nil {
		t.Fatal(err)
	}
	if err := upload(s, tag, "x.json", "one"); err != nil {
		t.Fatalf("same content again: %v", err)
	}
	err := upload(s, tag, "x.json", "two")
	if !errors.Is(err, store.ErrAssetConflict) || !strings.Contains(err.Error(), "x.json") {
		t.Fatalf("different content = %v, want ErrAssetConflict naming the asset", err)
	}
	// same length, different bytes is a conflict too
	if err := upload(s, tag, "x.json", "owe"); !errors.Is(err, store.ErrAssetConflict) {
		t.Fatalf("same size different content = %v", err)
	}
	r, _ := s.Release(context.Background(), tag)
	if len(r.Assets) != 1 || r.Assets[0].SHA256 != sum("one") {
		t.Fatalf("assets = %+v, want the single original", r.Assets)
	}
	if read(t, s, tag, "x.json") != "one" {
		t.Fatal("original content replaced")
	}
	noTemps(t, s)
}

type failingReader struct{ after int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("connection reset")
	}
	n := min(len(p), f.after)
	for i := range n {
		p[i] = 'a'
	}
	f.after -= n
	return n, nil
}

func TestUploadErrors(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tag := "mero-kms-v1.0.0"
	draft(t, s, tag, false)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	cases := []struct {
		name    string
		ctx     context.Context
		tag     string
		asset   string
		content io.Reader
		size    int64
		is      error
		code    int
		mention string
	}{
		{"short reader", ctx, tag, "a", strings.NewReader("abc"), 10, nil, outcome.General, "short read"},
		{"long reader", ctx, tag, "a", strings.NewReader("abcdef"), 3, nil, outcome.General, "longer than 3"},
		{"reader error", ctx, tag, "a", &failingReader{after: 5}, 100, nil, outcome.General, "connection reset"},
		{"negative size", ctx, tag, "a", strings.NewReader(""), -1, nil, outcome.Usage, "negative"},
		{"cancelled", cancelled, tag, "a", strings.NewReader("abc"), 3, context.Canceled, outcome.General, ""},
		{"unknown tag", ctx, "mero-kms-v9.9.9", "a", strings.NewReader("abc"), 3, store.ErrNotFound, outcome.General, "mero-kms-v9.9.9"},
		{"empty name", ctx, tag, "", strings.NewReader("abc"), 3, nil, outcome.Usage, "empty"},
		{"slash", ctx, tag, "a/b", strings.NewReader("abc"), 3, nil, outcome.Usage, "separator"},
		{"backslash", ctx, tag, `a\b`, strings.NewReader("abc"), 3, nil, outcome.Usage, "separator"},
		{"dotdot", ctx, tag, "..", strings.NewReader("abc"), 3, nil, outcome.Usage, `".."`},
		{"dotdot inside", ctx, tag, "a..b", strings.NewReader("abc"), 3, nil, outcome.Usage, `".."`},
		{"hidden", ctx, tag, ".tmp-x", strings.NewReader("abc"), 3, nil, outcome.Usage, "dot"},
		{"control", ctx, tag, "a\nb", strings.NewReader("abc"), 3, nil, outcome.Usage, "control"},
		{"long", ctx, tag, strings.Repeat("a", 256), strings.NewReader("abc"), 3, nil, outcome.Usage, "255"},
		{"bad tag", ctx, "../x", "a", strings.NewReader("abc"), 3, nil, outcome.Usage, "tag name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := s.UploadAsset(c.ctx, c.tag, c.asset, c.content, c.size)
			if err == nil {
				t.Fatal("succeeded")
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("err = %v, want %v", err, c.is)
			}
			if outcome.Code(err) != c.code {
				t.Errorf("code = %d, want %d (%v)", outcome.Code(err), c.code, err)
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Errorf("err = %q, want it to mention %q", err, c.mention)
			}
		})
	}
	r, _ := s.Release(ctx, tag)
	if len(r.Assets) != 0 {
		t.Fatalf("a failed upload kept an asset: %+v", r.Assets)
	}
	entries, _ := os.ReadDir(filepath.Join(s.Root(), tag, "assets"))
	if len(entries) != 0 {
		t.Fatalf("files left in assets/: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(s.Root()), "x")); err == nil {
		t.Fatal("a bad tag escaped the root")
	}
}

func TestUploadZeroBytes(t *testing.T) {
	s := newStore(t)
	draft(t, s, "t", false)
	if err := upload(s, "t", "empty", ""); err != nil {
		t.Fatal(err)
	}
	if read(t, s, "t", "empty") != "" {
		t.Fatal("empty asset has content")
	}
}

func TestInterruptedUploadLeftovers(t *testing.T) {
	s := newStore(t)
	tag := "mero-kms-v1.0.0"
	draft(t, s, tag, false)
	assets := filepath.Join(s.Root(), tag, "assets")
	// a temp file of an interrupted upload is never an asset
	os.WriteFile(filepath.Join(assets, tempPrefix+"x.json-123"), []byte("partial"), 0o644)
	// a file renamed into place whose metadata update was lost
	os.WriteFile(filepath.Join(assets, "y.json"), []byte("old"), 0o644)
	if _, err := s.OpenAsset(context.Background(), tag, "y.json"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an unrecorded file is readable: %v", err)
	}
	if err := upload(s, tag, "y.json", "new"); !errors.Is(err, store.ErrAssetConflict) {
		t.Fatalf("different content over a leftover = %v", err)
	}
	if err := upload(s, tag, "y.json", "old"); err != nil {
		t.Fatalf("same content over a leftover: %v", err)
	}
	r, _ := s.Release(context.Background(), tag)
	if len(r.Assets) != 1 || r.Assets[0].Name != "y.json" {
		t.Fatalf("assets = %+v", r.Assets)
	}
	// a recorded asset whose file vanished is reported, and re-uploading the same content repairs it
	os.Remove(filepath.Join(assets, "y.json"))
	if _, err := s.OpenAsset(context.Background(), tag, "y.json"); !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("OpenAsset of a vanished file = %v", err)
	}
	if err := upload(s, tag, "y.json", "old"); err != nil {
		t.Fatal(err)
	}
	if read(t, s, tag, "y.json") != "old" {
		t.Fatal("not repaired")
	}
}

func TestReadErrors(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	draft(t, s, "good", false)
	if _, err := s.Release(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Release(unknown) = %v", err)
	}
	if _, err := s.Release(ctx, "a/b"); outcome.Code(err) != outcome.Usage {
		t.Errorf("Release(bad tag) = %v", err)
	}
	if _, err := s.OpenAsset(ctx, "nope", "a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("OpenAsset(unknown tag) = %v", err)
	}
	if _, err := s.OpenAsset(ctx, "good", "a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("OpenAsset(unknown asset) = %v", err)
	}
	if _, err := s.OpenAsset(ctx, "good", "../release.json"); outcome.Code(err) != outcome.Usage {
		t.Errorf("OpenAsset(traversal) = %v", err)
	}
	if err := s.Publish(ctx, "nope", store.PublishOptions{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Publish(unknown) = %v", err)
	}
	// corrupt metadata names the file
	os.MkdirAll(filepath.Join(s.Root(), "broken"), 0o755)
	os.WriteFile(filepath.Join(s.Root(), "broken", "release.json"), []byte("{not json"), 0o644)
	if _, err := s.Release(ctx, "broken"); err == nil || !strings.Contains(err.Error(), filepath.Join("broken", "release.json")) {
		t.Errorf("Release(corrupt) = %v", err)
	}
	if _, err := s.Tags(ctx); err == nil {
		t.Error("Tags over a corrupt release succeeded")
	}
	// metadata naming another tag is refused
	os.WriteFile(filepath.Join(s.Root(), "broken", "release.json"), []byte(`{"tag":"other"}`), 0o644)
	if _, err := s.Release(ctx, "broken"); err == nil || !strings.Contains(err.Error(), `"other"`) {
		t.Errorf("Release(mismatched tag) = %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Release(cancelled, "good"); !errors.Is(err, context.Canceled) {
		t.Errorf("Release(cancelled) = %v", err)
	}
	if _, err := s.Tags(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("Tags(cancelled) = %v", err)
	}
	if _, err := s.CreateDraft(cancelled, store.DraftSpec{Tag: "x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateDraft(cancelled) = %v", err)
	}
	if _, err := s.OpenAsset(cancelled, "good", "a"); !errors.Is(err, context.Canceled) {
		t.Errorf("OpenAsset(cancelled) = %v", err)
	}
	if err := s.Publish(cancelled, "good", store.PublishOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish(cancelled) = %v", err)
	}
	if _, err := s.CreateDraft(ctx, store.DraftSpec{Tag: ".."}); outcome.Code(err) != outcome.Usage {
		t.Errorf("CreateDraft(..) = %v", err)
	}
	if err := s.Publish(ctx, "", store.PublishOptions{}); outcome.Code(err) != outcome.Usage {
		t.Errorf("Publish(empty) = %v", err)
	}
}

func TestPublishLatest(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, tag := range []string{"mero-kms-v1.0.0", "mero-kms-v1.1.0", "mero-kms-v1.2.0"} {
		draft(t, s, tag, false)
		if err := s.Publish(ctx, tag, store.PublishOptions{Latest: true}); err != nil {
			t.Fatal(err)
		}
	}
	draft(t, s, "mero-kms-v1.3.0-rc.1", true)
	if err := s.Publish(ctx, "mero-kms-v1.3.0-rc.1", store.PublishOptions{Latest: true}); outcome.Code(err) != outcome.Usage || !strings.Contains(err.Error(), "prerelease") {
		t.Fatalf("Latest prerelease = %v", err)
	}
	if err := s.Publish(ctx, "mero-kms-v1.3.0-rc.1", store.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	latest := func() []string {
		var l []string
		for _, tag := range []string{"mero-kms-v1.0.0", "mero-kms-v1.1.0", "mero-kms-v1.2.0", "mero-kms-v1.3.0-rc.1"} {
			r, err := s.Release(ctx, tag)
			if err != nil {
				t.Fatal(err)
			}
			if r.Latest {
				l = append(l, tag)
			}
		}
		return l
	}
	if l := latest(); !slices.Equal(l, []string{"mero-kms-v1.2.0"}) {
		t.Fatalf("latest = %v", l)
	}
	// publishing a published release is a no-op, also with other options
	if err := s.Publish(ctx, "mero-kms-v1.0.0", store.PublishOptions{Latest: true}); err != nil {
		t.Fatal(err)
	}
	if l := latest(); !slices.Equal(l, []string{"mero-kms-v1.2.0"}) {
		t.Fatalf("latest after no-op publish = %v", l)
	}
	// publishing without Latest leaves the current latest
	draft(t, s, "mero-kms-v1.1.1", false)
	if err := s.Publish(ctx, "mero-kms-v1.1.1", store.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	if l := latest(); !slices.Equal(l, []string{"mero-kms-v1.2.0"}) {
		t.Fatalf("latest after a hotfix = %v", l)
	}
}

func TestTags(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, tag := range []string{"mero-tee-v1.0.0", "mero-kms-v1.2.0", "mero-kms-v1.10.0"} {
		draft(t, s, tag, false)
		if err := s.Publish(ctx, tag, store.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	draft(t, s, "mero-kms-v2.0.0", false)
	os.MkdirAll(filepath.Join(s.Root(), "not-a-release"), 0o755)
	os.WriteFile(filepath.Join(s.Root(), "stray-file"), nil, 0o644)
	tags, err := s.Tags(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"mero-kms-v1.10.0", "mero-kms-v1.2.0", "mero-tee-v1.0.0"}; !slices.Equal(tags, want) {
		t.Fatalf("Tags = %v, want %v", tags, want)
	}
	empty := newStore(t)
	if tags, err := empty.Tags(ctx); err != nil || len(tags) != 0 {
		t.Fatalf("empty store Tags = %v %v", tags, err)
	}
}

func TestConcurrentUploads(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tag := "mero-kms-v1.0.0"
	draft(t, s, tag, false)
	// a second Store value on the same root behaves like another process (flock + its own mutex)
	other, err := New(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, 3*n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := s
			if i%2 == 1 {
				st = other
			}
			content := bytes.Repeat([]byte{byte('a' + i%26)}, 1000+i)
			errs <- st.UploadAsset(ctx, tag, fmt.Sprintf("asset-%02d", i), bytes.NewReader(content), int64(len(content)))
		}()
	}
	// the same asset with the same content from many goroutines: one asset, no error
	for range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- upload(s, tag, "shared", "same bytes") }()
	}
	// the same asset with different content: exactly one wins
	var conflicts, wins int
	var mu sync.Mutex
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := upload(other, tag, "contested", fmt.Sprintf("version %02d", i))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, store.ErrAssetConflict):
				conflicts++
			default:
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if wins != 1 || conflicts != n-1 {
		t.Errorf("contested: %d wins, %d conflicts", wins, conflicts)
	}
	r, err := s.Release(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Assets) != n+2 {
		t.Fatalf("%d assets recorded, want %d", len(r.Assets), n+2)
	}
	for _, a := range r.Assets {
		got := read(t, s, tag, a.Name)
		if sum(got) != a.SHA256 || int64(len(got)) != a.Size {
			t.Errorf("%s: recorded %s/%d, file %s/%d", a.Name, a.SHA256, a.Size, sum(got), len(got))
		}
	}
	noTemps(t, s)
}

func TestUploadRacesPublish(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tag := "mero-kms-v1.0.0"
	draft(t, s, tag, false)
	var wg sync.WaitGroup
	results := make([]error, 16)
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = upload(s, tag, fmt.Sprintf("a%d", i), "x") }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); s.Publish(ctx, tag, store.PublishOptions{}) }()
	wg.Wait()
	r, _ := s.Release(ctx, tag)
	// every upload either made it into the release before publish or was refused; none was lost
	var ok int
	for _, err := range results {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrPublished):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != len(r.Assets) || r.Draft {
		t.Fatalf("%d uploads succeeded, %d assets recorded, draft=%v", ok, len(r.Assets), r.Draft)
	}
	noTemps(t, s)
}

func BenchmarkUpload1MiB(b *testing.B) {
	s, err := New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	s.CreateDraft(ctx, store.DraftSpec{Tag: "t"})
	content := bytes.Repeat([]byte("x"), 1<<20)
	b.SetBytes(int64(len(content)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := s.UploadAsset(ctx, "t", fmt.Sprintf("a%d", i), bytes.NewReader(content), int64(len(content))); err != nil {
			b.Fatal(err)
		}
	}
}
