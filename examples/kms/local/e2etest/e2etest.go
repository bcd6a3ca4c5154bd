// Package e2etest builds release worlds for E2E tests: a directory release store holding
// mero-tee releases (simulator node images on disk, measured into published-mrtds.json, and a
// node-image-manifest.json naming them) and mero-kms releases (attestation policies and the
// KMS's published-mrtds.json), a vmsim provider and an in-process KMS launcher
// (examples/kms/local), all on one simulated TDX platform. Only tests use it; it lives beside
// the sample KMS because it starts it, and pipeline/ never imports the product it releases.
package e2etest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/calimero-network/mero-release/examples/kms"
	"github.com/calimero-network/mero-release/examples/kms/local"
	"github.com/calimero-network/mero-release/examples/kms/server"
	"github.com/calimero-network/mero-release/pipeline/audit/audittest"
	"github.com/calimero-network/mero-release/pipeline/catalog"
	"github.com/calimero-network/mero-release/pipeline/e2e"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/store"
	"github.com/calimero-network/mero-release/pipeline/store/dir"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
	"github.com/calimero-network/mero-release/pipeline/vm/vmsim"
)

// MeasuredAt is the measurement time written into every published record.
const MeasuredAt = "2026-03-01T12:00:00Z"

// World is a release store with its simulated platform.
type World struct {
	// Root holds StoreDir and ImagesDir.
	Root string
	// StoreDir is the directory store's root (dir:PATH).
	StoreDir string
	// ImagesDir holds the node images: ImagesDir/<version>/<profile>.json and their files.
	ImagesDir string
	Store     *dir.Store
	Authority *tdxsim.Authority
	Provider  *vmsim.Provider
	// KMS is the in-process launcher; KMS.Open() is 0 once every instance is stopped.
	KMS *local.InProcessKMS
	// Signer, when set, seals every release the world publishes (checksums.sha256 and a
	// Sigstore bundle per signed asset), as a real release is: for readers that verify what they
	// read (pipeline/verified). Nil publishes the assets alone.
	Signer sign.Signer
}

// New returns an empty world on the simulator's default authority (tdxsim.DefaultSeed), the
// platform the CLI uses.
func New(t testing.TB) *World {
	t.Helper()
	root := t.TempDir()
	st, err := dir.New(filepath.Join(root, "store"))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := tdxsim.NewAuthority([]byte(tdxsim.DefaultSeed))
	if err != nil {
		t.Fatal(err)
	}
	w := &World{Root: root, StoreDir: filepath.Join(root, "store"), ImagesDir: filepath.Join(root, "images"), Store: st,
		Authority: auth, Provider: vmsim.New(auth)}
	w.KMS = &local.InProcessKMS{Authority: auth, NodeRoots: auth.RootPool()}
	return w
}

// NodeImage returns the simulator image of a node version and profile: firmware and kernel
// depend on the version (MRTD and RTMR1 change between releases), the command line on the
// profile (RTMR2 differs between profiles).
func NodeImage(version string, p release.Profile) *tdxsim.Image {
	return &tdxsim.Image{
		Name: "mero-tee-" + version + "-" + string(p), Profile: string(p),
		Firmware: []byte("mero-tee firmware " + version), Kernel: []byte("mero-tee kernel " + version), Initrd: []byte("mero-tee initrd"),
		Cmdline: "console=ttyS0 mero.profile=" + string(p), VCPUs: 4, MemoryMB: 16384,
	}
}

// Record measures img as published-mrtds.json records it.
func Record(t testing.TB, img *tdxsim.Image) measure.Record {
	t.Helper()
	m, _, err := tdxsim.Measure(img)
	if err != nil {
		t.Fatal(err)
	}
	h := m.Hex()
	return measure.Record{MRTD: h.MRTD, RTMR0: h.RTMR0, RTMR1: h.RTMR1, RTMR2: h.RTMR2, RTMR3: h.RTMR3,
		Source: vmsim.Source, MeasuredAt: MeasuredAt, Image: img.Name}
}

// Measured returns the published-mrtds.json content of a node version of this world (the
// true measurements of NodeImage, whatever AddNode's mutate did).
func Measured(t testing.TB, version string) *measure.Published {
	t.Helper()
	pub := &measure.Published{SchemaVersion: measure.PublishedSchemaVersion, Family: release.Node, Version: version, Profiles: map[release.Profile]measure.Record{}}
	for _, p := range release.Profiles() {
		pub.Profiles[p] = Record(t, NodeImage(version, p))
	}
	return pub
}

// AddNode publishes mero-tee-v<version> with an image for every profile: the images are
// written under ImagesDir/<version>, measured into published-mrtds.json, and named in
// node-image-manifest.json. mutate, when given, edits the published file before upload (to
// break guardrail D). It returns what was published.
func (w *World) AddNode(t testing.TB, version string, mutate func(*measure.Published)) *measure.Published {
	t.Helper()
	imgDir := filepath.Join(w.ImagesDir, version)
	if err := os.MkdirAll(imgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	pub := &measure.Published{SchemaVersion: measure.PublishedSchemaVersion, Family: release.Node, Version: version, Profiles: map[release.Profile]measure.Record{}}
	type imageRef struct {
		Image string `json:"image"`
	}
	manifest := struct {
		Version  string                       `json:"version"`
		Profiles map[release.Profile]imageRef `json:"profiles"`
	}{Version: version, Profiles: map[release.Profile]imageRef{}}
	for _, p := range release.Profiles() {
		img := NodeImage(version, p)
		files := map[string][]byte{"firmware-" + string(p) + ".bin": img.Firmware, "vmlinuz-" + string(p): img.Kernel, "initrd-" + string(p) + ".img": img.Initrd}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(imgDir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		m := map[string]any{"schema_version": tdxsim.ManifestSchemaVersion, "name": img.Name, "profile": string(p),
			"firmware": "firmware-" + string(p) + ".bin", "kernel": "vmlinuz-" + string(p), "initrd": "initrd-" + string(p) + ".img",
			"cmdline": img.Cmdline, "vcpus": img.VCPUs, "memory_mb": img.MemoryMB}
		writeJSON(t, tdxsim.ManifestPath(imgDir, string(p)), m)
		pub.Profiles[p] = Record(t, img)
		manifest.Profiles[p] = imageRef{Image: tdxsim.ManifestPath(imgDir, string(p))}
	}
	if mutate != nil {
		mutate(pub)
	}
	data, err := pub.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	mdata, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	w.publish(t, release.Node.TagPrefix()+version, map[string][]byte{release.PublishedMRTDsFile: data, release.NodeImageManifest: mdata})
	return pub
}

// Policies generates the three policies of a KMS version accepting the given node releases.
func Policies(t testing.TB, kmsVersion string, nodes ...*measure.Published) map[release.Profile]*policy.Policy {
	t.Helper()
	out := map[release.Profile]*policy.Policy{}
	for _, p := range release.Profiles() {
		pol, err := policy.Generate(kmsVersion, p, nodes, nil)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = pol
	}
	return out
}

// KMSRecord is the KMS's measurement in the world: the simulated dstack VM running the
// shipped app-compose (what the in-process launcher boots).
func (w *World) KMSRecord(t testing.TB) measure.Record {
	t.Helper()
	hash, err := kms.ComposeHash(kms.LocalImage)
	if err != nil {
		t.Fatal(err)
	}
	v, err := server.BootSimulatedDstack(context.Background(), w.Authority, hash)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Shutdown()
	h := v.Measurements().Hex()
	return measure.Record{MRTD: h.MRTD, RTMR0: h.RTMR0, RTMR1: h.RTMR1, RTMR2: h.RTMR2, RTMR3: h.RTMR3,
		Source: "tdx-simulator", MeasuredAt: MeasuredAt, ComposeHash: hash}
}

// AddKMS publishes mero-kms-v<version> with the given policies (one file per profile present)
// and a published-mrtds.json holding KMSRecord for every profile, changed by mutate if given.
func (w *World) AddKMS(t testing.TB, version string, policies map[release.Profile]*policy.Policy, mutate ...func(*measure.Published)) {
	t.Helper()
	assets := map[string][]byte{}
	for p, pol := range policies {
		data, err := pol.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		assets[p.PolicyFile()] = data
	}
	pub := &measure.Published{SchemaVersion: measure.PublishedSchemaVersion, Family: release.KMS, Version: version, Profiles: map[release.Profile]measure.Record{}}
	for _, p := range release.Profiles() {
		pub.Profiles[p] = w.KMSRecord(t)
	}
	for _, m := range mutate {
		m(pub)
	}
	data, err := pub.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	assets[release.PublishedMRTDsFile] = data
	w.publish(t, release.KMS.TagPrefix()+version, assets)
}

func (w *World) publish(t testing.TB, tag string, assets map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	if w.Signer != nil {
		parsed, err := release.ParseTag(tag)
		if err != nil {
			t.Fatal(err)
		}
		if assets, err = audittest.Seal(ctx, audittest.Options{Tag: parsed, Signer: w.Signer}, assets); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Store.CreateDraft(ctx, store.DraftSpec{Tag: tag}); err != nil {
		t.Fatal(err)
	}
	for name, data := range assets {
		if err := w.Store.UploadAsset(ctx, tag, name, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Store.Publish(ctx, tag, store.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
}

// Catalog returns a catalog of tested entries for every profile: pairs are {kms, node}.
func Catalog(t testing.TB, pairs ...[2]string) *catalog.Catalog {
	t.Helper()
	c := catalog.New()
	for _, p := range pairs {
		if _, err := c.Add(catalog.Entry{KMS: p[0], NodeImage: p[1], Profiles: release.Profiles(), Tested: true}); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// Options returns e2e options for a KMS and node version of the world, logging to log.
func (w *World) Options(kmsVersion, nodeVersion string, c *catalog.Catalog, log *outcome.Logger) e2e.Options {
	return e2e.Options{
		Store: w.Store, KMSRelease: release.KMS.TagPrefix() + kmsVersion, NodeRelease: release.Node.TagPrefix() + nodeVersion,
		Catalog: c, Provider: w.Provider, Images: e2e.ManifestImages{Store: w.Store}, NodeRoots: w.Authority.RootPool(),
		KMS: w.KMS, Log: log, Now: func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) },
	}
}

func writeJSON(t testing.TB, path string, v any) {
	t.Helper()
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(fmt.Errorf("write %s: %w", path, err))
	}
}
