package policy

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

var update = flag.Bool("update", false, "rewrite the golden files (testdata/ and the seed policies in policies/)")

// reg is a deterministic 96-hex register value derived from a label.
func reg(label string) string {
	sum := sha512.Sum384([]byte(label))
	return hex.EncodeToString(sum[:])
}

// record is the measurement of profile prof on node release version.
func record(version string, prof release.Profile) measure.Record {
	l := version + "/" + string(prof) + "/"
	return measure.Record{
		MRTD: reg(l + "mrtd"), RTMR0: reg(l + "rtmr0"), RTMR1: reg(l + "rtmr1"), RTMR2: reg(l + "rtmr2"), RTMR3: reg(l + "rtmr3"),
		Source: "tdx-simulator", MeasuredAt: "2026-11-25T10:00:00Z",
	}
}

// node is a node-image release's published-mrtds.json with records for profiles.
func node(version string, profs ...release.Profile) *measure.Published {
	p := &measure.Published{SchemaVersion: measure.PublishedSchemaVersion, Family: release.Node, Version: version,
		Profiles: map[release.Profile]measure.Record{}}
	for _, prof := range profs {
		p.Profiles[prof] = record(version, prof)
	}
	return p
}

// gceQuote holds the registers of the real GCE TDX quote in go-tdx-guest's testdata
// (testing/testdata/ccel/cos-113-tdx-quote.dat): RTMR3 is all zeros there.
var gceQuote = measure.Record{
	MRTD:       "dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba41394c7717cb2735396c1d04231f94a",
	RTMR0:      "3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b19297fc35e544039c7e1edece752afd17f6",
	RTMR1:      "f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86e8a878c2b122c1",
	RTMR2:      "4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11f381a6fbe7c1",
	RTMR3:      strings.Repeat("0", 96),
	Source:     "gcp-tdx-vm",
	MeasuredAt: "2026-11-25T10:00:00Z",
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (go test -update creates it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func mustGenerate(t testing.TB, kms string, prof release.Profile, nodes ...*measure.Published) *Policy {
	t.Helper()
	p, err := Generate(kms, prof, nodes, nil)
	if err != nil {
		t.Fatalf("Generate(%s, %s): %v", kms, prof, err)
	}
	return p
}

func mustMarshal(t testing.TB, p *Policy) []byte {
	t.Helper()
	data, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// wantVerification fails unless err is a verification error mentioning every string in want.
func wantVerification(t *testing.T, err error, want ...string) {
	t.Helper()
	wantCode(t, err, outcome.VerificationFailed, want...)
}

func wantCode(t *testing.T, err error, code int, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want exit code %d mentioning %q", code, want)
	}
	if got := outcome.Code(err); got != code {
		t.Errorf("exit code %d, want %d: %v", got, code, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func testdata(name string) string { return filepath.Join("testdata", name) }
