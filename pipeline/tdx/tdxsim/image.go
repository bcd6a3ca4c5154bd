package tdxsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/tdx"
)

// ManifestSchemaVersion is the schema version of a node-image manifest.
const ManifestSchemaVersion = "1"

// Image is a node image as the simulator boots it: the artefacts a TD's boot chain measures.
// It stands in for the Packer-built GCP image of a profile.
type Image struct {
	// Name identifies the image (e.g. the GCP image name it stands in for).
	Name string
	// Profile is the node profile the image is built for (debug, debug-read-only, locked-read-only).
	Profile string
	// Firmware is the TD firmware (TDVF/OVMF); MRTD is its SHA-384 (simplified build measurement).
	Firmware []byte
	// Kernel is the kernel image; its digest is extended into RTMR1.
	Kernel []byte
	// Initrd is the initial ramdisk; its digest is extended into RTMR2.
	Initrd []byte
	// Cmdline is the kernel command line; its digest is extended into RTMR2.
	Cmdline string
	// VCPUs and MemoryMB describe the TD, as the TD HOB the firmware measures into RTMR0.
	VCPUs    int
	MemoryMB int
}

// manifest is the JSON form of an Image: file paths are relative to the manifest's directory.
type manifest struct {
	SchemaVersion string `json:"schema_version"`
	Name          string `json:"name"`
	Profile       string `json:"profile"`
	Firmware      string `json:"firmware"`
	Kernel        string `json:"kernel"`
	Initrd        string `json:"initrd"`
	Cmdline       string `json:"cmdline"`
	VCPUs         int    `json:"vcpus"`
	MemoryMB      int    `json:"memory_mb"`
}

// ManifestPath is where LoadImage reads the manifest of a profile: DIR/PROFILE.json.
func ManifestPath(dir, profile string) string { return filepath.Join(dir, profile+".json") }

// LoadImage loads the manifest of profile from dir (DIR/PROFILE.json) and the files it names.
// The manifest's profile must be the one asked for. Errors name the file and field: a missing
// manifest or file is a usage error (exit 2), as is a malformed manifest.
func LoadImage(dir, profile string) (*Image, error) {
	if profile == "" || strings.ContainsAny(profile, `/\`) || profile == "." || profile == ".." {
		return nil, outcome.UsageErrorf("node image: profile %q is not a profile name", profile)
	}
	img, err := LoadManifest(ManifestPath(dir, profile))
	if err != nil {
		return nil, err
	}
	if img.Profile != profile {
		return nil, outcome.UsageErrorf("node image %s: profile is %q, want %q", ManifestPath(dir, profile), img.Profile, profile)
	}
	return img, nil
}

// LoadManifest loads one node-image manifest and the files it names (relative to the
// manifest's directory).
func LoadManifest(path string) (*Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, outcome.UsageErrorf("node image manifest: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m manifest
	if err := dec.Decode(&m); err != nil {
		return nil, outcome.UsageErrorf("node image manifest %s: %v", path, err)
	}
	if dec.More() {
		return nil, outcome.UsageErrorf("node image manifest %s: trailing data after the object", path)
	}
	bad := func(field, format string, args ...any) error {
		return outcome.UsageErrorf("node image manifest %s: %s: %s", path, field, fmt.Sprintf(format, args...))
	}
	switch {
	case m.SchemaVersion != ManifestSchemaVersion:
		return nil, bad("schema_version", "%q, want %q", m.SchemaVersion, ManifestSchemaVersion)
	case m.Name == "":
		return nil, bad("name", "empty")
	case m.Profile == "":
		return nil, bad("profile", "empty")
	case m.Cmdline == "":
		return nil, bad("cmdline", "empty")
	case m.VCPUs <= 0:
		return nil, bad("vcpus", "%d, want a positive number", m.VCPUs)
	case m.MemoryMB <= 0:
		return nil, bad("memory_mb", "%d, want a positive number", m.MemoryMB)
	}
	img := &Image{Name: m.Name, Profile: m.Profile, Cmdline: m.Cmdline, VCPUs: m.VCPUs, MemoryMB: m.MemoryMB}
	base := filepath.Dir(path)
	for _, f := range []struct {
		field, name string
		dst         *[]byte
	}{{"firmware", m.Firmware, &img.Firmware}, {"kernel", m.Kernel, &img.Kernel}, {"initrd", m.Initrd, &img.Initrd}} {
		if f.name == "" {
			return nil, bad(f.field, "empty")
		}
		p := f.name
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, bad(f.field, "%v", err)
		}
		if len(b) == 0 {
			return nil, bad(f.field, "%s is empty", p)
		}
		*f.dst = b
	}
	return img, nil
}

// Validate checks that every artefact is present.
func (img *Image) Validate() error {
	switch {
	case img == nil:
		return outcome.UsageErrorf("node image: nil")
	case img.Name == "":
		return outcome.UsageErrorf("node image: name: empty")
	case img.Profile == "":
		return outcome.UsageErrorf("node image %s: profile: empty", img.Name)
	case len(img.Firmware) == 0:
		return outcome.UsageErrorf("node image %s: firmware: empty", img.Name)
	case len(img.Kernel) == 0:
		return outcome.UsageErrorf("node image %s: kernel: empty", img.Name)
	case len(img.Initrd) == 0:
		return outcome.UsageErrorf("node image %s: initrd: empty", img.Name)
	case img.Cmdline == "":
		return outcome.UsageErrorf("node image %s: cmdline: empty", img.Name)
	case img.VCPUs <= 0 || img.MemoryMB <= 0:
		return outcome.UsageErrorf("node image %s: vcpus %d, memory_mb %d: both must be positive", img.Name, img.VCPUs, img.MemoryMB)
	}
	return nil
}

// TDHOB returns the bytes standing in for the TD HOB (hand-off block) the firmware measures
// into RTMR0: the TD's shape.
func (img *Image) TDHOB() []byte {
	return fmt.Appendf(nil, "tdxsim TD HOB: vcpus=%d memory_mb=%d", img.VCPUs, img.MemoryMB)
}

// Measure returns the measurements booting img yields and the boot event log, following the
// layout of a TDVF + UEFI boot on a GCE TDX VM (as in a real CCEL):
//
//	MRTD  = SHA384(firmware)                           (the TD build measurement, simplified)
//	RTMR0 ← TD HOB (vCPUs, memory), EV_SEPARATOR        (firmware configuration)
//	RTMR1 ← kernel, "Exit Boot Services Invocation"     (the boot application)
//	RTMR2 ← kernel command line, initrd                 (boot loader: what the kernel runs with)
//	RTMR3   empty at boot; runtime events (VM.ExtendRTMR3)
//
// each by the real rule RTMR = SHA384(RTMR ‖ SHA384(data)).
func Measure(img *Image) (tdx.Measurements, []tdx.Event, error) {
	if err := img.Validate(); err != nil {
		return tdx.Measurements{}, nil, err
	}
	events := []tdx.Event{
		tdx.NewEvent(0, "EV_EFI_HANDOFF_TABLES2", "TdxTable "+string(img.TDHOB()), img.TDHOB()),
		tdx.NewEvent(0, "EV_SEPARATOR", "separator", []byte{0, 0, 0, 0}),
		tdx.NewEvent(1, "EV_EFI_BOOT_SERVICES_APPLICATION", fmt.Sprintf("kernel (%d bytes)", len(img.Kernel)), img.Kernel),
		tdx.NewEvent(1, "EV_EFI_ACTION", "Exit Boot Services Invocation", []byte("Exit Boot Services Invocation")),
		tdx.NewEvent(2, "EV_IPL", "kernel_cmdline: "+img.Cmdline, []byte(img.Cmdline)),
		tdx.NewEvent(2, "EV_IPL", fmt.Sprintf("initrd (%d bytes)", len(img.Initrd)), img.Initrd),
	}
	rtmrs, err := tdx.Replay(events)
	if err != nil {
		return tdx.Measurements{}, nil, err
	}
	return tdx.Measurements{MRTD: tdx.Digest(img.Firmware), RTMR: rtmrs}, events, nil
}
