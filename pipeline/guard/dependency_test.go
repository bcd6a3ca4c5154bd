package guard

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/catalog"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/store"
	"github.com/calimero-network/mero-release/pipeline/store/dir"
)

func reg(version string, p release.Profile, name string) string {
	sum := sha512.Sum384([]byte(version + " " + string(p) + " " + name))
	return hex.EncodeToString(sum[:])
}

func nodeMeasurements(version string) *measure.Published {
	pub := &measure.Published{SchemaVersion: measure.PublishedSchemaVersion, Family: release.Node, Version: version, Profiles: map[release.Profile]measure.Record{}}
	for _, p := range release.Profiles() {
		pub.Profiles[p] = measure.Record{
			MRTD: reg(version, p, "mrtd"), RTMR0: reg(version, p, "rtmr0"), RTMR1: reg(version, p, "rtmr1"),
			RTMR2: reg(version, p, "rtmr2"), RTMR3: reg(version, p, "rtmr3"),
			Source: "tdx-simulator", MeasuredAt: "2026-01-01T00:00:00Z",
		}
	}
	return pub
}

type depFixture struct {
	store   *dir.Store
	catalog *catalog.Catalog
}

func publish(t *testing.T, st *dir.Store, tag string, assets map[string][]byte, draft bool) {
	t.Helper()
	ctx := context.Background()
	if _, err := st.CreateDraft(ctx, store.DraftSpec{Tag: tag}); err != nil {
		t.Fatal(err)
	}
	for name, b := range assets {
		if err := st.UploadAsset(ctx, tag, name, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
	if !draft {
		if err := st.Publish(ctx, tag, store.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func mrtdsFile(t *testing.T, pub *measure.Published) map[string][]byte {
	t.Helper()
	b, err := pub.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{release.PublishedMRTDsFile: b}
}

func newDepFixture(t *testing.T) depFixture {
	st, err := dir.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	publish(t, st, "mero-tee-v1.2.0", mrtdsFile(t, nodeMeasurements("1.2.0")), false)
	publish(t, st, "mero-tee-v1.3.0", mrtdsFile(t, nodeMeasurements("1.3.0")), false)
	publish(t, st, "mero-tee-v1.4.0", nil, false) // published without measurements
	publish(t, st, "mero-tee-v1.5.0", mrtdsFile(t, nodeMeasurements("1.5.0")), true)
	publish(t, st, "mero-tee-v1.6.0", map[string][]byte{release.PublishedMRTDsFile: []byte(`{"schema_version":"1"}`)}, false)
	publish(t, st, "mero-tee-v1.7.0", mrtdsFile(t, nodeMeasurements("1.2.0")), false) // another release's file
	partial := nodeMeasurements("1.8.0")
	delete(partial.Profiles, release.LockedReadOnly)
	publish(t, st, "mero-tee-v1.8.0", mrtdsFile(t, partial), false)
	publish(t, st, "mero-kms-v1.3.0", nil, false)

	c := catalog.New()
	for _, pair := range [][2]string{{"1.3.0", "1.2.0"}, {"1.3.0", "1.3.0"}, {"1.3.0", "1.4.0"}, {"1.3.0", "1.6.0"}, {"1.3.0", "1.7.0"}, {"1.3.0", "1.8.0"}} {
		if _, err := c.Add(catalog.Entry{KMS: pair[0], NodeImage: pair[1], Profiles: release.Profiles(), Tested: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Add(catalog.Entry{KMS: "1.3.0", NodeImage: "1.1.0", Profiles: []release.Profile{release.Debug}, Tested: true}); err != nil {
		t.Fatal(err)
	}
	c.Entries = append(c.Entries, catalog.Entry{KMS: "1.3.0", NodeImage: "1.0.0", Profiles: release.Profiles(), Tested: false})
	return depFixture{store: st, catalog: c}
}

// policies generates the three policies of KMS 1.3.0 from the given node releases.
func policies(t *testing.T, nodes ...*measure.Published) map[release.Profile]*policy.Policy {
	t.Helper()
	out := map[release.Profile]*policy.Policy{}
	for _, p := range release.Profiles() {
		g, err := policy.Generate("1.3.0", p, nodes, nil)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = g
	}
	return out
}

func statuses(r Report) string {
	var s []string
	for _, c := range r.Checks {
		s = append(s, string(c.Status)+" "+c.Name)
	}
	return strings.Join(s, "\n")
}

func TestDependency(t *testing.T) {
	fx := newDepFixture(t)
	kms := release.MustParseTag("mero-kms-v1.3.0")
	node := func(v string) release.Tag { return release.MustParseTag("mero-tee-v" + v) }
	ready := policies(t, nodeMeasurements("1.2.0"))
	both := policies(t, nodeMeasurements("1.2.0"), nodeMeasurements("1.3.0"))
	notReady := policies(t)
	tampered := policies(t, nodeMeasurements("1.2.0"))
	tampered[release.Debug].AllowedRTMR1 = append(tampered[release.Debug].AllowedRTMR1, reg("evil", release.Debug, "rtmr1"))
	debugOnly := map[release.Profile]*policy.Policy{release.Debug: ready[release.Debug]}

	cases := []struct {
		name     string
		in       DependencyInput
		code     int
		statuses []string // "STATUS name" lines expected, in order, when given
		mention  []string
	}{
		{"kms release, all good", DependencyInput{Tag: kms, Counterpart: node("1.2.0"), Policies: ready}, outcome.OK, []string{
			"PASS counterpart release",
			"PASS catalog pair (debug)", "PASS catalog pair (debug-read-only)", "PASS catalog pair (locked-read-only)",
			"PASS policy measurements (debug)", "PASS policy accepts counterpart (debug)",
			"PASS policy measurements (debug-read-only)", "PASS policy accepts counterpart (debug-read-only)",
			"PASS policy measurements (locked-read-only)", "PASS policy accepts counterpart (locked-read-only)",
		}, []string{"all 5 allowlisted value(s) of the debug policy were published by mero-tee-v1.2.0"}},
		{"policy for two node versions", DependencyInput{Tag: kms, Counterpart: node("1.3.0"), Policies: both}, outcome.OK, nil,
			[]string{"all 10 allowlisted value(s)", "published by mero-tee-v1.3.0 or mero-tee-v1.2.0"}},
		{"node release, all good", DependencyInput{Tag: node("1.2.0"), Counterpart: kms}, outcome.OK,
			[]string{"PASS counterpart release", "PASS catalog pair"}, []string{"listed and tested for debug, debug-read-only, locked-read-only"}},
		{"kms release without policies", DependencyInput{Tag: kms, Counterpart: node("1.2.0")}, outcome.OK,
			[]string{"PASS counterpart release", "PASS catalog pair", "SKIP policy measurements"}, nil},
		{"counterpart missing", DependencyInput{Tag: kms, Counterpart: node("9.9.9"), Policies: ready}, outcome.VerificationFailed, nil,
			[]string{"counterpart release mero-tee-v9.9.9 does not exist in the store", "does not list kms 1.3.0 with node image 9.9.9", "counterpart release mero-tee-v9.9.9 is not published"}},
		{"counterpart is a draft", DependencyInput{Tag: kms, Counterpart: node("1.5.0")}, outcome.VerificationFailed, nil,
			[]string{"mero-tee-v1.5.0 is a draft"}},
		{"node release, kms missing", DependencyInput{Tag: node("1.2.0"), Counterpart: release.MustParseTag("mero-kms-v2.0.0")}, outcome.VerificationFailed, nil,
			[]string{"mero-kms-v2.0.0 does not exist", "does not list kms 2.0.0 with node image 1.2.0"}},
		{"pair untested", DependencyInput{Tag: kms, Counterpart: node("1.0.0")}, outcome.VerificationFailed, nil,
			[]string{"as not tested"}},
		{"pair lacks a profile", DependencyInput{Tag: kms, Counterpart: node("1.1.0"), Policies: debugOnly}, outcome.VerificationFailed,
			[]string{"FAIL counterpart release", "PASS catalog pair (debug)", "SKIP policy measurements (debug)"}, nil},
		{"pair lacks a profile of the policies", DependencyInput{Tag: kms, Counterpart: node("1.1.0"), Policies: ready}, outcome.VerificationFailed, nil,
			[]string{"listed for debug but not for debug-read-only"}},
		{"policy allows an unpublished value", DependencyInput{Tag: kms, Counterpart: node("1.2.0"), Policies: tampered}, outcome.VerificationFailed, nil,
			[]string{"the debug policy allows 1 value(s) that mero-tee-v1.2.0 did not publish for debug: allowed_rtmr1 " + reg("evil", release.Debug, "rtmr1")[:16]}},
		{"policy refuses the counterpart", DependencyInput{Tag: kms, Counterpart: node("1.3.0"), Policies: ready}, outcome.VerificationFailed, nil,
			[]string{"PASS] policy measurements (debug)", "a mero-tee-v1.3.0 debug node would be refused by the debug policy: mrtd"}},
		{"not-ready policies warn", DependencyInput{Tag: kms, Counterpart: node("1.2.0"), Policies: notReady}, outcome.OK,
			[]string{"PASS counterpart release", "PASS catalog pair (debug)", "PASS catalog pair (debug-read-only)", "PASS catalog pair (locked-read-only)",
				"WARN policy measurements (debug)", "WARN policy measurements (debug-read-only)", "WARN policy measurements (locked-read-only)"},
			[]string{"policy_not_ready"}},
		{"counterpart without published-mrtds.json", DependencyInput{Tag: kms, Counterpart: node("1.4.0"), Policies: ready}, outcome.MissingAsset, nil,
			[]string{"release mero-tee-v1.4.0 has no published-mrtds.json"}},
		{"invalid published-mrtds.json", DependencyInput{Tag: kms, Counterpart: node("1.6.0"), Policies: ready}, outcome.VerificationFailed, nil,
			[]string{"published-mrtds.json of mero-tee-v1.6.0"}},
		{"published-mrtds.json of another release", DependencyInput{Tag: kms, Counterpart: node("1.7.0"), Policies: ready}, outcome.VerificationFailed, nil,
			[]string{"describes mero-tee 1.2.0"}},
		{"counterpart lacks a profile", DependencyInput{Tag: kms, Counterpart: node("1.8.0"), Policies: policies(t, nodeMeasurements("1.8.0"))}, outcome.VerificationFailed,
			nil, []string{"mero-tee-v1.8.0 publishes no locked-read-only measurements", "[SKIP] policy accepts counterpart (locked-read-only)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.in.Store, c.in.Catalog = fx.store, fx.catalog
			r, err := Dependency(context.Background(), c.in)
			if outcome.Code(err) != c.code {
				t.Fatalf("code %d (%v), want %d\n%s", outcome.Code(err), err, c.code, statuses(r))
			}
			if c.statuses != nil && statuses(r) != strings.Join(c.statuses, "\n") {
				t.Errorf("checks:\n%s\nwant:\n%s", statuses(r), strings.Join(c.statuses, "\n"))
			}
			var all strings.Builder
			for _, ch := range r.Checks {
				all.WriteString(ch.String() + "\n")
			}
			for _, m := range c.mention {
				if !strings.Contains(all.String(), m) {
					t.Errorf("report lacks %q:\n%s", m, all.String())
				}
			}
			if (err == nil) != r.Passed() && c.code != outcome.MissingAsset {
				t.Errorf("error %v but Passed() = %v", err, r.Passed())
			}
		})
	}
}

func TestDependencyNodeVersions(t *testing.T) {
	fx := newDepFixture(t)
	kms := release.MustParseTag("mero-kms-v1.3.0")
	ps := policies(t, nodeMeasurements("1.2.0"))
	ps[release.Debug].NodeVersions = append(ps[release.Debug].NodeVersions, "1.5.0", "3.0.0", "1.4.0")
	r, err := Dependency(context.Background(), DependencyInput{Tag: kms, Counterpart: release.MustParseTag("mero-tee-v1.2.0"), Store: fx.store, Catalog: fx.catalog, Policies: ps})
	if outcome.Code(err) != outcome.MissingAsset {
		t.Fatalf("code %d: %v", outcome.Code(err), err)
	}
	msg := r.Failed()[0].Message
	for _, want := range []string{"node_versions names mero-tee-v1.5.0, which is not a published release", "mero-tee-v3.0.0, which is not", "mero-tee-v1.4.0 has no published-mrtds.json"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	ps[release.Debug].NodeVersions = []string{"1.2.0", "not-a-version"}
	r, err = Dependency(context.Background(), DependencyInput{Tag: kms, Counterpart: release.MustParseTag("mero-tee-v1.2.0"), Store: fx.store, Catalog: fx.catalog, Policies: ps})
	if outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), "node_versions") {
		t.Fatalf("bad node_versions: %v", err)
	}
}

func TestDependencyUsage(t *testing.T) {
	fx := newDepFixture(t)
	kms := release.MustParseTag("mero-kms-v1.3.0")
	tee := release.MustParseTag("mero-tee-v1.2.0")
	ready := policies(t, nodeMeasurements("1.2.0"))
	swapped := map[release.Profile]*policy.Policy{release.Debug: ready[release.LockedReadOnly]}
	cases := map[string]DependencyInput{
		"same family":         {Tag: kms, Counterpart: release.MustParseTag("mero-kms-v1.2.0"), Store: fx.store, Catalog: fx.catalog},
		"no store":            {Tag: kms, Counterpart: tee, Catalog: fx.catalog},
		"no catalog":          {Tag: kms, Counterpart: tee, Store: fx.store},
		"policies for a node": {Tag: tee, Counterpart: kms, Store: fx.store, Catalog: fx.catalog, Policies: ready},
		"nil policy":          {Tag: kms, Counterpart: tee, Store: fx.store, Catalog: fx.catalog, Policies: map[release.Profile]*policy.Policy{release.Debug: nil}},
		"misfiled policy":     {Tag: kms, Counterpart: tee, Store: fx.store, Catalog: fx.catalog, Policies: swapped},
	}
	for name, in := range cases {
		if _, err := Dependency(context.Background(), in); outcome.Code(err) != outcome.Usage {
			t.Errorf("%s: %v, want a usage error", name, err)
		}
	}
}

// failingStore is a store whose reads fail: the guard reports a general error, not a verdict.
type failingStore struct {
	store.Store
	failOpen bool
}

func (f failingStore) Release(ctx context.Context, tag string) (*store.Release, error) {
	if f.failOpen {
		return f.Store.Release(ctx, tag)
	}
	return nil, errors.New("connection refused")
}

func (f failingStore) OpenAsset(ctx context.Context, tag, name string) (io.ReadCloser, error) {
	return nil, errors.New("connection reset")
}

func TestDependencyStoreErrors(t *testing.T) {
	fx := newDepFixture(t)
	in := DependencyInput{Tag: release.MustParseTag("mero-kms-v1.3.0"), Counterpart: release.MustParseTag("mero-tee-v1.2.0"),
		Catalog: fx.catalog, Policies: policies(t, nodeMeasurements("1.2.0"))}
	for _, st := range []failingStore{{Store: fx.store}, {Store: fx.store, failOpen: true}} {
		in.Store = st
		_, err := Dependency(context.Background(), in)
		if outcome.Code(err) != outcome.General || !strings.Contains(err.Error(), "connection re") {
			t.Errorf("store failure (failOpen=%v) = %v, want a general error", st.failOpen, err)
		}
	}
}

func TestReportLog(t *testing.T) {
	var buf bytes.Buffer
	r := Report{}
	r.add("a", Pass, "fine %d", 1)
	r.add("b", Fail, "broken")
	r.add("c", Warn, "careful")
	r.add("d", Skip, "n/a")
	r.Log(outcome.NewLogger(&buf))
	want := "[PASS] a: fine 1\n[FAIL] b: broken\n[WARN] c: careful\n[INFO] d: skipped: n/a\n"
	if buf.String() != want {
		t.Fatalf("log:\n%s\nwant:\n%s", buf.String(), want)
	}
	if r.Passed() || len(r.Failed()) != 1 || r.Checks[1].String() != "[FAIL] b: broken" {
		t.Fatalf("report state wrong: %+v", r)
	}
	if err := r.verdict("test"); outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), "b: broken") {
		t.Fatalf("verdict = %v", err)
	}
	if err := (Report{}).verdict("test", nil); err != nil {
		t.Fatalf("empty verdict = %v", err)
	}
}

// TestDependencyVerifiedRead: with ReadMeasurements the guard trusts only what that read returns
// (the pipeline's verified read): a failed verification fails the measurement check (exit 10)
// and a missing asset is exit 11; the store's own copy is never read.
func TestDependencyVerifiedRead(t *testing.T) {
	fx := newDepFixture(t)
	kms := release.MustParseTag("mero-kms-v1.3.0")
	node := release.MustParseTag("mero-tee-v1.2.0")
	ready := policies(t, nodeMeasurements("1.2.0"))
	for _, tc := range []struct {
		name string
		read func(ctx context.Context, tag release.Tag) (*measure.Published, error)
		code int
		want string
	}{
		{"verified", func(context.Context, release.Tag) (*measure.Published, error) { return nodeMeasurements("1.2.0"), nil },
			outcome.OK, "PASS policy measurements (debug)"},
		{"bad signature", func(_ context.Context, tag release.Tag) (*measure.Published, error) {
			return nil, outcome.VerificationErrorf("%s: bundle of published-mrtds.json: signature does not verify", tag)
		}, outcome.VerificationFailed, "did not verify: mero-tee-v1.2.0: bundle of published-mrtds.json: signature does not verify"},
		{"missing", func(_ context.Context, tag release.Tag) (*measure.Published, error) {
			return nil, outcome.MissingAssetErrorf("release %s has no published-mrtds.json.sigstore.json", tag)
		}, outcome.MissingAsset, "has no published-mrtds.json.sigstore.json"},
		{"store down", func(context.Context, release.Tag) (*measure.Published, error) {
			return nil, errors.New("connection reset")
		},
			outcome.General, "connection reset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Dependency(context.Background(), DependencyInput{Tag: kms, Counterpart: node, Store: fx.store, Catalog: fx.catalog,
				Policies: ready, ReadMeasurements: tc.read})
			if got := outcome.Code(err); got != tc.code {
				t.Fatalf("exit %d, want %d: %v", got, tc.code, err)
			}
			all := statuses(rep)
			if err != nil {
				all += err.Error()
			}
			for _, c := range rep.Checks {
				all += "\n" + c.String()
			}
			if !strings.Contains(all, tc.want) {
				t.Fatalf("no %q in\n%s", tc.want, all)
			}
		})
	}
}
