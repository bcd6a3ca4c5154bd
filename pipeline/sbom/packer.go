package sbom

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/anchore/syft/syft/file"
	"github.com/spdx/tools-golang/spdx"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/packer"
)

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
	builds, err := packer.ReadManifest(f, in.Path)
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

func buildComment(b packer.Build) string {
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
