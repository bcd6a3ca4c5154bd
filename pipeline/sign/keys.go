package sign

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// PEM block types of cosign key files.
const (
	// SigstorePrivateKeyPEMType is the block type cosign (v2) writes for an encrypted private key.
	SigstorePrivateKeyPEMType = "ENCRYPTED SIGSTORE PRIVATE KEY"
	// CosignPrivateKeyPEMType is the block type older cosign versions wrote; still accepted.
	CosignPrivateKeyPEMType = "ENCRYPTED COSIGN PRIVATE KEY"
	// PublicKeyPEMType is the block type of a PKIX public key.
	PublicKeyPEMType = "PUBLIC KEY"
)

// GenerateKeyPair creates an ECDSA P-256 key pair in cosign's format, as
// `cosign generate-key-pair` does: the PKCS#8 private key encrypted with scrypt and
// NaCl secretbox (go-securesystemslib/encrypted) in an "ENCRYPTED SIGSTORE PRIVATE KEY"
// PEM block, and the PKIX public key in a "PUBLIC KEY" block. An empty password is
// allowed (cosign allows it too) but not advised.
func GenerateKeyPair(password []byte) (privPEM, pubPEM []byte, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	return MarshalKeyPair(priv, password)
}

// MarshalKeyPair encodes an existing private key in cosign's encrypted format, with its public key.
func MarshalKeyPair(priv crypto.Signer, password []byte) (privPEM, pubPEM []byte, err error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal private key: %w", err)
	}
	enc, err := encrypted.Encrypt(der, password)
	if err != nil {
		return nil, nil, fmt.Errorf("encrypt private key: %w", err)
	}
	privPEM = pem.EncodeToMemory(&pem.Block{Type: SigstorePrivateKeyPEMType, Bytes: enc})
	pubPEM, err = cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("marshal public key: %w", err)
	}
	return privPEM, pubPEM, nil
}

// LoadPrivateKey decrypts a cosign private key file (either PEM type) with the password.
// A wrong password is a usage error that does not echo the password.
func LoadPrivateKey(privPEM, password []byte) (crypto.Signer, error) {
	block, rest := pem.Decode(privPEM)
	if block == nil {
		return nil, outcome.UsageErrorf("private key: no PEM block found")
	}
	if len(bytesTrimSpace(rest)) != 0 {
		return nil, outcome.UsageErrorf("private key: unexpected data after the PEM block")
	}
	if block.Type != SigstorePrivateKeyPEMType && block.Type != CosignPrivateKeyPEMType {
		return nil, outcome.UsageErrorf("private key: PEM type %q is not a cosign key (want %q)", block.Type, SigstorePrivateKeyPEMType)
	}
	der, err := encrypted.Decrypt(block.Bytes, password)
	if err != nil {
		return nil, outcome.UsageErrorf("private key: cannot decrypt (wrong password?): %v", err)
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, outcome.UsageErrorf("private key: not a PKCS#8 key: %v", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, outcome.UsageErrorf("private key: type %T cannot sign", key)
	}
	if _, err := algorithmFor(signer.Public()); err != nil {
		return nil, err
	}
	return signer, nil
}

// LoadPublicKey parses a PEM public key (cosign.pub).
func LoadPublicKey(pubPEM []byte) (crypto.PublicKey, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		return nil, outcome.UsageErrorf("public key: %v", err)
	}
	if _, err := algorithmFor(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// KeyHint is the public-key hint a bundle carries: base64 of the SHA-256 of the PKIX
// public key, as sigstore-go and cosign compute it.
func KeyHint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("marshal public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// algorithmFor picks the Sigstore signing algorithm of a public key: ECDSA P-256/P-384/P-521
// and RSA PKCS#1 v1.5 keys of 2048, 3072 or 4096 bits.
func algorithmFor(pub crypto.PublicKey) (signature.AlgorithmDetails, error) {
	var alg protocommon.PublicKeyDetails
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			alg = protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256
		case elliptic.P384():
			alg = protocommon.PublicKeyDetails_PKIX_ECDSA_P384_SHA_384
		case elliptic.P521():
			alg = protocommon.PublicKeyDetails_PKIX_ECDSA_P521_SHA_512
		default:
			return signature.AlgorithmDetails{}, outcome.UsageErrorf("key: unsupported ECDSA curve %s", k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048:
			alg = protocommon.PublicKeyDetails_PKIX_RSA_PKCS1V15_2048_SHA256
		case 3072:
			alg = protocommon.PublicKeyDetails_PKIX_RSA_PKCS1V15_3072_SHA256
		case 4096:
			alg = protocommon.PublicKeyDetails_PKIX_RSA_PKCS1V15_4096_SHA256
		default:
			return signature.AlgorithmDetails{}, outcome.UsageErrorf("key: unsupported RSA size %d bits", k.N.BitLen())
		}
	default:
		return signature.AlgorithmDetails{}, outcome.UsageErrorf("key: unsupported key type %T (want ECDSA or RSA)", pub)
	}
	return signature.GetAlgorithmDetails(alg)
}

// keyKeypair adapts a long-lived private key to sigstore-go's Keypair.
type keyKeypair struct {
	priv crypto.Signer
	alg  signature.AlgorithmDetails
	hint []byte
}

var _ sgsign.Keypair = (*keyKeypair)(nil)

func newKeyKeypair(priv crypto.Signer) (*keyKeypair, error) {
	alg, err := algorithmFor(priv.Public())
	if err != nil {
		return nil, err
	}
	hint, err := KeyHint(priv.Public())
	if err != nil {
		return nil, err
	}
	return &keyKeypair{priv: priv, alg: alg, hint: []byte(hint)}, nil
}

func (k *keyKeypair) GetHashAlgorithm() protocommon.HashAlgorithm { return k.alg.GetProtoHashType() }
func (k *keyKeypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return k.alg.GetSignatureAlgorithm()
}
func (k *keyKeypair) GetHint() []byte                { return k.hint }
func (k *keyKeypair) GetPublicKey() crypto.PublicKey { return k.priv.Public() }
func (k *keyKeypair) GetKeyAlgorithm() string {
	if k.alg.GetKeyType() == signature.RSA {
		return "RSA"
	}
	return "ECDSA"
}
func (k *keyKeypair) GetPublicKeyPem() (string, error) {
	b, err := cryptoutils.MarshalPublicKeyToPEM(k.priv.Public())
	return string(b), err
}

// SignData hashes data with the key's hash and signs the digest; it returns the signature
// and the digest, as sigstore-go's EphemeralKeypair does.
func (k *keyKeypair) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	hf := k.alg.GetHashType()
	h := hf.New()
	h.Write(data)
	digest := h.Sum(nil)
	sig, err := k.priv.Sign(rand.Reader, digest, hf)
	if err != nil {
		return nil, nil, fmt.Errorf("sign: %w", err)
	}
	return sig, digest, nil
}

func bytesTrimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}
