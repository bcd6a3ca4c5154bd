package tdxsim

import (
	"context"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/tdx"
)

func BenchmarkNewAuthority(b *testing.B) {
	for b.Loop() {
		if _, err := NewAuthority([]byte(DefaultSeed)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBootAndQuote(b *testing.B) {
	a := newAuthority(b, DefaultSeed)
	img := loadExample(b, "debug")
	for b.Loop() {
		vm, err := a.Boot(context.Background(), img)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := vm.Quote([64]byte{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifySimulatorQuote(b *testing.B) {
	a := newAuthority(b, DefaultSeed)
	raw, err := a.SignQuote(sampleBody())
	if err != nil {
		b.Fatal(err)
	}
	opts := tdx.VerifyOptions{TrustedRoots: a.RootPool()}
	for b.Loop() {
		if err := tdx.VerifyQuote(raw, opts); err != nil {
			b.Fatal(err)
		}
	}
}
