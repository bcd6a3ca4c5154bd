package verified_test

import (
	"context"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/audit/audittest"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/store"
	"github.com/calimero-network/mero-release/pipeline/store/dir"
	"github.com/calimero-network/mero-release/pipeline/verified"
)

func keyTrust(t *testing.T) (*sign.KeySigner, verified.Trust) {
	t.Helper()
	s, pubPEM, err := audittest.KeySigner()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := sign.LoadPublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	return s, verified.Trust{Policy: sign.Policy{PublicKey: pub}, Verifier: sign.NewVerifier(nil)}
}

// TestFetch: an asset is returned only when its bundle verifies against the expected signer and
// its digest matches the signed checksums.sha256; each failure has its exit code.
func TestFetch(t *testing.T) {
	signer, trust := keyTrust(t)
	_, otherTrust := keyTrust(t)
	tag := release.MustParseTag("mero-tee-v1.2.0")
	name := release.PublishedMRTDsFile
	cases := map[string]struct {
		tamper func(map[string][]byte)
		skip   string
		trust  verified.Trust
		draft  bool
		tag    string
		code   int
		want   string
	}{
		"good":                 {trust: trust, code: outcome.OK},
		"another signer":       {trust: otherTrust, code: outcome.VerificationFailed, want: "signature"},
		"content changed":      {trust: trust, code: outcome.VerificationFailed, tamper: func(f map[string][]byte) { f[name][20] ^= 1 }},
		"checksums changed":    {trust: trust, code: outcome.VerificationFailed, tamper: func(f map[string][]byte) { f[release.ChecksumsFile][0] ^= 1 }},
		"no bundle":            {trust: trust, code: outcome.MissingAsset, skip: release.BundleName(name)},
		"no checksum file":     {trust: trust, code: outcome.MissingAsset, skip: release.ChecksumsFile},
		"no such release":      {trust: trust, code: outcome.MissingAsset, tag: "mero-tee-v9.9.9"},
		"a draft":              {trust: trust, code: outcome.VerificationFailed, draft: true, want: "draft"},
		"no expected signer":   {trust: verified.Trust{Verifier: sign.NewVerifier(nil)}, code: outcome.Usage, want: "expected signer"},
		"asset not in release": {trust: trust, code: outcome.MissingAsset, skip: name},
	}
	for caseName, tc := range cases {
		t.Run(caseName, func(t *testing.T) {
			st, err := dir.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			files, err := audittest.Build(context.Background(), audittest.Options{Tag: tag, Signer: signer})
			if err != nil {
				t.Fatal(err)
			}
			if tc.tamper != nil {
				tc.tamper(files)
			}
			delete(files, tc.skip)
			if tc.draft {
				if _, err := st.CreateDraft(context.Background(), store.DraftSpec{Tag: tag.String()}); err != nil {
					t.Fatal(err)
				}
				for n, data := range files {
					if err := st.UploadAsset(context.Background(), tag.String(), n, strings.NewReader(string(data)), int64(len(data))); err != nil {
						t.Fatal(err)
					}
				}
			} else if err := audittest.Publish(context.Background(), st, tag, files); err != nil {
				t.Fatal(err)
			}
			fetchTag := tag.String()
			if tc.tag != "" {
				fetchTag = tc.tag
			}
			v, err := verified.Fetch(context.Background(), st, fetchTag, name, tc.trust)
			if outcome.Code(err) != tc.code || (err == nil) != (v != nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("exit %d (%v), want %d mentioning %q", outcome.Code(err), err, tc.code, tc.want)
			}
			if v != nil && (string(v.Data) != string(files[name]) || v.Signer == nil || len(v.SHA256) != 64) {
				t.Fatalf("asset %+v", v)
			}
		})
	}
}
