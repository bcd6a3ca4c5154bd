package migrate_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/calimero-network/mero-release/examples/kms/local/e2etest"
	"github.com/calimero-network/mero-release/pipeline/audit/audittest"
	"github.com/calimero-network/mero-release/pipeline/catalog"
	"github.com/calimero-network/mero-release/pipeline/checksum"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/migrate"
	"github.com/calimero-network/mero-release/pipeline/ociimage"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/sign/signtest"
	"github.com/calimero-network/mero-release/pipeline/store"
)

func (w *world) policyOptions(profile release.Profile, c *catalog.Catalog) migrate.PolicyOptions {
	return migrate.PolicyOptions{
		Store: w.Store, Catalog: c, KMSVersion: "1.3.0", NodeVersion: "1.3.0", Profile: profile,
		Trust: w.trust, Locator: migrate.AssetLocator{StoreSpec: "dir:" + w.StoreDir},
	}
}

func TestMigratePolicy(t *testing.T) {
	w := newWorld(t)
	w.publishKMS(t, "1.3.0", w.kmsFiles(t, "1.3.0", w.node), nil)
	cat := e2etest.Catalog(t, [2]string{"1.3.0", "1.3.0"})
	for _, p := range release.Profiles() {
		t.Run(string(p), func(t *testing.T) {
			log, buf := logger()
			o := w.policyOptions(p, cat)
			o.Log = log
			res, err := migrate.MigratePolicy(context.Background(), o)
			if err != nil {
				t.Fatalf("%v\n%s", err, buf)
			}
			file := w.assetPath("mero-kms-v1.3.0", p.PolicyFile())
			sum := sha256.Sum256(readFile(t, file))
			want := migrate.Environment{KMSVersion: "1.3.0", Profile: string(p),
				PolicyURL: (&url.URL{Scheme: "file", Path: file}).String(), PolicySHA256: hex.EncodeToString(sum[:])}
			if res.Environment != want {
				t.Fatalf("environment\n got %+v\nwant %+v", res.Environment, want)
			}
			if res.PolicyStatus != "ready" || res.PolicySHA256 != want.PolicySHA256 || res.Signer == nil || res.Signer.KeyHint == "" ||
				res.KMSRelease != "mero-kms-v1.3.0" || res.NodeRelease != "mero-tee-v1.3.0" || res.PolicyAsset != p.PolicyFile() {
				t.Fatalf("result %+v", res)
			}
			// the deployment the release recorded for the profile comes with it
			if want := w.KMSRecord(t).ComposeHash; res.ComposeHash != want || want == "" {
				t.Errorf("compose hash %q, want the release's %q", res.ComposeHash, want)
			}
			for _, line := range []string{"[PASS] catalog: kms 1.3.0 ↔ node image 1.3.0 is tested for " + string(p), "signature verified", "accepts the " + string(p) + " measurements of mero-tee-v1.3.0"} {
				if !strings.Contains(buf.String(), line) {
					t.Errorf("log lacks %q:\n%s", line, buf)
				}
			}
		})
	}
}

func TestMigratePolicyUnverifiedDeploymentIsLeftOut(t *testing.T) {
	// published-mrtds.json changed after signing: the policy migration still verifies (the
	// policy is intact), but the deployment record is not trusted and not reported.
	w := newWorld(t)
	w.publishKMS(t, "1.3.0", w.kmsFiles(t, "1.3.0", w.node), func(sealed map[string][]byte) {
		sealed[release.PublishedMRTDsFile] = append(sealed[release.PublishedMRTDsFile], ' ')
	})
	log, buf := logger()
	o := w.policyOptions(release.Debug, e2etest.Catalog(t, [2]string{"1.3.0", "1.3.0"}))
	o.Log = log
	res, err := migrate.MigratePolicy(context.Background(), o)
	if err != nil {
		t.Fatalf("%v\n%s", err, buf)
	}
	if res.ComposeHash != "" || res.KMSImage != "" {
		t.Errorf("an unverified deployment was reported: %q %q", res.KMSImage, res.ComposeHash)
	}
	if !strings.Contains(buf.String(), "[WARN] mero-kms-v1.3.0: no verified deployment record for debug") {
		t.Errorf("no warning:\n%s", buf)
	}
}

func TestExportsRoundTripThroughAShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	env := migrate.Environment{KMSVersion: "1.3.0", Profile: "debug", PolicyURL: "https://x.example/it's $HOME `id` \"q\"/p.json", PolicySHA256: strings.Repeat("a", 64)}
	script := env.Exports() + `printf '%s|%s|%s|%s' "$MERO_KMS_VERSION" "$MERO_KMS_PROFILE" "$MERO_KMS_POLICY_URL" "$MERO_KMS_POLICY_SHA256"`
	out, err := exec.Command(sh, "-c", script).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Join([]string{env.KMSVersion, env.Profile, env.PolicyURL, env.PolicySHA256}, "|"); string(out) != want {
		t.Fatalf("the shell read %q, want %q", out, want)
	}
	if !strings.HasPrefix(env.Exports(), "export MERO_KMS_VERSION='1.3.0'\nexport MERO_KMS_PROFILE='debug'\n") {
		t.Fatalf("exports:\n%s", env.Exports())
	}
	if env.Getenv("MERO_KMS_POLICY_URL") != env.PolicyURL || env.Getenv("OTHER") != "" {
		t.Fatal("Getenv")
	}
}

func TestMigratePolicyCatalog(t *testing.T) {
	w := newWorld(t)
	w.publishKMS(t, "1.3.0", w.kmsFiles(t, "1.3.0", w.node), nil)
	ctx := context.Background()
	untested := &catalog.Catalog{SchemaVersion: catalog.SchemaVersion, Entries: []catalog.Entry{{KMS: "1.3.0", NodeImage: "1.3.0", Profiles: release.Profiles()}}}
	debugOnly := catalog.New()
	if _, err := debugOnly.Add(catalog.Entry{KMS: "1.3.0", NodeImage: "1.3.0", Profiles: []release.Profile{release.Debug}, Tested: true}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		c         *catalog.Catalog
		node      string
		fragments []string
	}{
		{"pair absent", e2etest.Catalog(t, [2]string{"1.3.0", "1.2.0"}), "1.3.0", []string{"does not list the pair kms 1.3.0 ↔ node image 1.3.0", "tested node images for kms 1.3.0: 1.2.0"}},
		{"empty catalog", catalog.New(), "1.3.0", []string{"kms 1.3.0 ↔ node image 1.3.0", "pairs it with no node image"}},
		{"other node version", e2etest.Catalog(t, [2]string{"1.3.0", "1.3.0"}), "1.4.0", []string{"kms 1.3.0 ↔ node image 1.4.0"}},
		{"untested", untested, "1.3.0", []string{"not as tested"}},
		{"other profile only", debugOnly, "1.3.0", []string{"for debug only, not for locked-read-only"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := w.policyOptions(release.LockedReadOnly, tc.c)
			o.NodeVersion = tc.node
			_, err := migrate.MigratePolicy(ctx, o)
			wantCode(t, err, outcome.VerificationFailed, tc.fragments...)
		})
	}
}

func TestMigratePolicyRefusals(t *testing.T) {
	ctx := context.Background()
	cat := e2etest.Catalog(t, [2]string{"1.3.0", "1.3.0"})
	policyFile := release.Debug.PolicyFile()
	for _, tc := range []struct {
		name      string
		files     func(w *world) map[string][]byte
		tamper    func(w *world, files map[string][]byte)
		skip      []string
		edit      func(o *migrate.PolicyOptions)
		code      int
		fragments []string
	}{
		{name: "no KMS release", skip: nil, edit: func(o *migrate.PolicyOptions) {
			o.KMSVersion = "1.4.0"
			o.Catalog = e2etest.Catalog(t, [2]string{"1.4.0", "1.3.0"})
		},
			code: outcome.MissingAsset, fragments: []string{"release mero-kms-v1.4.0: not found"}},
		{name: "policy missing", skip: []string{policyFile}, code: outcome.MissingAsset, fragments: []string{"mero-kms-v1.3.0/" + policyFile + ": not found"}},
		{name: "bundle missing", skip: []string{release.BundleName(policyFile)}, code: outcome.MissingAsset, fragments: []string{policyFile + ".sigstore.json: not found"}},
		{name: "checksums missing", skip: []string{release.ChecksumsFile}, code: outcome.MissingAsset, fragments: []string{"checksums.sha256: not found"}},
		{name: "policy tampered after signing", tamper: func(_ *world, f map[string][]byte) {
			f[policyFile] = []byte(strings.Replace(string(f[policyFile]), "UpToDate", "OutOfDate", 1))
		}, code: outcome.VerificationFailed, fragments: []string{"mero-kms-v1.3.0/" + policyFile + ": signature"}},
		{name: "wrong key", edit: func(o *migrate.PolicyOptions) {
			_, pubPEM, err := audittest.KeySigner()
			if err != nil {
				t.Fatal(err)
			}
			pub, _ := sign.LoadPublicKey(pubPEM)
			o.Trust.Policy.PublicKey = pub
		}, code: outcome.VerificationFailed, fragments: []string{"signature"}},
		{name: "checksum mismatch", tamper: func(w *world, f map[string][]byte) {
			sums, err := checksum.Parse(strings.NewReader(string(f[release.ChecksumsFile])))
			if err != nil {
				t.Fatal(err)
			}
			for i := range sums.Entries {
				if sums.Entries[i].Name == policyFile {
					sums.Entries[i].SHA256 = strings.Repeat("0", 64)
				}
			}
			f[release.ChecksumsFile] = sums.Marshal()
			w.resign(t, f, release.ChecksumsFile)
		}, code: outcome.VerificationFailed, fragments: []string{"checksums.sha256 lists " + strings.Repeat("0", 64)}},
		{name: "not in checksums", tamper: func(w *world, f map[string][]byte) {
			sums, err := checksum.Parse(strings.NewReader(string(f[release.ChecksumsFile])))
			if err != nil {
				t.Fatal(err)
			}
			var kept checksum.File
			for _, e := range sums.Entries {
				if e.Name != policyFile {
					kept.Entries = append(kept.Entries, e)
				}
			}
			f[release.ChecksumsFile] = kept.Marshal()
			w.resign(t, f, release.ChecksumsFile)
		}, code: outcome.VerificationFailed, fragments: []string{policyFile + " is not listed"}},
		{name: "policy_not_ready", files: func(*world) map[string][]byte { return notReady(t, "1.3.0") },
			code: outcome.VerificationFailed, fragments: []string{"policy_not_ready", "releases keys to any node"}},
		{name: "policy of another node release", files: func(w *world) map[string][]byte {
			return w.kmsFiles(t, "1.3.0", e2etest.Measured(t, "1.2.0"))
		}, code: outcome.VerificationFailed, fragments: []string{"does not accept the debug measurements of mero-tee-v1.3.0", "mrtd"}},
		{name: "policy names another version", files: func(w *world) map[string][]byte {
			f := w.kmsFiles(t, "1.3.0", w.node)
			other := w.kmsFiles(t, "1.2.0", w.node)
			f[policyFile] = other[policyFile]
			return f
		}, code: outcome.VerificationFailed, fragments: []string{"1.2.0"}},
		{name: "bad kms version", edit: func(o *migrate.PolicyOptions) { o.KMSVersion = "v1.3.0" }, code: outcome.Usage, fragments: []string{"--kms-version"}},
		{name: "bad node version", edit: func(o *migrate.PolicyOptions) { o.NodeVersion = "1.3" }, code: outcome.Usage, fragments: []string{"--node-version"}},
		{name: "bad profile", edit: func(o *migrate.PolicyOptions) { o.Profile = "production" }, code: outcome.Usage, fragments: []string{"--profile"}},
		{name: "no catalog", edit: func(o *migrate.PolicyOptions) { o.Catalog = nil }, code: outcome.Usage, fragments: []string{"catalog"}},
		{name: "no signer", edit: func(o *migrate.PolicyOptions) { o.Trust = migrate.Trust{Verifier: sign.NewVerifier(nil)} }, code: outcome.Usage, fragments: []string{"expected signer"}},
		{name: "bad policy URL base", edit: func(o *migrate.PolicyOptions) { o.Locator.Base = "ftp://mirror" }, code: outcome.Usage, fragments: []string{"policy URL base"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			files := w.kmsFiles(t, "1.3.0", w.node)
			if tc.files != nil {
				files = tc.files(w)
			}
			var tamper func(map[string][]byte)
			if tc.tamper != nil {
				tamper = func(f map[string][]byte) { tc.tamper(w, f) }
			}
			w.publishKMS(t, "1.3.0", files, tamper, tc.skip...)
			o := w.policyOptions(release.Debug, cat)
			if tc.edit != nil {
				tc.edit(&o)
			}
			_, err := migrate.MigratePolicy(ctx, o)
			wantCode(t, err, tc.code, tc.fragments...)
		})
	}
}

func TestMigratePolicyNotReadyAllowed(t *testing.T) {
	w := newWorld(t)
	w.publishKMS(t, "1.3.0", notReady(t, "1.3.0"), nil)
	log, buf := logger()
	o := w.policyOptions(release.Debug, e2etest.Catalog(t, [2]string{"1.3.0", "1.3.0"}))
	o.AllowNotReady, o.Log = true, log
	res, err := migrate.MigratePolicy(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.PolicyStatus != "policy_not_ready" || !strings.Contains(buf.String(), "[WARN] mero-kms-v1.3.0/attestation-policy-debug.json is policy_not_ready") {
		t.Fatalf("%+v\n%s", res, buf)
	}
}

func TestMigratePolicyDraftRelease(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.Store.CreateDraft(ctx, store.DraftSpec{Tag: "mero-kms-v1.3.0"}); err != nil {
		t.Fatal(err)
	}
	_, err := migrate.MigratePolicy(ctx, w.policyOptions(release.Debug, e2etest.Catalog(t, [2]string{"1.3.0", "1.3.0"})))
	wantCode(t, err, outcome.VerificationFailed, "mero-kms-v1.3.0 is a draft")
}

func TestMigratePolicyKeyless(t *testing.T) {
	ss, err := signtest.New()
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	js, err := ss.TrustedRootJSON()
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := sign.ParseTrustedRoot(js)
	if err != nil {
		t.Fatal(err)
	}
	claims := signtest.GitHubClaims{Repository: "calimero-network/mero-tee", Workflow: ".github/workflows/release-kms-phala.yaml", Ref: "refs/tags/mero-kms-v1.3.0"}
	tok, err := ss.GitHubToken(claims)
	if err != nil {
		t.Fatal(err)
	}
	keyless, err := sign.NewKeylessSigner(sign.KeylessOptions{FulcioURL: ss.FulcioURL(), RekorURL: ss.RekorURL(), Token: sign.StaticToken(tok), TrustedRoot: trusted})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t)
	w.signer = nil
	ctx := context.Background()
	tag := release.MustParseTag("mero-kms-v1.3.0")
	files := w.kmsFiles(t, "1.3.0", w.node)
	sealed, err := audittest.Seal(ctx, audittest.Options{Tag: tag, Signer: keyless}, files)
	if err != nil {
		t.Fatal(err)
	}
	if err := audittest.Publish(ctx, w.Store, tag, sealed); err != nil {
		t.Fatal(err)
	}
	cat := e2etest.Catalog(t, [2]string{"1.3.0", "1.3.0"})
	for _, tc := range []struct {
		name string
		id   sign.Identity
		ok   bool
	}{
		{"release workflow", sign.Identity{SAN: claims.WorkflowIdentity(), Issuer: signtest.GitHubIssuer}, true},
		{"identity regexp", sign.Identity{SANRegexp: `^https://github\.com/calimero-network/mero-tee/\.github/workflows/release-kms-phala\.yaml@refs/tags/mero-kms-v`, Issuer: signtest.GitHubIssuer}, true},
		{"other workflow", sign.Identity{SAN: "https://github.com/calimero-network/mero-tee/.github/workflows/other.yaml@refs/tags/mero-kms-v1.3.0", Issuer: signtest.GitHubIssuer}, false},
		{"other issuer", sign.Identity{SAN: claims.WorkflowIdentity(), Issuer: "https://accounts.example.com"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := w.policyOptions(release.LockedReadOnly, cat)
			id := tc.id
			o.Trust = migrate.Trust{Policy: sign.Policy{Identity: &id}, Verifier: sign.NewVerifier(trusted)}
			res, err := migrate.MigratePolicy(ctx, o)
			if !tc.ok {
				wantCode(t, err, outcome.VerificationFailed, "signature")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Signer.Identity != claims.WorkflowIdentity() || res.Signer.TlogEntries != 1 {
				t.Fatalf("signer %+v", res.Signer)
			}
		})
	}
}

func TestAssetLocator(t *testing.T) {
	for _, tc := range []struct {
		l    migrate.AssetLocator
		want string
		bad  string
	}{
		{l: migrate.AssetLocator{StoreSpec: "github:calimero-network/mero-tee"}, want: "https://github.com/calimero-network/mero-tee/releases/download/mero-kms-v1.3.0/attestation-policy-debug.json"},
		{l: migrate.AssetLocator{StoreSpec: "github:acme/kms", ServerURL: "https://ghe.example.com/"}, want: "https://ghe.example.com/acme/kms/releases/download/mero-kms-v1.3.0/attestation-policy-debug.json"},
		{l: migrate.AssetLocator{Base: "https://policies.example.com/mero-kms/", StoreSpec: "github:a/b"}, want: "https://policies.example.com/mero-kms/mero-kms-v1.3.0/attestation-policy-debug.json"},
		{l: migrate.AssetLocator{Base: "file:///srv/policies"}, want: "file:///srv/policies/mero-kms-v1.3.0/attestation-policy-debug.json"},
		{l: migrate.AssetLocator{StoreSpec: "dir:/srv/releases dir"}, want: "file:///srv/releases%20dir/mero-kms-v1.3.0/assets/attestation-policy-debug.json"},
		{l: migrate.AssetLocator{Base: "ftp://x"}, bad: "policy URL base"},
		{l: migrate.AssetLocator{Base: "https://"}, bad: "policy URL base"},
		{l: migrate.AssetLocator{Base: "https://x/?q=1"}, bad: "policy URL base"},
		{l: migrate.AssetLocator{StoreSpec: "github:nope"}, bad: "store"},
		{l: migrate.AssetLocator{StoreSpec: "s3:bucket"}, bad: "cannot derive a policy URL"},
		{l: migrate.AssetLocator{}, bad: "cannot derive a policy URL"},
	} {
		got, err := tc.l.URL("mero-kms-v1.3.0", "attestation-policy-debug.json")
		if tc.bad != "" {
			if outcome.Code(err) != outcome.Usage || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("%+v: %q, %v; want a usage error about %q", tc.l, got, err, tc.bad)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%+v: %q, %v; want %q", tc.l, got, err, tc.want)
		}
	}
}

func TestMigratePolicyKeptImage(t *testing.T) {
	// a release run kept OCI archives of the images it released; the one whose digest is the
	// recorded image of the profile is reported, whatever its file is called
	w := newWorld(t)
	kept := t.TempDir()
	digests := map[string]string{}
	for _, name := range []string{"a", "b", "not-kept"} {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		if digests[name], err = ociimage.Digest(img); err != nil {
			t.Fatal(err)
		}
		if name != "not-kept" {
			if err := ociimage.WriteOCIArchive(img, "mero-kms:"+name, filepath.Join(kept, name+".oci.tar")); err != nil {
				t.Fatal(err)
			}
		}
	}
	recorded := map[release.Profile]string{release.Debug: "a", release.DebugReadOnly: "b", release.LockedReadOnly: "not-kept"}
	files := w.kmsFiles(t, "1.3.0", w.node)
	pub, err := measure.ReadPublished(bytes.NewReader(files[release.PublishedMRTDsFile]))
	if err != nil {
		t.Fatal(err)
	}
	for p, name := range recorded {
		rec := pub.Profiles[p]
		rec.Image = "ghcr.io/calimero-network/mero-kms@" + digests[name]
		pub.Profiles[p] = rec
	}
	if files[release.PublishedMRTDsFile], err = pub.Marshal(); err != nil {
		t.Fatal(err)
	}
	w.publishKMS(t, "1.3.0", files, nil)
	cat := e2etest.Catalog(t, [2]string{"1.3.0", "1.3.0"})
	for p, name := range recorded {
		log, buf := logger()
		o := w.policyOptions(p, cat)
		o.Log, o.KeptImages = log, kept
		res, err := migrate.MigratePolicy(context.Background(), o)
		if err != nil {
			t.Fatalf("%s: %v\n%s", p, err, buf)
		}
		want, line := filepath.Join(kept, name+".oci.tar"), "[PASS] "+filepath.Join(kept, name+".oci.tar")+" is the released image"
		if name == "not-kept" {
			want, line = "", "[WARN] no OCI archive in "+kept+" is the released image"
		}
		if res.KeptImage != want || !strings.Contains(buf.String(), line) {
			t.Errorf("%s: kept image %q, want %q; log:\n%s", p, res.KeptImage, want, buf)
		}
		// without a folder nothing is looked for
		o.KeptImages = ""
		res, err = migrate.MigratePolicy(context.Background(), o)
		if err != nil || res.KeptImage != "" {
			t.Errorf("%s without KeptImages: %q, %v", p, res.KeptImage, err)
		}
		// the recorded image is in a registry: it is what to pull
		if res.PullImage != res.KMSImage || res.PullImage == "" {
			t.Errorf("%s: pull image %q, want the recorded %q", p, res.PullImage, res.KMSImage)
		}
		// a given archive must be the released image: "a" is debug's, and only debug's
		o.ImageArchive = filepath.Join(kept, "a.oci.tar")
		res, err = migrate.MigratePolicy(context.Background(), o)
		if p == release.Debug {
			if err != nil || res.KeptImage != o.ImageArchive {
				t.Errorf("%s: the released archive given: %v, kept image %q", p, err, res.KeptImage)
			}
		} else if outcome.Code(err) != outcome.VerificationFailed || err == nil || !strings.Contains(err.Error(), "not the released") {
			t.Errorf("%s: another image given: want a verification error naming it, got %v", p, err)
		}
	}
}
