package phala

import (
	"crypto/ecdh"
	"crypto/rand"
	"testing"
)

// FuzzDecryptEnv: arbitrary encrypted_env values are refused or decrypted, never a panic.
func FuzzDecryptEnv(f *testing.F) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("")
	f.Add("00")
	f.Add(string(make([]byte, 200)))
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = DecryptEnv(priv, s)
	})
}
