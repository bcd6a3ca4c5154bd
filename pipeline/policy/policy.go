// Package policy reads, generates, validates and promotes the KMS attestation policies
// (attestation-policy-{profile}.json, SPEC §5 and §8): per profile, the node measurements
// (MRTD, RTMR0–3) and TDX TCB statuses a mero-kms instance accepts before it releases a key.
// The JSON Schema lives in the policies package; this package validates against it.
package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/calimero-network/mero-release/pipeline/atomicfile"
	"github.com/calimero-network/mero-release/pipeline/internal/jsonsyntax"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// SchemaVersion is the schema version of the policies this package reads and writes.
const SchemaVersion = "1"

// StatusNotReady marks a policy whose measurements are not final (release candidates only).
const StatusNotReady = "policy_not_ready"

// maxFileSize bounds what Load reads; a policy is a few kilobytes.
const maxFileSize = 16 << 20

// Policy is the content of attestation-policy-{profile}.json.
type Policy struct {
	SchemaVersion string `json:"schema_version"`
	// KMSVersion is the mero-kms release the policy belongs to (equals MERO_KMS_VERSION).
	KMSVersion string `json:"kms_version"`
	// Profile is the one profile the policy is for.
	Profile release.Profile `json:"profile"`
	// Status is StatusNotReady or empty.
	Status string `json:"status,omitempty"`
	// AllowedTCBStatus are the accepted TDX TCB statuses; never empty, never Revoked.
	AllowedTCBStatus []string `json:"allowed_tcb_status"`
	// AllowedMRTD … AllowedRTMR3 are the accepted register values, 96 lower-case hex each.
	AllowedMRTD  []string `json:"allowed_mrtd"`
	AllowedRTMR0 []string `json:"allowed_rtmr0"`
	AllowedRTMR1 []string `json:"allowed_rtmr1"`
	AllowedRTMR2 []string `json:"allowed_rtmr2"`
	AllowedRTMR3 []string `json:"allowed_rtmr3"`
	// NodeVersions are the mero-tee releases whose measurements the allowlists came from.
	NodeVersions []string `json:"node_versions,omitempty"`
}

// measurementField is one register's allowlist, with the names used in records and files.
type measurementField struct {
	register string // "mrtd", "rtmr0", … as in measure.Record.Fields
	field    string // "allowed_mrtd", …
	values   *[]string
}

// measurements returns the five allowlists in register order.
func (p *Policy) measurements() []measurementField {
	return []measurementField{
		{"mrtd", "allowed_mrtd", &p.AllowedMRTD},
		{"rtmr0", "allowed_rtmr0", &p.AllowedRTMR0},
		{"rtmr1", "allowed_rtmr1", &p.AllowedRTMR1},
		{"rtmr2", "allowed_rtmr2", &p.AllowedRTMR2},
		{"rtmr3", "allowed_rtmr3", &p.AllowedRTMR3},
	}
}

// NotReady reports whether the policy carries "status": "policy_not_ready".
func (p *Policy) NotReady() bool { return p.Status == StatusNotReady }

// Load reads a policy: well-formed JSON (errors give line and column), no duplicate keys or
// trailing data, valid against the JSON Schema in policies/ (errors name the JSON path, e.g.
// allowed_rtmr2[1]), then decoded strictly and checked by Validate. Every refusal is a
// verification error (exit 10).
func Load(r io.Reader) (*Policy, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read attestation policy: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, outcome.VerificationErrorf("attestation policy: larger than %d bytes", maxFileSize)
	}
	if err := jsonsyntax.Check(data); err != nil {
		return nil, outcome.VerificationErrorf("attestation policy: %v", err)
	}
	if err := validateSchema(data); err != nil {
		return nil, outcome.VerificationErrorf("attestation policy: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Policy
	if err := dec.Decode(&p); err != nil { // unreachable after the schema, kept as a guard
		return nil, outcome.VerificationErrorf("attestation policy: %v", err)
	}
	// The schema has checked the document itself; the rules it cannot express remain.
	if err := validateFields(&p, ValidateOptions{}); err != nil {
		return nil, outcome.VerificationErrorf("attestation policy (%s, kms %s): %w", p.Profile, p.KMSVersion, err)
	}
	return &p, nil
}

// LoadFile is Load on a file; errors name the file. A file that cannot be read is a general
// error (exit 1).
func LoadFile(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load attestation policy: %w", err)
	}
	defer f.Close()
	p, err := Load(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// normalized returns a copy with every list sorted and deduplicated (register values and
// TCB statuses lexically, node versions in semantic-versioning order) and nil lists empty.
func (p *Policy) normalized() *Policy {
	out := *p
	clean := func(s []string) []string {
		c := slices.Clone(s)
		slices.Sort(c)
		c = slices.Compact(c)
		if c == nil {
			c = []string{}
		}
		return c
	}
	out.AllowedTCBStatus = clean(p.AllowedTCBStatus)
	for _, m := range out.measurements() {
		*m.values = clean(*m.values)
	}
	out.NodeVersions = clean(p.NodeVersions)
	slices.SortStableFunc(out.NodeVersions, func(a, b string) int {
		va, errA := release.ParseVersion(a)
		vb, errB := release.ParseVersion(b)
		if errA != nil || errB != nil {
			return 0 // invalid versions keep their lexical order; Validate refuses them
		}
		return va.Compare(vb)
	})
	if len(out.NodeVersions) == 0 {
		out.NodeVersions = nil
	}
	return &out
}

// Marshal encodes the policy deterministically: fields in a fixed order, lists sorted and
// deduplicated, two-space indent, no HTML escaping, a trailing newline. It does not validate;
// call Validate first.
func (p *Policy) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p.normalized()); err != nil {
		return nil, fmt.Errorf("encode attestation policy: %w", err)
	}
	return buf.Bytes(), nil
}

// SHA256 is the hex SHA-256 of the marshalled policy: the MERO_KMS_POLICY_SHA256 pin of a file
// written by Marshal.
func (p *Policy) SHA256() string {
	data, _ := p.Marshal() // encoding a struct of strings cannot fail
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// WriteFile validates the policy and writes its canonical encoding to path atomically
// (temporary file in the same directory, synced, renamed).
func (p *Policy) WriteFile(path string) error {
	if err := Validate(p, ValidateOptions{}); err != nil {
		return err
	}
	data, err := p.Marshal()
	if err != nil {
		return err
	}
	return atomicfile.Write(path, data)
}

// CheckFileName refuses a policy stored under another profile's file name: a file named
// attestation-policy-{profile}.json must hold that profile's policy. Other names are not checked.
func CheckFileName(path string, p *Policy) error {
	base := filepath.Base(path)
	for _, prof := range release.Profiles() {
		if base == prof.PolicyFile() && p.Profile != prof {
			return outcome.VerificationErrorf("%s: profile: %q, but the file name says %q", path, p.Profile, prof)
		}
	}
	return nil
}
