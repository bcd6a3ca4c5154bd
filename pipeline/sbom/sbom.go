// Package sbom generates the SPDX 2.3 JSON software bill of materials of a release
// (sbom.spdx.json, SPEC §3, §5) with syft as a library, offline: from an OCI or Docker image
// archive, an OCI layout directory, a directory, or a Packer manifest of the node image.
//
// The output is deterministic: the same input gives byte-identical bytes. The creation time is
// the caller's (SOURCE_DATE_EPOCH or the commit time), the document namespace is derived from the
// document's content, packages, files and relationships are sorted, and nothing depends on the
// input's location on disk or on the time of the run.
package sbom

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/anchore/stereoscope"
	"github.com/anchore/syft/syft"
	"github.com/anchore/syft/syft/cataloging/filecataloging"
	"github.com/anchore/syft/syft/file"
	"github.com/anchore/syft/syft/format/common/spdxhelpers"
	"github.com/anchore/syft/syft/source"
	// The rpmdb cataloger's SQLite driver ("sqlite"), as syft's examples do: glebarez's
	// (modernc underneath), the one grype's DB layer registers too; modernc.org/sqlite's own
	// driver registers the same name, and a binary linking both panics at start-up.
	_ "github.com/glebarez/go-sqlite"
	"github.com/spdx/tools-golang/convert"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// Kind is the kind of input an SBOM is generated from.
type Kind string

// The input kinds.
const (
	// OCIArchive is a tar of an OCI image layout (oci-layout, index.json, blobs/).
	OCIArchive Kind = "oci-archive"
	// DockerArchive is a `docker save` tar (manifest.json, config, layer tars).
	DockerArchive Kind = "docker-archive"
	// OCIDir is an OCI image layout directory.
	OCIDir Kind = "oci-dir"
	// Dir is a plain directory (e.g. a source tree).
	Dir Kind = "dir"
	// PackerManifest is the manifest.json of Packer's manifest post-processor for the node image.
	PackerManifest Kind = "packer-manifest"
)

// Kinds lists every input kind.
func Kinds() []Kind { return []Kind{OCIArchive, DockerArchive, OCIDir, Dir, PackerManifest} }

// ParseKind parses an input kind name.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds() {
		if string(k) == s {
			return k, nil
		}
	}
	names := make([]string, 0, len(Kinds()))
	for _, k := range Kinds() {
		names = append(names, string(k))
	}
	return "", outcome.UsageErrorf("kind %q: must be one of %s", s, strings.Join(names, ", "))
}

// DefaultNamespaceBase prefixes the document namespace of every SBOM.
const DefaultNamespaceBase = "https://github.com/calimero-network/mero-release/spdxdocs/"

// Input says what to generate the SBOM of.
type Input struct {
	// Path is the image archive, OCI layout directory, directory or Packer manifest file.
	Path string
	Kind Kind
	// Name and Version name what the SBOM describes (e.g. "mero-kms", "1.3.0").
	Name, Version string
	// Created is the document's creation time (SOURCE_DATE_EPOCH or the commit time); it is
	// required so that the output does not depend on when it was generated.
	Created time.Time
	// NamespaceBase prefixes the document namespace; empty means DefaultNamespaceBase.
	NamespaceBase string
}

// sourceDateEpoch is the reproducible-builds variable the creation time comes from.
const sourceDateEpoch = "SOURCE_DATE_EPOCH"

// CreatedFromEnv reads the creation time from SOURCE_DATE_EPOCH (seconds since the Unix epoch,
// https://reproducible-builds.org/specs/source-date-epoch/). Unset, malformed or negative is a
// usage error: an SBOM stamped with the time of the run would not be reproducible.
func CreatedFromEnv(getenv func(string) string) (time.Time, error) {
	v := strings.TrimSpace(getenv(sourceDateEpoch))
	if v == "" {
		return time.Time{}, outcome.UsageErrorf("%s is not set: the SBOM's creation time must be fixed (e.g. export %s=$(git log -1 --format=%%ct))", sourceDateEpoch, sourceDateEpoch)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > 253402300799 { // year 9999
		return time.Time{}, outcome.UsageErrorf("%s=%q: must be a non-negative number of seconds since the Unix epoch", sourceDateEpoch, v)
	}
	return time.Unix(n, 0).UTC(), nil
}

func (in Input) check() error {
	switch {
	case in.Path == "":
		return outcome.UsageErrorf("sbom input: path is empty")
	case in.Name == "":
		return outcome.UsageErrorf("sbom input %s: name is empty", in.Path)
	case in.Version == "":
		return outcome.UsageErrorf("sbom input %s: version is empty", in.Path)
	case in.Created.IsZero():
		return outcome.UsageErrorf("sbom input %s: creation time is not set (%s or the commit time)", in.Path, sourceDateEpoch)
	}
	if _, err := ParseKind(string(in.Kind)); err != nil {
		return fmt.Errorf("sbom input %s: %w", in.Path, err)
	}
	st, err := os.Stat(in.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return outcome.UsageErrorf("sbom input %s: no such file or directory", in.Path)
		}
		return outcome.UsageErrorf("sbom input %s: %v", in.Path, err)
	}
	wantDir := in.Kind == OCIDir || in.Kind == Dir
	if st.IsDir() != wantDir {
		what := "a file"
		if wantDir {
			what = "a directory"
		}
		return outcome.UsageErrorf("sbom input %s: a %s input must be %s", in.Path, in.Kind, what)
	}
	return nil
}

// Generate catalogs the input with syft and returns the SPDX 2.3 JSON document. Images are
// catalogued with syft's image catalogers (OS packages, language packages, binaries) and the
// files those packages own; a directory with its directory catalogers (lock files, manifests,
// binaries); a Packer manifest as described in packer.go. A missing input, an input of the
// wrong shape or one syft cannot read as its kind is a usage error (exit 2).
func Generate(ctx context.Context, in Input) ([]byte, error) {
	if err := in.check(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sbom input %s: %w", in.Path, err)
	}
	switch in.Kind {
	case PackerManifest:
		return generatePacker(ctx, in)
	default:
		path := in.Path
		if in.Kind == OCIArchive || in.Kind == DockerArchive {
			normalized, cleanup, err := withoutDotSlash(in.Path)
			if err != nil {
				return nil, err
			}
			defer cleanup()
			path = normalized
		}
		doc, err := catalog(ctx, in, path, in.Path, file.FilesOwnedByPackageSelection)
		if err != nil {
			return nil, err
		}
		return finish(in, doc)
	}
}

// withoutDotSlash returns path unchanged unless the tar has "./"-prefixed entries (as
// `tar -C layout -cf image.tar .` writes), which syft's archive readers refuse as path
// traversal; it then writes a copy without the prefix (and without the "./" entry) to a
// temporary file, removed by cleanup. A file that is not a tar is returned unchanged for syft
// to report.
func withoutDotSlash(path string) (string, func(), error) {
	nothing := func() {}
	f, err := os.Open(path)
	if err != nil {
		return "", nothing, outcome.UsageErrorf("sbom input %s: %v", path, err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	found := false
	for {
		h, err := tr.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return path, nothing, nil // not (entirely) a tar: syft says what is wrong
			}
			break
		}
		if strings.HasPrefix(h.Name, "./") {
			found = true
			break
		}
	}
	if !found {
		return path, nothing, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", nothing, fmt.Errorf("sbom input %s: %w", path, err)
	}
	tmp, err := os.CreateTemp("", "mero-release-sbom-*.tar")
	if err != nil {
		return "", nothing, fmt.Errorf("sbom input %s: %w", path, err)
	}
	cleanup := func() { tmp.Close(); os.Remove(tmp.Name()) }
	tr = tar.NewReader(f)
	tw := tar.NewWriter(tmp)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			cleanup()
			return "", nothing, outcome.UsageErrorf("sbom input %s: read tar: %v", path, err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		if name == "" || name == "." {
			continue
		}
		h.Name = name
		if err := tw.WriteHeader(h); err != nil {
			cleanup()
			return "", nothing, fmt.Errorf("sbom input %s: rewrite tar: %w", path, err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			cleanup()
			return "", nothing, fmt.Errorf("sbom input %s: rewrite tar: %w", path, err)
		}
	}
	if err := tw.Close(); err != nil {
		cleanup()
		return "", nothing, fmt.Errorf("sbom input %s: rewrite tar: %w", path, err)
	}
	return tmp.Name(), cleanup, nil
}

// syftSourceName maps a kind to syft's source provider name.
func syftSourceName(k Kind) string {
	if k == PackerManifest {
		return string(Dir)
	}
	return string(k)
}

// Cleanup removes the temporary folders that syft's image readers (stereoscope) keep for the
// life of the process, including those a failed read of a bad archive leaves behind. Call it
// once, when the process is done with SBOMs: a Generate still running would lose its unpacked
// image.
func Cleanup() {
	stereoscope.Cleanup()
}

// catalog runs syft over path as in.Kind and returns the SPDX model syft's spdxjson encoder
// would write; errors name the input as display.
func catalog(ctx context.Context, in Input, path, display string, files file.Selection) (*spdx.Document, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sbom input %s: %w", display, err)
	}
	cfg := syft.DefaultGetSourceConfig().
		WithSources(syftSourceName(in.Kind)).
		WithAlias(source.Alias{Name: in.Name, Version: in.Version})
	if in.Kind == Dir || in.Kind == PackerManifest {
		// a repository's .git holds history, not content: it is not part of what is released
		cfg = cfg.WithBasePath(abs).WithExcludeConfig(source.ExcludeConfig{Paths: []string{"**/.git/**"}})
	}
	src, err := syft.GetSource(ctx, abs, cfg)
	if err != nil {
		return nil, outcome.UsageErrorf("sbom input %s: not a readable %s: %v", display, in.Kind, err)
	}
	defer src.Close()

	fileCfg := filecataloging.DefaultConfig().WithSelection(files).WithHashers(crypto.SHA1, crypto.SHA256)
	createCfg := syft.DefaultCreateSBOMConfig().
		WithTool("syft", SyftVersion).
		WithFilesConfig(fileCfg)
	s, err := syft.CreateSBOM(ctx, src, createCfg)
	if err == nil {
		err = ctx.Err() // syft may stop early on cancellation without saying so
	}
	if err != nil {
		return nil, fmt.Errorf("sbom input %s: catalog: %w", display, err)
	}
	doc := spdxhelpers.ToFormatModel(*s)
	if doc == nil {
		return nil, fmt.Errorf("sbom input %s: syft produced no SPDX document", display)
	}
	return doc, nil
}

// SyftVersion is the syft release this package is built with, as recorded in the SBOM's
// creators. It is a constant (a test holds it equal to go.mod's requirement) rather than read
// from the binary's build information, which test binaries and stripped builds lack: the same
// input must give the same bytes from every build of mero-release.
const SyftVersion = "v1.57.1"

// finish makes the document deterministic (creation info, sorted elements, a namespace derived
// from the content) and encodes it as SPDX 2.3 JSON.
func finish(in Input, doc *spdx.Document) ([]byte, error) {
	doc.DocumentName = in.Name + "-" + in.Version
	doc.CreationInfo.Created = in.Created.UTC().Format(time.RFC3339)
	doc.CreationInfo.Creators = []spdx.Creator{
		{CreatorType: "Tool", Creator: "mero-release"},
		{CreatorType: "Tool", Creator: "syft-" + SyftVersion},
	}
	sortDocument(doc)

	base := cmp.Or(in.NamespaceBase, DefaultNamespaceBase)
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	prefix := base + sanitize(in.Name) + "-" + sanitize(in.Version)
	doc.DocumentNamespace = prefix
	content, err := encode(doc)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(content)
	doc.DocumentNamespace = prefix + "-" + hex.EncodeToString(sum[:])
	return encode(doc)
}

// encode writes the document as SPDX 2.3 JSON, indented, with a trailing newline.
func encode(doc *spdx.Document) ([]byte, error) {
	var out v2_3.Document
	if err := convert.Document(doc, &out); err != nil {
		return nil, fmt.Errorf("convert SBOM to SPDX 2.3: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("encode SPDX JSON: %w", err)
	}
	return buf.Bytes(), nil
}

// sortDocument orders packages, files, relationships and other licenses by identifier, so the
// output never depends on cataloguing order.
func sortDocument(doc *spdx.Document) {
	slices.SortStableFunc(doc.Packages, func(a, b *spdx.Package) int {
		return strings.Compare(string(a.PackageSPDXIdentifier), string(b.PackageSPDXIdentifier))
	})
	slices.SortStableFunc(doc.Files, func(a, b *spdx.File) int {
		return strings.Compare(string(a.FileSPDXIdentifier), string(b.FileSPDXIdentifier))
	})
	key := func(r *spdx.Relationship) string {
		return refString(r.RefA) + "\x00" + r.Relationship + "\x00" + refString(r.RefB)
	}
	slices.SortStableFunc(doc.Relationships, func(a, b *spdx.Relationship) int {
		return strings.Compare(key(a), key(b))
	})
	doc.Relationships = slices.CompactFunc(doc.Relationships, func(a, b *spdx.Relationship) bool {
		return key(a) == key(b) && a.RelationshipComment == b.RelationshipComment
	})
	slices.SortStableFunc(doc.OtherLicenses, func(a, b *spdx.OtherLicense) int {
		return strings.Compare(a.LicenseIdentifier, b.LicenseIdentifier)
	})
}

func refString(r spdx.DocElementID) string {
	return string(r.DocumentRefID) + ":" + string(r.ElementRefID) + ":" + r.SpecialID
}

// sanitize keeps a name usable in a URI path segment.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '-'
	}, s)
}
