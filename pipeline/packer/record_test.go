package packer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

func TestReadOSPackages(t *testing.T) {
	got, err := ReadOSPackages(strings.NewReader("adduser\t3.137ubuntu1\tall\t\nlibc6:amd64\t2.39-0ubuntu8.3\tamd64\tglibc\n\nlibssl3t64:amd64\t3.0.13-0ubuntu3.4\tamd64\topenssl\r\n"), "p.tsv")
	if err != nil {
		t.Fatal(err)
	}
	want := []OSPackage{{"adduser", "3.137ubuntu1", "all", "adduser"}, {"libc6", "2.39-0ubuntu8.3", "amd64", "glibc"}, {"libssl3t64", "3.0.13-0ubuntu3.4", "amd64", "openssl"}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("package %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	for name, tc := range map[string]struct{ in, want string }{
		"empty":         {"", "no packages"},
		"three fields":  {"a\t1\tamd64\n", "p.tsv:1: want 4 tab-separated fields"},
		"bad name":      {"ok\t1\tall\tok\nBad_Name\t1\tamd64\tx\n", "p.tsv:2: package name"},
		"bad version":   {"curl\t1 2\tamd64\tcurl\n", "version"},
		"bad arch":      {"curl\t8.5\tAMD 64\tcurl\n", "architecture"},
		"shell in name": {"x;rm\t1\tall\tx\n", "package name"},
		"line too long": {strings.Repeat("a", 5000) + "\t1\tall\ta\n", "token too long"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ReadOSPackages(strings.NewReader(tc.in), "p.tsv")
			if err == nil || outcome.Code(err) != outcome.Usage || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a usage error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestReadIdentity(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	id, err := ReadIdentity(strings.NewReader("# recorded\nos_id=ubuntu\nos_version_id=24.04\nos_pretty_name=Ubuntu 24.04.1 LTS\nkernel_release=6.8.0-1015-gcp\nkernel_sha256="+sum+"\nfirmware_vendor=Google\nfirmware_version=Google\nfirmware_date=10/01/2025\n"), "i.env")
	if err != nil {
		t.Fatal(err)
	}
	if id.OSPrettyName != "Ubuntu 24.04.1 LTS" || id.KernelRelease != "6.8.0-1015-gcp" || id.KernelSHA256 != sum || id.FirmwareDate != "10/01/2025" {
		t.Errorf("identity %+v", id)
	}
	for name, tc := range map[string]struct{ in, want string }{
		"unknown key":  {"os_id=ubuntu\nshell=/bin/sh\n", "i.env:2"},
		"no os":        {"kernel_release=6.8\nkernel_sha256=" + sum + "\n", "os_id: empty"},
		"no kernel":    {"os_id=ubuntu\nkernel_sha256=" + sum + "\n", "kernel_release: empty"},
		"short digest": {"os_id=ubuntu\nkernel_release=6.8\nkernel_sha256=abc\n", "kernel_sha256"},
		"no equals":    {"os_id ubuntu\n", "KEY=VALUE"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ReadIdentity(strings.NewReader(tc.in), "i.env")
			if err == nil || outcome.Code(err) != outcome.Usage || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a usage error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestReadRecord(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("p.tsv", "bash\t5.2.21-2ubuntu4\tamd64\tbash\n")
	write("i.env", "os_id=ubuntu\nkernel_release=6.8\nkernel_sha256="+strings.Repeat("0", 64)+"\n")
	b := Build{Name: "debug", CustomData: map[string]string{CustomPackagesFile: "p.tsv", CustomIdentityFile: "i.env"}}
	rec, ok, err := ReadRecord(dir, b)
	if err != nil || !ok || rec.Packages[0].Name != "bash" || rec.Identity.OSID != "ubuntu" {
		t.Fatalf("ReadRecord = %+v, %v, %v", rec, ok, err)
	}
	if _, ok, err := ReadRecord(dir, Build{Name: "old"}); ok || err != nil {
		t.Errorf("a build naming no record: %v, %v", ok, err)
	}
	for name, cd := range map[string]map[string]string{
		"only one":   {CustomPackagesFile: "p.tsv"},
		"escapes":    {CustomPackagesFile: "../p.tsv", CustomIdentityFile: "i.env"},
		"absolute":   {CustomPackagesFile: "/etc/passwd", CustomIdentityFile: "i.env"},
		"missing":    {CustomPackagesFile: "p.tsv", CustomIdentityFile: "nope.env"},
		"not a list": {CustomPackagesFile: "i.env", CustomIdentityFile: "i.env"},
	} {
		if _, _, err := ReadRecord(dir, Build{Name: name, CustomData: cd}); outcome.Code(err) != outcome.Usage {
			t.Errorf("%s: %v, want a usage error", name, err)
		}
	}
}

func FuzzReadOSPackages(f *testing.F) {
	f.Add("libc6:amd64\t2.39-0ubuntu8.3\tamd64\tglibc\n")
	f.Add("a\tb\n")
	f.Fuzz(func(t *testing.T, in string) {
		pkgs, err := ReadOSPackages(strings.NewReader(in), "f.tsv")
		if err != nil {
			if outcome.Code(err) != outcome.Usage {
				t.Fatalf("error of exit %d: %v", outcome.Code(err), err)
			}
			return
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || strings.ContainsAny(p.Name+p.Version+p.Architecture+p.Source, "\t\n ") {
				t.Fatalf("accepted %+v", p)
			}
		}
	})
}
