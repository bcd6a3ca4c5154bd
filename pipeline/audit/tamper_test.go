package audit_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"slices"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/audit"
	"github.com/calimero-network/mero-release/pipeline/audit/audittest"
	"github.com/calimero-network/mero-release/pipeline/checksum"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/store"
)

// flipping is a store that serves one asset with one byte flipped and, when rewrite is set, a
// checksums.sha256 rewritten to match the tampered asset (an attacker who can change both):
// then only the asset's own bundle can catch the change.
type flipping struct {
	store.Store
	name     string
	pos      int
	rewrite  bool
	original map[string][]byte
}

func (f *flipping) OpenAsset(ctx context.Context, tag, name string) (io.ReadCloser, error) {
	switch {
	case name == f.name:
		b := bytes.Clone(f.original[name])
		b[f.pos] ^= 0x01
		return io.NopCloser(bytes.NewReader(b)), nil
	case name == release.ChecksumsFile && f.rewrite:
		sums, err := checksum.Parse(bytes.NewReader(f.original[name]))
		if err != nil {
			return nil, err
		}
		b := bytes.Clone(f.original[f.name])
		b[f.pos] ^= 0x01
		h := sha256.Sum256(b)
		for i := range sums.Entries {
			if sums.Entries[i].Name == f.name {
				sums.Entries[i].SHA256 = hex.EncodeToString(h[:])
			}
		}
		return io.NopCloser(bytes.NewReader(sums.Marshal())), nil
	}
	return f.Store.OpenAsset(ctx, tag, name)
}

// positions are the byte offsets flipped in an asset: every byte of a small one, else the
// first, last and a spread of others.
func positions(size int) []int {
	if size <= 512 {
		out := make([]int, size)
		for i := range out {
			out[i] = i
		}
		return out
	}
	out := []int{0, size - 1}
	for i := 1; i < size-1; i += size/61 + 1 {
		out = append(out, i)
	}
	return out
}

// Every one-byte tamper of a signed content asset fails the audit with exit 10 and a failed
// signature of that asset — also when checksums.sha256 was rewritten to match (the digest the
// bundle is verified over is the digest of the bytes read, not the listed one) — for a
// SHA-256 key and for a P-384 key whose bundles sign SHA-384 digests.
func TestEveryByteFlipIsCaught(t *testing.T) {
	p256 := newKey(t)
	k384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s384, err := sign.NewKeySigner(k384, sign.KeySignerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]keyed{"p256": p256, "p384": {signer: s384, pub: k384.Public()}}
	tag := release.MustParseTag("mero-kms-v1.2.0")
	for _, kn := range []string{"p256", "p384"} {
		k := keys[kn]
		t.Run(kn, func(t *testing.T) {
			ctx := context.Background()
			files, err := audittest.Build(ctx, audittest.Options{Tag: tag, Signer: k.signer})
			if err != nil {
				t.Fatal(err)
			}
			st := newDir(t)
			if err := audittest.Publish(ctx, st, tag, files); err != nil {
				t.Fatal(err)
			}
			if _, err, log := run(t, st, tag, audit.Config{PublicKey: k.pub}); err != nil {
				t.Fatalf("untampered release: %v\n%s", err, log)
			}
			signed := slices.DeleteFunc(slices.Clone(release.ExpectedAssets(tag.Family).Signed()), func(n string) bool {
				return n == release.ChecksumsFile
			})
			// every byte of the smallest signed asset (P-256), a spread of the others
			smallest := slices.MinFunc(signed, func(a, b string) int { return len(files[a]) - len(files[b]) })
			for _, name := range signed {
				pos := positions(len(files[name]))
				if (name != smallest || kn != "p256") && len(pos) > 16 { // every byte once is enough
					pos = []int{0, len(files[name]) / 2, len(files[name]) - 1}
				}
				for _, rewrite := range []bool{false, true} {
					for _, p := range pos {
						f := &flipping{Store: st, name: name, pos: p, rewrite: rewrite, original: files}
						rep, err := audit.Audit(ctx, f, tag, audit.Config{PublicKey: k.pub})
						if outcome.Code(err) != outcome.VerificationFailed {
							t.Fatalf("%s byte %d flipped (checksums rewritten: %v): exit %d (%v), want 10", name, p, rewrite, outcome.Code(err), err)
						}
						if !slices.ContainsFunc(rep.Failures(), func(fd audit.Finding) bool {
							return fd.Check == audit.CheckSignatures && fd.Subject == name
						}) {
							t.Fatalf("%s byte %d flipped (checksums rewritten: %v): the signature check did not fail: %+v", name, p, rewrite, rep.Failures())
						}
						checksumFailed := slices.ContainsFunc(rep.Failures(), func(fd audit.Finding) bool {
							return fd.Check == audit.CheckChecksums && fd.Subject == name
						})
						if checksumFailed == rewrite {
							t.Fatalf("%s byte %d flipped (checksums rewritten: %v): checksum failure %v", name, p, rewrite, checksumFailed)
						}
					}
				}
			}
		})
	}
}
