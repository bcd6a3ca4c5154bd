package sign_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/sign/signtest"
)

const dssePayload = `{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"https://example.com/p","predicate":{}}`

// TestDSSEKeylessSignAndVerify signs a DSSE envelope keyless with the in-process Sigstore (a
// dsse Rekor entry) and verifies signature, identity and payload type; a tampered payload, a
// wrong identity, a wrong payload type and a key policy are rejected with exit 10.
func TestDSSEKeylessSignAndVerify(t *testing.T) {
	in := newInstance(t)
	ctx := context.Background()
	s := in.keylessSigner(t, kmsRun, false)
	bj, err := s.SignDSSE(ctx, sign.InTotoPayloadType, []byte(dssePayload))
	if err != nil {
		t.Fatal(err)
	}
	if !sign.IsDSSEBundle(bj) {
		t.Fatal("IsDSSEBundle: false for a DSSE bundle")
	}
	v := sign.NewVerifier(in.trusted)
	res, err := v.VerifyDSSE(ctx, bj, sign.InTotoPayloadType, sign.Policy{Identity: releaseIdentity()})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Payload) != dssePayload || res.Identity != kmsRun.WorkflowIdentity() || res.TlogEntries != 1 {
		t.Fatalf("result %+v", res)
	}
	if _, err := sign.ParseBundle(bj); outcome.Code(err) != outcome.VerificationFailed {
		t.Fatalf("ParseBundle of a DSSE bundle: %v", err)
	}

	tampered := tamperJSON(t, bj, func(m map[string]any) {
		env := m["dsseEnvelope"].(map[string]any)
		env["payload"] = base64.StdEncoding.EncodeToString([]byte(strings.Replace(dssePayload, "example.com", "evil.example", 1)))
	})
	other := &sign.Identity{SAN: "https://github.com/evil/fork/.github/workflows/release-kms-phala.yaml@refs/tags/mero-kms-v1.2.0", Issuer: signtest.GitHubIssuer}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		name, want string
		bundle     []byte
		typ        string
		policy     sign.Policy
	}{
		{"tampered payload", "payload", tampered, sign.InTotoPayloadType, sign.Policy{Identity: releaseIdentity()}},
		{"wrong identity", "does not match expected", bj, sign.InTotoPayloadType, sign.Policy{Identity: other}},
		{"wrong payload type", "payload type", bj, "application/vnd.other+json", sign.Policy{Identity: releaseIdentity()}},
		{"key expected", "public key was expected", bj, sign.InTotoPayloadType, sign.Policy{PublicKey: key.Public()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.VerifyDSSE(ctx, tc.bundle, tc.typ, tc.policy)
			if outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want exit 10 mentioning %q", err, tc.want)
			}
		})
	}
}

// TestDSSEKeySignAndVerify signs a DSSE envelope with a key (with and without a Rekor entry,
// and through sign.Lazy) and rejects another key and a tampered payload.
func TestDSSEKeySignAndVerify(t *testing.T) {
	in := newInstance(t)
	ctx := context.Background()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, rekor := range []bool{false, true} {
		opts := sign.KeySignerOptions{}
		if rekor {
			opts.RekorURL = in.ss.RekorURL()
		}
		ks, err := sign.NewKeySigner(priv, opts)
		if err != nil {
			t.Fatal(err)
		}
		lazy := sign.NewLazy(func() (sign.Signer, error) { return ks, nil })
		bj, err := lazy.SignDSSE(ctx, sign.InTotoPayloadType, []byte(dssePayload))
		if err != nil {
			t.Fatal(err)
		}
		v := sign.NewVerifier(in.trusted)
		res, err := v.VerifyDSSE(ctx, bj, sign.InTotoPayloadType, sign.Policy{PublicKey: priv.Public()})
		if err != nil {
			t.Fatalf("rekor=%v: %v", rekor, err)
		}
		if want := map[bool]int{false: 0, true: 1}[rekor]; res.TlogEntries != want || res.KeyHint == "" {
			t.Fatalf("rekor=%v: result %+v", rekor, res)
		}
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if _, err := v.VerifyDSSE(ctx, bj, "", sign.Policy{PublicKey: other.Public()}); outcome.Code(err) != outcome.VerificationFailed {
			t.Fatalf("rekor=%v: another key: %v", rekor, err)
		}
		tampered := tamperJSON(t, bj, func(m map[string]any) {
			env := m["dsseEnvelope"].(map[string]any)
			env["payload"] = base64.StdEncoding.EncodeToString([]byte(dssePayload + " "))
		})
		if _, err := v.VerifyDSSE(ctx, tampered, "", sign.Policy{PublicKey: priv.Public()}); outcome.Code(err) != outcome.VerificationFailed {
			t.Fatalf("rekor=%v: tampered payload: %v", rekor, err)
		}
	}
	if _, err := sign.ParseDSSEBundle([]byte(`{}`)); outcome.Code(err) != outcome.VerificationFailed {
		t.Fatalf("empty bundle: %v", err)
	}
}
