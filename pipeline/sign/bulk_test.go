package sign_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/sign"
)

func opener(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// VerifyAll gives each item its own verdict: good ones verify, a one-byte tamper, a bundle of
// another artifact, a broken bundle and an unreadable artifact each fail alone.
func TestVerifyAll(t *testing.T) {
	in := newInstance(t)
	ctx := context.Background()
	signer := in.keylessSigner(t, kmsRun, false)
	var items []sign.Item
	contents := map[string][]byte{}
	for i := range 6 {
		c := fmt.Appendf(nil, `{"artifact":%d}`, i)
		b, err := signer.Sign(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("a%d", i)
		contents[name] = c
		items = append(items, sign.Item{Name: name, Bundle: b, Open: opener(c)})
	}
	tampered := bytes.Clone(contents["a1"])
	tampered[3] ^= 1
	items[1].Open = opener(tampered)
	items[2].Bundle = items[3].Bundle             // a bundle of another artifact
	items[4].Bundle = []byte(`{"mediaType":"x"}`) // not a bundle
	items[5].Open = func() (io.ReadCloser, error) { return nil, fs.ErrNotExist }

	res, err := sign.NewVerifier(in.trusted).VerifyAll(ctx, items, sign.Policy{Identity: releaseIdentity()}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(items) {
		t.Fatalf("%d results for %d items", len(res), len(items))
	}
	for i, r := range res {
		if r.Name != items[i].Name {
			t.Errorf("result %d is for %s, want %s", i, r.Name, items[i].Name)
		}
	}
	if res[0].Err != nil || res[0].Result == nil || res[0].Result.Identity != kmsRun.WorkflowIdentity() {
		t.Errorf("good item: %+v", res[0])
	}
	if res[3].Err != nil {
		t.Errorf("a3: %v", res[3].Err)
	}
	for _, i := range []int{1, 2, 4} {
		if outcome.Code(res[i].Err) != outcome.VerificationFailed {
			t.Errorf("%s: err %v (exit %d), want a verification failure", res[i].Name, res[i].Err, outcome.Code(res[i].Err))
		}
	}
	if !strings.Contains(res[1].Err.Error(), "artifact digest does not match") {
		t.Errorf("tampered: %v", res[1].Err)
	}
	if !errors.Is(res[5].Err, fs.ErrNotExist) {
		t.Errorf("unreadable: %v", res[5].Err)
	}

	if _, err := sign.NewVerifier(in.trusted).VerifyAll(ctx, items, sign.Policy{}, 0); outcome.Code(err) != outcome.Usage {
		t.Errorf("empty policy: %v, want a usage error", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := sign.NewVerifier(in.trusted).VerifyAll(cctx, items, sign.Policy{Identity: releaseIdentity()}, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// VerifyDigest verifies over a digest computed elsewhere and refuses any other digest.
func TestVerifyDigest(t *testing.T) {
	in := newInstance(t)
	ctx := context.Background()
	content := []byte(`{"allowed_mrtd":["00"]}`)
	bj, err := in.keylessSigner(t, kmsRun, false).Sign(ctx, content)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sign.ParseBundle(bj)
	if err != nil {
		t.Fatal(err)
	}
	if alg := sign.BundleDigestAlgorithm(b); alg != "sha256" {
		t.Fatalf("algorithm %s", alg)
	}
	v := sign.NewVerifier(in.trusted)
	policy := sign.Policy{Identity: releaseIdentity()}
	sum := sha256.Sum256(content)
	res, err := v.VerifyDigest(ctx, b, sum[:], policy)
	if err != nil {
		t.Fatal(err)
	}
	streamed, err := v.Verify(ctx, bj, bytes.NewReader(content), policy)
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != streamed.Digest || res.Identity != streamed.Identity {
		t.Errorf("digest result %+v differs from the streamed one %+v", res, streamed)
	}
	for i := range sum {
		bad := sum
		bad[i] ^= 0x80
		if _, err := v.VerifyDigest(ctx, b, bad[:], policy); outcome.Code(err) != outcome.VerificationFailed {
			t.Fatalf("digest with byte %d flipped: %v, want a verification failure", i, err)
		}
	}
	if _, err := v.VerifyDigest(ctx, b, sum[:], sign.Policy{}); outcome.Code(err) != outcome.Usage {
		t.Errorf("empty policy: %v", err)
	}
}

// A Lazy signer builds its signer on the first signature only, once, and returns a failed
// build on every call.
func TestLazySigner(t *testing.T) {
	ctx := context.Background()
	builds := 0
	in := newInstance(t)
	real := in.keylessSigner(t, kmsRun, false)
	l := sign.NewLazy(func() (sign.Signer, error) { builds++; return real, nil })
	if l.Built() || builds != 0 {
		t.Fatal("built before anything was signed")
	}
	for range 2 {
		b, err := l.Sign(ctx, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sign.NewVerifier(in.trusted).Verify(ctx, b, strings.NewReader("x"), sign.Policy{Identity: releaseIdentity()}); err != nil {
			t.Fatal(err)
		}
	}
	if !l.Built() || builds != 1 {
		t.Errorf("built %d times, Built() = %v", builds, l.Built())
	}
	failing := sign.NewLazy(func() (sign.Signer, error) { builds++; return nil, errors.New("wrong password") })
	for range 2 {
		if _, err := failing.SignFile(ctx, "f"); err == nil || err.Error() != "wrong password" {
			t.Errorf("failed build: %v", err)
		}
	}
	if builds != 2 {
		t.Errorf("%d builds, want the failing one once", builds)
	}
}
