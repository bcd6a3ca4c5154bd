package sign_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/sign/signtest"
)

// tamperJSON decodes a bundle, lets f change it and encodes it again.
func tamperJSON(t *testing.T, bundleJSON []byte, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(bundleJSON, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func flipBase64(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	return base64.StdEncoding.EncodeToString(b)
}

func TestKeylessRejections(t *testing.T) {
	in := newInstance(t)
	other := newInstance(t)
	ctx := context.Background()
	artifact := []byte(`{"allowed_mrtd":["00"]}`)
	otherArtifact := []byte(`{"allowed_mrtd":["11"]}`)
	signer := in.keylessSigner(t, kmsRun, false)
	good, err := signer.Sign(ctx, artifact)
	if err != nil {
		t.Fatal(err)
	}
	otherBundle, err := signer.Sign(ctx, otherArtifact)
	if err != nil {
		t.Fatal(err)
	}
	// The same workflow on a branch instead of a tag, for the ref checks.
	branch := kmsRun
	branch.Ref = "refs/heads/main"
	branchBundle, err := in.keylessSigner(t, branch, false).Sign(ctx, artifact)
	if err != nil {
		t.Fatal(err)
	}
	// A bundle from another (untrusted) Sigstore instance with the same identity.
	foreign, err := other.keylessSigner(t, kmsRun, false).Sign(ctx, artifact)
	if err != nil {
		t.Fatal(err)
	}
	id := releaseIdentity
	tests := []struct {
		name     string
		bundle   []byte
		artifact []byte
		identity *sign.Identity
		wantErr  string
		wantCode int
	}{
		{name: "good", bundle: good, artifact: artifact, identity: id()},
		{name: "good, identity regexp", bundle: good, artifact: artifact, identity: &sign.Identity{
			SANRegexp: `^https://github\.com/calimero-network/mero-tee/\.github/workflows/release-kms-phala\.yaml@refs/tags/mero-kms-v`, IssuerRegexp: `^https://token\.actions\.githubusercontent\.com$`}},
		{name: "good, repository and ref", bundle: good, artifact: artifact, identity: &sign.Identity{
			SAN: kmsRun.WorkflowIdentity(), Issuer: signtest.GitHubIssuer, Repository: "https://github.com/calimero-network/mero-tee", Ref: kmsRun.Ref}},
		{name: "good, ref regexp", bundle: good, artifact: artifact, identity: &sign.Identity{
			SAN: kmsRun.WorkflowIdentity(), Issuer: signtest.GitHubIssuer, RefRegexp: `^refs/tags/mero-kms-v[0-9.]+$`}},
		{name: "tampered artifact", bundle: good, artifact: append(bytes.Clone(artifact), ' '), identity: id(),
			wantErr: "artifact digest does not match the bundle", wantCode: outcome.VerificationFailed},
		{name: "bundle of another artifact", bundle: otherBundle, artifact: artifact, identity: id(),
			wantErr: "artifact digest does not match the bundle", wantCode: outcome.VerificationFailed},
		{name: "wrong identity", bundle: good, artifact: artifact, identity: &sign.Identity{
			SAN: "https://github.com/evil/fork/.github/workflows/release-kms-phala.yaml@refs/tags/mero-kms-v1.2.0", Issuer: signtest.GitHubIssuer},
			wantErr: `certificate identity "` + kmsRun.WorkflowIdentity() + `" does not match expected "https://github.com/evil/fork/`, wantCode: outcome.VerificationFailed},
		{name: "wrong identity regexp", bundle: good, artifact: artifact, identity: &sign.Identity{SANRegexp: `^https://github\.com/evil/`, Issuer: signtest.GitHubIssuer},
			wantErr: "does not match expected pattern", wantCode: outcome.VerificationFailed},
		{name: "wrong issuer", bundle: good, artifact: artifact, identity: &sign.Identity{SAN: kmsRun.WorkflowIdentity(), Issuer: "https://accounts.google.com"},
			wantErr: `certificate issuer "https://token.actions.githubusercontent.com" does not match expected OIDC issuer "https://accounts.google.com"`, wantCode: outcome.VerificationFailed},
		{name: "wrong issuer regexp", bundle: good, artifact: artifact, identity: &sign.Identity{SAN: kmsRun.WorkflowIdentity(), IssuerRegexp: `^https://gitlab\.com$`},
			wantErr: "does not match expected OIDC issuer pattern", wantCode: outcome.VerificationFailed},
		{name: "wrong repository", bundle: good, artifact: artifact, identity: &sign.Identity{SAN: kmsRun.WorkflowIdentity(), Issuer: signtest.GitHubIssuer, Repository: "https://github.com/evil/fork"},
			wantErr: `certificate source repository "https://github.com/calimero-network/mero-tee" does not match expected "https://github.com/evil/fork"`, wantCode: outcome.VerificationFailed},
		{name: "branch instead of tag", bundle: branchBundle, artifact: artifact, identity: &sign.Identity{SANRegexp: `^https://github\.com/calimero-network/mero-tee/`, Issuer: signtest.GitHubIssuer, Ref: kmsRun.Ref},
			wantErr: `certificate source repository ref "refs/heads/main" does not match expected "refs/tags/mero-kms-v1.2.0"`, wantCode: outcome.VerificationFailed},
		{name: "branch instead of tag, regexp", bundle: branchBundle, artifact: artifact, identity: &sign.Identity{SANRegexp: `calimero-network`, Issuer: signtest.GitHubIssuer, RefRegexp: `^refs/tags/`},
			wantErr: "does not match expected pattern", wantCode: outcome.VerificationFailed},
		{name: "untrusted sigstore instance", bundle: foreign, artifact: artifact, identity: id(),
			wantErr: "against the trusted root", wantCode: outcome.VerificationFailed},
		{name: "tampered signature", artifact: artifact, identity: id(), bundle: tamperJSON(t, good, func(m map[string]any) {
			ms := m["messageSignature"].(map[string]any)
			ms["signature"] = flipBase64(t, ms["signature"].(string))
		}), wantErr: "does not verify", wantCode: outcome.VerificationFailed},
		{name: "no rekor entry", artifact: artifact, identity: id(), bundle: tamperJSON(t, good, func(m map[string]any) {
			delete(m["verificationMaterial"].(map[string]any), "tlogEntries")
		}), wantErr: "bundle has no transparency-log (Rekor) entry", wantCode: outcome.VerificationFailed},
		{name: "not json", bundle: []byte("{"), artifact: artifact, identity: id(), wantErr: "not a valid Sigstore bundle", wantCode: outcome.VerificationFailed},
		{name: "dsse envelope", artifact: artifact, identity: id(), bundle: tamperJSON(t, good, func(m map[string]any) {
			delete(m, "messageSignature")
			m["dsseEnvelope"] = map[string]any{"payload": "e30=", "payloadType": "application/vnd.in-toto+json", "signatures": []any{map[string]any{"sig": "AAAA"}}}
		}), wantErr: "no message signature", wantCode: outcome.VerificationFailed},
		{name: "bad identity regexp", bundle: good, artifact: artifact, identity: &sign.Identity{SANRegexp: "(", Issuer: signtest.GitHubIssuer},
			wantErr: "certificate identity regexp", wantCode: outcome.Usage},
		{name: "no SAN criterion", bundle: good, artifact: artifact, identity: &sign.Identity{Issuer: signtest.GitHubIssuer},
			wantErr: "exactly one of the certificate identity", wantCode: outcome.Usage},
		{name: "two issuer criteria", bundle: good, artifact: artifact, identity: &sign.Identity{SAN: "x", Issuer: "a", IssuerRegexp: "b"},
			wantErr: "exactly one of the certificate OIDC issuer", wantCode: outcome.Usage},
		{name: "ref and ref regexp", bundle: good, artifact: artifact, identity: &sign.Identity{SAN: "x", Issuer: "a", Ref: "r", RefRegexp: "r"},
			wantErr: "at most one of the ref", wantCode: outcome.Usage},
	}
	v := sign.NewVerifier(in.trusted)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := v.Verify(ctx, tt.bundle, bytes.NewReader(tt.artifact), sign.Policy{Identity: tt.identity})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if res.Identity != kmsRun.WorkflowIdentity() && res.Identity != branch.WorkflowIdentity() {
					t.Fatalf("identity %q", res.Identity)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
			if c := outcome.Code(err); c != tt.wantCode {
				t.Fatalf("code %d, want %d (%v)", c, tt.wantCode, err)
			}
		})
	}
}

func TestVerifyPolicyErrors(t *testing.T) {
	in := newInstance(t)
	ctx := context.Background()
	good, err := in.keylessSigner(t, kmsRun, false).Sign(ctx, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v := sign.NewVerifier(in.trusted)
	tests := []struct {
		name     string
		v        *sign.Verifier
		policy   sign.Policy
		wantErr  string
		wantCode int
	}{
		{"empty policy", v, sign.Policy{}, "needs an expected identity or a public key", outcome.Usage},
		{"both", v, sign.Policy{Identity: releaseIdentity(), PublicKey: key.Public()}, "not both", outcome.Usage},
		{"keyless bundle, key policy", v, sign.Policy{PublicKey: key.Public()}, "bundle is signed keyless with a certificate for \"" + kmsRun.WorkflowIdentity() + "\", but a public key was expected", outcome.VerificationFailed},
		{"keyless without trusted root", sign.NewVerifier(nil), sign.Policy{Identity: releaseIdentity()}, "need trusted material", outcome.Usage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.v.Verify(ctx, good, strings.NewReader("x"), tt.policy)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || outcome.Code(err) != tt.wantCode {
				t.Fatalf("err = %v (code %d), want %q (code %d)", err, outcome.Code(err), tt.wantErr, tt.wantCode)
			}
		})
	}
}

func TestVerifyCancelled(t *testing.T) {
	in := newInstance(t)
	good, err := in.keylessSigner(t, kmsRun, false).Sign(context.Background(), []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sign.NewVerifier(in.trusted).Verify(ctx, good, strings.NewReader("x"), sign.Policy{Identity: releaseIdentity()}); err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("err = %v", err)
	}
}

func TestKeylessSignerErrors(t *testing.T) {
	in := newInstance(t)
	other := newInstance(t)
	ctx := context.Background()
	foreignToken, err := other.ss.GitHubToken(kmsRun)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := in.ss.Token(map[string]any{"iss": signtest.GitHubIssuer, "sub": "x", "exp": 1})
	if err != nil {
		t.Fatal(err)
	}
	wrongAudience, err := in.ss.Token(map[string]any{"iss": signtest.GitHubIssuer, "sub": "x", "aud": "other", "job_workflow_ref": "a/b/c@d"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    sign.KeylessOptions
		wantErr string
		code    int
		atNew   bool
	}{
		{name: "no token source", opts: sign.KeylessOptions{}, wantErr: "no OIDC token source", code: outcome.Usage, atNew: true},
		{name: "bad fulcio url", opts: sign.KeylessOptions{Token: sign.StaticToken("a.b.c"), FulcioURL: "ftp://x"}, wantErr: `fulcio URL "ftp://x"`, code: outcome.Usage, atNew: true},
		{name: "bad rekor url", opts: sign.KeylessOptions{Token: sign.StaticToken("a.b.c"), RekorURL: "::"}, wantErr: `rekor URL "::"`, code: outcome.Usage, atNew: true},
		{name: "bad tsa url", opts: sign.KeylessOptions{Token: sign.StaticToken("a.b.c"), TSAURL: "nope"}, wantErr: "timestamp authority URL", code: outcome.Usage, atNew: true},
		{name: "empty token", opts: sign.KeylessOptions{Token: sign.StaticToken(" "), FulcioURL: in.ss.FulcioURL(), RekorURL: in.ss.RekorURL()}, wantErr: "OIDC token is empty", code: outcome.Usage},
		{name: "token from another issuer key", opts: sign.KeylessOptions{Token: sign.StaticToken(foreignToken), FulcioURL: in.ss.FulcioURL(), RekorURL: in.ss.RekorURL()}, wantErr: "Fulcio returned 401", code: outcome.General},
		{name: "expired token", opts: sign.KeylessOptions{Token: sign.StaticToken(expired), FulcioURL: in.ss.FulcioURL(), RekorURL: in.ss.RekorURL()}, wantErr: "token expired", code: outcome.General},
		{name: "wrong audience", opts: sign.KeylessOptions{Token: sign.StaticToken(wrongAudience), FulcioURL: in.ss.FulcioURL(), RekorURL: in.ss.RekorURL()}, wantErr: "audience", code: outcome.General},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := sign.NewKeylessSigner(tt.opts)
			if !tt.atNew {
				if err != nil {
					t.Fatal(err)
				}
				_, err = s.Sign(ctx, []byte("x"))
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || outcome.Code(err) != tt.code {
				t.Fatalf("err = %v (code %d), want %q (code %d)", err, outcome.Code(err), tt.wantErr, tt.code)
			}
		})
	}
	if in.ss.Entries() != 0 {
		t.Fatalf("failed signings left %d rekor entries", in.ss.Entries())
	}
}

func FuzzParseBundle(f *testing.F) {
	ss, err := signtest.New()
	if err != nil {
		f.Fatal(err)
	}
	defer ss.Close()
	tok, err := ss.GitHubToken(kmsRun)
	if err != nil {
		f.Fatal(err)
	}
	s, err := sign.NewKeylessSigner(sign.KeylessOptions{FulcioURL: ss.FulcioURL(), RekorURL: ss.RekorURL(), Token: sign.StaticToken(tok)})
	if err != nil {
		f.Fatal(err)
	}
	good, err := s.Sign(context.Background(), []byte("x"))
	if err != nil {
		f.Fatal(err)
	}
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ks, err := sign.NewKeySigner(priv, sign.KeySignerOptions{})
	if err != nil {
		f.Fatal(err)
	}
	keyBundle, err := ks.Sign(context.Background(), []byte("x"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(keyBundle)
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := sign.ParseBundle(data)
		if err != nil {
			if c := outcome.Code(err); c != outcome.VerificationFailed {
				t.Fatalf("parse error with code %d: %v", c, err)
			}
			return
		}
		if b.GetMessageSignature() == nil {
			t.Fatal("accepted a bundle without a message signature")
		}
	})
}

// otherCTLogs is trusted material whose CT logs are another Sigstore instance's.
type otherCTLogs struct {
	root.TrustedMaterial
	ct map[string]*root.TransparencyLog
}

func (m otherCTLogs) CTLogs() map[string]*root.TransparencyLog { return m.ct }

// TestVerifierRechecksEveryBundle: a Verifier checks a certificate's chain and SCTs once for
// all the bundles that carry it, but every bundle's own Rekor entry, signature and digest
// each time, and it never remembers a failure.
func TestVerifierRechecksEveryBundle(t *testing.T) {
	in := newInstance(t)
	ctx := context.Background()
	signer := in.keylessSigner(t, kmsRun, false)
	artifacts := [][]byte{[]byte(`{"n":1}`), []byte(`{"n":2}`)}
	var bundles [][]byte
	for _, a := range artifacts {
		b, err := signer.Sign(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		bundles = append(bundles, b)
	}
	entry := func(m map[string]any) map[string]any {
		return m["verificationMaterial"].(map[string]any)["tlogEntries"].([]any)[0].(map[string]any)
	}
	v := sign.NewVerifier(in.trusted)
	policy := sign.Policy{Identity: releaseIdentity()}
	verify := func(b, a []byte) error {
		_, err := v.Verify(ctx, b, bytes.NewReader(a), policy)
		return err
	}
	if err := verify(bundles[0], artifacts[0]); err != nil {
		t.Fatal(err)
	}
	// The same certificate, with this bundle's own parts tampered.
	tampered := []struct {
		name, wantErr string
		bundle        []byte
	}{
		{"signed entry timestamp", "transparency-log (Rekor) entry does not verify", tamperJSON(t, bundles[1], func(m map[string]any) {
			p := entry(m)["inclusionPromise"].(map[string]any)
			p["signedEntryTimestamp"] = flipBase64(t, p["signedEntryTimestamp"].(string))
		})},
		{"integrated time", "transparency-log (Rekor) entry does not verify", tamperJSON(t, bundles[1], func(m map[string]any) {
			entry(m)["integratedTime"] = "1000000000"
		})},
		{"inclusion proof root", "transparency-log (Rekor) entry does not verify", tamperJSON(t, bundles[1], func(m map[string]any) {
			p := entry(m)["inclusionProof"].(map[string]any)
			p["rootHash"] = flipBase64(t, p["rootHash"].(string))
		})},
		{"signature", "does not verify", tamperJSON(t, bundles[1], func(m map[string]any) {
			ms := m["messageSignature"].(map[string]any)
			ms["signature"] = flipBase64(t, ms["signature"].(string))
		})},
		{"entry of the other bundle", "does not verify", tamperJSON(t, bundles[1], func(m map[string]any) {
			var first map[string]any
			if err := json.Unmarshal(bundles[0], &first); err != nil {
				t.Fatal(err)
			}
			m["verificationMaterial"].(map[string]any)["tlogEntries"] = first["verificationMaterial"].(map[string]any)["tlogEntries"]
		})},
	}
	for _, tt := range tampered {
		err := verify(tt.bundle, artifacts[1])
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || outcome.Code(err) != outcome.VerificationFailed {
			t.Errorf("%s: error = %v, want a verification error containing %q", tt.name, err, tt.wantErr)
		}
	}
	if err := verify(bundles[1], artifacts[1]); err != nil {
		t.Fatalf("untampered second bundle: %v", err)
	}

	// CT logs the certificate's SCT is not from: refused, every time.
	other := newInstance(t)
	strict := sign.NewVerifier(otherCTLogs{TrustedMaterial: in.trusted, ct: other.trusted.CTLogs()})
	for i := range 2 {
		_, err := strict.Verify(ctx, bundles[i], bytes.NewReader(artifacts[i]), policy)
		if err == nil || !strings.Contains(err.Error(), "certificate transparency (SCT) check failed") || outcome.Code(err) != outcome.VerificationFailed {
			t.Fatalf("bundle %d with foreign CT logs: %v", i, err)
		}
	}
}
