package store_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/store"
	"github.com/calimero-network/mero-release/pipeline/store/dir"
)

func publishOne(t *testing.T, st store.Store, tag, asset, content string) {
	t.Helper()
	ctx := context.Background()
	if _, err := st.CreateDraft(ctx, store.DraftSpec{Tag: tag}); err != nil {
		t.Fatal(err)
	}
	if err := st.UploadAsset(ctx, tag, asset, strings.NewReader(content), int64(len(content))); err != nil {
		t.Fatal(err)
	}
	if err := st.Publish(ctx, tag, store.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, st store.Store, tag, name string) string {
	t.Helper()
	rc, err := st.OpenAsset(context.Background(), tag, name)
	if err != nil {
		t.Fatalf("open %s/%s: %v", tag, name, err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

func TestOverlay(t *testing.T) {
	ctx := context.Background()
	top, err := dir.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base, err := dir.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	publishOne(t, base, "mero-tee-v1.2.0", "published-mrtds.json", "base node")
	publishOne(t, base, "mero-kms-v1.2.0", "a.json", "base kms")
	o := store.Overlay{Top: top, Base: base}
	publishOne(t, o, "mero-kms-v1.3.0", "a.json", "staged kms")

	if got := read(t, o, "mero-kms-v1.3.0", "a.json"); got != "staged kms" {
		t.Errorf("staged asset = %q", got)
	}
	if got := read(t, o, "mero-tee-v1.2.0", "published-mrtds.json"); got != "base node" {
		t.Errorf("base asset through the overlay = %q", got)
	}
	if _, err := base.Release(ctx, "mero-kms-v1.3.0"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the staged release leaked into the base store: %v", err)
	}
	tags, err := o.Tags(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"mero-kms-v1.2.0", "mero-kms-v1.3.0", "mero-tee-v1.2.0"}; !slices.Equal(tags, want) {
		t.Errorf("tags = %v, want %v", tags, want)
	}
	// a release in Top is never mixed with Base: an asset only Base has is not found
	publishOne(t, base, "mero-kms-v1.4.0", "only-in-base.json", "x")
	publishOne(t, o, "mero-kms-v1.4.0", "other.json", "y")
	if _, err := o.OpenAsset(ctx, "mero-kms-v1.4.0", "only-in-base.json"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("mixed release: err = %v, want not found", err)
	}
}
