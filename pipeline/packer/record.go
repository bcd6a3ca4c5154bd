package packer

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/calimero-network/mero-release/pipeline/internal/lazyre"
	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// The custom_data keys naming what provision.sh recorded on the build VM, downloaded by the
// template next to the manifest: the operating-system package list and the image identity.
const (
	CustomPackagesFile = "packages_file"
	CustomIdentityFile = "identity_file"
)

// maxRecord bounds a record file read into memory.
const maxRecord = 8 << 20

// OSPackage is one installed Debian package of the image, as dpkg-query lists it.
type OSPackage struct {
	Name         string // binary package name
	Version      string // Debian version (epoch:upstream-revision)
	Architecture string // amd64, all, …
	Source       string // source package name (the binary name when they are the same)
}

// Identity is what the image is built from besides its packages: the operating system, the
// kernel it boots and the firmware the build VM ran on.
type Identity struct {
	OSID, OSVersionID, OSPrettyName string
	// KernelRelease is `uname -r` of the image's kernel; KernelSHA256 the digest of its
	// /boot/vmlinuz-<release>.
	KernelRelease, KernelSHA256 string
	// Firmware* are the SMBIOS BIOS fields of the build VM (/sys/class/dmi/id): on GCE the
	// TDX firmware is supplied by the platform, not the image.
	FirmwareVendor, FirmwareVersion, FirmwareDate string
}

// Record is what provision.sh recorded for one build.
type Record struct {
	Packages []OSPackage
	Identity Identity
}

var (
	debName    = lazyre.New(`^[a-z0-9][a-z0-9+.-]+$`)
	debVersion = lazyre.New(`^([0-9]+:)?[A-Za-z0-9][A-Za-z0-9.+~-]*$`)
	debArch    = lazyre.New(`^[a-z0-9][a-z0-9-]*$`)
	hex64      = lazyre.New(`^[0-9a-f]{64}$`)
)

// ReadRecord reads the records build b names in its custom_data, relative to dir (the
// manifest's directory). ok is false when the build names none (a manifest of an older
// template); a build naming only one, a path leaving dir, or a malformed file is a usage error.
func ReadRecord(dir string, b Build) (rec *Record, ok bool, err error) {
	pkgs, idf := b.CustomData[CustomPackagesFile], b.CustomData[CustomIdentityFile]
	if pkgs == "" && idf == "" {
		return nil, false, nil
	}
	if pkgs == "" || idf == "" {
		return nil, false, outcome.UsageErrorf("packer build %q: custom_data names %s and %s together (got %q, %q)", b.Name, CustomPackagesFile, CustomIdentityFile, pkgs, idf)
	}
	rec = &Record{}
	for _, f := range []struct {
		rel  string
		read func(io.Reader, string) error
	}{
		{pkgs, func(r io.Reader, name string) (err error) { rec.Packages, err = ReadOSPackages(r, name); return err }},
		{idf, func(r io.Reader, name string) (err error) { rec.Identity, err = ReadIdentity(r, name); return err }},
	} {
		if !filepath.IsLocal(f.rel) {
			return nil, false, outcome.UsageErrorf("packer build %q: record %q: want a path inside the manifest's directory", b.Name, f.rel)
		}
		path := filepath.Join(dir, f.rel)
		fh, err := os.Open(path)
		if err != nil {
			return nil, false, outcome.UsageErrorf("packer build %q: record %s: %v (did the template download it?)", b.Name, f.rel, err)
		}
		err = f.read(fh, path)
		fh.Close()
		if err != nil {
			return nil, false, err
		}
	}
	return rec, true, nil
}

// ReadOSPackages reads the package list provision.sh writes with
//
//	dpkg-query -W -f '${binary:Package}\t${Version}\t${Architecture}\t${source:Package}\n'
//
// (a ":ARCH" suffix of the name is dropped). An empty list, or a line that is not four
// well-formed fields, is a usage error naming the line.
func ReadOSPackages(r io.Reader, name string) ([]OSPackage, error) {
	var out []OSPackage
	sc := bufio.NewScanner(io.LimitReader(r, maxRecord))
	sc.Buffer(make([]byte, 4096), 4096)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			return nil, outcome.UsageErrorf("package list %s:%d: want 4 tab-separated fields (name, version, architecture, source), got %d", name, n, len(f))
		}
		p := OSPackage{Name: f[0], Version: f[1], Architecture: f[2], Source: f[3]}
		if i := strings.IndexByte(p.Name, ':'); i > 0 {
			p.Name = p.Name[:i]
		}
		if p.Source == "" {
			p.Source = p.Name
		}
		switch {
		case !debName().MatchString(p.Name):
			return nil, outcome.UsageErrorf("package list %s:%d: package name %q", name, n, p.Name)
		case !debVersion().MatchString(p.Version):
			return nil, outcome.UsageErrorf("package list %s:%d: %s: version %q", name, n, p.Name, p.Version)
		case !debArch().MatchString(p.Architecture):
			return nil, outcome.UsageErrorf("package list %s:%d: %s: architecture %q", name, n, p.Name, p.Architecture)
		case !debName().MatchString(p.Source):
			return nil, outcome.UsageErrorf("package list %s:%d: %s: source package %q", name, n, p.Name, p.Source)
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, outcome.UsageErrorf("package list %s: %v", name, err)
	}
	if len(out) == 0 {
		return nil, outcome.UsageErrorf("package list %s: no packages", name)
	}
	return out, nil
}

// ReadIdentity reads the KEY=VALUE lines provision.sh writes (os_id, os_version_id,
// os_pretty_name, kernel_release, kernel_sha256, firmware_vendor, firmware_version,
// firmware_date). os_id, kernel_release and kernel_sha256 are required; an unknown key is an
// error (so that a changed script is noticed).
func ReadIdentity(r io.Reader, name string) (Identity, error) {
	var id Identity
	fields := map[string]*string{
		"os_id": &id.OSID, "os_version_id": &id.OSVersionID, "os_pretty_name": &id.OSPrettyName,
		"kernel_release": &id.KernelRelease, "kernel_sha256": &id.KernelSHA256,
		"firmware_vendor": &id.FirmwareVendor, "firmware_version": &id.FirmwareVersion, "firmware_date": &id.FirmwareDate,
	}
	sc := bufio.NewScanner(io.LimitReader(r, maxRecord))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		p, known := fields[k]
		if !ok || !known {
			return Identity{}, outcome.UsageErrorf("image identity %s:%d: want one of the documented KEY=VALUE lines, got %q", name, n, line)
		}
		*p = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		return Identity{}, outcome.UsageErrorf("image identity %s: %v", name, err)
	}
	switch {
	case id.OSID == "":
		return Identity{}, outcome.UsageErrorf("image identity %s: os_id: empty", name)
	case id.KernelRelease == "":
		return Identity{}, outcome.UsageErrorf("image identity %s: kernel_release: empty", name)
	case !hex64().MatchString(id.KernelSHA256):
		return Identity{}, outcome.UsageErrorf("image identity %s: kernel_sha256 %q: want 64 lower-case hex characters", name, id.KernelSHA256)
	}
	return id, nil
}

// String names the record for logs.
func (r *Record) String() string {
	return fmt.Sprintf("%d OS packages, kernel %s", len(r.Packages), r.Identity.KernelRelease)
}
