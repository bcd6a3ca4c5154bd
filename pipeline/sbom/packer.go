package sbom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/anchore/syft/syft/file"
	"github.com/spdx/tools-golang/spdx"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// maxPackerManifest bounds the size of a Packer manifest read into memory.
const maxPackerManifest = 16 << 20

// PackerManifestFile is the shape of the file Packer's manifest post-processor writes.
type PackerManifestFile struct {
	Builds []PackerBuild `json:"builds"`
	// LastRunUUID names the newest run; Packer appends the builds of every run to the file.
	LastRunUUID string `json:"last_run_uuid"`
}

// PackerBuild is one build of a Packer manifest.
type PackerBuild struct {
	// Name is the build's source name (e.g. "debug"); BuilderType e.g. "googlecompute".
	Name        string `json:"name"`
	BuilderType string `json:"builder_type"`
	BuildTime   int64  `json:"build_time"`
	// ArtifactID is what the build produced: for googlecompute, the image name.
	ArtifactID    string `json:"artifact_id"`
	PackerRunUUID string `json:"packer_run_uuid"`
	// CustomData is the template's custom_data; "profile", "source_image",
	// "source_image_family" and "source_image_project" are recognised.
	CustomData map[string]string `json:"custom_data"`
	Files      []struct {
		Name string `json:"name"`
		Size int64  `json:"size"`
	} `json:"files"`
}

// ReadPackerManifest parses a Packer manifest and returns the builds of its last run (every
// build when no build carries the last run's id). Malformed JSON (with its line), no builds, or a
// build without name, builder_type or artifact_id is a usage error naming the field.
func ReadPackerManifest(r io.Reader, name string) ([]PackerBuild, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxPackerManifest+1))
	if err != nil {
		return nil, fmt.Errorf("packer manifest %s: %w", name, err)
	}
	if len(data) > maxPackerManifest {
		return nil, outcome.UsageErrorf("packer manifest %s: larger than %d bytes", name, maxPackerManifest)
	}
	var m PackerManifestFile
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		return nil, outcome.UsageErrorf("packer manifest %s: %s", name, jsonError(data, err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, outcome.UsageErrorf("packer manifest %s: trailing data after the object", name)
	}
	if len(m.Builds) == 0 {
		return nil, outcome.UsageErrorf("packer manifest %s: builds: empty (was the manifest post-processor run?)", name)
	}
	builds := m.Builds
	if m.LastRunUUID != "" {
		var last []PackerBuild
		for _, b := range m.Builds {
			if b.PackerRunUUID == m.LastRunUUID {
				last = append(last, b)
			}
		}
		if len(last) > 0 {
			builds = last
		}
	}
	for i, b := range m.Builds {
		for _, f := range [][2]string{{"name", b.Name}, {"builder_type", b.BuilderType}, {"artifact_id", b.ArtifactID}} {
			if strings.TrimSpace(f[1]) == "" {
				return nil, outcome.UsageErrorf("packer manifest %s: builds[%d].%s: empty", name, i, f[0])
			}
		}
	}
	return builds, nil
}

// jsonError describes a decoding error with the line it happened on.
func jsonError(data []byte, err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("line %d: %v", 1+bytes.Count(data[:min(int(syn.Offset), len(data))], []byte("\n")), err)
	case errors.As(err, &typ):
		return fmt.Sprintf("line %d: %s: %v", 1+bytes.Count(data[:min(int(typ.Offset), len(data))], []byte("\n")), typ.Field, err)
	case errors.Is(err, io.EOF):
		return "empty file"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	return err.Error()
}

// generatePacker builds the SBOM of the node image from its Packer manifest. What is catalogued:
//
//   - the image definition directory (the manifest's directory: the Packer template,
//     provisioning scripts and every file copied into the image) with syft's directory
//     catalogers, and every file in it with SHA-1 and SHA-256 digests;
//   - one OPERATING_SYSTEM package per Packer build of the last run, named by its artifact_id
//     (the GCP image), with the build's name, builder and custom_data in its comment; it is
//     GENERATED_FROM the definition directory and DESCRIBED by the document;
//   - the pinned base image (custom_data "source_image", e.g. ubuntu-2404-tdx-v20260101) as an
//     OPERATING_SYSTEM package each node image is a DESCENDANT_OF.
//
// The GCP image itself is not opened: its packages come from the base image and the
// provisioning that the definition directory records.
func generatePacker(ctx context.Context, in Input) ([]byte, error) {
	f, err := os.Open(in.Path)
	if err != nil {
		return nil, outcome.UsageErrorf("sbom input %s: %v", in.Path, err)
	}
	builds, err := ReadPackerManifest(f, in.Path)
	f.Close()
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(in.Path)
	doc, err := catalog(ctx, in, dir, in.Path, file.AllFilesSelection)
	if err != nil {
		return nil, err
	}
	var root spdx.ElementID
	for _, r := range doc.Relationships {
		if r.RefA.ElementRefID == "DOCUMENT" && r.Relationship == "DESCRIBES" {
			root = r.RefB.ElementRefID
		}
	}
	relate := func(a spdx.ElementID, typ string, b spdx.ElementID) {
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: spdx.DocElementID{ElementRefID: a}, Relationship: typ, RefB: spdx.DocElementID{ElementRefID: b},
		})
	}
	bases := map[spdx.ElementID]bool{}
	for _, b := range builds {
		id := spdx.ElementID("NodeImage-" + sanitize(b.ArtifactID))
		doc.Packages = append(doc.Packages, osPackage(id, b.ArtifactID, in.Version, buildComment(b)))
		relate("DOCUMENT", "DESCRIBES", id)
		if root != "" {
			relate(id, "GENERATED_FROM", root)
		}
		if base := b.CustomData["source_image"]; base != "" {
			baseID := spdx.ElementID("BaseImage-" + sanitize(base))
			if !bases[baseID] {
				bases[baseID] = true
				comment := "Pinned base image of the node image"
				if fam, proj := b.CustomData["source_image_family"], b.CustomData["source_image_project"]; fam != "" || proj != "" {
					comment += fmt.Sprintf(" (family %q, project %q)", fam, proj)
				}
				doc.Packages = append(doc.Packages, osPackage(baseID, base, "", comment+"."))
			}
			relate(id, "DESCENDANT_OF", baseID)
		}
	}
	return finish(in, doc)
}

func osPackage(id spdx.ElementID, name, version, comment string) *spdx.Package {
	return &spdx.Package{
		PackageName:               name,
		PackageSPDXIdentifier:     id,
		PackageVersion:            version,
		PrimaryPackagePurpose:     "OPERATING_SYSTEM",
		PackageSupplier:           &spdx.Supplier{Supplier: "NOASSERTION"},
		PackageDownloadLocation:   "NOASSERTION",
		FilesAnalyzed:             false,
		IsFilesAnalyzedTagPresent: true,
		PackageLicenseConcluded:   "NOASSERTION",
		PackageLicenseDeclared:    "NOASSERTION",
		PackageCopyrightText:      "NOASSERTION",
		PackageComment:            comment,
	}
}

func buildComment(b PackerBuild) string {
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(b.CustomData)) {
		kv = append(kv, k+"="+b.CustomData[k])
	}
	s := fmt.Sprintf("Packer build %q (builder %s)", b.Name, b.BuilderType)
	if len(kv) > 0 {
		s += "; custom_data: " + strings.Join(kv, ", ")
	}
	return s + "."
}
