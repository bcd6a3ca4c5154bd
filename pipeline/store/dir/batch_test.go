package dir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calimero-network/mero-release/pipeline/store"
)

func uploadsOf(files map[string]string, names ...string) []store.Upload {
	var out []store.Upload
	for _, n := range names {
		c := files[n]
		out = append(out, store.Upload{Name: n, Size: int64(len(c)), Open: func() (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader(c)), nil
		}})
	}
	return out
}

// A batch leaves exactly the store one upload at a time leaves: same release.json bytes, same
// asset files.
func TestUploadAssetsSameResultAsOneByOne(t *testing.T) {
	ctx := context.Background()
	files := map[string]string{}
	var names []string
	for i := range 40 {
		n := fmt.Sprintf("asset-%02d.bin", 39-i)
		files[n] = strings.Repeat(string(rune('a'+i%26)), 10+i)
		names = append(names, n)
	}
	one, batch := newStore(t), newStore(t)
	tag := "mero-kms-v1.0.0"
	draft(t, one, tag, false)
	draft(t, batch, tag, false)
	for _, n := range names {
		if err := upload(one, tag, n, files[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.UploadAssets(ctx, tag, uploadsOf(files, names...)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Store{one, batch} {
		if err := s.Publish(ctx, tag, store.PublishOptions{Latest: true}); err != nil {
			t.Fatal(err)
		}
	}
	a, err := os.ReadFile(filepath.Join(one.Root(), tag, metadataFile))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(batch.Root(), tag, metadataFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Errorf("release.json differs:\none by one:\n%s\nbatch:\n%s", a, b)
	}
	for _, n := range names {
		if got := read(t, batch, tag, n); got != files[n] {
			t.Errorf("%s: %q, want %q", n, got, files[n])
		}
	}
	noTemps(t, batch)
}

// A batch with a conflicting asset keeps the others and reports the conflict; the same content
// again is no error; a published release takes no batch.
func TestUploadAssetsPartialAndPublished(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tag := "mero-kms-v1.0.0"
	draft(t, s, tag, false)
	if err := upload(s, tag, "kept", "old"); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"kept": "new", "same": "x", "fresh": "fresh bytes"}
	if err := upload(s, tag, "same", "x"); err != nil {
		t.Fatal(err)
	}
	err := s.UploadAssets(ctx, tag, uploadsOf(files, "kept", "same", "fresh"))
	if !errors.Is(err, store.ErrAssetConflict) || !strings.Contains(err.Error(), tag+"/kept") {
		t.Fatalf("err = %v, want a conflict on kept", err)
	}
	if got := read(t, s, tag, "kept"); got != "old" {
		t.Errorf("kept = %q, the conflicting upload replaced it", got)
	}
	if got := read(t, s, tag, "fresh"); got != "fresh bytes" {
		t.Errorf("fresh = %q", got)
	}
	r, err := s.Release(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Assets) != 3 {
		t.Errorf("assets %v, want kept, same, fresh", r.Assets)
	}
	if err := s.UploadAssets(ctx, tag, uploadsOf(files, "fresh", "fresh")); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate name in a batch: %v", err)
	}
	if err := s.Publish(ctx, tag, store.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.UploadAssets(ctx, tag, uploadsOf(map[string]string{"late": "l"}, "late")); !errors.Is(err, ErrPublished) {
		t.Errorf("upload to a published release: %v, want ErrPublished", err)
	}
	noTemps(t, s)
}

// An open error of one upload fails that asset only.
func TestUploadAssetsOpenError(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tag := "mero-kms-v1.0.0"
	draft(t, s, tag, false)
	bad := store.Upload{Name: "bad", Size: 1, Open: func() (io.ReadCloser, error) { return nil, errors.New("cannot open") }}
	ups := append(uploadsOf(map[string]string{"good": "g"}, "good"), bad)
	if err := s.UploadAssets(ctx, tag, ups); err == nil || !strings.Contains(err.Error(), "bad: cannot open") {
		t.Fatalf("err = %v", err)
	}
	if _, err := s.OpenAsset(ctx, tag, "bad"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("bad asset: %v, want not found", err)
	}
	if got := read(t, s, tag, "good"); got != "g" {
		t.Errorf("good = %q", got)
	}
	noTemps(t, s)
}

// The parsed release.json is reused while the file is unchanged (no re-read per OpenAsset),
// and a file replaced by another Store value (another process) is read again.
func TestRecordCacheFollowsTheFile(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	tag := "mero-kms-v1.0.0"
	draft(t, s, tag, false)
	if err := upload(s, tag, "a", "aaa"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.Root(), tag, metadataFile)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// Overwrite release.json in place with garbage of the same size and the same mtime: an
	// OpenAsset that re-read it would fail.
	if err := os.WriteFile(path, []byte(strings.Repeat(" ", int(info.Size()))), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	if got := read(t, s, tag, "a"); got != "aaa" {
		t.Errorf("a = %q", got)
	}
	// A change of the file (here its mtime) is noticed: the garbage is read and rejected.
	if err := os.Chtimes(path, info.ModTime(), info.ModTime().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenAsset(ctx, tag, "a"); err == nil {
		t.Fatal("OpenAsset served a stale record after release.json changed")
	}

	// another Store value on the same root writes: this one sees it
	t2 := "mero-kms-v1.0.1"
	draft(t, s, t2, false)
	other, err := New(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenAsset(ctx, t2, "b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("b before upload: %v", err)
	}
	if err := upload(other, t2, "b", "bbb"); err != nil {
		t.Fatal(err)
	}
	if got := read(t, s, t2, "b"); got != "bbb" {
		t.Errorf("b = %q", got)
	}
	if err := other.Publish(ctx, t2, store.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := upload(s, t2, "c", "c"); !errors.Is(err, ErrPublished) {
		t.Errorf("upload after another process published: %v, want ErrPublished", err)
	}
}

// BenchmarkOpenAsset1000 opens every asset of a 1,000-asset release: linear, not quadratic.
func BenchmarkOpenAsset1000(b *testing.B) {
	ctx := context.Background()
	s, err := New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	tag := "mero-kms-v1.0.0"
	if _, err := s.CreateDraft(ctx, store.DraftSpec{Tag: tag}); err != nil {
		b.Fatal(err)
	}
	files := map[string]string{}
	var names []string
	for i := range 1000 {
		n := fmt.Sprintf("asset-%04d", i)
		files[n], names = n, append(names, n)
	}
	if err := s.UploadAssets(ctx, tag, uploadsOf(files, names...)); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		for _, n := range names {
			rc, err := s.OpenAsset(ctx, tag, n)
			if err != nil {
				b.Fatal(err)
			}
			rc.Close()
		}
	}
}
