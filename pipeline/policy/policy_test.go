package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/policies"
)

func TestSchemaIsTheEmbeddedOne(t *testing.T) {
	onDisk, err := os.ReadFile(filepath.Join("..", "..", "policies", policies.SchemaFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, policies.Schema) {
		t.Error("policies.Schema is not the file on disk")
	}
	var doc map[string]any
	if err := json.Unmarshal(policies.Schema, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["$id"] != schemaID || doc["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$id/$schema = %v / %v", doc["$id"], doc["$schema"])
	}
	if _, err := compileSchema(); err != nil {
		t.Fatal(err)
	}
}

// TestSeedPolicies: the repository's policies/attestation-policy-{profile}.json are the
// not-ready policies Generate writes for KMS 1.2.0 before any node measurement exists.
func TestSeedPolicies(t *testing.T) {
	for _, prof := range release.Profiles() {
		p := mustGenerate(t, "1.2.0", prof)
		if !p.NotReady() || len(p.AllowedMRTD) != 0 || !reflect.DeepEqual(p.AllowedTCBStatus, []string{TCBUpToDate}) {
			t.Errorf("%s seed: %+v", prof, p)
		}
		path := filepath.Join("..", "..", "policies", prof.PolicyFile())
		golden(t, path, mustMarshal(t, p))
		loaded, err := LoadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(loaded, p) {
			t.Errorf("%s: loaded %+v, generated %+v", path, loaded, p)
		}
		if err := CheckFileName(path, loaded); err != nil {
			t.Error(err)
		}
		wantVerification(t, Validate(loaded, ValidateOptions{RequireReady: true}), "status: policy_not_ready")
	}
}

func TestGenerate(t *testing.T) {
	n120 := node("1.2.0", release.Profiles()...)
	n110 := node("1.1.0", release.LockedReadOnly)
	n100 := node("1.0.0", release.Debug) // no locked-read-only record: not used
	p, err := Generate("1.2.0", release.LockedReadOnly, []*measure.Published{n120, n100, n110}, []string{TCBUpToDate, TCBSWHardeningNeeded})
	if err != nil {
		t.Fatal(err)
	}
	if p.NotReady() {
		t.Fatal("a policy with measurements must be ready")
	}
	if !reflect.DeepEqual(p.NodeVersions, []string{"1.1.0", "1.2.0"}) {
		t.Errorf("node_versions = %v", p.NodeVersions)
	}
	for _, n := range []*measure.Published{n120, n110} {
		if err := p.Accepts(n.Profiles[release.LockedReadOnly], TCBUpToDate); err != nil {
			t.Errorf("node %s not accepted: %v", n.Version, err)
		}
	}
	if len(p.AllowedMRTD) != 2 || len(p.AllowedRTMR3) != 2 {
		t.Errorf("allowlists are not the union of two records: %+v", p)
	}
	golden(t, testdata("locked-read-only.golden.json"), mustMarshal(t, p))

	// No record for the profile anywhere: policy_not_ready with empty lists.
	nr := mustGenerate(t, "1.3.0-rc.1", release.DebugReadOnly, n110, n100)
	if !nr.NotReady() || len(nr.AllowedMRTD)+len(nr.AllowedRTMR0)+len(nr.AllowedRTMR3) != 0 || nr.NodeVersions != nil {
		t.Errorf("not-ready policy = %+v", nr)
	}
	golden(t, testdata("not-ready.golden.json"), mustMarshal(t, nr))

	// The same release twice and duplicate TCB statuses collapse.
	dup, err := Generate("1.2.0", release.Debug, []*measure.Published{n120, n120}, []string{TCBUpToDate, TCBUpToDate})
	if err != nil {
		t.Fatal(err)
	}
	if len(dup.AllowedMRTD) != 1 || len(dup.NodeVersions) != 1 || len(dup.AllowedTCBStatus) != 1 {
		t.Errorf("duplicates kept: %+v", dup)
	}
}

func TestGenerateRejects(t *testing.T) {
	kmsFile := node("1.2.0", release.Debug)
	kmsFile.Family = release.KMS
	badRecord := node("1.2.0", release.Debug)
	r := badRecord.Profiles[release.Debug]
	r.RTMR1 = "xyz"
	badRecord.Profiles[release.Debug] = r
	cases := []struct {
		name    string
		kms     string
		prof    release.Profile
		nodes   []*measure.Published
		tcb     []string
		code    int
		mention []string
	}{
		{"bad kms version", "1.2", release.Debug, nil, nil, outcome.Usage, []string{"kms version", "X.Y.Z"}},
		{"bad profile", "1.2.0", "prod", nil, nil, outcome.Usage, []string{`profile "prod"`}},
		{"revoked tcb", "1.2.0", release.Debug, nil, []string{TCBUpToDate, TCBRevoked}, outcome.Usage, []string{"Revoked is never allowed"}},
		{"unknown tcb", "1.2.0", release.Debug, nil, []string{"Fine"}, outcome.Usage, []string{`unknown TCB status "Fine"`}},
		{"nil node", "1.2.0", release.Debug, []*measure.Published{nil}, nil, outcome.VerificationFailed, []string{"#1: missing"}},
		{"kms measurements", "1.2.0", release.Debug, []*measure.Published{kmsFile}, nil, outcome.VerificationFailed, []string{"family", "want mero-tee"}},
		{"invalid record", "1.2.0", release.Debug, []*measure.Published{badRecord}, nil, outcome.VerificationFailed, []string{"profiles.debug.rtmr1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Generate(tc.kms, tc.prof, tc.nodes, tc.tcb)
			wantCode(t, err, tc.code, tc.mention...)
		})
	}
}

// validJSON is a ready debug policy as a generic document, for mutation.
func validJSON(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(mustMarshal(t, mustGenerate(t, "1.2.0", release.Debug, node("1.2.0", release.Debug), node("1.1.0", release.Debug))), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestLoadRejects(t *testing.T) {
	h := reg("x")
	mutate := func(f func(doc map[string]any)) func(*testing.T) string {
		return func(t *testing.T) string {
			doc := validJSON(t)
			f(doc)
			data, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			return string(data)
		}
	}
	raw := func(s string) func(*testing.T) string { return func(*testing.T) string { return s } }
	cases := []struct {
		name string
		in   func(*testing.T) string
		want []string
	}{
		{"empty", raw(""), []string{"empty file"}},
		{"syntax", raw("{\n  \"schema_version\": \"1\"\n  \"kms_version\": \"1.2.0\"\n}"), []string{"line 3, column 3"}},
		{"truncated", raw(`{"schema_version":`), []string{"unexpected end"}},
		{"trailing data", raw(`{"schema_version":"1"} []`), []string{"trailing data"}},
		{"duplicate key", raw(`{"allowed_mrtd":[],"allowed_mrtd":[]}`), []string{`duplicate key "allowed_mrtd"`}},
		{"top-level array", raw(`[]`), []string{"(top level): must be object, got array"}},
		{"unknown field", mutate(func(d map[string]any) { d["allowed_rtmr4"] = []any{} }), []string{"allowed_rtmr4: unknown field"}},
		{"missing allowlist", mutate(func(d map[string]any) { delete(d, "allowed_rtmr2") }), []string{"allowed_rtmr2: missing"}},
		{"missing several", mutate(func(d map[string]any) { delete(d, "allowed_mrtd"); delete(d, "profile") }), []string{"allowed_mrtd: missing", "profile: missing"}},
		{"bad hex at index", mutate(func(d map[string]any) { d["allowed_rtmr2"] = []any{h, "00ff"} }), []string{`allowed_rtmr2[1]: "00ff" is not 96 lower-case hex`}},
		{"upper-case hex", mutate(func(d map[string]any) { d["allowed_mrtd"] = []any{strings.ToUpper(h)} }), []string{"allowed_mrtd[0]", "lower-case hex"}},
		{"hex not a string", mutate(func(d map[string]any) { d["allowed_rtmr0"] = []any{7} }), []string{"allowed_rtmr0[0]: must be string, got number"}},
		{"allowlist null", mutate(func(d map[string]any) { d["allowed_rtmr1"] = nil }), []string{"allowed_rtmr1: must be array, got null"}},
		{"duplicate value", mutate(func(d map[string]any) { d["allowed_rtmr3"] = []any{h, h} }), []string{"allowed_rtmr3[1]: duplicate of allowed_rtmr3[0]"}},
		{"empty tcb", mutate(func(d map[string]any) { d["allowed_tcb_status"] = []any{} }), []string{"allowed_tcb_status: empty"}},
		{"missing tcb", mutate(func(d map[string]any) { delete(d, "allowed_tcb_status") }), []string{"allowed_tcb_status: missing"}},
		{"revoked tcb", mutate(func(d map[string]any) { d["allowed_tcb_status"] = []any{"UpToDate", "Revoked"} }), []string{"allowed_tcb_status[1]: Revoked is never allowed"}},
		{"unknown tcb", mutate(func(d map[string]any) { d["allowed_tcb_status"] = []any{"Great"} }), []string{`allowed_tcb_status[0]: must be one of "UpToDate", "SWHardeningNeeded"`, `got "Great"`}},
		{"ready but empty", mutate(func(d map[string]any) { d["allowed_rtmr1"] = []any{} }), []string{"allowed_rtmr1: empty; a ready policy"}},
		{"other status", mutate(func(d map[string]any) { d["status"] = "ready" }), []string{`status: must be "policy_not_ready", got "ready"`}},
		{"schema version", mutate(func(d map[string]any) { d["schema_version"] = "2" }), []string{`schema_version: must be "1", got "2"`}},
		{"kms version", mutate(func(d map[string]any) { d["kms_version"] = "v1.2.0" }), []string{`kms_version: "v1.2.0" is not a version`}},
		{"kms version type", mutate(func(d map[string]any) { d["kms_version"] = 1.2 }), []string{"kms_version: must be string, got number"}},
		{"profile", mutate(func(d map[string]any) { d["profile"] = "prod" }), []string{`profile: must be one of "debug", "debug-read-only", "locked-read-only"`, `got "prod"`}},
		{"node versions", mutate(func(d map[string]any) { d["node_versions"] = []any{"1.2.0", "1.2"} }), []string{`node_versions[1]: "1.2" is not a version`}},
		{"node versions dup", mutate(func(d map[string]any) { d["node_versions"] = []any{"1.2.0", "1.2.0"} }), []string{"node_versions[1]: duplicate of node_versions[0]"}},
		{"many errors are capped", mutate(func(d map[string]any) {
			for _, f := range []string{"allowed_mrtd", "allowed_rtmr0", "allowed_rtmr1", "allowed_rtmr2", "allowed_rtmr3", "profile", "kms_version"} {
				delete(d, f)
			}
		}), []string{"and 2 more"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(strings.NewReader(tc.in(t)))
			wantVerification(t, err, tc.want...)
		})
	}
}

func TestLoadReadErrors(t *testing.T) {
	_, err := Load(iotest.ErrReader(errors.New("disk on fire")))
	wantCode(t, err, outcome.General, "disk on fire")
	_, err = Load(bytes.NewReader(bytes.Repeat([]byte(" "), maxFileSize+1)))
	wantVerification(t, err, "larger than")
	_, err = LoadFile(filepath.Join(t.TempDir(), "nope.json"))
	wantCode(t, err, outcome.General, "nope.json")
	bad := filepath.Join(t.TempDir(), "attestation-policy-debug.json")
	if err := os.WriteFile(bad, []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadFile(bad)
	wantVerification(t, err, bad, "allowed_mrtd: missing")
}

func TestLoadNotReadyWithMeasurements(t *testing.T) {
	// A release candidate may carry measurements already and still be not ready.
	p := mustGenerate(t, "1.2.0-rc.1", release.Debug, node("1.2.0-rc.1", release.Debug))
	p.Status = StatusNotReady
	loaded, err := Load(bytes.NewReader(mustMarshal(t, p)))
	if err != nil || !loaded.NotReady() || len(loaded.AllowedMRTD) != 1 {
		t.Fatalf("Load = %+v, %v", loaded, err)
	}
}

func TestMarshalDeterministic(t *testing.T) {
	a, b, c := reg("a"), reg("b"), reg("c")
	p := &Policy{SchemaVersion: "1", KMSVersion: "1.2.0", Profile: release.Debug,
		AllowedTCBStatus: []string{TCBUpToDate, TCBOutOfDate, TCBUpToDate},
		AllowedMRTD:      []string{c, a, b, a}, AllowedRTMR0: []string{b}, AllowedRTMR1: []string{a}, AllowedRTMR2: []string{c}, AllowedRTMR3: []string{a},
		NodeVersions: []string{"1.10.0", "1.9.0", "1.10.0-rc.1", "1.9.0"}}
	data := mustMarshal(t, p)
	loaded, err := Load(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if !isSorted(loaded.AllowedMRTD) || len(loaded.AllowedMRTD) != 3 {
		t.Errorf("allowed_mrtd not sorted and deduplicated: %v", loaded.AllowedMRTD)
	}
	if !reflect.DeepEqual(loaded.NodeVersions, []string{"1.9.0", "1.10.0-rc.1", "1.10.0"}) {
		t.Errorf("node_versions not in semver order: %v", loaded.NodeVersions)
	}
	if !reflect.DeepEqual(loaded.AllowedTCBStatus, []string{TCBOutOfDate, TCBUpToDate}) {
		t.Errorf("allowed_tcb_status = %v", loaded.AllowedTCBStatus)
	}
	if again := mustMarshal(t, loaded); !bytes.Equal(again, data) {
		t.Errorf("Load→Marshal not identical:\n%s\n%s", data, again)
	}
	if len(p.AllowedMRTD) != 4 {
		t.Error("Marshal must not modify the policy")
	}
	sum := sha256.Sum256(data)
	if p.SHA256() != hex.EncodeToString(sum[:]) || loaded.SHA256() != p.SHA256() {
		t.Errorf("SHA256 = %s, want %x", p.SHA256(), sum)
	}
	// Empty lists are written as [], an absent status and node_versions are left out.
	empty := mustMarshal(t, &Policy{SchemaVersion: "1", KMSVersion: "1.0.0", Profile: release.Debug, Status: StatusNotReady, AllowedTCBStatus: DefaultTCBStatus()})
	if !strings.Contains(string(empty), `"allowed_rtmr3": []`) || strings.Contains(string(empty), "node_versions") || strings.Contains(string(empty), "null") {
		t.Errorf("empty policy:\n%s", empty)
	}
	if !bytes.HasSuffix(empty, []byte("}\n")) {
		t.Error("no trailing newline")
	}
}

func isSorted(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] >= s[i] {
			return false
		}
	}
	return true
}

func TestGoldenFilesLoad(t *testing.T) {
	for _, name := range []string{"locked-read-only.golden.json", "not-ready.golden.json", "promoted.golden.json"} {
		data, err := os.ReadFile(testdata(name))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Load(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(mustMarshal(t, p), data) {
			t.Errorf("%s is not canonical", name)
		}
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := mustGenerate(t, "1.2.0", release.Debug, node("1.2.0", release.Debug))
	path := filepath.Join(dir, release.Debug.PolicyFile())
	if err := p.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, mustMarshal(t, p)) {
		t.Error("WriteFile content differs from Marshal")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("leftover files: %v", entries)
	}
	bad := *p
	bad.AllowedTCBStatus = nil
	wantVerification(t, bad.WriteFile(path), "allowed_tcb_status: empty")
	blocker := filepath.Join(t.TempDir(), "missing")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteFile(filepath.Join(blocker, "x.json")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("WriteFile under a regular file: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "target", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteFile(filepath.Join(dir, "target")); err == nil {
		t.Error("WriteFile over a non-empty directory succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("temporary file left after a failed rename: %v", entries)
	}
}

func TestCheckFileName(t *testing.T) {
	p := mustGenerate(t, "1.2.0", release.LockedReadOnly)
	if err := CheckFileName("dir/attestation-policy-locked-read-only.json", p); err != nil {
		t.Error(err)
	}
	if err := CheckFileName("policy.json", p); err != nil {
		t.Errorf("other names are not checked: %v", err)
	}
	wantVerification(t, CheckFileName("x/attestation-policy-debug.json", p), `profile: "locked-read-only", but the file name says "debug"`)
	wantVerification(t, CheckFileName("attestation-policy-debug-read-only.json", p), `says "debug-read-only"`)
}
