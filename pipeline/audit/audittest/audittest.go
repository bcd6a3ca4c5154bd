// Package audittest builds complete, correctly signed releases for tests of the auditor, the
// CLI and the benchmarks: the family's content assets (for the KMS, real attestation policies
// generated from node measurements), the provenance, checksums.sha256 and a Sigstore bundle for
// every signed file, with hooks to change the content before sealing or tamper with any file after it.
package audittest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"slices"

	"github.com/calimero-network/mero-release/pipeline/checksum"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/provenance"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/store"
)

// Options describe a release to build.
type Options struct {
	// Tag is the release's tag.
	Tag release.Tag
	// Signer signs every file of Signed() (a sign.KeySigner or sign.KeylessSigner).
	Signer sign.Signer
	// NotReady generates policy_not_ready attestation policies (no node measurements).
	NotReady bool
	// Mutate changes the content assets before checksums and signatures are made.
	Mutate func(files map[string][]byte)
	// SignerFor, when set, picks another signer for some files (nil: Signer).
	SignerFor func(name string) sign.Signer
}

// Register is a deterministic 96-hex register value derived from a label.
func Register(label string) string {
	sum := sha512.Sum384([]byte(label))
	return hex.EncodeToString(sum[:])
}

// NodeMeasurements is a mero-tee release's published-mrtds.json with a distinct record for
// every profile.
func NodeMeasurements(version string) *measure.Published {
	p := &measure.Published{SchemaVersion: measure.PublishedSchemaVersion, Family: release.Node, Version: version,
		Profiles: map[release.Profile]measure.Record{}}
	for _, prof := range release.Profiles() {
		l := version + "/" + string(prof) + "/"
		p.Profiles[prof] = measure.Record{
			MRTD: Register(l + "mrtd"), RTMR0: Register(l + "rtmr0"), RTMR1: Register(l + "rtmr1"),
			RTMR2: Register(l + "rtmr2"), RTMR3: Register(l + "rtmr3"),
			Source: "tdx-simulator", MeasuredAt: "2026-11-25T10:00:00Z",
		}
	}
	return p
}

// Content returns the content assets of a release (release.ExpectedAssets(f).Content).
func Content(o Options) (map[string][]byte, error) {
	tag := o.Tag
	files := map[string][]byte{}
	nodeVersion := tag.Version.String()
	var nodes []*measure.Published
	if !o.NotReady {
		nodes = []*measure.Published{NodeMeasurements(nodeVersion)}
	}
	if tag.Family == release.KMS {
		for _, prof := range release.Profiles() {
			p, err := policy.Generate(tag.Version.String(), prof, nodes, nil)
			if err != nil {
				return nil, err
			}
			if files[prof.PolicyFile()], err = p.Marshal(); err != nil {
				return nil, err
			}
		}
		files[release.KMSImageManifest] = jsonOf(map[string]any{"family": tag.Family, "version": tag.Version.String(),
			"images": map[string]string{"debug": "ghcr.io/calimero-network/mero-kms-phala@sha256:" + Register("img")[:64]}})
	} else {
		files[release.NodeImageManifest] = jsonOf(map[string]any{"family": tag.Family, "version": tag.Version.String(),
			"source_image": "ubuntu-2404-tdx-v20261101"})
	}
	pub := NodeMeasurements(nodeVersion)
	pub.Family, pub.Version = tag.Family, tag.Version.String()
	data, err := pub.Marshal()
	if err != nil {
		return nil, err
	}
	files[release.PublishedMRTDsFile] = data
	files[release.SBOMFile] = jsonOf(map[string]any{"spdxVersion": "SPDX-2.3", "name": tag.String()})
	files[release.VulnerabilitiesFile] = jsonOf(map[string]any{"schema_version": "1", "family": tag.Family, "version": tag.Version.String(),
		"scanned": false, "reason": "built by audittest", "findings": []any{}})
	files[release.NotesFile] = []byte("# " + tag.String() + "\n\n## Changelog\n\n- built by audittest\n")
	return files, nil
}

func jsonOf(v any) []byte {
	b, _ := json.MarshalIndent(v, "", "  ")
	return append(b, '\n')
}

// Build returns every file of the release: the content (after Mutate), checksums.sha256 and
// the bundles.
func Build(ctx context.Context, o Options) (map[string][]byte, error) {
	files, err := Content(o)
	if err != nil {
		return nil, err
	}
	if o.Mutate != nil {
		o.Mutate(files)
	}
	return Seal(ctx, o, files)
}

// Seal adds the provenance (provenance.intoto.sigstore.json, whose subjects are the content files,
// unless files holds one already), checksums.sha256 over the content files and the provenance,
// and signs every signed file.
func Seal(ctx context.Context, o Options, files map[string][]byte) (map[string][]byte, error) {
	if _, ok := files[release.ProvenanceFile]; !ok {
		in := provenance.Input{Tag: o.Tag, Build: provenance.Build{BuilderID: provenance.LocalBuilder}}
		for _, name := range slices.Sorted(maps.Keys(files)) {
			h := sha256.Sum256(files[name])
			in.Subjects = append(in.Subjects, provenance.Subject{Name: name, SHA256: hex.EncodeToString(h[:])})
		}
		b, err := provenance.Make(ctx, o.signerFor(release.ProvenanceFile), in)
		if err != nil {
			return nil, fmt.Errorf("provenance: %w", err)
		}
		files[release.ProvenanceFile] = b
	}
	var sums checksum.File
	for _, name := range slices.Sorted(maps.Keys(files)) {
		h := sha256.Sum256(files[name])
		sums.Entries = append(sums.Entries, checksum.Entry{Name: name, SHA256: hex.EncodeToString(h[:])})
	}
	files[release.ChecksumsFile] = sums.Marshal()
	for _, name := range release.ExpectedAssets(o.Tag.Family).Signed() {
		content, ok := files[name]
		if !ok {
			continue
		}
		b, err := o.signerFor(name).Sign(ctx, content)
		if err != nil {
			return nil, fmt.Errorf("sign %s: %w", name, err)
		}
		files[release.BundleName(name)] = b
	}
	return files, nil
}

// signerFor is the signer of one file: SignerFor's choice, else Signer.
func (o Options) signerFor(name string) sign.Signer {
	if o.SignerFor != nil {
		if other := o.SignerFor(name); other != nil {
			return other
		}
	}
	return o.Signer
}

// Publish puts the files into st as a published release (prerelease for an rc), leaving out
// the names in skip.
func Publish(ctx context.Context, st store.Store, tag release.Tag, files map[string][]byte, skip ...string) error {
	if _, err := st.CreateDraft(ctx, store.DraftSpec{Tag: tag.String(), Prerelease: tag.Version.IsRC()}); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if slices.Contains(skip, name) {
			continue
		}
		if err := st.UploadAsset(ctx, tag.String(), name, bytesReader(files[name]), int64(len(files[name]))); err != nil {
			return err
		}
	}
	return st.Publish(ctx, tag.String(), store.PublishOptions{Latest: !tag.Version.IsRC()})
}

// KeySigner returns a signer with a fresh ECDSA P-256 key and its public key in PEM
// (cosign.pub). The private key is never encrypted or written (no scrypt: tests stay fast).
func KeySigner() (*sign.KeySigner, []byte, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return nil, nil, err
	}
	s, err := sign.NewKeySigner(priv, sign.KeySignerOptions{})
	if err != nil {
		return nil, nil, err
	}
	return s, pem.EncodeToMemory(&pem.Block{Type: sign.PublicKeyPEMType, Bytes: der}), nil
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
