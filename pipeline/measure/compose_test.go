package measure_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/tdx"
)

// TestCanonicalJSONMatchesPython checks the Go canonical form against goldens written by
// Python's json.dumps(sort_keys=True, separators=(",",":"), ensure_ascii=False).
func TestCanonicalJSONMatchesPython(t *testing.T) {
	inputs, err := filepath.Glob("testdata/canonical/*.*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, in := range inputs {
		if strings.HasSuffix(in, ".golden") || strings.HasSuffix(in, ".md") {
			continue
		}
		n++
		data, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(strings.TrimSuffix(in, filepath.Ext(in)) + ".golden")
		if err != nil {
			t.Fatal(err)
		}
		got, err := measure.CanonicalJSON(in, data)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", in, got, want)
		}
	}
	if n < 5 {
		t.Fatalf("only %d inputs found", n)
	}
}

func TestCanonicalJSONRules(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"b":1,"a":2}`, `{"a":2,"b":1}`},
		{"b: 1\na: 2\n", `{"a":2,"b":1}`},
		{"a: 1.0\nb: 1\nc: 1e3\nd: -0.5\n", `{"a":1.0,"b":1,"c":1000.0,"d":-0.5}`},
		{"a: \"x\\ty\"\nb: 'q\"'\n", `{"a":"x\ty","b":"q\""}`},
		{"list:\n  - 1\n  - two\n  - null\n  - true\n", `{"list":[1,"two",null,true]}`},
		{"a: &x {k: v}\nb: *x\n", `{"a":{"k":"v"},"b":{"k":"v"}}`},
		{"base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n", `{"base":{"x":1,"y":2},"d":{"x":1,"y":3}}`},
		{"\xef\xbb\xbf{\"a\":1}", `{"a":1}`},
		{"  [1, 2]  ", `[1,2]`},
		{"\"just a string\"", `"just a string"`},
		{`{"a":"</script>&"}`, `{"a":"</script>&"}`},
		{"s: \"\\x01\"\n", `{"s":"\u0001"}`},
	}
	for _, tt := range tests {
		got, err := measure.CanonicalJSON("in", []byte(tt.in))
		if err != nil || string(got) != tt.want {
			t.Errorf("CanonicalJSON(%q) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestCanonicalJSONRejects(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "  \n", "empty document"},
		{"invalid utf-8", "a: \xff\n", "not valid UTF-8"},
		{"two documents", "a: 1\n---\nb: 2\n", "line 2: a second YAML document"},
		{"int key", "1: x\n", `line 1: mapping key "1" is a int`},
		{"bool key", "a:\n  true: x\n", `line 2: mapping key "true" is a bool`},
		{"timestamp", "when: 2026-11-25\n", `line 1: "2026-11-25" is a YAML timestamp`},
		{"binary", "b: !!binary aGk=\n", "binary"},
		{"infinity", "x: .inf\n", "is not a JSON number"},
		{"nan", "x: .nan\n", "is not a JSON number"},
		{"bad yaml", "a: [1,\n", "in"},
		{"complex key", "? [a]\n: 1\n", "must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := measure.CanonicalJSON("compose.yaml", []byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "compose.yaml") || outcome.Code(err) != outcome.Usage {
				t.Fatalf("err = %v, want a usage error naming the file and %q", err, tt.want)
			}
		})
	}
}

func TestParseCompose(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	yml := composeYAML(d, "debug")
	c, err := measure.ParseCompose("compose.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	if c.AppCompose || c.Images["kms"] != kmsRepo+"@"+d {
		t.Fatalf("compose %+v", c)
	}
	if sum := sha256.Sum256(c.Canonical); c.Hash != sum || c.HashHex() != hex.EncodeToString(sum[:]) {
		t.Fatal("Hash is not SHA-256 of the canonical JSON")
	}
	// The same document as JSON, reordered and indented, has the same hash.
	js := `{
	  "services": {"kms": {"volumes": ["/var/run/dstack.sock:/var/run/dstack.sock"], "ports": ["8080:8080"],
	    "environment": {"MERO_KMS_VERSION": "1.2.0", "MERO_KMS_PROFILE": "debug"}, "image": "` + kmsRepo + "@" + d + `"}}
	}`
	cj, err := measure.ParseCompose("compose.json", []byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if cj.Hash != c.Hash {
		t.Fatalf("YAML and JSON forms of one document hash differently:\n%s\n%s", c.Canonical, cj.Canonical)
	}
	ref, err := c.ReferenceTo(d)
	if err != nil || ref != kmsRepo+"@"+d {
		t.Fatalf("ReferenceTo = %q, %v", ref, err)
	}
	other := "sha256:" + strings.Repeat("cd", 32)
	if _, err := c.ReferenceTo(other); outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), "does not reference image "+other) {
		t.Fatalf("ReferenceTo(other) = %v", err)
	}

	// A dstack app-compose: the hash covers the whole app-compose, images come from the inner file.
	app, err := os.ReadFile("testdata/canonical/app-compose.json")
	if err != nil {
		t.Fatal(err)
	}
	ac, err := measure.ParseCompose("app-compose.json", app)
	if err != nil {
		t.Fatal(err)
	}
	golden, _ := os.ReadFile("testdata/canonical/app-compose.golden")
	if !ac.AppCompose || ac.Hash != sha256.Sum256(golden) || ac.Images["kms"] != kmsRepo+"@sha256:"+strings.Repeat("0", 64) {
		t.Fatalf("app-compose %+v", ac)
	}
}

func TestParseComposeRejects(t *testing.T) {
	pinned := kmsRepo + "@sha256:" + strings.Repeat("ab", 32)
	tests := []struct{ name, in, want string }{
		{"not a mapping", "- a\n", "not a mapping"},
		{"neither kind", "name: x\n", "neither a docker compose file"},
		{"no services", "services: {}\n", "services: want a non-empty mapping"},
		{"service not a map", "services:\n  kms: 3\n", "services.kms: not a mapping"},
		{"no image", "services:\n  kms:\n    build: .\n", "services.kms.image: missing"},
		{"tag only", "services:\n  kms:\n    image: " + kmsRepo + ":1.2.0\n", "not pinned by digest"},
		{"short digest", "services:\n  kms:\n    image: " + kmsRepo + "@sha256:abc\n", "not pinned by digest"},
		{"one unpinned sidecar", "services:\n  kms:\n    image: " + pinned + "\n  proxy:\n    image: nginx:latest\n", "services.proxy.image"},
		{"app-compose inner not a string", `{"docker_compose_file": 3}`, "docker_compose_file: want the compose file as a string"},
		{"app-compose inner broken", `{"docker_compose_file": "services: ["}`, "docker_compose_file"},
		{"app-compose inner not a mapping", `{"docker_compose_file": "- a"}`, "docker_compose_file: not a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := measure.ParseCompose("c.yaml", []byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) || outcome.Code(err) != outcome.Usage {
				t.Fatalf("err = %v, want usage error with %q", err, tt.want)
			}
		})
	}
	if _, err := measure.LoadCompose(filepath.Join(t.TempDir(), "missing.yaml")); outcome.Code(err) != outcome.Usage {
		t.Fatalf("missing file: %v", err)
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	writeFile(t, big, strings.Repeat("#", measure.MaxComposeSize+1))
	if _, err := measure.LoadCompose(big); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("oversized file: %v", err)
	}
}

func TestDstackEvents(t *testing.T) {
	// Digest of a real dstack app-id event (public boot event log of a dstack 0.5.9 CVM).
	appID, _ := hex.DecodeString("21dfb9d71c8d72522bb4372657b96308a190daaa")
	if got := measure.DstackEventDigest("app-id", appID); hex.EncodeToString(got[:]) != "9ed62428c189f50e81d1ec97382a363f20692a00a78cf547ce2f98b5418039527bf3a546cd3660753424cdd167ead6d9" {
		t.Fatalf("app-id digest %x", got)
	}
	var ch [32]byte
	copy(ch[:], bytes.Repeat([]byte{0x5a}, 32))
	evs, err := measure.DstackBoot{KeyProviderID: []byte{0xbe, 0xef}, StorageFS: "zfs"}.Events(ch)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range evs {
		if e.IMR != 3 {
			t.Fatalf("event %q extends RTMR%d", e.Event, e.IMR)
		}
		names = append(names, strings.SplitN(e.Event, ":", 2)[0])
	}
	if got := strings.Join(names, ","); got != "system-preparing,app-id,compose-hash,instance-id,boot-mr-done,key-provider,storage-fs,system-ready" {
		t.Fatalf("events %s", got)
	}
	if evs[1].Digest != measure.DstackEventDigest("app-id", ch[:20]) {
		t.Fatal("default app id is not the compose hash's first 20 bytes")
	}
	if evs[5].Digest != measure.DstackEventDigest("key-provider", []byte(`{"name":"kms","id":"beef"}`)) {
		t.Fatal("key-provider payload")
	}
	// Replaying them is extending RTMR3 from zero event by event.
	var want [48]byte
	for _, e := range evs {
		want = tdx.Extend(want, e.Digest)
	}
	got, err := tdx.Replay(evs)
	if err != nil || got[3] != want || got[0] != ([48]byte{}) {
		t.Fatalf("replay %x, %v", got[3], err)
	}
	noFS, _ := measure.DstackBoot{}.Events(ch)
	if len(noFS) != 7 {
		t.Fatalf("without StorageFS: %d events, want 7", len(noFS))
	}
	for _, b := range []measure.DstackBoot{{AppID: []byte{1, 2}}, {KeyProviderName: "KMS\""}} {
		if _, err := b.Events(ch); outcome.Code(err) != outcome.Usage {
			t.Errorf("%+v: err = %v", b, err)
		}
	}
}

func TestDstackEventSeparatesNameAndPayload(t *testing.T) {
	a := measure.DstackEvent("compose-hash", []byte{1, 2})
	b := measure.DstackEvent("compose-hash", []byte{1, 3})
	c := measure.DstackEvent("app-id", []byte{1, 2})
	if a.IMR != 3 || a.Digest == b.Digest || a.Digest == c.Digest {
		t.Errorf("dstack events do not separate name and payload: %+v %+v %+v", a, b, c)
	}
	if a.Digest != measure.DstackEventDigest("compose-hash", []byte{1, 2}) {
		t.Error("DstackEvent's digest is not DstackEventDigest")
	}
}
