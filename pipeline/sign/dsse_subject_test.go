package sign_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/sign"
)

// statementAbout is a minimal in-toto statement whose subject is digest.
func statementAbout(digest [32]byte) []byte {
	return []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha256":"` +
		hex.EncodeToString(digest[:]) + `"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{}}}`)
}

func TestDSSESubjectKeyAndKeyless(t *testing.T) {
	ctx := context.Background()
	in := newInstance(t)
	subject := sha256.Sum256([]byte("image manifest"))
	stmt := statementAbout(subject)
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := sign.NewKeySigner(priv, sign.KeySignerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	keyless := in.keylessSigner(t, kmsRun, false)
	v := sign.NewVerifier(in.trusted)
	for _, tc := range []struct {
		name   string
		signer sign.Signer
		policy sign.Policy
		tlog   int
	}{
		{"key", key, sign.Policy{PublicKey: priv.Public()}, 0},
		{"keyless", keyless, sign.Policy{Identity: releaseIdentity()}, 1},
		{"lazy", sign.NewLazy(func() (sign.Signer, error) { return key, nil }), sign.Policy{PublicKey: priv.Public()}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.signer.SignDSSE(ctx, "application/vnd.in-toto+json", stmt)
			if err != nil {
				t.Fatal(err)
			}
			r, err := v.VerifyDSSESubject(ctx, b, "sha256", subject[:], tc.policy)
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if string(r.Payload) != string(stmt) || r.PayloadType != "application/vnd.in-toto+json" || r.TlogEntries != tc.tlog {
				t.Fatalf("result %+v", r)
			}
			other := sha256.Sum256([]byte("another image"))
			if _, err := v.VerifyDSSESubject(ctx, b, "sha256", other[:], tc.policy); outcome.Code(err) != outcome.VerificationFailed {
				t.Fatalf("a statement about another digest: %v", err)
			}
			// a file signature is not an attestation, and an attestation is not a file signature
			fileBundle, err := key.Sign(ctx, stmt)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.VerifyDSSESubject(ctx, fileBundle, "sha256", subject[:], tc.policy); err == nil || !strings.Contains(err.Error(), "no DSSE envelope") {
				t.Fatalf("message signature accepted as DSSE: %v", err)
			}
			if _, err := sign.ParseBundle(b); err == nil {
				t.Fatal("ParseBundle accepted a DSSE bundle as a file signature")
			}
		})
	}
	b, err := key.SignDSSE(ctx, "application/vnd.in-toto+json", stmt)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := v.VerifyDSSESubject(ctx, b, "sha256", subject[:], sign.Policy{PublicKey: other.Public()}); outcome.Code(err) != outcome.VerificationFailed {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := v.VerifyDSSESubject(ctx, b, "sha256", subject[:], sign.Policy{Identity: releaseIdentity()}); outcome.Code(err) != outcome.VerificationFailed {
		t.Fatalf("keyless policy on a key bundle: %v", err)
	}
	if _, err := v.VerifyDSSESubject(ctx, b, "md5", subject[:], sign.Policy{PublicKey: priv.Public()}); err == nil {
		t.Fatal("md5 accepted")
	}
}
