package sbom

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

var created = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// validateSchema validates the SBOM against the SPDX 2.3 JSON Schema (testdata/spdx-schema-2.3.json,
// the SPDX project's schema as syft v1.57.1 ships it).
func validateSchema(t *testing.T, out []byte) {
	t.Helper()
	raw, err := os.ReadFile("testdata/spdx-schema-2.3.json")
	if err != nil {
		t.Fatal(err)
	}
	schemaDoc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("http://spdx.org/rdf/terms/2.3", schemaDoc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("http://spdx.org/rdf/terms/2.3")
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(inst); err != nil {
		t.Errorf("the SBOM does not validate against the SPDX 2.3 schema: %v", err)
	}
}

// parse validates the SBOM against the SPDX 2.3 schema, reads it with tools-golang's SPDX JSON
// reader (independent of syft's encoder) and checks the document-level fields every SBOM must have.
func parse(t *testing.T, out []byte, name, version string) *v2_3.Document {
	t.Helper()
	validateSchema(t, out)
	doc, err := spdxjson.Read(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("SPDX JSON reader: %v", err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXIdentifier != "DOCUMENT" {
		t.Errorf("document header = %q %q %q", doc.SPDXVersion, doc.DataLicense, doc.SPDXIdentifier)
	}
	if doc.DocumentName != name+"-"+version {
		t.Errorf("name = %q", doc.DocumentName)
	}
	if doc.CreationInfo == nil || doc.CreationInfo.Created != "2026-11-25T12:00:00Z" {
		t.Errorf("creation info = %+v", doc.CreationInfo)
	}
	var creators []string
	for _, c := range doc.CreationInfo.Creators {
		creators = append(creators, c.CreatorType+": "+c.Creator)
	}
	if want := []string{"Tool: mero-release", "Tool: syft-" + SyftVersion}; !slices.Equal(creators, want) {
		t.Errorf("creators = %q, want %q", creators, want)
	}
	// the namespace is the SHA-256 of the document written with the namespace's prefix only
	prefix := DefaultNamespaceBase + name + "-" + version
	hash, ok := strings.CutPrefix(doc.DocumentNamespace, prefix+"-")
	if !ok || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(hash) {
		t.Fatalf("namespace = %q, want %s-<sha256>", doc.DocumentNamespace, prefix)
	}
	content := bytes.Replace(out, []byte(`"`+doc.DocumentNamespace+`"`), []byte(`"`+prefix+`"`), 1)
	if sum := sha256.Sum256(content); hex.EncodeToString(sum[:]) != hash {
		t.Errorf("namespace hash %s is not the SHA-256 of the content", hash)
	}
	return doc
}

// packages returns "type name version" for every package (syft's package type, "root" for the
// document root, the purpose for the others), sorted.
func packages(doc *v2_3.Document) []string {
	var out []string
	for _, p := range doc.Packages {
		id := string(p.PackageSPDXIdentifier)
		kind := p.PrimaryPackagePurpose
		switch {
		case strings.HasPrefix(id, "DocumentRoot-"):
			kind = "root"
		case strings.HasPrefix(id, "Package-"):
			kind = strings.SplitN(id, "-"+p.PackageName+"-", 2)[0][len("Package-"):]
		}
		out = append(out, kind+" "+p.PackageName+" "+p.PackageVersion)
	}
	slices.Sort(out)
	return out
}

func relationships(doc *v2_3.Document) []string {
	var out []string
	for _, r := range doc.Relationships {
		out = append(out, string(r.RefA.ElementRefID)+" "+r.Relationship+" "+string(r.RefB.ElementRefID))
	}
	return out
}

// generateTwice generates the SBOM twice and requires identical bytes.
func generateTwice(t *testing.T, in Input) []byte {
	t.Helper()
	first, err := Generate(context.Background(), in)
	if err != nil {
		t.Fatalf("Generate(%s): %v", in.Kind, err)
	}
	second, err := Generate(context.Background(), in)
	if err != nil {
		t.Fatalf("Generate(%s) again: %v", in.Kind, err)
	}
	if !bytes.Equal(first, second) {
		t.Fatalf("Generate(%s) is not deterministic:\n%s", in.Kind, firstDiff(first, second))
	}
	return first
}

func firstDiff(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d: %s\n    vs: %s", i+1, al[i], bl[i])
		}
	}
	return "lengths differ"
}

var imagePackages = []string{
	"deb libmero0 1.2.0-1",
	"deb mero-kms 1.3.0-1",
	"npm left-pad 1.3.0",
	"root mero-kms 1.3.0",
}

func TestGenerateOCIArchive(t *testing.T) {
	dir := t.TempDir()
	img := newImage(t, imageFiles())
	archive := tarFiles(t, img.ociLayout(t))
	in := Input{Path: writeFile(t, filepath.Join(dir, "a", "image.tar"), archive), Kind: OCIArchive, Name: "mero-kms", Version: "1.3.0", Created: created}
	out := generateTwice(t, in)
	doc := parse(t, out, "mero-kms", "1.3.0")
	if got := packages(doc); !slices.Equal(got, imagePackages) {
		t.Errorf("packages = %q, want %q", got, imagePackages)
	}
	var root *v2_3.Package
	for _, p := range doc.Packages {
		if p.PackageSPDXIdentifier == "DocumentRoot-Image-mero-kms" {
			root = p
		}
	}
	if root == nil || root.PrimaryPackagePurpose != "CONTAINER" || len(root.PackageChecksums) != 1 ||
		"sha256:"+root.PackageChecksums[0].Value != digestOf(img.manifest) {
		t.Errorf("root package %+v: want a CONTAINER with the manifest digest %s", root, digestOf(img.manifest))
	}
	rels := relationships(doc)
	if !slices.Contains(rels, "DOCUMENT DESCRIBES DocumentRoot-Image-mero-kms") {
		t.Errorf("relationships lack DOCUMENT DESCRIBES root: %q", rels)
	}
	if !slices.IsSorted(rels) {
		t.Errorf("relationships are not sorted: %q", rels)
	}
	var files []string
	for _, f := range doc.Files {
		files = append(files, f.FileName)
	}
	if !slices.Contains(files, "var/lib/dpkg/status") {
		t.Errorf("files = %q: want the dpkg database the packages came from", files)
	}

	t.Run("same bytes from another path", func(t *testing.T) {
		other := writeFile(t, filepath.Join(dir, "elsewhere", "copy.tar"), archive)
		moved, err := Generate(context.Background(), Input{Path: other, Kind: OCIArchive, Name: "mero-kms", Version: "1.3.0", Created: created})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(moved, out) {
			t.Errorf("the SBOM depends on the archive's path:\n%s", firstDiff(out, moved))
		}
	})
	t.Run("tar with ./ entries", func(t *testing.T) {
		dotted := writeFile(t, filepath.Join(dir, "dotted.tar"), tarFilesPrefixed(t, img.ociLayout(t), "./"))
		got, err := Generate(context.Background(), Input{Path: dotted, Kind: OCIArchive, Name: "mero-kms", Version: "1.3.0", Created: created})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, out) {
			t.Errorf("an archive written with `tar -C layout .` gives another SBOM:\n%s", firstDiff(out, got))
		}
	})
	t.Run("name, version and time are part of the content", func(t *testing.T) {
		later, err := Generate(context.Background(), Input{Path: in.Path, Kind: OCIArchive, Name: "mero-kms", Version: "1.3.0", Created: created.Add(time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		var a, b v2_3.Document
		if err := json.Unmarshal(out, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(later, &b); err != nil {
			t.Fatal(err)
		}
		if a.DocumentNamespace == b.DocumentNamespace {
			t.Error("two documents with different content share a namespace")
		}
	})
}

func TestGenerateOtherImageKinds(t *testing.T) {
	dir := t.TempDir()
	img := newImage(t, imageFiles())
	cases := []Input{
		{Path: writeFile(t, filepath.Join(dir, "docker.tar"), img.dockerArchive(t)), Kind: DockerArchive},
		{Path: writeTree(t, filepath.Join(dir, "layout"), img.ociLayout(t)), Kind: OCIDir},
	}
	for _, in := range cases {
		t.Run(string(in.Kind), func(t *testing.T) {
			in.Name, in.Version, in.Created = "mero-kms", "1.3.0", created
			doc := parse(t, generateTwice(t, in), "mero-kms", "1.3.0")
			if got := packages(doc); !slices.Equal(got, imagePackages) {
				t.Errorf("packages = %q, want %q", got, imagePackages)
			}
		})
	}
}

// cargoLock is the lock file of a Rust workspace like mero-kms-phala's.
const cargoLock = `# This file is automatically @generated by Cargo.
version = 3

[[package]]
name = "mero-kms-phala"
version = "1.3.0"
dependencies = [
 "serde",
]

[[package]]
name = "serde"
version = "1.0.210"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "c8e3592472072e6e22e0a54d5904d9febf8508f65fb8552499a1abc7d1078c3a"
`

func TestGenerateDir(t *testing.T) {
	root := t.TempDir()
	tree := map[string][]byte{
		"Cargo.lock":              []byte(cargoLock),
		"src/main.rs":             []byte("fn main() {}\n"),
		"web/package-lock.json":   []byte(packageLock),
		"web/package.json":        []byte(`{"name": "kms-web", "version": "0.1.0", "dependencies": {"left-pad": "1.3.0"}}`),
		"docs/README.md":          []byte("# KMS\n"),
		"docker-compose.yaml":     []byte("services: {}\n"),
		"attestation-policy.json": []byte("{}\n"),
	}
	first := writeTree(t, filepath.Join(root, "one", "kms"), tree)
	out := generateTwice(t, Input{Path: first, Kind: Dir, Name: "mero-kms-source", Version: "1.3.0", Created: created})
	doc := parse(t, out, "mero-kms-source", "1.3.0")
	want := []string{"npm kms-web 0.1.0", "npm left-pad 1.3.0", "root mero-kms-source 1.3.0", "rust-crate mero-kms-phala 1.3.0", "rust-crate serde 1.0.210"}
	if got := packages(doc); !slices.Equal(got, want) {
		t.Errorf("packages = %q, want %q", got, want)
	}
	second := writeTree(t, filepath.Join(root, "two", "elsewhere"), tree)
	moved, err := Generate(context.Background(), Input{Path: second, Kind: Dir, Name: "mero-kms-source", Version: "1.3.0", Created: created})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(moved, out) {
		t.Errorf("the SBOM of a directory depends on where it is:\n%s", firstDiff(out, moved))
	}
	if bytes.Contains(out, []byte(root)) {
		t.Error("the SBOM contains the absolute path of the directory")
	}
}

const packageLock = `{
  "name": "kms-web",
  "version": "0.1.0",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": {"name": "kms-web", "version": "0.1.0", "dependencies": {"left-pad": "1.3.0"}},
    "node_modules/left-pad": {
      "version": "1.3.0",
      "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz",
      "integrity": "sha512-XI5MPzVNApjAyhQzphX8BkmKsKUxD4LdyK24iZeQEY7+tRNqjZuEDYnp2zu9rvDXoNtHXUBsuhsJT2sJnBR8wbA==",
      "license": "WTFPL"
    }
  }
}
`

// packerManifest is a Packer manifest after two runs (pipeline/packer's test data).
var packerManifest = func() string {
	data, err := os.ReadFile(filepath.Join("..", "packer", "testdata", "packer-manifest.json"))
	if err != nil {
		panic(err)
	}
	return string(data)
}()

func TestGeneratePackerManifest(t *testing.T) {
	dir := writeTree(t, t.TempDir(), map[string][]byte{
		"manifest.json":         []byte(packerManifest),
		"node-image.pkr.hcl":    []byte(`source "googlecompute" "debug" { source_image = var.source_image }` + "\n"),
		"provision/install.sh":  []byte("#!/bin/sh\nset -eu\ninstall -m 0755 merod /usr/bin/merod\n"),
		"files/merod.service":   []byte("[Service]\nExecStart=/usr/bin/merod\n"),
		"files/Cargo.lock":      []byte(cargoLock),
		"firmware/firmware.bin": bytes.Repeat([]byte{0x5a}, 4096),
		".git/HEAD":             []byte("ref: refs/heads/main\n"),
	})
	in := Input{Path: filepath.Join(dir, "manifest.json"), Kind: PackerManifest, Name: "mero-tee", Version: "1.3.0", Created: created}
	doc := parse(t, generateTwice(t, in), "mero-tee", "1.3.0")
	want := []string{
		"OPERATING_SYSTEM mero-tee-debug-1-3-0 1.3.0",
		"OPERATING_SYSTEM mero-tee-locked-read-only-1-3-0 1.3.0",
		"OPERATING_SYSTEM ubuntu-2404-tdx-v20260101 ",
		"root mero-tee 1.3.0",
		"rust-crate mero-kms-phala 1.3.0",
		"rust-crate serde 1.0.210",
	}
	if got := packages(doc); !slices.Equal(got, want) {
		t.Errorf("packages = %q, want %q (the old run's image must not appear)", got, want)
	}
	rels := relationships(doc)
	for _, r := range []string{
		"DOCUMENT DESCRIBES NodeImage-mero-tee-debug-1-3-0",
		"DOCUMENT DESCRIBES NodeImage-mero-tee-locked-read-only-1-3-0",
		"NodeImage-mero-tee-debug-1-3-0 DESCENDANT_OF BaseImage-ubuntu-2404-tdx-v20260101",
		"NodeImage-mero-tee-locked-read-only-1-3-0 DESCENDANT_OF BaseImage-ubuntu-2404-tdx-v20260101",
		"NodeImage-mero-tee-debug-1-3-0 GENERATED_FROM DocumentRoot-Directory-mero-tee",
	} {
		if !slices.Contains(rels, r) {
			t.Errorf("relationship %q missing from %q", r, rels)
		}
	}
	// every file of the image definition is listed with SHA-1 and SHA-256
	files := map[string]int{}
	for _, f := range doc.Files {
		files[strings.TrimPrefix(f.FileName, "/")] = len(f.Checksums)
	}
	for _, name := range []string{"manifest.json", "node-image.pkr.hcl", "provision/install.sh", "files/merod.service", "firmware/firmware.bin"} {
		if files[name] != 2 {
			t.Errorf("file %s: %d checksums, want SHA-1 and SHA-256 (files: %v)", name, files[name], files)
		}
	}
	if _, ok := files[".git/HEAD"]; ok {
		t.Error("the SBOM lists files of .git")
	}
	for _, p := range doc.Packages {
		if p.PackageName == "mero-tee-debug-1-3-0" && !strings.Contains(p.PackageComment, "source_image=ubuntu-2404-tdx-v20260101") {
			t.Errorf("node image comment %q lacks the custom_data", p.PackageComment)
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	// syft's image reader keeps a temporary folder per process, and a failed read leaves its
	// part behind; Cleanup must remove them. Start from no folder, under a TMPDIR of our own.
	Cleanup()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dir := t.TempDir()
	text := writeFile(t, filepath.Join(dir, "notes.txt"), []byte("this is not an image\n"))
	emptyTar := writeFile(t, filepath.Join(dir, "empty.tar"), tarFiles(t, map[string][]byte{"hello.txt": []byte("hi")}))
	badPacker := writeFile(t, filepath.Join(dir, "bad", "manifest.json"), []byte("{\n  \"builds\": [\n    {\"name\": \"debug\",}\n  ]\n}\n"))
	noBuilds := writeFile(t, filepath.Join(dir, "none", "manifest.json"), []byte(`{"builds": [], "last_run_uuid": ""}`))
	noArtifact := writeFile(t, filepath.Join(dir, "noart", "manifest.json"), []byte(`{"builds": [{"name": "debug", "builder_type": "googlecompute"}]}`))
	base := Input{Name: "mero-kms", Version: "1.3.0", Created: created}
	with := func(f func(*Input)) Input { in := base; f(&in); return in }
	cases := []struct {
		name string
		in   Input
		want string
	}{
		{"missing file", with(func(in *Input) { in.Path, in.Kind = filepath.Join(dir, "nope.tar"), OCIArchive }), "no such file or directory"},
		{"text file as oci-archive", with(func(in *Input) { in.Path, in.Kind = text, OCIArchive }), "not a readable oci-archive"},
		{"text file as docker-archive", with(func(in *Input) { in.Path, in.Kind = text, DockerArchive }), "not a readable docker-archive"},
		{"tar without an image", with(func(in *Input) { in.Path, in.Kind = emptyTar, OCIArchive }), "not a readable oci-archive"},
		{"tar without an image (docker)", with(func(in *Input) { in.Path, in.Kind = emptyTar, DockerArchive }), "not a readable docker-archive"},
		{"directory that is no layout", with(func(in *Input) { in.Path, in.Kind = dir, OCIDir }), "not a readable oci-dir"},
		{"directory as archive", with(func(in *Input) { in.Path, in.Kind = dir, OCIArchive }), "must be a file"},
		{"file as dir", with(func(in *Input) { in.Path, in.Kind = text, Dir }), "must be a directory"},
		{"bad kind", with(func(in *Input) { in.Path, in.Kind = text, "rpm" }), `kind "rpm"`},
		{"no path", with(func(in *Input) { in.Kind = Dir }), "path is empty"},
		{"no name", with(func(in *Input) { in.Path, in.Kind, in.Name = dir, Dir, "" }), "name is empty"},
		{"no version", with(func(in *Input) { in.Path, in.Kind, in.Version = dir, Dir, "" }), "version is empty"},
		{"no creation time", with(func(in *Input) { in.Path, in.Kind, in.Created = dir, Dir, time.Time{} }), "SOURCE_DATE_EPOCH"},
		{"packer: bad JSON", with(func(in *Input) { in.Path, in.Kind = badPacker, PackerManifest }), "line 3"},
		{"packer: no builds", with(func(in *Input) { in.Path, in.Kind = noBuilds, PackerManifest }), "builds: empty"},
		{"packer: no artifact", with(func(in *Input) { in.Path, in.Kind = noArtifact, PackerManifest }), "builds[0].artifact_id: empty"},
		{"packer: text", with(func(in *Input) { in.Path, in.Kind = text, PackerManifest }), "line 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := Generate(context.Background(), c.in)
			if err == nil {
				t.Fatalf("Generate succeeded (%d bytes), want an error mentioning %q", len(out), c.want)
			}
			if outcome.Code(err) != outcome.Usage {
				t.Errorf("exit code %d, want %d (usage): %v", outcome.Code(err), outcome.Usage, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
			if c.in.Path != "" && !strings.Contains(err.Error(), c.in.Path) {
				t.Errorf("error %q does not name the input %s", err, c.in.Path)
			}
		})
	}
	leftovers, _ := filepath.Glob(filepath.Join(tmp, "mero-release-sbom-*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
	Cleanup()
	if leftovers, _ := filepath.Glob(filepath.Join(tmp, "*")); len(leftovers) > 0 {
		t.Errorf("temporary folders left behind after Cleanup: %v", leftovers)
	}
}

func TestGenerateCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := writeTree(t, t.TempDir(), map[string][]byte{"Cargo.lock": []byte(cargoLock)})
	if _, err := Generate(ctx, Input{Path: dir, Kind: Dir, Name: "x", Version: "1", Created: created}); err == nil {
		t.Error("Generate with a canceled context succeeded")
	}
}

func TestCreatedFromEnv(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "SOURCE_DATE_EPOCH" {
				return v
			}
			return ""
		}
	}
	got, err := CreatedFromEnv(env("1764072000"))
	if err != nil || !got.Equal(time.Unix(1764072000, 0)) || got.Location() != time.UTC {
		t.Errorf("CreatedFromEnv = %v, %v", got, err)
	}
	for _, bad := range []string{"", "  ", "yesterday", "-1", "1.5", "99999999999999999999", "253402300800"} {
		if _, err := CreatedFromEnv(env(bad)); outcome.Code(err) != outcome.Usage || !strings.Contains(err.Error(), "SOURCE_DATE_EPOCH") {
			t.Errorf("CreatedFromEnv(%q) = %v, want a usage error naming SOURCE_DATE_EPOCH", bad, err)
		}
	}
}

func TestParseKind(t *testing.T) {
	for _, k := range Kinds() {
		if got, err := ParseKind(string(k)); err != nil || got != k {
			t.Errorf("ParseKind(%s) = %s, %v", k, got, err)
		}
	}
	if _, err := ParseKind("oci"); outcome.Code(err) != outcome.Usage || !strings.Contains(err.Error(), "packer-manifest") {
		t.Errorf("ParseKind(oci) = %v, want a usage error listing the kinds", err)
	}
}

// TestSyftVersionMatchesGoMod keeps the creator recorded in every SBOM equal to the syft the
// module requires.
func TestSyftVersionMatchesGoMod(t *testing.T) {
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*github\.com/anchore/syft (v\S+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod does not require github.com/anchore/syft")
	}
	if string(m[1]) != SyftVersion {
		t.Errorf("SyftVersion = %s, go.mod requires %s", SyftVersion, m[1])
	}
}
