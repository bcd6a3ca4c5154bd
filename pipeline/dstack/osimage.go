// Package dstack holds what mero-release knows of dstack, the CVM runtime the KMS runs on at
// Phala: the pinned dstack OS image (os-image.json: its version, VM shape and the MRTD and
// RTMR0–2 dstack publishes for it) and a client and simulator of the dstack guest API.
package dstack

import (
	"bytes"
	_ "embed" // the pinned dstack OS image
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/calimero-network/mero-release/pipeline/internal/lazyre"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/tdx"
)

// OSImageSchemaVersion is the schema version of a dstack OS image file.
const OSImageSchemaVersion = "1"

// PinnedOSImagePath is the repository path of the pinned dstack OS image file, named in
// published-mrtds.json as the source of MRTD and RTMR0–2.
const PinnedOSImagePath = "pipeline/dstack/os-image.json"

//go:embed os-image.json
var pinnedOSImage []byte

// VMShape is the CVM shape the measurements hold for: MRTD and RTMR0–2 of a dstack CVM depend
// only on the OS image and the shape (SPEC §11).
type VMShape struct {
	// InstanceType is the Phala Cloud instance type the KMS is deployed as (e.g. "tdx.small").
	InstanceType string `json:"instance_type"`
	// VCPUs and MemoryMB are the shape dstack-mr measures with (-c, -m).
	VCPUs    int `json:"vcpus"`
	MemoryMB int `json:"memory_mb"`
}

// OSImage is a dstack OS image as dstack publishes it for one version: its registers at the
// end of boot, before any app event reaches RTMR3.
type OSImage struct {
	SchemaVersion string `json:"schema_version"`
	// Name identifies the image.
	Name string `json:"name"`
	// DstackVersion is the dstack release (or meta-dstack commit) the image was built from.
	DstackVersion string `json:"dstack_version"`
	// PreferDev is false for the production (non-dev) build Phala runs; the dev build has other
	// RTMR2/RTMR3 values.
	PreferDev bool `json:"prefer_dev"`
	// VMShape is the shape the registers were computed for.
	VMShape VMShape `json:"vm_shape"`
	// MRTD and RTMR0–2 are 96 lower-case hex characters (SHA-384).
	MRTD  string `json:"mrtd"`
	RTMR0 string `json:"rtmr0"`
	RTMR1 string `json:"rtmr1"`
	RTMR2 string `json:"rtmr2"`
	// Source says where the values come from (the build and tool that computed them).
	Source string `json:"source"`
}

var (
	hex96         = lazyre.New(`^[0-9a-f]{96}$`)
	instanceTypes = lazyre.New(`^tdx\.[a-z0-9]+$`)
)

// ParseOSImage strictly decodes and validates a dstack OS image file; name is used in errors.
// Every refusal is a usage error (exit 2) naming the file and field.
func ParseOSImage(data []byte, name string) (*OSImage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var img OSImage
	if err := dec.Decode(&img); err != nil {
		return nil, outcome.UsageErrorf("dstack OS image %s: %v", name, err)
	}
	if dec.More() {
		return nil, outcome.UsageErrorf("dstack OS image %s: trailing data after the object", name)
	}
	if err := img.Validate(); err != nil {
		return nil, fmt.Errorf("dstack OS image %s: %w", name, err)
	}
	return &img, nil
}

// LoadOSImage reads and validates a dstack OS image file (ParseOSImage).
func LoadOSImage(path string) (*OSImage, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, outcome.UsageErrorf("dstack OS image: %v", err)
	}
	return ParseOSImage(data, path)
}

// PinnedOSImage returns the dstack OS image pinned in the repository (PinnedOSImagePath), the
// one every KMS release is measured for and the simulator boots. The embedded file is checked
// by the package's tests, so a failure here is a build defect and panics.
func PinnedOSImage() *OSImage {
	img, err := ParseOSImage(pinnedOSImage, PinnedOSImagePath)
	if err != nil {
		panic(err)
	}
	return img
}

// PinnedOSImageFile returns the bytes of the pinned dstack OS image file (PinnedOSImagePath), for
// its digest in a release's provenance.
func PinnedOSImageFile() []byte { return slices.Clone(pinnedOSImage) }

// Validate checks every field: schema version, a name, a version, a source, a positive VM
// shape with a tdx.* instance type, and four 96-hex registers.
func (img *OSImage) Validate() error {
	bad := func(field, format string, args ...any) error {
		return outcome.UsageErrorf("%s: %s", field, fmt.Sprintf(format, args...))
	}
	switch {
	case img.SchemaVersion != OSImageSchemaVersion:
		return bad("schema_version", "%q, want %q", img.SchemaVersion, OSImageSchemaVersion)
	case img.Name == "":
		return bad("name", "empty")
	case img.DstackVersion == "":
		return bad("dstack_version", "empty")
	case img.Source == "":
		return bad("source", "empty (say which build and tool computed the values)")
	case !instanceTypes().MatchString(img.VMShape.InstanceType):
		return bad("vm_shape.instance_type", "%q, want a Phala TDX instance type such as tdx.small", img.VMShape.InstanceType)
	case img.VMShape.VCPUs <= 0:
		return bad("vm_shape.vcpus", "%d, want a positive number", img.VMShape.VCPUs)
	case img.VMShape.MemoryMB <= 0:
		return bad("vm_shape.memory_mb", "%d, want a positive number", img.VMShape.MemoryMB)
	}
	for _, r := range img.registers() {
		if !hex96().MatchString(r[1]) {
			return bad(r[0], "%q is not 96 lower-case hex characters (SHA-384)", r[1])
		}
	}
	return nil
}

func (img *OSImage) registers() [][2]string {
	return [][2]string{{"mrtd", img.MRTD}, {"rtmr0", img.RTMR0}, {"rtmr1", img.RTMR1}, {"rtmr2", img.RTMR2}}
}

// Measurements returns MRTD and RTMR0–2 as registers; RTMR3 is zero, as at the end of the OS
// boot, before dstack extends the app's events.
func (img *OSImage) Measurements() (tdx.Measurements, error) {
	if err := img.Validate(); err != nil {
		return tdx.Measurements{}, fmt.Errorf("dstack OS image %s: %w", img.Name, err)
	}
	var m tdx.Measurements
	dsts := []*[tdx.RegisterSize]byte{&m.MRTD, &m.RTMR[0], &m.RTMR[1], &m.RTMR[2]}
	for i, r := range img.registers() {
		b, _ := hex.DecodeString(r[1]) // Validate checked the shape
		copy(dsts[i][:], b)
	}
	return m, nil
}

// Describe names the image for published-mrtds.json: "NAME (dstack VERSION, TYPE VCPUS vCPU
// MEMORY MB)".
func (img *OSImage) Describe() string {
	return fmt.Sprintf("%s (dstack %s, %s %d vCPU %d MB)", img.Name, img.DstackVersion, img.VMShape.InstanceType, img.VMShape.VCPUs, img.VMShape.MemoryMB)
}
