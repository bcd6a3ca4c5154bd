// Package ociimage assembles small, reproducible OCI images from files (the KMS binary and its
// configuration), writes them as OCI archives, and pushes them to a registry (GHCR) with
// go-containerregistry. The same inputs always give the same manifest digest.
package ociimage

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// File is one file placed in the image.
type File struct {
	// Path is the absolute path inside the image, e.g. /usr/local/bin/mero-kms.
	Path string
	// Content is the file's bytes.
	Content []byte
	// Mode is the permission bits (0o755 for executables).
	Mode int64
}

// Spec describes an image.
type Spec struct {
	// Files make the image's one layer; Layer, when set, is that layer instead (built once with
	// NewLayer and shared by images that differ only in their configuration).
	Files      []File
	Layer      v1.Layer
	Entrypoint []string
	Cmd        []string
	// Env is KEY=VALUE pairs baked into the image configuration.
	Env []string
	// Labels are OCI annotations/labels on the image configuration.
	Labels map[string]string
	// Created is the fixed creation time of the image and of every file (SOURCE_DATE_EPOCH).
	Created time.Time
	// Platform of the image; linux/amd64 when empty.
	OS, Architecture string
}

// Layer is an image layer (go-containerregistry's v1.Layer).
type Layer = v1.Layer

// NewLayer builds the deterministic layer of files (sorted, owned by root, every entry at
// created) once, its digest computed once: images sharing it (Spec.Layer) share the blob.
func NewLayer(files []File, created time.Time) (v1.Layer, error) {
	if len(files) == 0 {
		return nil, outcome.UsageErrorf("image: no files")
	}
	layerBytes, err := layerTar(files, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	return layer, nil
}

// Build assembles the image in memory; the same Spec gives the same digest.
func Build(spec Spec) (v1.Image, error) {
	layer := spec.Layer
	if layer == nil {
		var err error
		if layer, err = NewLayer(spec.Files, spec.Created); err != nil {
			return nil, err
		}
	} else if len(spec.Files) > 0 {
		return nil, outcome.UsageErrorf("image: give the files or a layer, not both")
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer, History: v1.History{
		Created: v1.Time{Time: spec.Created.UTC()}, CreatedBy: "mero-release ociimage",
	}})
	if err != nil {
		return nil, fmt.Errorf("image append layer: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = orDefault(spec.OS, "linux"), orDefault(spec.Architecture, "amd64")
	cfg.Created = v1.Time{Time: spec.Created.UTC()}
	cfg.Config.Entrypoint = spec.Entrypoint
	cfg.Config.Cmd = spec.Cmd
	cfg.Config.Env = slices.Clone(spec.Env)
	cfg.Config.Labels = spec.Labels
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("image set config: %w", err)
	}
	return img, nil
}

// layerTar writes the files (and their parent directories) as a deterministic tar: sorted,
// owned by root, with the fixed time.
func layerTar(files []File, created time.Time) ([]byte, error) {
	type entry struct {
		name string
		file *File
	}
	seen := map[string]bool{}
	var entries []entry
	for i := range files {
		f := &files[i]
		clean := path.Clean("/" + f.Path)
		if clean != f.Path || clean == "/" || strings.HasSuffix(f.Path, "/") {
			return nil, outcome.UsageErrorf("image file %q: must be a clean absolute path", f.Path)
		}
		if seen[clean] {
			return nil, outcome.UsageErrorf("image file %q: listed twice", f.Path)
		}
		seen[clean] = true
		entries = append(entries, entry{name: strings.TrimPrefix(clean, "/"), file: f})
		for dir := path.Dir(clean); dir != "/"; dir = path.Dir(dir) {
			if !seen[dir+"/"] {
				seen[dir+"/"] = true
				entries = append(entries, entry{name: strings.TrimPrefix(dir, "/") + "/"})
			}
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := created.UTC()
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, ModTime: mtime, Uid: 0, Gid: 0, Format: tar.FormatPAX}
		if e.file == nil {
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		} else {
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, e.file.Mode, int64(len(e.file.Content))
			if hdr.Mode == 0 {
				hdr.Mode = 0o644
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("image layer %s: %w", e.name, err)
		}
		if e.file != nil {
			if _, err := tw.Write(e.file.Content); err != nil {
				return nil, fmt.Errorf("image layer %s: %w", e.name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	return buf.Bytes(), nil
}

// Digest returns the manifest digest ("sha256:…") of img.
func Digest(img v1.Image) (string, error) {
	d, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("image digest: %w", err)
	}
	return d.String(), nil
}

// WriteOCIArchive writes img as an OCI image-layout tar archive (what syft reads as
// "oci-archive"), deterministically and without a "./" entry. ref names the image in index.json.
func WriteOCIArchive(img v1.Image, ref, dst string) error {
	tmp, err := os.MkdirTemp("", "ociimage-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	defer os.RemoveAll(tmp)
	lp, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return fmt.Errorf("write %s: layout: %w", dst, err)
	}
	var opts []layout.Option
	if ref != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref}))
	}
	if err := lp.AppendImage(img, opts...); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return tarDir(tmp, dst)
}

// tarDir archives dir's content (sorted, fixed times, root-owned, no "./" entry) into dst atomically.
func tarDir(dir, dst string) error {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		names = append(names, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return fmt.Errorf("archive %s: %w", dir, err)
	}
	slices.Sort(names)
	out, err := os.CreateTemp(filepath.Dir(dst), ".oci-*.tar")
	if err != nil {
		return fmt.Errorf("archive %s: %w", dst, err)
	}
	defer os.Remove(out.Name())
	tw := tar.NewWriter(out)
	for _, n := range names {
		info, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			return fmt.Errorf("archive %s: %w", n, err)
		}
		hdr := &tar.Header{Name: n, ModTime: time.Unix(0, 0).UTC(), Mode: 0o644, Format: tar.FormatPAX}
		if info.IsDir() {
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, n+"/", 0o755
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, info.Size()
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("archive %s: %w", n, err)
		}
		if !info.IsDir() {
			if err := copyFile(tw, filepath.Join(dir, n)); err != nil {
				return fmt.Errorf("archive %s: %w", n, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("archive %s: %w", dst, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("archive %s: %w", dst, err)
	}
	if err := os.Rename(out.Name(), dst); err != nil {
		return fmt.Errorf("archive %s: %w", dst, err)
	}
	return nil
}

func copyFile(w io.Writer, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// ReadOCIArchive loads the single image of an OCI archive written by WriteOCIArchive (or any
// OCI layout tar with one image).
func ReadOCIArchive(src string) (v1.Image, error) {
	tmp, err := os.MkdirTemp("", "ociimage-read-*")
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", src, err)
	}
	defer os.RemoveAll(tmp)
	img, _, err := openArchive(src, tmp, "read")
	if err != nil {
		return nil, err
	}
	// materialise so the temporary directory can go
	mem, err := materialize(img)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", src, err)
	}
	return mem, nil
}

// openArchive unpacks the OCI archive src into the empty directory tmp and returns its single
// image (backed by tmp) and that image's manifest digest; op names the caller in errors.
func openArchive(src, tmp, op string) (v1.Image, v1.Hash, error) {
	if err := untar(src, tmp); err != nil {
		return nil, v1.Hash{}, fmt.Errorf("%s %s: %w", op, src, err)
	}
	idx, err := layout.ImageIndexFromPath(tmp)
	if err != nil {
		return nil, v1.Hash{}, outcome.VerificationErrorf("%s %s: not an OCI image layout: %v", op, src, err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		return nil, v1.Hash{}, outcome.VerificationErrorf("%s %s: want exactly one image in index.json", op, src)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		return nil, v1.Hash{}, outcome.VerificationErrorf("%s %s: %v", op, src, err)
	}
	return img, m.Manifests[0].Digest, nil
}

func untar(src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return outcome.VerificationErrorf("not a tar archive: %v", err)
		}
		name := path.Clean(hdr.Name)
		if name == "." || strings.HasPrefix(name, "../") || path.IsAbs(name) {
			return outcome.VerificationErrorf("archive entry %q escapes the archive", hdr.Name)
		}
		target := filepath.Join(dst, filepath.FromSlash(name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			out, err := os.Create(target)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, tr); err != nil {
				out.Close()
				return err
			}
			if err := out.Close(); err != nil {
				return err
			}
		}
	}
}

// materialize copies an image's layers into memory so it outlives its source directory.
func materialize(img v1.Image) (v1.Image, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	out := mutate.MediaType(empty.Image, mt)
	out = mutate.ConfigMediaType(out, types.OCIConfigJSON)
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		lmt, err := l.MediaType()
		if err != nil {
			return nil, err
		}
		ml, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
			tarball.WithMediaType(lmt))
		if err != nil {
			return nil, err
		}
		if out, err = mutate.Append(out, mutate.Addendum{Layer: ml, MediaType: lmt}); err != nil {
			return nil, err
		}
	}
	return mutate.ConfigFile(out, cfg)
}

// Push writes img to ref (e.g. ghcr.io/owner/mero-kms:1.3.0-debug, or REPO@sha256:… to push
// the manifest by its digest, untagged) and returns the pushed reference pinned by digest
// (ghcr.io/owner/mero-kms@sha256:…). Token is a registry token (GHCR: a token with
// packages:write); empty means anonymous.
func Push(ctx context.Context, img v1.Image, ref, user, token string, opts ...name.Option) (string, error) {
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return "", outcome.UsageErrorf("push: image reference %q: %v", ref, err)
	}
	if d, ok := r.(name.Digest); ok {
		want, err := Digest(img)
		if err != nil {
			return "", err
		}
		if d.DigestStr() != want {
			return "", outcome.VerificationErrorf("push %s: the image's digest is %s", ref, want)
		}
	}
	if err := remote.Write(r, img, RemoteOptions(ctx, user, token)...); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	d, err := Digest(img)
	if err != nil {
		return "", err
	}
	return r.Context().Name() + "@" + d, nil
}

// RemoteOptions are the registry options of a push: the context and the token (GHCR: a token
// with packages:write; empty means anonymous).
func RemoteOptions(ctx context.Context, user, token string) []remote.Option {
	auth := authn.Anonymous
	if token != "" {
		auth = &authn.Basic{Username: orDefault(user, "mero-release"), Password: token}
	}
	return []remote.Option{remote.WithContext(ctx), remote.WithAuth(auth)}
}

// PushArchive pushes the single image of an OCI archive to ref exactly as it is — the
// manifest and config bytes of the archive, so the pushed digest is the archive's digest
// whatever tool built it — and returns the pushed reference pinned by digest.
func PushArchive(ctx context.Context, archive, ref, user, token string, opts ...name.Option) (string, error) {
	tmp, err := os.MkdirTemp("", "ociimage-push-*")
	if err != nil {
		return "", fmt.Errorf("push %s: %w", archive, err)
	}
	defer os.RemoveAll(tmp)
	img, want, err := openArchive(archive, tmp, "push")
	if err != nil {
		return "", err
	}
	pushed, err := Push(ctx, img, ref, user, token, opts...)
	if err != nil {
		return "", err
	}
	if !strings.HasSuffix(pushed, "@"+want.String()) {
		return "", outcome.VerificationErrorf("push %s: pushed %s, not the archive's digest %s", archive, pushed, want)
	}
	return pushed, nil
}

// ExtractEntrypoint reads the single image of an OCI archive and writes the file its
// entrypoint names (e.g. /usr/local/bin/mero-kms), as the image's flattened filesystem holds it,
// to dst (mode 0755). It returns the entrypoint's path in the image.
func ExtractEntrypoint(archive, dst string) (string, error) {
	img, err := ReadOCIArchive(archive)
	if err != nil {
		return "", err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", fmt.Errorf("extract from %s: config: %w", archive, err)
	}
	if len(cfg.Config.Entrypoint) == 0 || !path.IsAbs(cfg.Config.Entrypoint[0]) {
		return "", outcome.UsageErrorf("extract from %s: the image has no absolute entrypoint (%q)", archive, cfg.Config.Entrypoint)
	}
	entry := cfg.Config.Entrypoint[0]
	want := strings.TrimPrefix(path.Clean(entry), "/")
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return "", outcome.VerificationErrorf("extract from %s: the entrypoint %s is not a file of the image", archive, entry)
		}
		if err != nil {
			return "", fmt.Errorf("extract from %s: %w", archive, err)
		}
		if strings.TrimPrefix(path.Clean(hdr.Name), "/") != want || hdr.Typeflag != tar.TypeReg {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return "", fmt.Errorf("extract %s: %w", entry, err)
		}
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
		if err != nil {
			return "", fmt.Errorf("extract %s: %w", entry, err)
		}
		if _, err := io.Copy(out, tr); err != nil {
			out.Close()
			return "", fmt.Errorf("extract %s: %w", entry, err)
		}
		if err := out.Close(); err != nil {
			return "", fmt.Errorf("extract %s: %w", entry, err)
		}
		return entry, nil
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
