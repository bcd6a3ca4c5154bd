package measure_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

func samplePublished() *measure.Published {
	reg := func(c string) string { return strings.Repeat(c, 96) }
	return &measure.Published{SchemaVersion: "1", Family: release.Node, Version: "1.2.0", Profiles: map[release.Profile]measure.Record{
		release.Debug: {MRTD: reg("a"), RTMR0: reg("b"), RTMR1: reg("c"), RTMR2: reg("d"), RTMR3: reg("e"), Source: "tdx-simulator", MeasuredAt: "2026-11-25T10:00:00Z"},
	}}
}

func TestWriteAndReadPublishedFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "published-mrtds.json")
	pub := samplePublished()
	if err := pub.Write(p); err != nil {
		t.Fatal(err)
	}
	// Overwriting is atomic and leaves no temporary file behind.
	if err := pub.Write(p); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the file", len(entries))
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", st.Mode())
	}
	data, _ := os.ReadFile(p)
	want, _ := pub.Marshal()
	if string(data) != string(want) || !strings.HasSuffix(string(data), "}\n") {
		t.Fatalf("file:\n%s", data)
	}
	got, err := measure.ReadPublishedFile(p)
	if err != nil || got.Profiles[release.Debug] != pub.Profiles[release.Debug] {
		t.Fatalf("read back %+v, %v", got, err)
	}

	if _, err := measure.ReadPublishedFile(filepath.Join(dir, "missing.json")); outcome.Code(err) != outcome.MissingAsset {
		t.Fatalf("missing: %v", err)
	}
	bad := writeFile(t, filepath.Join(dir, "bad.json"), `{"schema_version":"1","family":"mero-tee","version":"1.2.0","profiles":{}}`)
	if _, err := measure.ReadPublishedFile(bad); outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), "bad.json") {
		t.Fatalf("invalid: %v", err)
	}
	invalid := samplePublished()
	invalid.Version = "1.2"
	if err := invalid.Write(filepath.Join(dir, "x.json")); err == nil {
		t.Fatal("Write accepted an invalid file")
	}
	blocker := filepath.Join(dir, "a-file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := pub.Write(filepath.Join(blocker, "x.json")); err == nil {
		t.Fatal("Write under a regular file succeeded")
	}
}
