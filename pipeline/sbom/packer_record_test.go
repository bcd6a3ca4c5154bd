package sbom

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// recordedManifest is a Packer manifest of the current template: two profiles whose builds
// name the record provision.sh writes (packages_file, identity_file).
const recordedManifest = `{"builds": [
 {"name": "debug", "builder_type": "googlecompute", "artifact_id": "mero-tee-1-3-0-debug", "packer_run_uuid": "r1",
  "custom_data": {"profile": "debug", "source_image": "ubuntu-2404-tdx-v20250101", "packages_file": "os-packages-debug.tsv", "identity_file": "image-identity-debug.env"}},
 {"name": "locked-read-only", "builder_type": "googlecompute", "artifact_id": "mero-tee-1-3-0-locked-read-only", "packer_run_uuid": "r1",
  "custom_data": {"profile": "locked-read-only", "source_image": "ubuntu-2404-tdx-v20250101", "packages_file": "os-packages-locked-read-only.tsv", "identity_file": "image-identity-locked-read-only.env"}}
], "last_run_uuid": "r1"}`

// TestGeneratePackerManifestWithRecord builds the node SBOM from a Packer manifest whose
// builds recorded their packages: testdata/os-packages-recorded.tsv is a real recording, made
// with provision.sh's dpkg-query command on a Debian 12 machine (714 packages, with epochs,
// "+" and "~" in versions and ":amd64" name suffixes). The SBOM must validate against the SPDX
// 2.3 schema, read back with tools-golang's reader and, independently, with encoding/json, and
// list every package with its version and purl, plus the kernel and firmware identities.
func TestGeneratePackerManifestWithRecord(t *testing.T) {
	recorded, err := os.ReadFile("testdata/os-packages-recorded.tsv")
	if err != nil {
		t.Fatal(err)
	}
	kernelSum := strings.Repeat("5e", 32)
	identity := "os_id=debian\nos_version_id=12\nos_pretty_name=Debian GNU/Linux 12 (bookworm)\nkernel_release=6.1.0-41-cloud-amd64\nkernel_sha256=" + kernelSum + "\nfirmware_vendor=Google\nfirmware_version=Google\nfirmware_date=10/01/2025\n"
	dir := writeTree(t, t.TempDir(), map[string][]byte{
		"packer-manifest.json":                []byte(recordedManifest),
		"os-packages-debug.tsv":               recorded,
		"os-packages-locked-read-only.tsv":    recorded,
		"image-identity-debug.env":            []byte(identity),
		"image-identity-locked-read-only.env": []byte(identity),
		"provision.sh":                        []byte("#!/bin/sh\n"),
	})
	in := Input{Path: filepath.Join(dir, "packer-manifest.json"), Kind: PackerManifest, Name: "mero-tee", Version: "1.3.0", Created: created}
	out := generateTwice(t, in)
	doc := parse(t, out, "mero-tee", "1.3.0")

	byName := map[string]string{}
	purls := map[string]string{}
	for _, p := range doc.Packages {
		if strings.HasPrefix(string(p.PackageSPDXIdentifier), "DebPackage-") {
			byName[p.PackageName+"/"+p.PackageVersion] = string(p.PackageSPDXIdentifier)
			for _, r := range p.PackageExternalReferences {
				if r.RefType == "purl" {
					purls[p.PackageName+"/"+p.PackageVersion] = r.Locator
				}
			}
		}
	}
	if n := strings.Count(strings.TrimSpace(string(recorded)), "\n") + 1; len(byName) != n {
		t.Errorf("%d Debian packages in the SBOM, %d recorded (once each, though two images contain them)", len(byName), n)
	}
	for key, purl := range map[string]string{
		"libc6/2.36-9+deb12u14":       "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=debian-12&upstream=glibc",
		"bsdutils/1:2.38.1-5+deb12u3": "pkg:deb/debian/bsdutils@1%3A2.38.1-5%2Bdeb12u3?arch=amd64&distro=debian-12&upstream=util-linux",
		"openssl/3.0.19-1~deb12u2":    "pkg:deb/debian/openssl@3.0.19-1~deb12u2?arch=amd64&distro=debian-12",
		"bash/5.2.15-2+b8":            "pkg:deb/debian/bash@5.2.15-2%2Bb8?arch=amd64&distro=debian-12",
	} {
		if purls[key] != purl {
			t.Errorf("%s: purl %q, want %q", key, purls[key], purl)
		}
	}
	rels := relationships(doc)
	for _, img := range []string{"NodeImage-mero-tee-1-3-0-debug", "NodeImage-mero-tee-1-3-0-locked-read-only"} {
		for _, r := range []string{
			img + " CONTAINS " + byName["libc6/2.36-9+deb12u14"],
			img + " CONTAINS Kernel-6.1.0-41-cloud-amd64-5e5e5e5e5e5e",
			"Firmware-Google-Google-10-01-2025 DEPENDENCY_OF " + img,
			img + " DESCENDANT_OF BaseImage-ubuntu-2404-tdx-v20250101",
		} {
			if !slices.Contains(rels, r) {
				t.Errorf("relationship %q missing", r)
			}
		}
	}
	want := []string{"FIRMWARE Google firmware Google", "OPERATING_SYSTEM linux-kernel 6.1.0-41-cloud-amd64"}
	for _, w := range want {
		if !slices.Contains(packages(doc), w) {
			t.Errorf("package %q missing", w)
		}
	}

	// An independent read: plain JSON, the SPDX 2.3 field names.
	var plain struct {
		SPDXVersion string `json:"spdxVersion"`
		Packages    []struct {
			SPDXID       string `json:"SPDXID"`
			Name         string `json:"name"`
			VersionInfo  string `json:"versionInfo"`
			Checksums    []struct{ Algorithm, ChecksumValue string }
			ExternalRefs []struct {
				ReferenceType    string `json:"referenceType"`
				ReferenceLocator string `json:"referenceLocator"`
			} `json:"externalRefs"`
		} `json:"packages"`
	}
	if err := json.NewDecoder(bytes.NewReader(out)).Decode(&plain); err != nil {
		t.Fatal(err)
	}
	var kernel, deb int
	for _, p := range plain.Packages {
		switch {
		case p.Name == "linux-kernel" && p.VersionInfo == "6.1.0-41-cloud-amd64" && len(p.Checksums) == 1 && p.Checksums[0].ChecksumValue == kernelSum:
			kernel++
		case strings.HasPrefix(p.SPDXID, "SPDXRef-DebPackage-") && p.VersionInfo != "" && len(p.ExternalRefs) == 1 && strings.HasPrefix(p.ExternalRefs[0].ReferenceLocator, "pkg:deb/debian/"+strings.ReplaceAll(p.Name, "+", "%2B")+"@"):
			deb++
		}
	}
	if plain.SPDXVersion != "SPDX-2.3" || kernel != 1 || deb != len(byName) {
		t.Errorf("plain JSON read: version %q, %d kernels, %d Debian packages with versions and purls (want 1 and %d)", plain.SPDXVersion, kernel, deb, len(byName))
	}
}

func TestGeneratePackerManifestBadRecord(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string][]byte{
		"packer-manifest.json":                []byte(recordedManifest),
		"os-packages-debug.tsv":               []byte("libc6\t2.39\tamd64\n"),
		"image-identity-debug.env":            []byte("os_id=ubuntu\n"),
		"os-packages-locked-read-only.tsv":    []byte("libc6\t2.39\tamd64\tglibc\n"),
		"image-identity-locked-read-only.env": []byte("os_id=ubuntu\n"),
	})
	in := Input{Path: filepath.Join(dir, "packer-manifest.json"), Kind: PackerManifest, Name: "mero-tee", Version: "1.3.0", Created: created}
	if _, err := Generate(t.Context(), in); err == nil || !strings.Contains(err.Error(), "os-packages-debug.tsv:1") {
		t.Fatalf("a malformed package list: %v", err)
	}
}
