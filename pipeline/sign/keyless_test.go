package sign_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/sign/signtest"
)

// kmsRun is the GitHub Actions run that signs mero-kms releases in these tests.
var kmsRun = signtest.GitHubClaims{
	Repository: "calimero-network/mero-tee",
	Workflow:   ".github/workflows/release-kms-phala.yaml",
	Ref:        "refs/tags/mero-kms-v1.2.0",
}

type instance struct {
	ss      *signtest.Sigstore
	trusted *root.TrustedRoot
}

func newInstance(t *testing.T) instance {
	t.Helper()
	ss, err := signtest.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ss.Close)
	tr, err := ss.TrustedRoot()
	if err != nil {
		t.Fatal(err)
	}
	// Round-trip through JSON, as a verifier reading trusted_root.json would.
	js, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	reloaded, err := sign.ParseTrustedRoot(js)
	if err != nil {
		t.Fatal(err)
	}
	if len(reloaded.RekorLogs()) != 1 || len(reloaded.CTLogs()) != 1 || len(reloaded.FulcioCertificateAuthorities()) != 1 {
		t.Fatalf("reloaded trusted root: %d rekor logs, %d ct logs, %d CAs", len(reloaded.RekorLogs()), len(reloaded.CTLogs()), len(reloaded.FulcioCertificateAuthorities()))
	}
	return instance{ss: ss, trusted: reloaded}
}

func (in instance) keylessSigner(t *testing.T, claims signtest.GitHubClaims, tsa bool) *sign.KeylessSigner {
	t.Helper()
	tok, err := in.ss.GitHubToken(claims)
	if err != nil {
		t.Fatal(err)
	}
	opts := sign.KeylessOptions{FulcioURL: in.ss.FulcioURL(), RekorURL: in.ss.RekorURL(), Token: sign.StaticToken(tok), TrustedRoot: in.trusted}
	if tsa {
		opts.TSAURL = in.ss.TSAURL()
	}
	s, err := sign.NewKeylessSigner(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func releaseIdentity() *sign.Identity {
	return &sign.Identity{SAN: kmsRun.WorkflowIdentity(), Issuer: signtest.GitHubIssuer}
}

func TestKeylessEndToEnd(t *testing.T) {
	in := newInstance(t)
	ctx := context.Background()
	for _, tsa := range []bool{false, true} {
		name := "rekor only"
		if tsa {
			name = "rekor and timestamp authority"
		}
		t.Run(name, func(t *testing.T) {
			signer := in.keylessSigner(t, kmsRun, tsa)
			artifact := []byte(`{"profile":"locked-read-only"}`)
			bundleJSON, err := signer.Sign(ctx, artifact)
			if err != nil {
				t.Fatal(err)
			}
			var media struct {
				MediaType string `json:"mediaType"`
			}
			if err := json.Unmarshal(bundleJSON, &media); err != nil || media.MediaType != "application/vnd.dev.sigstore.bundle.v0.3+json" {
				t.Fatalf("media type %q (%v)", media.MediaType, err)
			}
			v := sign.NewVerifier(in.trusted)
			res, err := v.Verify(ctx, bundleJSON, bytes.NewReader(artifact), sign.Policy{Identity: releaseIdentity()})
			if err != nil {
				t.Fatal(err)
			}
			if res.Identity != kmsRun.WorkflowIdentity() || res.Issuer != signtest.GitHubIssuer {
				t.Fatalf("identity %q issuer %q", res.Identity, res.Issuer)
			}
			if res.Repository != "https://github.com/calimero-network/mero-tee" || res.Ref != kmsRun.Ref {
				t.Fatalf("repository %q ref %q", res.Repository, res.Ref)
			}
			if res.TlogEntries != 1 || len(res.Timestamps) == 0 || !strings.HasPrefix(res.Digest, "sha256:") {
				t.Fatalf("result %+v", res)
			}
			if tsa && len(res.Timestamps) < 2 {
				t.Fatalf("expected a TSA timestamp too: %+v", res.Timestamps)
			}
		})
	}
	if n := in.ss.Entries(); n != 2 {
		t.Fatalf("rekor holds %d entries, want 2", n)
	}
}

func TestKeylessSignFileReusesCertificate(t *testing.T) {
	in := newInstance(t)
	signer := in.keylessSigner(t, kmsRun, false)
	dir := t.TempDir()
	var bundles [][]byte
	for _, name := range []string{"a.json", "b.json"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		b, err := signer.SignFile(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		bundles = append(bundles, b)
	}
	cert := func(b []byte) string {
		var v struct {
			VerificationMaterial struct {
				Certificate struct{ RawBytes string } `json:"certificate"`
			} `json:"verificationMaterial"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v.VerificationMaterial.Certificate.RawBytes
	}
	if c0, c1 := cert(bundles[0]), cert(bundles[1]); c0 == "" || c0 != c1 {
		t.Fatal("the two files were not signed under one Fulcio certificate")
	}
	if _, err := signer.SignFile(context.Background(), filepath.Join(dir, "missing.json")); outcome.Code(err) != outcome.MissingAsset {
		t.Fatalf("missing file: %v (code %d)", err, outcome.Code(err))
	}
}
