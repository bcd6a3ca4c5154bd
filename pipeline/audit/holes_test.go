package audit_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/audit"
	"github.com/calimero-network/mero-release/pipeline/audit/audittest"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/sign/signtest"
	"github.com/calimero-network/mero-release/pipeline/store"
	"github.com/calimero-network/mero-release/pipeline/verified"
)

// failsOn reports whether the report has a failure of the check on the subject whose message
// contains want.
func failsOn(rep *audit.Report, c audit.Check, subject, want string) bool {
	return slices.ContainsFunc(rep.Failures(), func(f audit.Finding) bool {
		return f.Check == c && f.Subject == subject && strings.Contains(f.Message, want)
	})
}

// TestReplayUnderAnotherTagFails: every asset of a good release, copied unchanged under another
// tag, fails the audit of that tag (10): the content names the tag it was released under.
func TestReplayUnderAnotherTagFails(t *testing.T) {
	k := newKey(t)
	cases := []struct{ from, to string }{
		{"mero-tee-v1.2.0", "mero-tee-v1.3.0"},
		{"mero-tee-v1.3.0-rc.1", "mero-tee-v1.3.0"},
		{"mero-tee-v1.3.0", "mero-tee-v1.4.0-rc.1"},
		{"mero-kms-v1.3.0-rc.1", "mero-kms-v1.3.0-rc.2"},
		{"mero-kms-v1.2.0", "mero-kms-v1.3.0"},
	}
	for _, tc := range cases {
		t.Run(tc.from+"→"+tc.to, func(t *testing.T) {
			from, to := release.MustParseTag(tc.from), release.MustParseTag(tc.to)
			files, err := audittest.Build(context.Background(), audittest.Options{Tag: from, Signer: k.signer, NotReady: from.Version.IsRC()})
			if err != nil {
				t.Fatal(err)
			}
			st := newDir(t)
			// The original passes under its own tag.
			if err := audittest.Publish(context.Background(), st, from, files); err != nil {
				t.Fatal(err)
			}
			if _, err, log := run(t, st, from, audit.Config{PublicKey: k.pub}); err != nil {
				t.Fatalf("the original fails: %v\n%s", err, log)
			}
			if err := audittest.Publish(context.Background(), st, to, files); err != nil {
				t.Fatal(err)
			}
			rep, err, log := run(t, st, to, audit.Config{PublicKey: k.pub})
			if outcome.Code(err) != outcome.VerificationFailed {
				t.Fatalf("replay of %s under %s: exit %d (%v), want 10\n%s", from, to, outcome.Code(err), err, log)
			}
			for _, name := range []string{release.PublishedMRTDsFile, release.SBOMFile, release.NotesFile} {
				if !failsOn(rep, audit.CheckBinding, name, "") {
					t.Errorf("no tag-binding failure on %s:\n%s", name, log)
				}
			}
			manifest := release.NodeImageManifest
			if to.Family == release.KMS {
				manifest = release.KMSImageManifest
			}
			if !failsOn(rep, audit.CheckBinding, manifest, `version: "`+from.Version.String()+`"`) {
				t.Errorf("no tag-binding failure on %s:\n%s", manifest, log)
			}
		})
	}
}

// TestKeylessReplayFailsOnTheRef: a keyless release replayed under another tag also fails every
// signature, as the certificates carry refs/tags/<original tag>.
func TestKeylessReplayFailsOnTheRef(t *testing.T) {
	k := newKeyless(t)
	from, to := release.MustParseTag("mero-tee-v1.2.0"), release.MustParseTag("mero-tee-v1.2.1")
	s := k.signer(t, signtest.GitHubClaims{Repository: repo, Workflow: ".github/workflows/release-node-image-gcp.yaml", Ref: "refs/tags/" + from.String()})
	files, err := audittest.Build(context.Background(), audittest.Options{Tag: from, Signer: s})
	if err != nil {
		t.Fatal(err)
	}
	st := newDir(t)
	for _, tag := range []release.Tag{from, to} {
		if err := audittest.Publish(context.Background(), st, tag, files); err != nil {
			t.Fatal(err)
		}
	}
	rep, err, log := run(t, st, to, audit.Config{Repository: repo, TrustedRoot: k.trusted})
	if outcome.Code(err) != outcome.VerificationFailed || rep.Checks[1].Failed != len(release.ExpectedAssets(to.Family).Signed()) {
		t.Fatalf("exit %d, signatures %+v\n%s", outcome.Code(err), rep.Checks[1], log)
	}
}

// TestBindingFindings: each asset that names the release is checked on its own.
func TestBindingFindings(t *testing.T) {
	k := newKey(t)
	jsonEdit := func(name string, edit func(m map[string]any)) func(map[string][]byte) {
		return func(files map[string][]byte) {
			var m map[string]any
			if err := json.Unmarshal(files[name], &m); err != nil {
				t.Fatal(err)
			}
			edit(m)
			files[name], _ = json.Marshal(m)
		}
	}
	cases := []struct {
		name, tag, subject, want string
		mutate                   func(map[string][]byte)
	}{
		{"published version", "mero-tee-v1.2.0", release.PublishedMRTDsFile, `version: "1.1.0"`,
			jsonEdit(release.PublishedMRTDsFile, func(m map[string]any) { m["version"] = "1.1.0" })},
		{"published family", "mero-kms-v1.2.0", release.PublishedMRTDsFile, `family: "mero-tee"`,
			jsonEdit(release.PublishedMRTDsFile, func(m map[string]any) { m["family"] = "mero-tee" })},
		{"published without version", "mero-tee-v1.2.0", release.PublishedMRTDsFile, "must name the release",
			jsonEdit(release.PublishedMRTDsFile, func(m map[string]any) { delete(m, "version") })},
		{"node manifest", "mero-tee-v1.2.0", release.NodeImageManifest, `version: "1.2.0-rc.1"`,
			jsonEdit(release.NodeImageManifest, func(m map[string]any) { m["version"] = "1.2.0-rc.1" })},
		{"kms manifest without version", "mero-kms-v1.2.0", release.KMSImageManifest, "version: missing",
			jsonEdit(release.KMSImageManifest, func(m map[string]any) { delete(m, "version") })},
		{"sbom name", "mero-tee-v1.2.0", release.SBOMFile, `"mero-tee-1.2.0-rc.3"`,
			jsonEdit(release.SBOMFile, func(m map[string]any) { m["name"] = "mero-tee-1.2.0-rc.3" })},
		{"sbom without name", "mero-tee-v1.2.0", release.SBOMFile, `no top-level "name"`,
			jsonEdit(release.SBOMFile, func(m map[string]any) { delete(m, "name") })},
		{"notes of an rc", "mero-tee-v1.2.0", release.NotesFile, "does not name mero-tee-v1.2.0",
			func(files map[string][]byte) {
				files[release.NotesFile] = []byte("# mero-tee v1.2.0-rc.1\n\nmero-tee-v1.2.0 soon\n")
			}},
		{"notes without title", "mero-kms-v1.2.0", release.NotesFile, "no title",
			func(files map[string][]byte) {
				files[release.NotesFile] = []byte("## Changelog\n\n- mero-kms-v1.2.0\n")
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := newDir(t)
			tag := release.MustParseTag(tc.tag)
			publishRelease(t, st, audittest.Options{Tag: tag, Signer: k.signer, Mutate: tc.mutate}, nil)
			rep, err, log := run(t, st, tag, audit.Config{PublicKey: k.pub})
			fails := rep.Failures()
			if outcome.Code(err) != outcome.VerificationFailed || len(fails) != 1 || !failsOn(rep, audit.CheckBinding, tc.subject, tc.want) {
				t.Fatalf("exit %d, failures %+v; want one tag-binding failure on %s mentioning %q\n%s", outcome.Code(err), fails, tc.subject, tc.want, log)
			}
		})
	}
	// The generated notes' title ("# mero-kms v1.2.0") and a sentence ending with the tag pass.
	st := newDir(t)
	tag := release.MustParseTag("mero-kms-v1.2.0")
	publishRelease(t, st, audittest.Options{Tag: tag, Signer: k.signer, Mutate: func(files map[string][]byte) {
		files[release.NotesFile] = []byte("intro\n# mero-kms v1.2.0\n")
	}}, nil)
	if _, err, log := run(t, st, tag, audit.Config{PublicKey: k.pub}); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
}

// withExtra adds an asset the family does not list, listed in checksums.sha256 and signed.
func withExtra(t *testing.T, tag release.Tag, signer sign.Signer, bundleSigner sign.Signer, tamper func(files map[string][]byte)) map[string][]byte {
	t.Helper()
	files, err := audittest.Content(audittest.Options{Tag: tag, NotReady: tag.Version.IsRC()})
	if err != nil {
		t.Fatal(err)
	}
	files["extra-tool.tar.gz"] = []byte("an extra signed asset")
	sealed, err := audittest.Seal(context.Background(), audittest.Options{Tag: tag, Signer: signer}, files)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundleSigner.Sign(context.Background(), files["extra-tool.tar.gz"])
	if err != nil {
		t.Fatal(err)
	}
	sealed[release.BundleName("extra-tool.tar.gz")] = b
	if tamper != nil {
		tamper(sealed)
	}
	return sealed
}

// TestExtraAssetsAndBundles: every bundle present is verified, expected or not; an unexpected
// asset blocks a stable release and warns in an rc; a bundle without its asset fails.
func TestExtraAssetsAndBundles(t *testing.T) {
	k, other := newKey(t), newKey(t)
	const extra = "extra-tool.tar.gz"
	cases := []struct {
		name, tag  string
		bundleBy   keyed
		tamper     func(files map[string][]byte)
		wantCode   int
		wantFail   [][2]string // check, subject
		wantWarned string
	}{
		{name: "rc: extra asset with a bundle of another key", tag: "mero-tee-v1.3.0-rc.1", bundleBy: other, wantCode: 10,
			wantFail: [][2]string{{string(audit.CheckSignatures), extra}}, wantWarned: extra},
		{name: "rc: extra asset with a corrupt bundle", tag: "mero-tee-v1.3.0-rc.1", bundleBy: k, wantCode: 10,
			tamper:   func(files map[string][]byte) { files[release.BundleName(extra)] = []byte(`{"mediaType":"x"}`) },
			wantFail: [][2]string{{string(audit.CheckSignatures), extra}}},
		{name: "rc: extra asset with a good bundle warns", tag: "mero-tee-v1.3.0-rc.1", bundleBy: k, wantCode: 0, wantWarned: extra},
		{name: "stable: extra asset with a good bundle blocks", tag: "mero-tee-v1.3.0", bundleBy: k, wantCode: 10,
			wantFail: [][2]string{{string(audit.CheckAssets), extra}}},
		{name: "stable: extra asset flipped after signing", tag: "mero-kms-v1.3.0", bundleBy: k, wantCode: 10,
			tamper:   func(files map[string][]byte) { files[extra] = []byte("an extra signed assex") },
			wantFail: [][2]string{{string(audit.CheckAssets), extra}, {string(audit.CheckSignatures), extra}, {string(audit.CheckChecksums), extra}}},
		{name: "rc: a bundle without its asset", tag: "mero-tee-v1.3.0-rc.1", bundleBy: k, wantCode: 10,
			tamper:   func(files map[string][]byte) { delete(files, extra); files[release.ChecksumsFile] = nil },
			wantFail: [][2]string{{string(audit.CheckAssets), release.BundleName(extra)}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tag := release.MustParseTag(tc.tag)
			files := withExtra(t, tag, k.signer, tc.bundleBy.signer, tc.tamper)
			if files[release.ChecksumsFile] == nil { // re-seal without the removed asset
				delete(files, release.ChecksumsFile)
				bundle := files[release.BundleName(extra)]
				for name := range files {
					if strings.HasSuffix(name, release.BundleSuffix) {
						delete(files, name)
					}
				}
				var err error
				if files, err = audittest.Seal(context.Background(), audittest.Options{Tag: tag, Signer: k.signer}, files); err != nil {
					t.Fatal(err)
				}
				files[release.BundleName(extra)] = bundle
			}
			st := newDir(t)
			if err := audittest.Publish(context.Background(), st, tag, files); err != nil {
				t.Fatal(err)
			}
			rep, err, log := run(t, st, tag, audit.Config{PublicKey: k.pub})
			if outcome.Code(err) != tc.wantCode {
				t.Fatalf("exit %d (%v), want %d\n%s", outcome.Code(err), err, tc.wantCode, log)
			}
			for _, w := range tc.wantFail {
				if !failsOn(rep, audit.Check(w[0]), w[1], "") {
					t.Errorf("no %s failure on %s:\n%s", w[0], w[1], log)
				}
			}
			if len(rep.Failures()) != len(tc.wantFail) {
				t.Errorf("failures %+v, want %d", rep.Failures(), len(tc.wantFail))
			}
			if tc.wantWarned != "" && !strings.Contains(log, "[WARN] asset-completeness "+tc.wantWarned+": not an asset of a mero-tee release") {
				t.Errorf("no warning on %s:\n%s", tc.wantWarned, log)
			}
			if tc.wantCode == 0 && !strings.Contains(log, "[PASS] signatures "+extra+": "+extra+".sigstore.json verifies") {
				t.Errorf("the extra bundle was not verified:\n%s", log)
			}
		})
	}
}

// TestDraftFails: a draft is a distinct failure, never a pass.
func TestDraftFails(t *testing.T) {
	k := newKey(t)
	tag := release.MustParseTag("mero-tee-v1.2.0")
	files, err := audittest.Build(context.Background(), audittest.Options{Tag: tag, Signer: k.signer})
	if err != nil {
		t.Fatal(err)
	}
	st := newDir(t)
	if _, err := st.CreateDraft(context.Background(), store.DraftSpec{Tag: tag.String()}); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := st.UploadAsset(context.Background(), tag.String(), name, strings.NewReader(string(data)), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	rep, err, log := run(t, st, tag, audit.Config{PublicKey: k.pub})
	if outcome.Code(err) != outcome.VerificationFailed || len(rep.Failures()) != 1 || !failsOn(rep, audit.CheckAssets, tag.String(), "draft") || !rep.Draft {
		t.Fatalf("draft: exit %d, failures %+v\n%s", outcome.Code(err), rep.Failures(), log)
	}
}

// TestMissingChecksumsOrBundleIsExit11: the checksum file, its bundle or an asset's bundle
// missing is exit 11 even when other findings fail too.
func TestMissingChecksumsOrBundleIsExit11(t *testing.T) {
	k := newKey(t)
	tag := release.MustParseTag("mero-kms-v1.2.0")
	for _, missing := range []string{release.ChecksumsFile, release.BundleName(release.ChecksumsFile), release.BundleName(release.SBOMFile), release.BundleName(release.Debug.PolicyFile())} {
		t.Run(missing, func(t *testing.T) {
			st := newDir(t)
			publishRelease(t, st, audittest.Options{Tag: tag, Signer: k.signer}, func(files map[string][]byte) {
				files["extra.txt"] = []byte("unlisted")
			}, missing)
			rep, err, log := run(t, st, tag, audit.Config{PublicKey: k.pub})
			if outcome.Code(err) != outcome.MissingAsset || !failsOn(rep, audit.CheckAssets, missing, "missing") {
				t.Fatalf("missing %s: exit %d (%v)\n%s", missing, outcome.Code(err), err, log)
			}
		})
	}
}

func TestParseCertificateIdentity(t *testing.T) {
	good := map[string]audit.Config{
		"https://github.com/calimero-network/mero-tee/.github/workflows/release-kms-phala.yaml@refs/tags/mero-kms-v1.2.0": {
			Repository: "calimero-network/mero-tee", Workflow: ".github/workflows/release-kms-phala.yaml", RefPattern: `refs/tags/mero-kms-v1\.2\.0`},
		"https://github.com/o/r/.github/workflows/x.yml@refs/tags/<tag>": {Repository: "o/r", Workflow: ".github/workflows/x.yml", RefPattern: "refs/tags/<tag>"},
	}
	for in, want := range good {
		got, err := audit.ParseCertificateIdentity(in)
		if err != nil || got.Repository != want.Repository || got.Workflow != want.Workflow || got.RefPattern != want.RefPattern {
			t.Errorf("%s: %+v %v, want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "o/r", "https://github.com/o/r@refs/tags/x", "https://evil.example/o/r/.github/workflows/x.yml@refs/tags/x",
		"https://github.com/o/r/.github/workflows/x.yml", "https://github.com/o/r/.github/workflows/../x.yml@refs/tags/x", "https://github.com/o/r/.github/workflows/x.yml@main"} {
		if _, err := audit.ParseCertificateIdentity(bad); outcome.Code(err) != outcome.Usage {
			t.Errorf("%q: %v, want a usage error", bad, err)
		}
	}
	// The parsed identity audits a keyless release: the right one passes, another ref fails.
	k := newKeyless(t)
	tag := release.MustParseTag("mero-tee-v1.2.0")
	wf := ".github/workflows/release-node-image-gcp.yaml"
	s := k.signer(t, signtest.GitHubClaims{Repository: repo, Workflow: wf, Ref: "refs/tags/" + tag.String()})
	st := newDir(t)
	publishRelease(t, st, audittest.Options{Tag: tag, Signer: s}, nil)
	for id, code := range map[string]int{
		"https://github.com/" + repo + "/" + wf + "@refs/tags/" + tag.String(): outcome.OK,
		"https://github.com/" + repo + "/" + wf + "@refs/tags/<tag>":           outcome.OK,
		"https://github.com/" + repo + "/" + wf + "@refs/tags/mero-tee-v1.1.0": outcome.VerificationFailed,
	} {
		cfg, err := audit.ParseCertificateIdentity(id)
		if err != nil {
			t.Fatal(err)
		}
		cfg.TrustedRoot = k.trusted
		if _, err, log := run(t, st, tag, cfg); outcome.Code(err) != code {
			t.Errorf("%s: exit %d, want %d\n%s", id, outcome.Code(err), code, log)
		}
	}
}

// TestTrustVerifiesCounterpartMaterial: Config.Trust is what stages read a counterpart
// release's material with (pipeline/verified): good material verifies, tampered or unsigned
// material does not, and a Config without a signer is a usage error.
func TestTrustVerifiesCounterpartMaterial(t *testing.T) {
	k, other := newKey(t), newKey(t)
	tag := release.MustParseTag("mero-tee-v1.2.0")
	cases := map[string]struct {
		tamper func(map[string][]byte)
		skip   string
		cfg    audit.Config
		code   int
	}{
		"good":             {cfg: audit.Config{PublicKey: k.pub}, code: outcome.OK},
		"another signer":   {cfg: audit.Config{PublicKey: other.pub}, code: outcome.VerificationFailed},
		"tampered content": {cfg: audit.Config{PublicKey: k.pub}, code: outcome.VerificationFailed, tamper: func(f map[string][]byte) { f[release.PublishedMRTDsFile][10] ^= 1 }},
		"no bundle":        {cfg: audit.Config{PublicKey: k.pub}, code: outcome.MissingAsset, skip: release.BundleName(release.PublishedMRTDsFile)},
		"no checksums":     {cfg: audit.Config{PublicKey: k.pub}, code: outcome.MissingAsset, skip: release.ChecksumsFile},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			st := newDir(t)
			var skip []string
			if tc.skip != "" {
				skip = append(skip, tc.skip)
			}
			publishRelease(t, st, audittest.Options{Tag: tag, Signer: k.signer}, tc.tamper, skip...)
			trust, err := tc.cfg.Trust(tag)
			if err != nil {
				t.Fatal(err)
			}
			v, err := verified.Fetch(context.Background(), st, tag.String(), release.PublishedMRTDsFile, trust)
			if outcome.Code(err) != tc.code || (err == nil) != (v != nil) {
				t.Fatalf("exit %d (%v), want %d", outcome.Code(err), err, tc.code)
			}
		})
	}
	if _, err := (audit.Config{}).Trust(tag); outcome.Code(err) != outcome.Usage {
		t.Fatalf("no signer: %v", err)
	}
}
