package phala

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
)

// EnvVar is one environment variable of a CVM.
type EnvVar struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// EncryptEnv encrypts env to the app's X25519 public key (hex) the way dstack reads
// encrypted_env: an ephemeral X25519 key agreement whose shared secret is the AES-256-GCM key,
// and hex(ephemeral public key ‖ 12-byte nonce ‖ ciphertext) of {"env":[{key,value}…]}.
// Only the CVM, holding the app's private key, can read the values (the API key holder cannot
// change the measured compose by them: they are only allowed_envs).
func EncryptEnv(pubKeyHex string, env map[string]string, rnd io.Reader) (string, error) {
	pubBytes, err := hex.DecodeString(pubKeyHex)
	if err != nil {
		return "", fmt.Errorf("phala: env public key: %w", err)
	}
	pub, err := ecdh.X25519().NewPublicKey(pubBytes)
	if err != nil {
		return "", fmt.Errorf("phala: env public key: %w", err)
	}
	eph, err := ecdh.X25519().GenerateKey(rnd)
	if err != nil {
		return "", fmt.Errorf("phala: env key: %w", err)
	}
	shared, err := eph.ECDH(pub)
	if err != nil {
		return "", fmt.Errorf("phala: env key agreement: %w", err)
	}
	var doc struct {
		Env []EnvVar `json:"env"`
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		doc.Env = append(doc.Env, EnvVar{Key: k, Value: env[k]})
	}
	plain, err := json.Marshal(doc)
	if err != nil {
		return "", fmt.Errorf("phala: env: %w", err)
	}
	gcm, err := newGCM(shared)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := io.ReadFull(rnd, nonce); err != nil {
		return "", fmt.Errorf("phala: env nonce: %w", err)
	}
	out := append(append(eph.PublicKey().Bytes(), nonce...), gcm.Seal(nil, nonce, plain, nil)...)
	return hex.EncodeToString(out), nil
}

// DecryptEnv is EncryptEnv's inverse with the app's private key (what the CVM does).
func DecryptEnv(priv *ecdh.PrivateKey, encrypted string) ([]EnvVar, error) {
	b, err := hex.DecodeString(encrypted)
	if err != nil {
		return nil, fmt.Errorf("phala: encrypted env: %w", err)
	}
	if len(b) < 32+12+16 {
		return nil, fmt.Errorf("phala: encrypted env: %d bytes, too short", len(b))
	}
	eph, err := ecdh.X25519().NewPublicKey(b[:32])
	if err != nil {
		return nil, fmt.Errorf("phala: encrypted env: %w", err)
	}
	shared, err := priv.ECDH(eph)
	if err != nil {
		return nil, fmt.Errorf("phala: encrypted env: %w", err)
	}
	gcm, err := newGCM(shared)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, b[32:44], b[44:], nil)
	if err != nil {
		return nil, fmt.Errorf("phala: encrypted env: %w", err)
	}
	var doc struct {
		Env []EnvVar `json:"env"`
	}
	if err := json.Unmarshal(plain, &doc); err != nil {
		return nil, fmt.Errorf("phala: encrypted env: %w", err)
	}
	return doc.Env, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("phala: env cipher: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("phala: env cipher: %w", err)
	}
	return gcm, nil
}
