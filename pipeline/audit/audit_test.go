package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/calimero-network/mero-release/pipeline/audit"
	"github.com/calimero-network/mero-release/pipeline/audit/audittest"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/sign/signtest"
	"github.com/calimero-network/mero-release/pipeline/store"
	"github.com/calimero-network/mero-release/pipeline/store/dir"
	ghstore "github.com/calimero-network/mero-release/pipeline/store/github"
	"github.com/calimero-network/mero-release/pipeline/store/github/githubtest"
)

const repo = "calimero-network/mero-tee"

type keyed struct {
	signer *sign.KeySigner
	pub    any
}

func newKey(t *testing.T) keyed {
	t.Helper()
	s, pubPEM, err := audittest.KeySigner()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := sign.LoadPublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	return keyed{signer: s, pub: pub}
}

func newDirB(b *testing.B) *dir.Store {
	b.Helper()
	st, err := dir.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	return st
}

func loadKey(pubPEM []byte) (any, error) { return sign.LoadPublicKey(pubPEM) }

func newDir(t *testing.T) *dir.Store {
	t.Helper()
	st, err := dir.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// publishRelease builds a release signed by signer and puts it in st, without skip.
func publishRelease(t *testing.T, st store.Store, o audittest.Options, tamper func(map[string][]byte), skip ...string) {
	t.Helper()
	files, err := audittest.Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if tamper != nil {
		tamper(files)
	}
	if err := audittest.Publish(context.Background(), st, o.Tag, files, skip...); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, st store.Store, tag release.Tag, cfg audit.Config) (*audit.Report, error, string) {
	t.Helper()
	var log bytes.Buffer
	cfg.Log = outcome.NewLogger(&log)
	rep, err := audit.Audit(context.Background(), st, tag, cfg)
	if rep == nil {
		t.Fatalf("no report: %v", err)
	}
	if (err == nil) != rep.Passed || outcome.Code(err) != rep.ExitCode {
		t.Fatalf("err %v (code %d) disagrees with the report (passed %v, exit %d)", err, outcome.Code(err), rep.Passed, rep.ExitCode)
	}
	return rep, err, log.String()
}

func TestGoodReleasesPass(t *testing.T) {
	k := newKey(t)
	for _, tagText := range []string{"mero-kms-v1.2.0", "mero-tee-v1.2.0", "mero-kms-v1.3.0-rc.1"} {
		t.Run(tagText, func(t *testing.T) {
			st := newDir(t)
			tag := release.MustParseTag(tagText)
			publishRelease(t, st, audittest.Options{Tag: tag, Signer: k.signer, NotReady: tag.Version.IsRC()}, nil)
			rep, err, log := run(t, st, tag, audit.Config{PublicKey: k.pub})
			if err != nil {
				t.Fatalf("audit failed: %v\n%s", err, log)
			}
			n := len(release.ExpectedAssets(tag.Family).Signed())
			// every signed file and its bundle, plus the provenance; checksums.sha256 lists the
			// content and the provenance
			want := map[audit.Check]int{audit.CheckAssets: 2*n + 1, audit.CheckSignatures: n, audit.CheckChecksums: n, audit.CheckBinding: 5, audit.CheckProvenance: 1}
			if tag.Family == release.KMS {
				want[audit.CheckPolicies] = 4 // three policies and the isolation check
			}
			for _, c := range rep.Checks {
				if c.Passed != want[c.Check] || c.Failed != 0 {
					t.Errorf("%s: %+v, want %d passed", c.Check, c, want[c.Check])
				}
			}
			if strings.Contains(log, "[FAIL]") || !strings.Contains(log, "[PASS] audit "+tagText+": all checks passed") {
				t.Fatalf("log:\n%s", log)
			}
			if tag.Family == release.Node && !strings.Contains(log, "[INFO] Policy validation: not applicable") {
				t.Fatalf("log:\n%s", log)
			}
			js, err := json.Marshal(rep)
			if err != nil {
				t.Fatal(err)
			}
			var back audit.Report
			if err := json.Unmarshal(js, &back); err != nil || back.Tag != tagText || !back.Passed || len(back.Findings) != len(rep.Findings) {
				t.Fatalf("JSON round trip: %v %+v", err, back)
			}
			md := rep.Markdown()
			if !strings.Contains(md, "## Release audit: `"+tagText+"` — ✅ passed") || !strings.Contains(md, "| Signature validity | ✅ |") {
				t.Fatalf("markdown:\n%s", md)
			}
		})
	}
}

func TestMissingAssetIsExit11(t *testing.T) {
	k := newKey(t)
	tag := release.MustParseTag("mero-kms-v1.2.0")
	for _, missing := range release.ExpectedAssets(tag.Family).All() {
		t.Run(missing, func(t *testing.T) {
			st := newDir(t)
			publishRelease(t, st, audittest.Options{Tag: tag, Signer: k.signer}, nil, missing)
			rep, err, log := run(t, st, tag, audit.Config{PublicKey: k.pub})
			if outcome.Code(err) != outcome.MissingAsset {
				t.Fatalf("missing %s: exit %d (%v), want 11", missing, outcome.Code(err), err)
			}
			if !strings.Contains(log, "[FAIL] asset-completeness "+missing+": required asset is missing") {
				t.Fatalf("log:\n%s", log)
			}
			if !strings.Contains(rep.Markdown(), "❌ failed (exit 11)") {
				t.Fatal(rep.Markdown())
			}
		})
	}
}

func TestReleaseNotFound(t *testing.T) {
	k := newKey(t)
	rep, err, _ := run(t, newDir(t), release.MustParseTag("mero-kms-v9.9.9"), audit.Config{PublicKey: k.pub})
	if outcome.Code(err) != outcome.MissingAsset || len(rep.Failures()) != 1 || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("err = %v", err)
	}
}

func TestFlippedByteInAnyAssetIsExit10(t *testing.T) {
	k := newKey(t)
	tag := release.MustParseTag("mero-kms-v1.2.0")
	for _, name := range release.ExpectedAssets(tag.Family).All() {
		t.Run(name, func(t *testing.T) {
			st := newDir(t)
			publishRelease(t, st, audittest.Options{Tag: tag, Signer: k.signer}, func(files map[string][]byte) {
				b := files[name]
				b[len(b)/2] ^= 0x01
			})
			rep, err, log := run(t, st, tag, audit.Config{PublicKey: k.pub})
			if outcome.Code(err) != outcome.VerificationFailed {
				t.Fatalf("flipped byte in %s: exit %d (%v), want 10\n%s", name, outcome.Code(err), err, log)
			}
			subject := strings.TrimSuffix(name, release.BundleSuffix)
			if !slices.ContainsFunc(rep.Failures(), func(f audit.Finding) bool { return f.Subject == subject || f.Subject == name }) {
				t.Fatalf("no failure names %s:\n%s", name, log)
			}
		})
	}
}

func TestMissingBeatsVerification(t *testing.T) {
	k := newKey(t)
	st := newDir(t)
	tag := release.MustParseTag("mero-tee-v1.0.0")
	publishRelease(t, st, audittest.Options{Tag: tag, Signer: k.signer}, func(files map[string][]byte) {
		files[release.SBOMFile][3] ^= 0x20
	}, release.NotesFile)
	rep, err, _ := run(t, st, tag, audit.Config{PublicKey: k.pub})
	codes := map[int]bool{}
	for _, f := range rep.Failures() {
		codes[f.ExitCode] = true
	}
	if outcome.Code(err) != outcome.MissingAsset || !codes[outcome.VerificationFailed] || !codes[outcome.MissingAsset] {
		t.Fatalf("exit %d with failures %v, want 11 with both kinds reported", outcome.Code(err), codes)
	}
}

func TestWrongKeyIsExit10(t *testing.T) {
	k, other := newKey(t), newKey(t)
	st := newDir(t)
	tag := release.MustParseTag("mero-tee-v1.0.0")
	publishRelease(t, st, audittest.Options{Tag: tag, Signer: k.signer, SignerFor: func(name string) sign.Signer {
		if name == release.SBOMFile {
			return other.signer
		}
		return nil
	}}, nil)
	rep, err, _ := run(t, st, tag, audit.Config{PublicKey: k.pub})
	if outcome.Code(err) != outcome.VerificationFailed || len(rep.Failures()) != 1 || rep.Failures()[0].Subject != release.SBOMFile {
		t.Fatalf("err = %v, failures %+v", err, rep.Failures())
	}
}

// policyEdit rewrites one attestation policy JSON before sealing.
func policyEdit(t *testing.T, prof release.Profile, edit func(m map[string]any)) func(map[string][]byte) {
	return func(files map[string][]byte) {
		var m map[string]any
		if err := json.Unmarshal(files[prof.PolicyFile()], &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		files[prof.PolicyFile()] = b
	}
}

func TestPolicyFindings(t *testing.T) {
	k := newKey(t)
	cases := []struct {
		name     string
		tag      string
		notReady bool
		mutate   func(t *testing.T) func(map[string][]byte)
		want     string // in a failure message; "" means the audit passes
		subject  string
		count    int // failures expected (0: one)
	}{
		{name: "empty allowed_tcb_status", tag: "mero-kms-v1.2.0", subject: "attestation-policy-debug.json", want: "allowed_tcb_status",
			mutate: func(t *testing.T) func(map[string][]byte) {
				return policyEdit(t, release.Debug, func(m map[string]any) { m["allowed_tcb_status"] = []string{} })
			}},
		{name: "not ready in stable", tag: "mero-kms-v1.2.0", notReady: true, subject: "attestation-policy-locked-read-only.json", want: "policy_not_ready", count: 3},
		{name: "not ready in hotfix", tag: "mero-kms-v1.2.1", notReady: true, subject: "attestation-policy-debug.json", want: "a hotfix release", count: 3},
		{name: "not ready in rc passes", tag: "mero-kms-v1.3.0-rc.2", notReady: true},
		{name: "missing rtmr field", tag: "mero-kms-v1.2.0", subject: "attestation-policy-debug-read-only.json", want: "allowed_rtmr2",
			mutate: func(t *testing.T) func(map[string][]byte) {
				return policyEdit(t, release.DebugReadOnly, func(m map[string]any) { delete(m, "allowed_rtmr2") })
			}},
		{name: "wrong kms version", tag: "mero-kms-v1.2.0", subject: "attestation-policy-debug.json", want: "kms_version",
			mutate: func(t *testing.T) func(map[string][]byte) {
				return policyEdit(t, release.Debug, func(m map[string]any) { m["kms_version"] = "1.1.0" })
			}},
		{name: "profile under another file name", tag: "mero-kms-v1.2.0", subject: "attestation-policy-debug.json", want: "file name",
			mutate: func(t *testing.T) func(map[string][]byte) {
				return func(files map[string][]byte) {
					files[release.Debug.PolicyFile()] = files[release.DebugReadOnly.PolicyFile()]
				}
			}},
		{name: "profiles not isolated", tag: "mero-kms-v1.2.0", subject: "profile isolation", want: "profile isolation",
			mutate: func(t *testing.T) func(map[string][]byte) {
				return func(files map[string][]byte) {
					var locked map[string]any
					json.Unmarshal(files[release.LockedReadOnly.PolicyFile()], &locked)
					policyEdit(t, release.Debug, func(m map[string]any) {
						for _, f := range []string{"allowed_mrtd", "allowed_rtmr0", "allowed_rtmr1", "allowed_rtmr2", "allowed_rtmr3"} {
							m[f] = locked[f]
						}
					})(files)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := newDir(t)
			tag := release.MustParseTag(tc.tag)
			if tag.Version.Patch == 1 { // a hotfix needs its published stable base
				publishRelease(t, st, audittest.Options{Tag: release.MustParseTag("mero-kms-v1.2.0"), Signer: k.signer}, nil)
			}
			o := audittest.Options{Tag: tag, Signer: k.signer, NotReady: tc.notReady}
			if tc.mutate != nil {
				o.Mutate = tc.mutate(t)
			}
			publishRelease(t, st, o, nil)
			rep, err, log := run(t, st, tag, audit.Config{PublicKey: k.pub})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("audit failed: %v\n%s", err, log)
				}
				if !strings.Contains(log, "policy_not_ready (allowed for an rc)") {
					t.Fatalf("log:\n%s", log)
				}
				return
			}
			if outcome.Code(err) != outcome.VerificationFailed {
				t.Fatalf("exit %d (%v), want 10\n%s", outcome.Code(err), err, log)
			}
			fails := rep.Failures()
			named := slices.ContainsFunc(fails, func(f audit.Finding) bool { return f.Subject == tc.subject && strings.Contains(f.Message, tc.want) })
			allPolicy := !slices.ContainsFunc(fails, func(f audit.Finding) bool { return f.Check != audit.CheckPolicies })
			if len(fails) != max(tc.count, 1) || !named || !allPolicy {
				t.Fatalf("failures %+v, want %d policy failure(s), one on %s mentioning %q", fails, max(tc.count, 1), tc.subject, tc.want)
			}
		})
	}
}

func TestChecksumFileProblems(t *testing.T) {
	k := newKey(t)
	tag := release.MustParseTag("mero-tee-v1.0.0")
	cases := map[string]struct {
		edit func(files map[string][]byte)
		want string
	}{
		"unlisted content": {want: "not listed in checksums.sha256", edit: func(files map[string][]byte) {
			lines := strings.Split(string(files[release.ChecksumsFile]), "\n")
			lines = slices.DeleteFunc(lines, func(l string) bool { return strings.HasSuffix(l, release.SBOMFile) })
			files[release.ChecksumsFile] = []byte(strings.Join(lines, "\n"))
		}},
		"unparsable": {want: "checksum file line 1", edit: func(files map[string][]byte) {
			files[release.ChecksumsFile] = []byte("not a checksum file\n")
		}},
		"lists a file that is not there": {want: "listed in checksums.sha256 but not in the release", edit: func(files map[string][]byte) {
			files[release.ChecksumsFile] = append(files[release.ChecksumsFile], []byte(strings.Repeat("ab", 32)+"  ghost.bin\n")...)
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			st := newDir(t)
			files, err := audittest.Content(audittest.Options{Tag: tag})
			if err != nil {
				t.Fatal(err)
			}
			o := audittest.Options{Tag: tag, Signer: k.signer}
			// Edit the checksum file before it is signed, so only the checksum check can object.
			sealed, err := audittest.Seal(context.Background(), audittest.Options{Tag: tag, Signer: k.signer, SignerFor: func(string) sign.Signer { return nil }}, files)
			if err != nil {
				t.Fatal(err)
			}
			tc.edit(sealed)
			b, err := o.Signer.Sign(context.Background(), sealed[release.ChecksumsFile])
			if err != nil {
				t.Fatal(err)
			}
			sealed[release.BundleName(release.ChecksumsFile)] = b
			if err := audittest.Publish(context.Background(), st, tag, sealed); err != nil {
				t.Fatal(err)
			}
			rep, err, log := run(t, st, tag, audit.Config{PublicKey: k.pub})
			if err == nil || !slices.ContainsFunc(rep.Failures(), func(f audit.Finding) bool {
				return f.Check == audit.CheckChecksums && strings.Contains(f.Message, tc.want)
			}) {
				t.Fatalf("err %v; want a checksum failure %q:\n%s", err, tc.want, log)
			}
			// Every content asset's signature was still checked.
			if n := len(release.ExpectedAssets(tag.Family).Signed()); rep.Checks[1].Check != audit.CheckSignatures || rep.Checks[1].Passed != n {
				t.Fatalf("signature summary %+v, want %d passed", rep.Checks[1], n)
			}
		})
	}
}

// counting wraps a store and counts the bytes read from every asset.
type counting struct {
	store.Store
	mu    sync.Mutex
	opens map[string]int
	bytes map[string]int64
}

type countingReader struct {
	io.ReadCloser
	c    *counting
	name string
}

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.c.mu.Lock()
	r.c.bytes[r.name] += int64(n)
	r.c.mu.Unlock()
	return n, err
}

func (c *counting) OpenAsset(ctx context.Context, tag, name string) (io.ReadCloser, error) {
	rc, err := c.Store.OpenAsset(ctx, tag, name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.opens[name]++
	c.mu.Unlock()
	return countingReader{rc, c, name}, nil
}

func TestEachByteReadOnce(t *testing.T) {
	k := newKey(t)
	st := newDir(t)
	tag := release.MustParseTag("mero-kms-v1.2.0")
	publishRelease(t, st, audittest.Options{Tag: tag, Signer: k.signer, Mutate: func(files map[string][]byte) {
		files[release.SBOMFile] = []byte(`{"spdxVersion":"SPDX-2.3","name":"mero-kms-1.2.0","padding":"` + strings.Repeat("sbom ", 300000) + `"}`)
	}}, nil)
	c := &counting{Store: st, opens: map[string]int{}, bytes: map[string]int64{}}
	if _, err, log := run(t, c, tag, audit.Config{PublicKey: k.pub}); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	r, _ := st.Release(context.Background(), tag.String())
	for _, a := range r.Assets {
		if c.opens[a.Name] != 1 || c.bytes[a.Name] != a.Size {
			t.Errorf("%s: opened %d times, %d of %d bytes read; want once, exactly", a.Name, c.opens[a.Name], c.bytes[a.Name], a.Size)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	k := newKey(t)
	tag := release.MustParseTag("mero-kms-v1.0.0")
	tr := &root.TrustedRoot{}
	for name, cfg := range map[string]audit.Config{
		"nothing":          {},
		"bad repository":   {Repository: "not-a-repo", TrustedRoot: tr},
		"key and identity": {Repository: repo, PublicKey: k.pub},
		"no trusted root":  {Repository: repo},
		"bad ref pattern":  {Repository: repo, TrustedRoot: tr, RefPattern: "refs/tags/(<tag>"},
	} {
		if rep, err := audit.Audit(context.Background(), newDir(t), tag, cfg); rep != nil || outcome.Code(err) != outcome.Usage {
			t.Errorf("%s: %v, want a usage error and no report", name, err)
		}
	}
}

// keyless is an in-process Sigstore and the trusted root that verifies its bundles.
type keyless struct {
	ss      *signtest.Sigstore
	trusted *root.TrustedRoot
}

func newKeyless(t *testing.T) keyless {
	t.Helper()
	ss, err := signtest.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ss.Close)
	js, err := ss.TrustedRootJSON()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := sign.ParseTrustedRoot(js)
	if err != nil {
		t.Fatal(err)
	}
	return keyless{ss: ss, trusted: tr}
}

func (k keyless) signer(t *testing.T, c signtest.GitHubClaims) *sign.KeylessSigner {
	t.Helper()
	tok, err := k.ss.GitHubToken(c)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sign.NewKeylessSigner(sign.KeylessOptions{FulcioURL: k.ss.FulcioURL(), RekorURL: k.ss.RekorURL(), Token: sign.StaticToken(tok), TrustedRoot: k.trusted})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestKeylessIdentity(t *testing.T) {
	k := newKeyless(t)
	tag := release.MustParseTag("mero-kms-v1.2.0")
	good := signtest.GitHubClaims{Repository: repo, Workflow: ".github/workflows/release-kms-phala.yaml", Ref: "refs/tags/" + tag.String()}
	goodSigner := k.signer(t, good)
	cfg := audit.Config{Repository: repo, TrustedRoot: k.trusted}

	st := newDir(t)
	publishRelease(t, st, audittest.Options{Tag: tag, Signer: goodSigner}, nil)
	rep, err, log := run(t, st, tag, cfg)
	if err != nil {
		t.Fatalf("good keyless release: %v\n%s", err, log)
	}
	if f := rep.Findings[slices.IndexFunc(rep.Findings, func(f audit.Finding) bool { return f.Check == audit.CheckSignatures })]; f.Signer == nil || f.Signer.Identity != good.WorkflowIdentity() || f.Signer.TlogEntries != 1 {
		t.Fatalf("signer of the first bundle: %+v", f.Signer)
	}
	// The same release, audited for another repository or workflow, fails every signature.
	for name, other := range map[string]audit.Config{
		"other repository": {Repository: "evil/mero-tee", TrustedRoot: k.trusted},
		"other workflow":   {Repository: repo, Workflow: "release-node-image-gcp.yaml", TrustedRoot: k.trusted},
		"other issuer":     {Repository: repo, Issuer: "https://accounts.google.com", TrustedRoot: k.trusted},
		"other ref":        {Repository: repo, RefPattern: "refs/heads/main", TrustedRoot: k.trusted},
	} {
		rep, err, _ := run(t, st, tag, other)
		if outcome.Code(err) != outcome.VerificationFailed || rep.Checks[1].Failed != len(release.ExpectedAssets(tag.Family).Signed()) {
			t.Fatalf("%s: exit %d, signature summary %+v", name, outcome.Code(err), rep.Checks[1])
		}
	}

	// One bundle signed by another identity: exit 10 naming it.
	cases := map[string]signtest.GitHubClaims{
		"another repository": {Repository: "evil/mero-tee", Workflow: good.Workflow, Ref: good.Ref},
		"another workflow":   {Repository: repo, Workflow: ".github/workflows/other.yaml", Ref: good.Ref},
		"another ref":        {Repository: repo, Workflow: good.Workflow, Ref: "refs/heads/feature"},
	}
	for name, claims := range cases {
		t.Run(name, func(t *testing.T) {
			bad := k.signer(t, claims)
			st := newDir(t)
			publishRelease(t, st, audittest.Options{Tag: tag, Signer: goodSigner, SignerFor: func(n string) sign.Signer {
				if n == release.PublishedMRTDsFile {
					return bad
				}
				return nil
			}}, nil)
			rep, err, log := run(t, st, tag, cfg)
			fails := rep.Failures()
			if outcome.Code(err) != outcome.VerificationFailed || len(fails) != 1 || fails[0].Subject != release.PublishedMRTDsFile ||
				!strings.Contains(fails[0].Message, "does not match") {
				t.Fatalf("exit %d, failures %+v\n%s", outcome.Code(err), fails, log)
			}
		})
	}

	// A key-signed bundle where a keyless identity is expected.
	kk := newKey(t)
	st2 := newDir(t)
	publishRelease(t, st2, audittest.Options{Tag: tag, Signer: goodSigner, SignerFor: func(n string) sign.Signer {
		if n == release.SBOMFile {
			return kk.signer
		}
		return nil
	}}, nil)
	if _, err, _ := run(t, st2, tag, cfg); outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), "keyless identity was expected") {
		t.Fatalf("key bundle in a keyless release: %v", err)
	}
}

func TestAuditOverGitHub(t *testing.T) {
	k := newKey(t)
	fake := githubtest.New("calimero-network", "mero-tee", "tok", nil)
	defer fake.Close()
	c, err := ghstore.NewClient(ghstore.ClientOptions{BaseURL: fake.URL, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := ghstore.New(ghstore.Options{Owner: "calimero-network", Repo: "mero-tee", Client: c, Retry: ghstore.RetryPolicy{
		Sleep:  func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
		Jitter: func(time.Duration) time.Duration { return 0 },
	}})
	if err != nil {
		t.Fatal(err)
	}
	tag := release.MustParseTag("mero-kms-v1.2.0")
	publishRelease(t, st, audittest.Options{Tag: tag, Signer: k.signer}, nil)
	fake.Inject(githubtest.OpDownload, githubtest.Fault{Status: 502}, githubtest.Fault{Status: 429, RetryAfter: "1"})
	if _, err, log := run(t, st, tag, audit.Config{PublicKey: k.pub}); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	// Tampered storage: the bytes served differ from what was signed.
	fake.SetAssetContent(tag.String(), release.KMSImageManifest, []byte(`{"version":"1.2.0","tampered":true}`))
	rep, err, _ := run(t, st, tag, audit.Config{PublicKey: k.pub})
	// the bundle, the checksum and the provenance all disagree with the served bytes
	if outcome.Code(err) != outcome.VerificationFailed || len(rep.Failures()) != 3 {
		t.Fatalf("tampered asset: %v, failures %+v", err, rep.Failures())
	}
	fmt.Fprint(io.Discard, rep.Markdown())
}

func TestMarkdownEscapes(t *testing.T) {
	rep := &audit.Report{Tag: "mero-kms-v1.0.0", Family: release.KMS, Class: release.Stable, ExitCode: 10,
		Checks: []audit.CheckSummary{{Check: audit.CheckAssets, Failed: 1}},
		Findings: []audit.Finding{{Check: audit.CheckAssets, Subject: "a`b", Status: audit.Fail, ExitCode: 10,
			Message: "bad | pipe <b>*x*</b>\nsecond line"}}}
	md := rep.Markdown()
	for _, want := range []string{"❌ failed (exit 10)", "`a'b`", `bad \| pipe &lt;b&gt;\*x\*&lt;/b&gt; second line`} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
