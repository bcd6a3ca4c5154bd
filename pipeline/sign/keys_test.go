package sign_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/sign"
)

func TestGenerateAndLoadKeyPair(t *testing.T) {
	password := []byte("correct horse battery staple")
	privPEM, pubPEM, err := sign.GenerateKeyPair(password)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(privPEM)
	if block == nil || block.Type != sign.SigstorePrivateKeyPEMType {
		t.Fatalf("private key PEM type %v", block)
	}
	// The encrypted blob is go-securesystemslib's JSON envelope: scrypt KDF + NaCl secretbox, like cosign's.
	var envelope struct {
		KDF struct {
			Name string `json:"Name"`
		} `json:"kdf"`
		Cipher struct {
			Name string `json:"Name"`
		} `json:"cipher"`
	}
	if err := json.Unmarshal(block.Bytes, &envelope); err != nil || envelope.KDF.Name != "scrypt" || envelope.Cipher.Name != "nacl/secretbox" {
		t.Fatalf("envelope %+v (%v)", envelope, err)
	}
	if bytes.Contains(privPEM, password) {
		t.Fatal("password appears in the key file")
	}
	priv, err := sign.LoadPrivateKey(privPEM, password)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := sign.LoadPublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !priv.Public().(*ecdsa.PublicKey).Equal(pub) {
		t.Fatal("public key does not belong to the private key")
	}
	_, err = sign.LoadPrivateKey(privPEM, []byte("wrong"))
	if err == nil || !strings.Contains(err.Error(), "wrong password") || outcome.Code(err) != outcome.Usage {
		t.Fatalf("wrong password: %v", err)
	}
	if strings.Contains(err.Error(), string(password)) || strings.Contains(err.Error(), "wrong\"") {
		t.Fatalf("error echoes a password: %v", err)
	}
}

func TestLoadKeyErrors(t *testing.T) {
	privPEM, pubPEM, err := sign.GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKIXPublicKey(edPub)
	edPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: edDER})
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	p224DER, _ := x509.MarshalPKIXPublicKey(p224.Public())
	p224PEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: p224DER})
	garbage := pem.EncodeToMemory(&pem.Block{Type: sign.SigstorePrivateKeyPEMType, Bytes: []byte("not json")})
	privTests := []struct {
		name, wantErr string
		in            []byte
	}{
		{"not pem", "no PEM block", []byte("hello")},
		{"public key given", `PEM type "PUBLIC KEY" is not a cosign key`, pubPEM},
		{"trailing data", "unexpected data after the PEM block", append(bytes.Clone(privPEM), []byte("junk")...)},
		{"garbage envelope", "cannot decrypt", garbage},
	}
	for _, tt := range privTests {
		t.Run("private "+tt.name, func(t *testing.T) {
			_, err := sign.LoadPrivateKey(tt.in, []byte("pw"))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || outcome.Code(err) != outcome.Usage {
				t.Fatalf("err = %v, want usage error %q", err, tt.wantErr)
			}
		})
	}
	pubTests := []struct {
		name, wantErr string
		in            []byte
	}{
		{"not pem", "public key", []byte("hello")},
		{"ed25519", "unsupported key type", edPEM},
		{"p224", "unsupported ECDSA curve", p224PEM},
	}
	for _, tt := range pubTests {
		t.Run("public "+tt.name, func(t *testing.T) {
			_, err := sign.LoadPublicKey(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || outcome.Code(err) != outcome.Usage {
				t.Fatalf("err = %v, want usage error %q", err, tt.wantErr)
			}
		})
	}
	if _, err := sign.NewKeySigner(nil, sign.KeySignerOptions{}); outcome.Code(err) != outcome.Usage {
		t.Fatalf("nil key: %v", err)
	}
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := sign.NewKeySigner(edPriv, sign.KeySignerOptions{}); err == nil || !strings.Contains(err.Error(), "unsupported key type") {
		t.Fatalf("ed25519 signer: %v", err)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := sign.NewKeySigner(k, sign.KeySignerOptions{RekorURL: "not a url"}); err == nil || !strings.Contains(err.Error(), "rekor URL") {
		t.Fatalf("bad rekor url: %v", err)
	}
}

func TestKeyBundles(t *testing.T) {
	ctx := context.Background()
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	artifact := []byte("published-mrtds")
	for name, key := range map[string]crypto.Signer{"ecdsa-p256": ecKey, "ecdsa-p384": p384, "rsa-2048": rsaKey} {
		t.Run(name, func(t *testing.T) {
			signer, err := sign.NewKeySigner(key, sign.KeySignerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			bundleJSON, err := signer.Sign(ctx, artifact)
			if err != nil {
				t.Fatal(err)
			}
			v := sign.NewVerifier(nil)
			res, err := v.Verify(ctx, bundleJSON, bytes.NewReader(artifact), sign.Policy{PublicKey: signer.PublicKey()})
			if err != nil {
				t.Fatal(err)
			}
			hint, _ := sign.KeyHint(signer.PublicKey())
			if res.KeyHint != hint || res.TlogEntries != 0 {
				t.Fatalf("result %+v, want hint %s", res, hint)
			}
			_, err = v.Verify(ctx, bundleJSON, bytes.NewReader(artifact), sign.Policy{PublicKey: otherKey.Public()})
			if err == nil || !strings.Contains(err.Error(), "signature does not verify with the given public key") || outcome.Code(err) != outcome.VerificationFailed {
				t.Fatalf("other key: %v", err)
			}
			_, err = v.Verify(ctx, bundleJSON, bytes.NewReader([]byte("tampered")), sign.Policy{PublicKey: signer.PublicKey()})
			if err == nil || !strings.Contains(err.Error(), "artifact digest does not match the bundle") {
				t.Fatalf("tampered: %v", err)
			}
			_, err = v.Verify(ctx, bundleJSON, bytes.NewReader(artifact), sign.Policy{Identity: releaseIdentity()})
			if err == nil || !strings.Contains(err.Error(), "bundle is signed with a key (hint \""+hint+"\"), but a keyless identity was expected") {
				t.Fatalf("identity policy on key bundle: %v", err)
			}
		})
	}
}

func TestKeyBundleWithRekor(t *testing.T) {
	in := newInstance(t)
	ctx := context.Background()
	privPEM, pubPEM, err := sign.GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := sign.LoadPrivateKey(privPEM, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := sign.LoadPublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := sign.NewKeySigner(priv, sign.KeySignerOptions{RekorURL: in.ss.RekorURL()})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "sbom.spdx.json")
	if err := os.WriteFile(p, []byte(`{"spdxVersion":"SPDX-2.3"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	bundleJSON, err := signer.SignFile(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if in.ss.Entries() != 1 {
		t.Fatalf("rekor has %d entries", in.ss.Entries())
	}
	f, _ := os.Open(p)
	defer f.Close()
	res, err := sign.NewVerifier(in.trusted).Verify(ctx, bundleJSON, f, sign.Policy{PublicKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	if res.TlogEntries != 1 {
		t.Fatalf("tlog entries %d", res.TlogEntries)
	}
	// ECDSA signatures are randomised: signing again records a second entry.
	if _, err := signer.SignFile(ctx, p); err != nil || in.ss.Entries() != 2 {
		t.Fatalf("re-sign: %v (%d entries)", err, in.ss.Entries())
	}
	// A Rekor entry from a log the verifier does not trust fails.
	other := newInstance(t)
	if _, err := sign.NewVerifier(other.trusted).Verify(ctx, bundleJSON, strings.NewReader(`{"spdxVersion":"SPDX-2.3"}`), sign.Policy{PublicKey: pub}); err == nil || !strings.Contains(err.Error(), "transparency-log") {
		t.Fatalf("untrusted log: %v", err)
	}
	if _, err := signer.SignFile(ctx, filepath.Join(dir, "nope")); outcome.Code(err) != outcome.MissingAsset {
		t.Fatalf("missing file: %v", err)
	}
}

// TestCosignMadeKeyAndBundle loads a key pair and a bundle made by the real cosign CLI
// (testdata/cosign/README.md): the key signs, and cosign's bundle verifies.
func TestCosignMadeKeyAndBundle(t *testing.T) {
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("testdata", "cosign", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	priv, err := sign.LoadPrivateKey(read("cosign.key"), []byte("testdata"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := sign.LoadPublicKey(read("cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v := sign.NewVerifier(nil)
	blob := read("blob.json")
	res, err := v.Verify(ctx, read("blob.json.sigstore.json"), bytes.NewReader(blob), sign.Policy{PublicKey: pub})
	if err != nil {
		t.Fatalf("cosign's bundle: %v", err)
	}
	if hint, _ := sign.KeyHint(pub); res.KeyHint != hint {
		t.Fatalf("cosign's key hint %q, ours %q", res.KeyHint, hint)
	}
	if _, err := v.Verify(ctx, read("blob.json.sigstore.json"), strings.NewReader("other"), sign.Policy{PublicKey: pub}); outcome.Code(err) != outcome.VerificationFailed {
		t.Fatalf("cosign's bundle, other content: %v", err)
	}
	signer, err := sign.NewKeySigner(priv, sign.KeySignerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ours, err := signer.Sign(ctx, blob)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, ours, bytes.NewReader(blob), sign.Policy{PublicKey: pub}); err != nil {
		t.Fatalf("our bundle with cosign's key: %v", err)
	}
	if _, err := sign.LoadPrivateKey(read("cosign.key"), []byte("wrong")); outcome.Code(err) != outcome.Usage {
		t.Fatalf("wrong password: %v", err)
	}
}
