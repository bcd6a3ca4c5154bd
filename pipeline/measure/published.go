// Package measure computes and records the measurements of a release: KMS images by image
// inspection, node images by booting a TDX VM, and the published-mrtds.json file.
package measure

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"

	"github.com/calimero-network/mero-release/pipeline/atomicfile"
	"github.com/calimero-network/mero-release/pipeline/internal/lazyre"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// PublishedSchemaVersion is the schema version of published-mrtds.json.
const PublishedSchemaVersion = "1"

// Published is the content of published-mrtds.json: per profile, the measurements and how
// they were obtained.
type Published struct {
	SchemaVersion string `json:"schema_version"`
	// Family and Version name the release the measurements belong to.
	Family  release.Family `json:"family"`
	Version string         `json:"version"`
	// Profiles maps each profile to its measurement record.
	Profiles map[release.Profile]Record `json:"profiles"`
}

// Record is the measurement of one profile.
type Record struct {
	MRTD  string `json:"mrtd"`
	RTMR0 string `json:"rtmr0"`
	RTMR1 string `json:"rtmr1"`
	RTMR2 string `json:"rtmr2"`
	RTMR3 string `json:"rtmr3"`
	// Source says how the values were measured: "gcp-tdx-vm", "tdx-simulator", "image-inspection".
	Source string `json:"source"`
	// QuoteSHA256 is the SHA-256 of the TDX quote the values came from, when there was one.
	QuoteSHA256 string `json:"quote_sha256,omitempty"`
	// MeasuredAt is when the measurement was taken (RFC 3339).
	MeasuredAt string `json:"measured_at"`
	// Image names what was measured: a GCP image, an OCI image reference or digest.
	Image string `json:"image,omitempty"`
	// ImageDigest and ComposeHash are set for KMS images (dstack measurement).
	ImageDigest string `json:"image_digest,omitempty"`
	ComposeHash string `json:"compose_hash,omitempty"`
	// RegisterSources names, per register ("mrtd", "rtmr0" … "rtmr3"), where its value came
	// from when the registers have different origins (a KMS: the pinned dstack OS file for MRTD
	// and RTMR0–2, the compose for RTMR3).
	RegisterSources RegisterSources `json:"register_sources,omitzero"`
}

// RegisterSources names where each register's value came from.
type RegisterSources struct {
	MRTD  string `json:"mrtd"`
	RTMR0 string `json:"rtmr0"`
	RTMR1 string `json:"rtmr1"`
	RTMR2 string `json:"rtmr2"`
	RTMR3 string `json:"rtmr3"`
}

var hex96 = lazyre.New(`^[0-9a-f]{96}$`)

// SameRegisters reports whether r and o record the same MRTD and RTMR0–3.
func (r Record) SameRegisters(o Record) bool {
	return r.MRTD == o.MRTD && r.RTMR0 == o.RTMR0 && r.RTMR1 == o.RTMR1 && r.RTMR2 == o.RTMR2 && r.RTMR3 == o.RTMR3
}

// Fields returns the five measurement registers by name, in order.
func (r Record) Fields() [][2]string {
	return [][2]string{{"mrtd", r.MRTD}, {"rtmr0", r.RTMR0}, {"rtmr1", r.RTMR1}, {"rtmr2", r.RTMR2}, {"rtmr3", r.RTMR3}}
}

// Validate checks that every register is 96 lower-case hex characters (SHA-384).
func (r Record) Validate() error {
	for _, f := range r.Fields() {
		if !hex96().MatchString(f[1]) {
			return outcome.VerificationErrorf("%s: %q is not 96 lower-case hex characters", f[0], f[1])
		}
	}
	if r.Source == "" {
		return outcome.VerificationErrorf("source: empty")
	}
	if rs := r.RegisterSources; rs != (RegisterSources{}) {
		for _, f := range [][2]string{{"mrtd", rs.MRTD}, {"rtmr0", rs.RTMR0}, {"rtmr1", rs.RTMR1}, {"rtmr2", rs.RTMR2}, {"rtmr3", rs.RTMR3}} {
			if f[1] == "" {
				return outcome.VerificationErrorf("register_sources.%s: empty (name the source of every register or of none)", f[0])
			}
		}
	}
	return nil
}

// Validate checks the whole file: schema version, family, version, and every profile record.
func (p *Published) Validate() error {
	if p.SchemaVersion != PublishedSchemaVersion {
		return outcome.VerificationErrorf("schema_version: %q, want %q", p.SchemaVersion, PublishedSchemaVersion)
	}
	if _, err := release.ParseFamily(string(p.Family)); err != nil {
		return outcome.VerificationErrorf("family: %v", err)
	}
	if _, err := release.ParseVersion(p.Version); err != nil {
		return outcome.VerificationErrorf("version: %v", err)
	}
	if len(p.Profiles) == 0 {
		return outcome.VerificationErrorf("profiles: empty")
	}
	for _, prof := range slices.Sorted(maps.Keys(p.Profiles)) {
		if _, err := release.ParseProfile(string(prof)); err != nil {
			return outcome.VerificationErrorf("profiles: %v", err)
		}
		if err := p.Profiles[prof].Validate(); err != nil {
			return fmt.Errorf("profiles.%s.%w", prof, err)
		}
	}
	return nil
}

// ReadPublished strictly decodes and validates published-mrtds.json.
func ReadPublished(r io.Reader) (*Published, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var p Published
	if err := dec.Decode(&p); err != nil {
		return nil, outcome.VerificationErrorf("published-mrtds.json: %v", err)
	}
	if dec.More() {
		return nil, outcome.VerificationErrorf("published-mrtds.json: trailing data after the object")
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("published-mrtds.json: %w", err)
	}
	return &p, nil
}

// Marshal encodes p deterministically (sorted keys, two-space indent, trailing newline).
func (p *Published) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("encode published-mrtds.json: %w", err)
	}
	return buf.Bytes(), nil
}

// Write validates p and writes it to path atomically (a temporary file in the same directory,
// synced, then renamed over path), mode 0644, in Marshal's deterministic form: measuring the
// same inputs twice with the same clock writes the same bytes.
func (p *Published) Write(path string) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	data, err := p.Marshal()
	if err != nil {
		return err
	}
	return atomicfile.Write(path, data)
}

// ReadPublishedFile reads and validates published-mrtds.json from path (ReadPublished). A
// missing file is a missing-asset error (exit 11); errors name the file.
func ReadPublishedFile(path string) (*Published, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, outcome.MissingAssetErrorf("%s: not found", path)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	p, err := ReadPublished(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}
