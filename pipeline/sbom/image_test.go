package sbom

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// The fixtures below build real image archives in the test: no registry, no Docker.

// dpkgStatus lists two Debian packages, as /var/lib/dpkg/status of a Debian image does.
const dpkgStatus = `Package: libmero0
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 120
Maintainer: Calimero <dev@calimero.network>
Architecture: amd64
Source: mero
Version: 1.2.0-1
Description: mero runtime library
 The shared library of the mero KMS.

Package: mero-kms
Status: install ok installed
Priority: optional
Section: net
Installed-Size: 4096
Maintainer: Calimero <dev@calimero.network>
Architecture: amd64
Version: 1.3.0-1
Depends: libmero0 (>= 1.2.0)
Description: mero key management service
 The KMS daemon.

`

const osRelease = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
ID=debian
`

// leftPad is an installed npm package, catalogued by syft's javascript-package-cataloger.
const leftPad = `{"name": "left-pad", "version": "1.3.0", "license": "WTFPL", "main": "index.js"}`

// imageFiles is the content of the test image's single layer.
func imageFiles() map[string][]byte {
	return map[string][]byte{
		"etc/os-release":                              []byte(osRelease),
		"var/lib/dpkg/status":                         []byte(dpkgStatus),
		"usr/lib/node_modules/left-pad/package.json":  []byte(leftPad),
		"usr/lib/node_modules/left-pad/index.js":      []byte("module.exports = function () {}\n"),
		"usr/share/doc/mero-kms/copyright":            []byte("Copyright Calimero\n"),
		"etc/mero/kms.toml":                           []byte("profile = \"debug\"\n"),
		"usr/lib/node_modules/left-pad/LICENSE":       []byte("WTFPL\n"),
		"usr/share/doc/libmero0/changelog.Debian.txt": []byte("libmero0 (1.2.0-1) stable; urgency=low\n"),
	}
}

// tarFiles writes a deterministic tar (sorted names, fixed times, parent directories first,
// never a "./" entry).
func tarFiles(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	return tarFilesPrefixed(t, files, "")
}

// tarFilesPrefixed is tarFiles with every name prefixed, and with a "./" entry when the prefix
// is "./", as `tar -C layout -cf image.tar .` writes.
func tarFilesPrefixed(t testing.TB, files map[string][]byte, prefix string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(1700000000, 0)
	dirs := map[string]bool{}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		for d := filepath.Dir(n); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	dirList := make([]string, 0, len(dirs))
	for d := range dirs {
		dirList = append(dirList, d)
	}
	slices.Sort(dirList)
	if prefix == "./" {
		dirList = append([]string{"."}, dirList...)
	}
	for _, d := range dirList {
		name := prefix + d + "/"
		if d == "." {
			name = "./"
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: prefix + n, Mode: 0o644, Size: int64(len(files[n])), ModTime: epoch}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(files[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// image is a one-layer image: its layer, config and manifest blobs.
type image struct {
	layer, config, manifest []byte
}

func newImage(t testing.TB, files map[string][]byte) image {
	t.Helper()
	layer := tarFiles(t, files)
	config := mustJSON(t, map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      "2023-11-14T22:13:20Z",
		"config":       map[string]any{"Cmd": []string{"/usr/bin/mero-kms"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{digestOf(layer)}},
		"history":      []map[string]any{{"created": "2023-11-14T22:13:20Z", "created_by": "test fixture"}},
	})
	manifest := mustJSON(t, map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digestOf(config), "size": len(config)},
		"layers":        []map[string]any{{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digestOf(layer), "size": len(layer)}},
	})
	return image{layer: layer, config: config, manifest: manifest}
}

// ociLayout returns the files of an OCI image layout holding img.
func (img image) ociLayout(t testing.TB) map[string][]byte {
	t.Helper()
	index := mustJSON(t, map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests": []map[string]any{{
			"mediaType":   "application/vnd.oci.image.manifest.v1+json",
			"digest":      digestOf(img.manifest),
			"size":        len(img.manifest),
			"annotations": map[string]string{"org.opencontainers.image.ref.name": "1.3.0"},
		}},
	})
	blob := func(b []byte) string { return "blobs/sha256/" + digestOf(b)[len("sha256:"):] }
	return map[string][]byte{
		"oci-layout":       []byte(`{"imageLayoutVersion":"1.0.0"}`),
		"index.json":       index,
		blob(img.manifest): img.manifest,
		blob(img.config):   img.config,
		blob(img.layer):    img.layer,
	}
}

// dockerArchive returns a `docker save` tar of img.
func (img image) dockerArchive(t testing.TB) []byte {
	t.Helper()
	layerName := digestOf(img.layer)[len("sha256:"):] + "/layer.tar"
	configName := digestOf(img.config)[len("sha256:"):] + ".json"
	manifest := mustJSON(t, []map[string]any{{"Config": configName, "RepoTags": []string{"mero-kms:1.3.0"}, "Layers": []string{layerName}}})
	return tarFiles(t, map[string][]byte{"manifest.json": manifest, configName: img.config, layerName: img.layer})
}

func writeFile(t testing.TB, path string, data []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeTree(t testing.TB, dir string, files map[string][]byte) string {
	t.Helper()
	for name, data := range files {
		writeFile(t, filepath.Join(dir, name), data)
	}
	return dir
}
