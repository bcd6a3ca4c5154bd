package catalog

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// seedEntries are the two example entries of the seed document.
func seedEntries() []Entry {
	return []Entry{
		{KMS: "1.2.0", NodeImage: "1.2.0", Profiles: release.Profiles(), Tested: true, Notes: "Initial paired release"},
		{KMS: "1.2.0", NodeImage: "1.1.0", Profiles: []release.Profile{release.LockedReadOnly}, Tested: true,
			Notes: "Backward compat — node 1.1.0 MRTDs in KMS 1.2.0 policy"},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func mustLoad(t *testing.T, s string) *Catalog {
	t.Helper()
	c, err := Load(strings.NewReader(s))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func TestSeedGoldenAndRepositoryCatalog(t *testing.T) {
	c := New()
	changed, err := c.Add(seedEntries()...)
	if err != nil || !changed {
		t.Fatalf("Add(seed) = %v, %v", changed, err)
	}
	data, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "seed.golden.json", data)
	// The repository's catalog is the seed, written by Marshal: canonical byte for byte.
	repo, err := os.ReadFile(filepath.Join("..", "..", DefaultFile))
	if err != nil {
		t.Fatalf("read the repository catalog: %v", err)
	}
	if !bytes.Equal(repo, data) {
		t.Errorf("%s is not the canonical seed catalog:\n%s", DefaultFile, repo)
	}
	if !strings.Contains(string(data), "—") || strings.Contains(string(data), `\u`) {
		t.Errorf("notes must be written as UTF-8 without escapes:\n%s", data)
	}
}

func TestMarshalCanonicalOrder(t *testing.T) {
	c, err := LoadFile(filepath.Join("testdata", "unsorted.json"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "unsorted.golden.json", data)
	var order []string
	for _, e := range mustLoad(t, string(data)).Entries {
		order = append(order, e.KMS+"/"+e.NodeImage)
	}
	want := []string{"1.10.0/1.10.0", "1.10.0/1.10.0-rc.2", "1.10.0/1.9.0", "1.2.0/1.2.0", "1.2.0/1.1.0"}
	if !reflect.DeepEqual(order, want) {
		t.Errorf("order = %v, want %v (newest first, semver not string order)", order, want)
	}
	if !strings.Contains(string(data), "<& html>") {
		t.Error("HTML characters must not be escaped")
	}
	if !bytes.HasSuffix(data, []byte("}\n")) {
		t.Error("missing trailing newline")
	}
}

func TestLoadMarshalIdentityOnGoldens(t *testing.T) {
	for _, name := range []string{"seed.golden.json", "unsorted.golden.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		c := mustLoad(t, string(data))
		again, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, data) {
			t.Errorf("%s: Load→Marshal is not byte-identical", name)
		}
	}
}

func TestLoadEmptyCatalog(t *testing.T) {
	c := mustLoad(t, `{"schema_version":"1","entries":[]}`)
	data, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "{\n  \"schema_version\": \"1\",\n  \"entries\": []\n}\n" {
		t.Errorf("empty catalog = %q", data)
	}
	if data, _ := (&Catalog{SchemaVersion: "1"}).Marshal(); !strings.Contains(string(data), `"entries": []`) {
		t.Errorf("nil entries must be written as [], got %s", data)
	}
}

func TestLoadRejects(t *testing.T) {
	entry := func(fields string) string { return `{"schema_version":"1","entries":[` + fields + `]}` }
	ok := `{"kms":"1.2.0","node_image":"1.2.0","profiles":["debug"],"tested":true}`
	cases := []struct {
		name, in string
		want     []string
	}{
		{"empty", ``, []string{"empty file"}},
		{"not json", `hello`, []string{"line 1, column 1", "invalid character"}},
		{"syntax line col", "{\n  \"schema_version\": \"1\",\n  \"entries\": [,]\n}", []string{"line 3, column 15"}},
		{"truncated", "{\"schema_version\": \"1\",\n \"entries\": [", []string{"line 2", "unexpected end"}},
		{"trailing data", `{"schema_version":"1","entries":[]} {}`, []string{"trailing data", "column 37"}},
		{"trailing garbage", "{\"schema_version\":\"1\",\"entries\":[]}\nx", []string{"line 2, column 1"}},
		{"top-level array", `[]`, []string{"must be an object"}},
		{"duplicate top key", `{"schema_version":"1","schema_version":"1","entries":[]}`, []string{"duplicate key \"schema_version\"", "top-level object"}},
		{"duplicate entry key", entry(`{"kms":"1.2.0","kms":"1.3.0","node_image":"1.2.0","profiles":["debug"],"tested":true}`), []string{`duplicate key "kms" in entries[0]`}},
		{"unknown top field", `{"schema_version":"1","entries":[],"extra":1}`, []string{`unknown field "extra"`}},
		{"schema version missing", `{"entries":[]}`, []string{"schema_version: missing"}},
		{"schema version wrong", `{"schema_version":"2","entries":[]}`, []string{`schema_version: "2" is not supported`}},
		{"schema version number", `{"schema_version":1,"entries":[]}`, []string{"schema_version: must be a string, got number"}},
		{"entries missing", `{"schema_version":"1"}`, []string{"entries: missing"}},
		{"entries null", `{"schema_version":"1","entries":null}`, []string{"entries: missing"}},
		{"entries object", `{"schema_version":"1","entries":{}}`, []string{"entries: must be a list"}},
		{"entry null", entry(`null`), []string{"entries[0]: must be an object"}},
		{"entry string", entry(`"x"`), []string{"entries[0]", "must be an object"}},
		{"unknown entry field", entry(`{"kms":"1.2.0","node_image":"1.1.0","profiles":["debug"],"tested":true,"node":"x"}`), []string{`entries[0] (kms "1.2.0", node_image "1.1.0")`, `unknown field "node"`}},
		{"kms missing", entry(`{"node_image":"1.2.0","profiles":["debug"],"tested":true}`), []string{"entries[0]: kms: missing"}},
		{"node missing", entry(`{"kms":"1.2.0","profiles":["debug"],"tested":true}`), []string{"entries[0]: node_image: missing"}},
		{"profiles missing", entry(`{"kms":"1.2.0","node_image":"1.2.0","tested":true}`), []string{"profiles: missing"}},
		{"tested missing", entry(ok + `,{"kms":"1.2.0","node_image":"1.1.0","profiles":["debug"]}`), []string{`entries[1] (kms "1.2.0", node_image "1.1.0"): tested: missing`}},
		{"tested null", entry(`{"kms":"1.2.0","node_image":"1.1.0","profiles":["debug"],"tested":null}`), []string{"tested: missing"}},
		{"tested string", entry(`{"kms":"1.2.0","node_image":"1.1.0","profiles":["debug"],"tested":"yes"}`), []string{"tested: must be a boolean, got string"}},
		{"kms number", entry(`{"kms":1.2,"node_image":"1.1.0","profiles":["debug"],"tested":true}`), []string{"entries[0]", "kms: must be a string, got number"}},
		{"profiles string", entry(`{"kms":"1.2.0","node_image":"1.1.0","profiles":"debug","tested":true}`), []string{"profiles: must be a list, got string"}},
		{"profile number", entry(`{"kms":"1.2.0","node_image":"1.1.0","profiles":[1],"tested":true}`), []string{"profiles", "must be a string, got number"}},
		{"notes number", entry(`{"kms":"1.2.0","node_image":"1.1.0","profiles":["debug"],"tested":true,"notes":5}`), []string{"notes: must be a string"}},
		{"bad kms version", entry(`{"kms":"v1.2.0","node_image":"1.1.0","profiles":["debug"],"tested":true}`), []string{`entries[0] (kms "v1.2.0", node_image "1.1.0"): kms:`, "X.Y.Z"}},
		{"bad node version", entry(`{"kms":"1.2.0","node_image":"1.1","profiles":["debug"],"tested":true}`), []string{"node_image:", "X.Y.Z"}},
		{"empty version", entry(`{"kms":"","node_image":"1.1.0","profiles":["debug"],"tested":true}`), []string{"kms:"}},
		{"rc without number", entry(`{"kms":"1.2.0-rc","node_image":"1.1.0","profiles":["debug"],"tested":true}`), []string{"kms:"}},
		{"empty profiles", entry(`{"kms":"1.2.0","node_image":"1.1.0","profiles":[],"tested":true}`), []string{"profiles: empty"}},
		{"unknown profile", entry(`{"kms":"1.2.0","node_image":"1.1.0","profiles":["debug","prod"],"tested":true}`), []string{`profiles[1]: unknown profile "prod"`}},
		{"duplicate profile", entry(`{"kms":"1.2.0","node_image":"1.1.0","profiles":["debug","debug"],"tested":true}`), []string{`profiles[1]: duplicate profile "debug"`}},
		{"duplicate pair", entry(ok + `,` + ok), []string{`entries[1] (kms "1.2.0", node_image "1.2.0"): duplicate pair: entries[0]`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(strings.NewReader(tc.in))
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if outcome.Code(err) != outcome.VerificationFailed {
				t.Errorf("exit code %d, want %d (%v)", outcome.Code(err), outcome.VerificationFailed, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	if _, err := LoadFile(filepath.Join(t.TempDir(), "missing.json")); err == nil || outcome.Code(err) != outcome.General {
		t.Errorf("missing file: %v (code %d), want a general error", err, outcome.Code(err))
	}
	path := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(path, []byte(`{"schema_version":"1","entries":[{}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFile(path)
	if err == nil || outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), path) {
		t.Errorf("bad file: %v, want a verification error naming %s", err, path)
	}
}

func TestLoadReadError(t *testing.T) {
	_, err := Load(iotest.ErrReader(errors.New("disk on fire")))
	if err == nil || outcome.Code(err) != outcome.General || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("read error: %v (code %d), want a general error", err, outcome.Code(err))
	}
}

func TestLoadTooLarge(t *testing.T) {
	big := bytes.Repeat([]byte(" "), maxFileSize+1)
	if _, err := Load(bytes.NewReader(big)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized catalog: %v", err)
	}
}

func TestAdd(t *testing.T) {
	c := New()
	if _, err := c.Add(seedEntries()...); err != nil {
		t.Fatal(err)
	}
	// Re-adding the same facts changes nothing.
	changed, err := c.Add(seedEntries()...)
	if err != nil || changed {
		t.Errorf("re-add = %v, %v; want unchanged", changed, err)
	}
	// An existing pair gets the union of profiles; empty notes keep the old ones.
	changed, err = c.Add(Entry{KMS: "1.2.0", NodeImage: "1.1.0", Profiles: []release.Profile{release.Debug}, Tested: true})
	if err != nil || !changed {
		t.Fatalf("merge = %v, %v", changed, err)
	}
	e, ok := c.Pair("1.2.0", "1.1.0")
	if !ok || !reflect.DeepEqual(e.Profiles, []release.Profile{release.Debug, release.LockedReadOnly}) || !strings.HasPrefix(e.Notes, "Backward compat") {
		t.Errorf("merged entry = %+v", e)
	}
	// Non-empty notes of the new entry win.
	if changed, err := c.Add(Entry{KMS: "1.2.0", NodeImage: "1.1.0", Profiles: []release.Profile{release.Debug}, Tested: true, Notes: "re-tested"}); err != nil || !changed {
		t.Fatalf("notes update = %v, %v", changed, err)
	}
	if e, _ := c.Pair("1.2.0", "1.1.0"); e.Notes != "re-tested" {
		t.Errorf("notes = %q", e.Notes)
	}
	// An untested pair in the file becomes tested when E2E passes.
	c2 := mustLoad(t, `{"schema_version":"1","entries":[{"kms":"1.3.0","node_image":"1.3.0","profiles":["debug"],"tested":false}]}`)
	if changed, err := c2.Add(Entry{KMS: "1.3.0", NodeImage: "1.3.0", Profiles: []release.Profile{release.Debug}, Tested: true}); err != nil || !changed {
		t.Fatalf("mark tested = %v, %v", changed, err)
	}
	if !c2.Lists("1.3.0", "1.3.0", release.Debug) {
		t.Error("pair should now be listed as tested")
	}
	// New pairs land in canonical order.
	if _, err := c.Add(Entry{KMS: "1.10.0", NodeImage: "1.2.0", Profiles: []release.Profile{release.LockedReadOnly, release.Debug}, Tested: true}); err != nil {
		t.Fatal(err)
	}
	if c.Entries[0].KMS != "1.10.0" || !reflect.DeepEqual(c.Entries[0].Profiles, []release.Profile{release.Debug, release.LockedReadOnly}) {
		t.Errorf("entries not canonical after Add: %+v", c.Entries[0])
	}
}

func TestAddRejects(t *testing.T) {
	cases := []struct {
		name string
		e    Entry
		want string
	}{
		{"untested", Entry{KMS: "1.3.0", NodeImage: "1.3.0", Profiles: []release.Profile{release.Debug}}, "tested: false"},
		{"bad kms", Entry{KMS: "1.3", NodeImage: "1.3.0", Profiles: []release.Profile{release.Debug}, Tested: true}, "kms:"},
		{"bad node", Entry{KMS: "1.3.0", NodeImage: "x", Profiles: []release.Profile{release.Debug}, Tested: true}, "node_image:"},
		{"no profiles", Entry{KMS: "1.3.0", NodeImage: "1.3.0", Tested: true}, "profiles: empty"},
		{"unknown profile", Entry{KMS: "1.3.0", NodeImage: "1.3.0", Profiles: []release.Profile{"prod"}, Tested: true}, `unknown profile "prod"`},
		{"duplicate profile", Entry{KMS: "1.3.0", NodeImage: "1.3.0", Profiles: []release.Profile{release.Debug, release.Debug}, Tested: true}, "duplicate profile"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := New()
			if _, err := c.Add(seedEntries()...); err != nil {
				t.Fatal(err)
			}
			before, _ := c.Marshal()
			changed, err := c.Add(Entry{KMS: "2.0.0", NodeImage: "2.0.0", Profiles: release.Profiles(), Tested: true}, tc.e)
			if err == nil || changed || outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Add = %v, %v; want a verification error mentioning %q", changed, err, tc.want)
			}
			if !strings.Contains(err.Error(), "new entry (kms") {
				t.Errorf("error %q does not name the new entry", err)
			}
			after, _ := c.Marshal()
			if !bytes.Equal(before, after) {
				t.Error("a failed Add must leave the catalog unchanged")
			}
		})
	}
	// Add validates the result: an invalid catalog stays invalid and is refused.
	bad := &Catalog{SchemaVersion: "7"}
	if _, err := bad.Add(seedEntries()...); err == nil || !strings.Contains(err.Error(), "schema_version") {
		t.Errorf("Add on a bad catalog: %v", err)
	}
}

func TestQueries(t *testing.T) {
	c := mustLoad(t, `{"schema_version":"1","entries":[
		{"kms":"1.2.0","node_image":"1.1.0","profiles":["locked-read-only"],"tested":true},
		{"kms":"1.2.0","node_image":"1.2.0","profiles":["locked-read-only","debug"],"tested":true},
		{"kms":"1.3.0","node_image":"1.2.0","profiles":["debug"],"tested":false}]}`)
	if !c.Lists("1.2.0", "1.1.0", release.LockedReadOnly) {
		t.Error("1.2.0/1.1.0 locked-read-only should be listed")
	}
	for _, q := range [][3]string{
		{"1.2.0", "1.1.0", "debug"},            // profile not listed
		{"1.1.0", "1.2.0", "locked-read-only"}, // sides swapped
		{"1.3.0", "1.2.0", "debug"},            // untested
		{"9.9.9", "1.2.0", "debug"},            // unknown pair
	} {
		if c.Lists(q[0], q[1], release.Profile(q[2])) {
			t.Errorf("Lists(%v) = true", q)
		}
	}
	e, ok := c.Pair("1.2.0", "1.2.0")
	if !ok || !reflect.DeepEqual(e.Profiles, []release.Profile{release.Debug, release.LockedReadOnly}) {
		t.Errorf("Pair = %+v, %v (profiles must come back in canonical order)", e, ok)
	}
	if _, ok := c.Pair("1.2.0", "9.0.0"); ok {
		t.Error("Pair of an unknown pair")
	}
	pairs := func(es []Entry) (out []string) {
		for _, e := range es {
			out = append(out, e.KMS+"/"+e.NodeImage)
		}
		return out
	}
	// counterparts list tested pairs only, newest first
	if got := c.CounterpartVersions(release.KMS, "1.2.0"); !reflect.DeepEqual(got, []string{"1.2.0", "1.1.0"}) {
		t.Errorf("CounterpartVersions(KMS 1.2.0) = %v", got)
	}
	if got := c.CounterpartVersions(release.Node, "1.2.0"); !reflect.DeepEqual(got, []string{"1.2.0"}) {
		t.Errorf("CounterpartVersions(node 1.2.0) = %v (1.3.0 is untested)", got)
	}
	if got := c.CounterpartVersions(release.KMS, "9.9.9"); len(got) != 0 {
		t.Errorf("CounterpartVersions of an unknown version = %v", got)
	}
	if got := pairs(c.Compatible(release.KMS, "1.2.0")); !reflect.DeepEqual(got, []string{"1.2.0/1.2.0", "1.2.0/1.1.0"}) {
		t.Errorf("Compatible(KMS 1.2.0) = %v", got)
	}
	if got := pairs(c.Compatible(release.Node, "1.2.0")); !reflect.DeepEqual(got, []string{"1.3.0/1.2.0", "1.2.0/1.2.0"}) {
		t.Errorf("Compatible(node 1.2.0) = %v", got)
	}
	if got := c.Compatible(release.Node, "5.0.0"); len(got) != 0 {
		t.Errorf("Compatible(node 5.0.0) = %v", got)
	}
	if s := e.String(); s != "kms 1.2.0 ↔ node image 1.2.0" {
		t.Errorf("String = %q", s)
	}
}

func TestDiff(t *testing.T) {
	before := New()
	if _, err := before.Add(seedEntries()...); err != nil {
		t.Fatal(err)
	}
	if d := Diff(before, before); len(d) != 0 {
		t.Errorf("Diff(x, x) = %v", d)
	}
	if d := Diff(nil, before); len(d) != 2 || d[0].NodeImage != "1.2.0" {
		t.Errorf("Diff(nil, seed) = %v", d)
	}
	if d := Diff(before, nil); d != nil {
		t.Errorf("Diff(seed, nil) = %v", d)
	}
	after := mustLoad(t, string(must(before.Marshal())))
	// Reordering profiles or entries is not a change.
	after.Entries[0], after.Entries[1] = after.Entries[1], after.Entries[0]
	after.Entries[1].Profiles = []release.Profile{release.LockedReadOnly, release.Debug, release.DebugReadOnly}
	if d := Diff(before, after); len(d) != 0 {
		t.Errorf("reordering reported as a change: %v", d)
	}
	if _, err := after.Add(
		Entry{KMS: "1.3.0", NodeImage: "1.2.0", Profiles: []release.Profile{release.Debug}, Tested: true},
		Entry{KMS: "1.2.0", NodeImage: "1.1.0", Profiles: []release.Profile{release.Debug}, Tested: true},
	); err != nil {
		t.Fatal(err)
	}
	d := Diff(before, after)
	if len(d) != 2 || d[0].String() != "kms 1.3.0 ↔ node image 1.2.0" || d[1].String() != "kms 1.2.0 ↔ node image 1.1.0" {
		t.Errorf("Diff = %v", d)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestMarshalRefusesInvalid(t *testing.T) {
	for _, c := range []*Catalog{
		{SchemaVersion: ""},
		{SchemaVersion: "1", Entries: []Entry{{KMS: "1.0.0", NodeImage: "1.0.0"}}},
		{SchemaVersion: "1", Entries: []Entry{seedEntries()[0], seedEntries()[0]}},
	} {
		if _, err := c.Marshal(); err == nil || outcome.Code(err) != outcome.VerificationFailed {
			t.Errorf("Marshal(%+v) = %v", c, err)
		}
		if err := c.WriteFile(filepath.Join(t.TempDir(), "c.json")); err == nil {
			t.Errorf("WriteFile(%+v) succeeded", c)
		}
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, DefaultFile)
	if err := os.WriteFile(path, []byte("old content"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := New()
	if _, err := c.Add(seedEntries()...); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, must(c.Marshal())) {
		t.Fatalf("WriteFile wrote %q, %v", got, err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	// A parent that is a regular file: an error naming the path, nothing written.
	blocker := filepath.Join(t.TempDir(), "nope")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(blocker, DefaultFile)
	if err := c.WriteFile(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("WriteFile under a regular file: %v", err)
	}
	// The target is a directory: the rename fails and the temporary file is removed.
	sub := filepath.Join(dir, "sub")
	if err := os.MkdirAll(filepath.Join(sub, "target", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteFile(filepath.Join(sub, "target")); err == nil {
		t.Error("WriteFile over a non-empty directory succeeded")
	}
	if left, _ := os.ReadDir(sub); len(left) != 1 {
		t.Errorf("temporary file left after a failed rename: %v", left)
	}
}

func BenchmarkLoadMarshal(b *testing.B) {
	c := New()
	for i := range 200 {
		for j := range 5 {
			e := Entry{KMS: release.Version{Major: 1, Minor: i}.String(), NodeImage: release.Version{Major: 1, Minor: i - j + 5}.String(), Profiles: release.Profiles(), Tested: true, Notes: "benchmark"}
			if _, err := c.Add(e); err != nil {
				b.Fatal(err)
			}
		}
	}
	data := must(c.Marshal())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		c, err := Load(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}
