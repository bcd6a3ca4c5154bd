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
//     OPERATING_SYSTEM package each node image is a DESCENDANT_OF;
//   - what provision.sh recorded on the build VM (packer.ReadRecord: the files custom_data
//     packages_file and identity_file name, beside the manifest): every installed Debian
//     package with its version, architecture and a purl (pkg:deb/OS/NAME@VERSION?arch=…&distro=…),
//     the kernel the image boots (release and SHA-256 of its vmlinuz) and the build VM's
//     firmware (SMBIOS vendor, version, date), each CONTAINED by the node image (the firmware:
//     a DEPENDENCY_OF it, since GCE supplies it). A manifest of an older template without the
//     record yields the image packages alone.
//
// The GCP image itself is not opened: its content is what the record and the definition
// directory say.
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
	added := map[spdx.ElementID]string{} // packages from the records, by id → identity key
	add := func(key string, id spdx.ElementID, p *spdx.Package) spdx.ElementID {
		base := id // two different packages whose ids sanitize alike get -2, -3, …
		for n := 2; added[id] != "" && added[id] != key; n++ {
			id = spdx.ElementID(fmt.Sprintf("%s-%d", base, n))
		}
		if added[id] == "" {
			added[id] = key
			p.PackageSPDXIdentifier = id
			doc.Packages = append(doc.Packages, p)
		}
		return id
	}
	for _, b := range builds {
		id := spdx.ElementID("NodeImage-" + sanitize(b.ArtifactID))
		rec, hasRecord, err := packer.ReadRecord(dir, b)
		if err != nil {
			return nil, err
		}
		comment := buildComment(b)
		if hasRecord {
			comment += fmt.Sprintf(" Recorded at build: %s %s (%s), %d Debian packages, kernel %s.", rec.Identity.OSID,
				rec.Identity.OSVersionID, rec.Identity.OSPrettyName, len(rec.Packages), rec.Identity.KernelRelease)
		}
		doc.Packages = append(doc.Packages, osPackage(id, b.ArtifactID, in.Version, comment))
		relate("DOCUMENT", "DESCRIBES", id)
		if hasRecord {
			for _, p := range rec.Packages {
				key := "deb\x00" + p.Name + "\x00" + p.Version + "\x00" + p.Architecture
				pid := add(key, spdx.ElementID("DebPackage-"+sanitize(p.Name)+"-"+sanitize(p.Architecture)+"-"+sanitize(p.Version)), debPackage(p, rec.Identity))
				relate(id, "CONTAINS", pid)
			}
			k := rec.Identity
			kp := osPackage("", "linux-kernel", k.KernelRelease, "The kernel the image boots, /boot/vmlinuz-"+k.KernelRelease+" (measured into RTMR1 at boot).")
			kp.PrimaryPackagePurpose = "OPERATING_SYSTEM"
			kp.PackageChecksums = []spdx.Checksum{{Algorithm: spdx.SHA256, Value: k.KernelSHA256}}
			relate(id, "CONTAINS", add("kernel\x00"+k.KernelSHA256, spdx.ElementID("Kernel-"+sanitize(k.KernelRelease)+"-"+k.KernelSHA256[:12]), kp))
			if k.FirmwareVendor != "" || k.FirmwareVersion != "" {
				fw := osPackage("", strings.TrimSpace(k.FirmwareVendor+" firmware"), k.FirmwareVersion,
					fmt.Sprintf("SMBIOS BIOS of the build VM (vendor %q, version %q, date %q): on GCE the TDX firmware is supplied by the platform, not the image, and measured into MRTD/RTMR0.", k.FirmwareVendor, k.FirmwareVersion, k.FirmwareDate))
				fw.PrimaryPackagePurpose = "FIRMWARE"
				fwID := add("fw\x00"+k.FirmwareVendor+"\x00"+k.FirmwareVersion+"\x00"+k.FirmwareDate, spdx.ElementID("Firmware-"+sanitize(k.FirmwareVendor+"-"+k.FirmwareVersion+"-"+k.FirmwareDate)), fw)
				relate(fwID, "DEPENDENCY_OF", id)
			}
		}
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

// debPackage is the SPDX package of an installed Debian package, with its purl.
func debPackage(p packer.OSPackage, id packer.Identity) *spdx.Package {
	purl := "pkg:deb/" + purlEscape(id.OSID) + "/" + purlEscape(p.Name) + "@" + purlEscape(p.Version) + "?arch=" + purlEscape(p.Architecture)
	if id.OSVersionID != "" {
		purl += "&distro=" + purlEscape(id.OSID+"-"+id.OSVersionID)
	}
	if p.Source != p.Name {
		purl += "&upstream=" + purlEscape(p.Source)
	}
	pkg := osPackage("", p.Name, p.Version, "")
	pkg.PrimaryPackagePurpose = ""
	pkg.PackageComment = ""
	pkg.PackageSourceInfo = "Debian package installed in the image (dpkg-query at build); source package " + p.Source
	pkg.PackageExternalReferences = []*spdx.PackageExternalReference{{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: purl}}
	return pkg
}

// purlEscape percent-encodes s for a purl component, keeping only unreserved characters.
func purlEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
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
