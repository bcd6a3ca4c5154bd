package measure

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/calimero-network/mero-release/pipeline/internal/lazyre"
	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// maxMetadataBlob bounds index.json, manifests and configs.
const maxMetadataBlob = 4 << 20

// Docker distribution media types, which OCI layouts written by docker may carry.
const (
	dockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// ImageInfo is what image inspection finds in an OCI image layout.
type ImageInfo struct {
	// Digest is the image digest: the sha256 digest of the top-level manifest (or index) that
	// index.json names, the digest a registry serves the image under and a compose pins.
	Digest string `json:"digest"`
	// MediaType is that manifest's media type.
	MediaType string `json:"media_type"`
	// RefName is its org.opencontainers.image.ref.name annotation, if any.
	RefName string `json:"ref_name,omitempty"`
	// Blobs is how many blobs were verified (manifests, configs, layers).
	Blobs int `json:"blobs"`
	// Env is the environment the image's config declares (single-image manifests only).
	Env []string `json:"-"`
}

// InspectImage reads an OCI image layout — a directory, or a tar archive of one (optionally
// gzip-compressed), as `docker buildx build --output type=oci`, `skopeo copy oci-archive:` or
// Dagger's Container.export write it — and returns its image digest. index.json must name
// exactly one manifest. Every blob reachable from it (manifests, configs, layers) must be
// present with the size its descriptor states and content that hashes to its digest: the
// digest is only published for an image that is whole. Errors name the file and blob; a
// layout that is not one (a docker-save archive, for instance) is a usage error (exit 2), an
// inconsistent one a verification failure (exit 10).
func InspectImage(p string) (ImageInfo, error) {
	st, err := os.Stat(p)
	if err != nil {
		return ImageInfo{}, outcome.UsageErrorf("image: %v", err)
	}
	var l blobStore
	if st.IsDir() {
		l = &dirLayout{root: p}
	} else {
		t, err := readTarLayout(p)
		if err != nil {
			return ImageInfo{}, err
		}
		l = t
	}
	info, err := inspect(l)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("image %s: %w", p, err)
	}
	return info, nil
}

// blobStore is an OCI layout: its top-level files and its content-addressed blobs.
type blobStore interface {
	// file returns a top-level file (index.json, oci-layout); fs.ErrNotExist when absent.
	file(name string) ([]byte, error)
	// blob checks the blob against d and returns its content when it is at most
	// maxMetadataBlob bytes (nil otherwise).
	blob(d ocispec.Descriptor) ([]byte, error)
}

func inspect(l blobStore) (ImageInfo, error) {
	layoutFile, err := l.file(ocispec.ImageLayoutFile)
	if errors.Is(err, fs.ErrNotExist) {
		if _, derr := l.file("manifest.json"); derr == nil {
			return ImageInfo{}, outcome.UsageErrorf("a docker-save archive, not an OCI image layout: it does not carry the registry manifest, so its digest cannot be measured; export the image as OCI (docker buildx build --output type=oci, or skopeo copy docker-archive:… oci-archive:…)")
		}
		return ImageInfo{}, outcome.UsageErrorf("not an OCI image layout: no %s", ocispec.ImageLayoutFile)
	}
	if err != nil {
		return ImageInfo{}, err
	}
	var lay ocispec.ImageLayout
	if err := json.Unmarshal(layoutFile, &lay); err != nil || lay.Version != ocispec.ImageLayoutVersion {
		return ImageInfo{}, outcome.UsageErrorf("%s: want {\"imageLayoutVersion\":%q}", ocispec.ImageLayoutFile, ocispec.ImageLayoutVersion)
	}
	indexData, err := l.file(ocispec.ImageIndexFile)
	if errors.Is(err, fs.ErrNotExist) {
		return ImageInfo{}, outcome.UsageErrorf("not an OCI image layout: no %s", ocispec.ImageIndexFile)
	}
	if err != nil {
		return ImageInfo{}, err
	}
	var index ocispec.Index
	if err := json.Unmarshal(indexData, &index); err != nil {
		return ImageInfo{}, outcome.VerificationErrorf("%s: %v", ocispec.ImageIndexFile, err)
	}
	if len(index.Manifests) != 1 {
		var names []string
		for _, m := range index.Manifests {
			names = append(names, m.Digest.String()+" "+m.Annotations[ocispec.AnnotationRefName])
		}
		return ImageInfo{}, outcome.UsageErrorf("%s names %d manifests (%s); want exactly one image per profile", ocispec.ImageIndexFile, len(index.Manifests), strings.Join(names, ", "))
	}
	top := index.Manifests[0]
	v := &verifier{l: l}
	if err := v.descriptor(top, "index.json manifests[0]", 0); err != nil {
		return ImageInfo{}, err
	}
	return ImageInfo{Digest: top.Digest.String(), MediaType: top.MediaType, RefName: top.Annotations[ocispec.AnnotationRefName], Blobs: v.blobs, Env: v.env}, nil
}

// verifier walks the blobs reachable from a descriptor.
type verifier struct {
	l     blobStore
	blobs int
	// config is the config blob of a top-level image manifest, whose Env is kept in env.
	config digest.Digest
	env    []string
}

func (v *verifier) descriptor(d ocispec.Descriptor, where string, depth int) error {
	if depth > 4 {
		return outcome.VerificationErrorf("%s: indexes nested more than 4 deep", where)
	}
	if d.Digest.Algorithm() != digest.SHA256 || d.Digest.Validate() != nil {
		return outcome.VerificationErrorf("%s: digest %q: want sha256:<64 lower-case hex>", where, d.Digest)
	}
	data, err := v.l.blob(d)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	v.blobs++
	switch d.MediaType {
	case ocispec.MediaTypeImageIndex, dockerManifestList:
		var idx ocispec.Index
		if err := strictJSON(data, &idx); err != nil {
			return outcome.VerificationErrorf("%s: index %s: %v", where, d.Digest, err)
		}
		if len(idx.Manifests) == 0 {
			return outcome.VerificationErrorf("%s: index %s lists no manifests", where, d.Digest)
		}
		for i, m := range idx.Manifests {
			if err := v.descriptor(m, fmt.Sprintf("index %s manifests[%d]", d.Digest.Encoded()[:12], i), depth+1); err != nil {
				return err
			}
		}
	case ocispec.MediaTypeImageManifest, dockerManifest:
		var m ocispec.Manifest
		if err := strictJSON(data, &m); err != nil {
			return outcome.VerificationErrorf("%s: manifest %s: %v", where, d.Digest, err)
		}
		if m.Config.Digest == "" {
			return outcome.VerificationErrorf("%s: manifest %s has no config", where, d.Digest)
		}
		if depth == 0 {
			v.config = m.Config.Digest
		}
		if err := v.descriptor(m.Config, fmt.Sprintf("manifest %s config", d.Digest.Encoded()[:12]), depth+1); err != nil {
			return err
		}
		for i, layer := range m.Layers {
			if err := v.descriptor(layer, fmt.Sprintf("manifest %s layers[%d]", d.Digest.Encoded()[:12], i), depth+1); err != nil {
				return err
			}
		}
	default:
		if depth == 0 {
			return outcome.UsageErrorf("%s: media type %q is not an image manifest or index", where, d.MediaType)
		}
		// configs and layers: their bytes were verified above
		if d.Digest == v.config {
			var cfg struct {
				Config struct {
					Env []string `json:"Env"`
				} `json:"config"`
			}
			if json.Unmarshal(data, &cfg) == nil {
				v.env = cfg.Config.Env
			}
		}
	}
	return nil
}

func strictJSON(data []byte, v any) error {
	if data == nil {
		return fmt.Errorf("not a JSON document of at most %d bytes", maxMetadataBlob)
	}
	return json.Unmarshal(data, v)
}

// checkBlob streams r (the blob's bytes) against d: size and sha256. It returns the content
// when it is at most maxMetadataBlob bytes.
func checkBlob(r io.Reader, d ocispec.Descriptor) ([]byte, error) {
	h := sha256.New()
	var keep bytes.Buffer
	w := io.Writer(h)
	if d.Size <= maxMetadataBlob {
		w = io.MultiWriter(h, &keep)
	}
	n, err := io.Copy(w, r)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d.Digest, err)
	}
	if n != d.Size {
		return nil, outcome.VerificationErrorf("blob %s is %d bytes, its descriptor says %d", d.Digest, n, d.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.Digest.Encoded() {
		return nil, outcome.VerificationErrorf("blob %s: content hashes to sha256:%s", d.Digest, got)
	}
	if d.Size > maxMetadataBlob {
		return nil, nil
	}
	return keep.Bytes(), nil
}

// dirLayout is an OCI layout directory.
type dirLayout struct{ root string }

func (d *dirLayout) file(name string) ([]byte, error) {
	p := filepath.Join(d.root, name)
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxMetadataBlob {
		return nil, outcome.VerificationErrorf("%s: larger than %d bytes", name, maxMetadataBlob)
	}
	return os.ReadFile(p)
}

func (d *dirLayout) blob(desc ocispec.Descriptor) ([]byte, error) {
	f, err := os.Open(filepath.Join(d.root, ocispec.ImageBlobsDir, desc.Digest.Algorithm().String(), desc.Digest.Encoded()))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, outcome.VerificationErrorf("blob %s is missing from the layout", desc.Digest)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return checkBlob(bufio.NewReader(f), desc)
}

// tarLayout is an OCI layout read from a tar archive in one pass: top-level files and small
// blobs are kept, every blob is hashed as it streams by.
type tarLayout struct {
	files map[string][]byte
	blobs map[string]tarBlob
}

type tarBlob struct {
	size    int64
	sha256  string
	content []byte // kept for JSON blobs up to maxMetadataBlob, else nil
}

var blobPathRE = lazyre.New(`^blobs/sha256/([0-9a-f]{64})$`)

func readTarLayout(p string) (*tarLayout, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, outcome.UsageErrorf("image: %v", err)
	}
	defer f.Close()
	return readTarStream(p, f)
}

// readTarStream reads an OCI layout from a (gzipped) tar stream; p names it in errors.
func readTarStream(p string, in io.Reader) (*tarLayout, error) {
	br := bufio.NewReaderSize(in, 1<<20)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, outcome.UsageErrorf("image %s: gzip: %v", p, err)
		}
		defer gz.Close()
		r = gz
	}
	t := &tarLayout{files: map[string][]byte{}, blobs: map[string]tarBlob{}}
	tr := tar.NewReader(r)
	entries := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if entries == 0 {
				return nil, outcome.UsageErrorf("image %s: not a tar archive of an OCI image layout: %v", p, err)
			}
			return nil, outcome.VerificationErrorf("image %s: tar entry %d: %v", p, entries+1, err)
		}
		entries++
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		if m := blobPathRE().FindStringSubmatch(name); m != nil {
			h := sha256.New()
			var keep bytes.Buffer
			w := io.Writer(h)
			if hdr.Size <= maxMetadataBlob {
				w = io.MultiWriter(h, &keep)
			}
			n, err := io.Copy(w, tr)
			if err != nil {
				return nil, outcome.VerificationErrorf("image %s: %s: %v", p, name, err)
			}
			b := tarBlob{size: n, sha256: hex.EncodeToString(h.Sum(nil))}
			if hdr.Size <= maxMetadataBlob && bytes.HasPrefix(bytes.TrimLeft(keep.Bytes(), " \t\r\n"), []byte("{")) {
				b.content = keep.Bytes() // manifests, indexes, configs: JSON; layers are dropped
			}
			t.blobs[m[1]] = b
			continue
		}
		switch name {
		case ocispec.ImageLayoutFile, ocispec.ImageIndexFile, "manifest.json":
			if hdr.Size > maxMetadataBlob {
				return nil, outcome.VerificationErrorf("image %s: %s: larger than %d bytes", p, name, maxMetadataBlob)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				return nil, outcome.VerificationErrorf("image %s: %s: %v", p, name, err)
			}
			t.files[name] = data
		}
	}
	if entries == 0 {
		return nil, outcome.UsageErrorf("image %s: empty archive", p)
	}
	return t, nil
}

func (t *tarLayout) file(name string) ([]byte, error) {
	data, ok := t.files[name]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return data, nil
}

func (t *tarLayout) blob(d ocispec.Descriptor) ([]byte, error) {
	b, ok := t.blobs[d.Digest.Encoded()]
	if !ok {
		return nil, outcome.VerificationErrorf("blob %s is missing from the archive", d.Digest)
	}
	if b.size != d.Size {
		return nil, outcome.VerificationErrorf("blob %s is %d bytes, its descriptor says %d", d.Digest, b.size, d.Size)
	}
	if b.sha256 != d.Digest.Encoded() {
		return nil, outcome.VerificationErrorf("blob %s: content hashes to sha256:%s", d.Digest, b.sha256)
	}
	return b.content, nil
}

// FindImageArchive returns the OCI archive (*.oci.tar) in dir whose image digest, verified as
// InspectImage verifies it, is want (sha256:…); "" when none is. Archives that are not whole
// images are passed over: they cannot be the image want names. A dir that does not exist holds
// none.
func FindImageArchive(dir, want string) (string, error) {
	if _, err := digest.Parse(want); err != nil {
		return "", outcome.UsageErrorf("find image %s in %s: not a digest: %v", want, dir, err)
	}
	archives, err := filepath.Glob(filepath.Join(dir, "*.oci.tar"))
	if err != nil {
		return "", fmt.Errorf("find image %s in %s: %w", want, dir, err)
	}
	for _, a := range archives {
		if info, err := InspectImage(a); err == nil && info.Digest == want {
			return a, nil
		}
	}
	return "", nil
}
