package ociimage

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/calimero-network/mero-release/pipeline/ociimage/ocitest"
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
	host := ocitest.Registry(t)
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

// handmadeArchive writes an OCI archive whose config JSON is formatted as no Go encoder would
// write it (as BuildKit's or another builder's may be): pushing must keep those exact bytes.
func handmadeArchive(t *testing.T) (archive, manifestDigest string) {
	t.Helper()
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	body := []byte("static binary\n")
	if err := tw.WriteHeader(&tar.Header{Name: "usr/local/bin/mero-kms", Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(body)
	tw.Close()
	sum := func(b []byte) string { h := sha256.Sum256(b); return "sha256:" + hex.EncodeToString(h[:]) }
	config := []byte(`{"os":"linux",  "architecture":"amd64","rootfs":{"type":"layers","diff_ids":["` + sum(layer.Bytes()) + `"]},"config":{"Env":["MERO_KMS_PROFILE=debug"]},"created":"2026-01-01T00:00:00.123456789Z"}`)
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + sum(config) + `","size":` + strconv.Itoa(len(config)) + `},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + sum(layer.Bytes()) + `","size":` + strconv.Itoa(layer.Len()) + `}]}`)
	index := []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + sum(manifest) + `","size":` + strconv.Itoa(len(manifest)) + `}]}`)
	archive = filepath.Join(t.TempDir(), "image.oci.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	out := tar.NewWriter(f)
	for name, data := range map[string][]byte{
		"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`), "index.json": index,
		"blobs/sha256/" + sum(config)[7:]: config, "blobs/sha256/" + sum(manifest)[7:]: manifest, "blobs/sha256/" + sum(layer.Bytes())[7:]: layer.Bytes(),
	} {
		if err := out.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		out.Write(data)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return archive, sum(manifest)
}

func TestPushArchiveKeepsTheArchiveDigest(t *testing.T) {
	host := ocitest.Registry(t)
	archive, want := handmadeArchive(t)
	pinned, err := PushArchive(context.Background(), archive, host+"/calimero/mero-kms:1.3.0-debug", "", "", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if pinned != host+"/calimero/mero-kms@"+want {
		t.Fatalf("pushed %s, want …@%s", pinned, want)
	}
	ref, _ := name.ParseReference(pinned, name.Insecure)
	desc, err := remote.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest.String() != want {
		t.Fatalf("the registry serves %s, want %s", desc.Digest, want)
	}
	if _, err := PushArchive(context.Background(), filepath.Join(t.TempDir(), "absent.tar"), host+"/x/y:1", "", "", name.Insecure); err == nil {
		t.Fatal("pushing a missing archive succeeded")
	}
}

func TestExtractEntrypoint(t *testing.T) {
	img, err := Build(Spec{
		Files:      []File{{Path: "/usr/local/bin/mero-kms", Content: []byte("the KMS\n"), Mode: 0o755}, {Path: "/etc/other", Content: []byte("x"), Mode: 0o644}},
		Entrypoint: []string{"/usr/local/bin/mero-kms"},
		Created:    epoch,
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	archive := filepath.Join(dir, "kms.oci.tar")
	if err := WriteOCIArchive(img, "mero-kms:1", archive); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "bin", "mero-kms")
	entry, err := ExtractEntrypoint(archive, dst)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(dst)
	if err != nil || entry != "/usr/local/bin/mero-kms" || string(data) != "the KMS\n" {
		t.Fatalf("extracted %s: %q, %v", entry, data, err)
	}
	if st, _ := os.Stat(dst); st.Mode().Perm()&0o100 == 0 {
		t.Errorf("the extracted entrypoint is not executable: %v", st.Mode())
	}
	// An entrypoint the image does not hold, and no entrypoint at all.
	for name, spec := range map[string]Spec{
		"missing": {Files: []File{{Path: "/bin/other", Content: []byte("x"), Mode: 0o755}}, Entrypoint: []string{"/usr/local/bin/mero-kms"}, Created: epoch},
		"none":    {Files: []File{{Path: "/bin/other", Content: []byte("x"), Mode: 0o755}}, Created: epoch},
	} {
		img, err := Build(spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteOCIArchive(img, "x:1", archive); err != nil {
			t.Fatal(err)
		}
		if _, err := ExtractEntrypoint(archive, dst); err == nil {
			t.Errorf("%s: extraction succeeded", name)
		}
	}
}
