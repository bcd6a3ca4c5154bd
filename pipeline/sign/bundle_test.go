package sign

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/calimero-network/mero-release/pipeline/sign/signtest"
)

// seedBundles returns real bundles (keyless with a Rekor entry, key-pair without one, keyless
// DSSE) and variants of the keyless one that sigstore-go's parser accepts or refuses for each
// of its rules.
func seedBundles(tb testing.TB) [][]byte {
	tb.Helper()
	ss, err := signtest.New()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(ss.Close)
	tok, err := ss.GitHubToken(signtest.GitHubClaims{Repository: "o/r", Workflow: ".github/workflows/w.yaml", Ref: "refs/tags/v1"})
	if err != nil {
		tb.Fatal(err)
	}
	keyless, err := NewKeylessSigner(KeylessOptions{FulcioURL: ss.FulcioURL(), RekorURL: ss.RekorURL(), Token: StaticToken(tok)})
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	good, err := keyless.Sign(ctx, []byte("x"))
	if err != nil {
		tb.Fatal(err)
	}
	dsse, err := keyless.SignDSSE(ctx, InTotoPayloadType, []byte(`{"_type":"https://in-toto.io/Statement/v1"}`))
	if err != nil {
		tb.Fatal(err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	ks, err := NewKeySigner(priv, KeySignerOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	keyBundle, err := ks.Sign(ctx, []byte("x"))
	if err != nil {
		tb.Fatal(err)
	}
	variant := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			tb.Fatal(err)
		}
		f(m)
		out, err := json.Marshal(m)
		if err != nil {
			tb.Fatal(err)
		}
		return out
	}
	entry := func(m map[string]any) map[string]any {
		return m["verificationMaterial"].(map[string]any)["tlogEntries"].([]any)[0].(map[string]any)
	}
	media := func(mt string) func(map[string]any) { return func(m map[string]any) { m["mediaType"] = mt } }
	out := [][]byte{good, dsse, keyBundle,
		variant(media("application/vnd.dev.sigstore.bundle+json;version=0.1")),
		variant(media("application/vnd.dev.sigstore.bundle+json;version=0.2")),
		variant(media("application/vnd.dev.sigstore.bundle.v0.4+json")),
		variant(media("application/vnd.dev.sigstore.bundle.v0.0.1+json")),
		variant(media("application/vnd.dev.sigstore.bundle.vX+json")),
		variant(media("text/plain")),
		variant(func(m map[string]any) { delete(entry(m), "inclusionProof") }),
		variant(func(m map[string]any) { delete(entry(m), "inclusionPromise") }),
		variant(func(m map[string]any) {
			m["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.1"
			delete(entry(m), "inclusionPromise")
		}),
		variant(func(m map[string]any) { entry(m)["canonicalizedBody"] = "e30=" }),
		variant(func(m map[string]any) { delete(m, "messageSignature") }),
		variant(func(m map[string]any) { delete(m, "verificationMaterial") }),
		variant(func(m map[string]any) {
			vm := m["verificationMaterial"].(map[string]any)
			vm["x509CertificateChain"] = map[string]any{"certificates": []any{vm["certificate"]}}
			delete(vm, "certificate")
		}),
		[]byte(`{}`), []byte(`null`), []byte(`[]`),
	}
	return out
}

// FuzzParseBundleAgrees holds parseBundle to sigstore-go's bundle.UnmarshalJSON: both accept
// and refuse the same bundles, and find the same transparency-log entries.
func FuzzParseBundleAgrees(f *testing.F) {
	for _, b := range seedBundles(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ours, err := parseBundle(data)
		theirs := &bundle.Bundle{}
		theirErr := theirs.UnmarshalJSON(data)
		if (err == nil) != (theirErr == nil) {
			t.Fatalf("parseBundle: %v; sigstore-go: %v", err, theirErr)
		}
		if err != nil {
			return
		}
		entries, err := theirs.TlogEntries()
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != len(ours.entries) || theirs.HasInclusionPromise() != ours.HasInclusionPromise() || theirs.HasInclusionProof() != ours.HasInclusionProof() {
			t.Fatalf("entries: ours %d (promise %v, proof %v), sigstore-go %d (promise %v, proof %v)",
				len(ours.entries), ours.HasInclusionPromise(), ours.HasInclusionProof(), len(entries), theirs.HasInclusionPromise(), theirs.HasInclusionProof())
		}
		for i := range entries {
			if entries[i].LogIndex() != ours.entries[i].LogIndex() || string(entries[i].Signature()) != string(ours.entries[i].Signature()) {
				t.Fatalf("entry %d differs", i)
			}
		}
	})
}

// TestParseBundleSeeds checks that the seeds exercise both verdicts.
func TestParseBundleSeeds(t *testing.T) {
	accepted, refused := 0, 0
	for _, b := range seedBundles(t) {
		if _, err := parseBundle(b); err == nil {
			accepted++
		} else {
			refused++
		}
	}
	if accepted < 4 || refused < 8 {
		t.Fatalf("seeds: %d accepted, %d refused", accepted, refused)
	}
}
