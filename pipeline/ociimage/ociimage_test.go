package ociimage

import (
	"archive/tar"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func spec(profile string) Spec {
	return Spec{
		Files: []File{
			{Path: "/usr/local/bin/mero-kms", Content: []byte("\x7fELF fake kms binary"), Mode: 0o755},
			{Path: "/etc/mero-kms/profile", Content: []byte(profile)},
		},
		Entrypoint: []string{"/usr/local/bin/mero-kms"},
		Env:        []string{"MERO_KMS_PROFILE=" + profile},
		Labels:     map[string]string{"org.opencontainers.image.version": "1.3.0"},
		Created:    epoch,
	}
}

func digestOf(t *testing.T, s Spec) string {
	t.Helper()
	img, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Digest(img)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestBuildIsReproducibleAndProfilesDiffer(t *testing.T) {
	a1, a2 := digestOf(t, spec("debug")), digestOf(t, spec("debug"))
	if a1 != a2 {
		t.Fatalf("same spec, different digests: %s %s", a1, a2)
	}
	if !strings.HasPrefix(a1, "sha256:") {
		t.Fatalf("digest %q", a1)
	}
	seen := map[string]string{}
	for _, p := range []string{"debug", "debug-read-only", "locked-read-only"} {
		d := digestOf(t, spec(p))
		if other, dup := seen[d]; dup {
			t.Fatalf("profiles %s and %s share digest %s", p, other, d)
		}
		seen[d] = p
	}
	later := spec("debug")
	later.Created = epoch.Add(time.Second)
	if digestOf(t, later) == a1 {
		t.Fatal("the creation time must be part of the digest")
	}
}

func TestBuildRejectsBadFiles(t *testing.T) {
	for name, files := range map[string][]File{
		"none":     nil,
		"relative": {{Path: "usr/bin/x", Content: []byte("x")}},
		"dotdot":   {{Path: "/usr/../x", Content: []byte("x")}},
		"twice":    {{Path: "/x", Content: []byte("a")}, {Path: "/x", Content: []byte("b")}},
		"root":     {{Path: "/", Content: []byte("a")}},
	} {
		_, err := Build(Spec{Files: files, Created: epoch})
		if outcome.Code(err) != outcome.Usage {
			t.Errorf("%s: err = %v, want a usage error", name, err)
		}
	}
}

func TestOCIArchiveRoundTrip(t *testing.T) {
	img, err := Build(spec("debug"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Digest(img)
	dir := t.TempDir()
	p1, p2 := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	if err := WriteOCIArchive(img, "mero-kms:1.3.0-debug", p1); err != nil {
		t.Fatal(err)
	}
	if err := WriteOCIArchive(img, "mero-kms:1.3.0-debug", p2); err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(p1)
	b2, _ := os.ReadFile(p2)
	if string(b1) != string(b2) {
		t.Fatal("two archives of the same image differ")
	}
	f, _ := os.Open(p1)
	defer f.Close()
	tr := tar.NewReader(f)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "./" || h.Name == "." || strings.HasPrefix(h.Name, "./") {
			t.Fatalf("archive has a ./ entry: %q", h.Name)
		}
		names = append(names, h.Name)
	}
	for _, must := range []string{"oci-layout", "index.json"} {
		if !contains(names, must) {
			t.Fatalf("archive lacks %s: %v", must, names)
		}
	}
	back, err := ReadOCIArchive(p1)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := Digest(back); got != want {
		t.Fatalf("round trip digest %s, want %s", got, want)
	}
}

func TestReadOCIArchiveRejectsGarbage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.tar")
	if err := os.WriteFile(p, []byte("not a tar at all, definitely"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadOCIArchive(p); outcome.Code(err) != outcome.VerificationFailed {
		t.Fatalf("err = %v, want a verification error", err)
	}
	if _, err := ReadOCIArchive(filepath.Join(t.TempDir(), "missing.tar")); err == nil {
		t.Fatal("a missing archive must fail")
	}
}

func TestPushToRegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := Build(spec("locked-read-only"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Digest(img)
	pinned, err := Push(context.Background(), img, host+"/calimero/mero-kms:1.3.0-locked-read-only", "", "", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if pinned != host+"/calimero/mero-kms@"+want {
		t.Fatalf("pinned ref %q, want …@%s", pinned, want)
	}
	ref, _ := name.ParseReference(pinned, name.Insecure)
	got, err := remote.Image(ref)
	if err != nil {
		t.Fatalf("pull back: %v", err)
	}
	if d, _ := got.Digest(); d.String() != want {
		t.Fatalf("pulled %s, want %s", d, want)
	}
}

func TestPushErrors(t *testing.T) {
	img, err := Build(spec("debug"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Push(context.Background(), img, "UPPER/Case::bad", "", ""); outcome.Code(err) != outcome.Usage {
		t.Fatalf("bad ref: %v", err)
	}
	denied := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"errors":[{"code":"DENIED","message":"token lacks packages:write"}]}`, http.StatusForbidden)
	}))
	defer denied.Close()
	host := strings.TrimPrefix(denied.URL, "http://")
	_, err = Push(context.Background(), img, host+"/calimero/mero-kms:1", "", "secret-token", name.Insecure)
	if err == nil || !strings.Contains(err.Error(), "push") {
		t.Fatalf("denied push: %v", err)
	}
	if strings.Contains(err.Error(), "secret-token") {
		t.Fatal("the token leaked into the error")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
