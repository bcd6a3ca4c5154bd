package imagesign_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore-go/pkg/root"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/calimero-network/mero-release/pipeline/imagesign"
	"github.com/calimero-network/mero-release/pipeline/ociimage"
	"github.com/calimero-network/mero-release/pipeline/ociimage/ocitest"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/provenance"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
	"github.com/calimero-network/mero-release/pipeline/sign/signtest"
)

var run = signtest.GitHubClaims{
	Repository: "calimero-network/mero-tee",
	Workflow:   ".github/workflows/release-kms-phala.yaml",
	Ref:        "refs/tags/mero-kms-v1.3.0",
}

const sbomJSON = `{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"mero-kms","documentNamespace":"https://calimero.network/spdx/mero-kms-1.3.0","creationInfo":{"created":"2026-01-01T00:00:00Z","creators":["Tool: test"]},"packages":[]}`

// pushImage pushes a small image to host and returns its digest reference.
func pushImage(t *testing.T, host, repo string) name.Digest {
	t.Helper()
	img, err := ociimage.Build(ociimage.Spec{
		Files:      []ociimage.File{{Path: "/usr/local/bin/mero-kms", Content: []byte("kms " + repo), Mode: 0o755}},
		Entrypoint: []string{"/usr/local/bin/mero-kms"},
		Created:    time.Unix(1700000000, 0).UTC(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ref := host + "/" + repo + ":1.3.0"
	pushed, err := ociimage.Push(context.Background(), img, ref, "", "", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, err := name.NewDigest(pushed, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func attestations(t *testing.T, d name.Digest) []imagesign.Attestation {
	t.Helper()
	tag, err := release.ParseTag("mero-kms-v1.3.0")
	if err != nil {
		t.Fatal(err)
	}
	st, err := provenance.Statement(provenance.Input{
		Tag: tag,
		Build: provenance.Build{BuilderID: run.WorkflowIdentity(), Repository: "https://github.com/calimero-network/mero-tee",
			Commit: strings.Repeat("ab", 20)},
		Subjects:   []provenance.Subject{{Name: d.Context().Name() + ":1.3.0-locked-read-only", SHA256: strings.TrimPrefix(d.DigestStr(), "sha256:")}},
		StartedOn:  time.Unix(1700000000, 0).UTC(),
		FinishedOn: time.Unix(1700000000, 0).UTC(),
	})
	if err != nil {
		t.Fatal(err)
	}
	prov, err := protojson.Marshal(st.GetPredicate())
	if err != nil {
		t.Fatal(err)
	}
	return []imagesign.Attestation{
		{PredicateType: imagesign.SPDXPredicateType, Predicate: []byte(sbomJSON)},
		{PredicateType: imagesign.SLSAProvenancePredicateType, Predicate: prov},
	}
}

type world struct {
	ss      *signtest.Sigstore
	trusted *root.TrustedRoot
	host    string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ss, err := signtest.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ss.Close)
	tr, err := ss.TrustedRoot()
	if err != nil {
		t.Fatal(err)
	}
	return &world{ss: ss, trusted: tr, host: ocitest.Registry(t)}
}

func (w *world) keyless(t *testing.T, claims signtest.GitHubClaims) imagesign.Signer {
	t.Helper()
	tok, err := w.ss.GitHubToken(claims)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sign.NewKeylessSigner(sign.KeylessOptions{FulcioURL: w.ss.FulcioURL(), RekorURL: w.ss.RekorURL(), Token: sign.StaticToken(tok), TrustedRoot: w.trusted})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func keySigner(t *testing.T) (*sign.KeySigner, *ecdsa.PrivateKey) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sign.NewKeySigner(priv, sign.KeySignerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s, priv
}

func (w *world) verify(d name.Reference, policy sign.Policy) (*imagesign.Verified, error) {
	return imagesign.Verify(context.Background(), d, imagesign.VerifyOptions{Verifier: sign.NewVerifier(w.trusted), Policy: policy})
}

func wantVerificationError(t *testing.T, err error, contains string) {
	t.Helper()
	if err == nil {
		t.Fatal("verified, want a verification error")
	}
	if got := outcome.Code(err); got != outcome.VerificationFailed {
		t.Fatalf("exit %d (%v), want %d", got, err, outcome.VerificationFailed)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Fatalf("error %q does not say %q", err, contains)
	}
}

func TestAttachAndVerifyKeyless(t *testing.T) {
	w := newWorld(t)
	d := pushImage(t, w.host, "calimero/mero-kms")
	signer := w.keyless(t, run)
	ctx := context.Background()
	got, err := imagesign.Attach(ctx, d, imagesign.Options{Signer: signer, Attestations: attestations(t, d)})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	if len(got.Added) != 6 || len(got.Present) != 0 {
		t.Fatalf("added %v, present %v; want 3 referrers, .sig and 2 .att layers", got.Added, got.Present)
	}
	id := &sign.Identity{SAN: run.WorkflowIdentity(), Issuer: signtest.GitHubIssuer}
	// By digest and by tag.
	for _, ref := range []string{d.String(), d.Context().Name() + ":1.3.0"} {
		r, err := name.ParseReference(ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		v, err := w.verify(r, sign.Policy{Identity: id})
		if err != nil {
			t.Fatalf("verify %s: %v", ref, err)
		}
		if len(v.Checks) != 6 || v.Digest != d.DigestStr() {
			t.Fatalf("verify %s: %+v", ref, v)
		}
		for _, c := range v.Checks {
			if c.Signer.Identity != run.WorkflowIdentity() || c.Signer.TlogEntries != 1 {
				t.Errorf("%s %s: signer %+v", c.Where, c.PredicateType, c.Signer)
			}
		}
	}

	t.Run("re-run adds nothing", func(t *testing.T) {
		before := referrerCount(t, d)
		again, err := imagesign.Attach(ctx, d, imagesign.Options{Signer: w.keyless(t, run), Attestations: attestations(t, d)})
		if err != nil {
			t.Fatal(err)
		}
		if len(again.Added) != 0 || len(again.Present) != 6 {
			t.Fatalf("re-run added %v (present %v), want nothing added", again.Added, again.Present)
		}
		if after := referrerCount(t, d); after != before {
			t.Fatalf("referrers %d -> %d", before, after)
		}
		if n := layerCount(t, d, "sig"); n != 1 {
			t.Fatalf(".sig has %d layers, want 1", n)
		}
		if n := layerCount(t, d, "att"); n != 2 {
			t.Fatalf(".att has %d layers, want 2", n)
		}
	})

	t.Run("wrong identity", func(t *testing.T) {
		other := &sign.Identity{SAN: "https://github.com/evil/fork/.github/workflows/release-kms-phala.yaml@refs/tags/mero-kms-v1.3.0", Issuer: signtest.GitHubIssuer}
		_, err := w.verify(d, sign.Policy{Identity: other})
		wantVerificationError(t, err, "no valid signature (referrer)")
		wantVerificationError(t, err, "does not match expected")
	})
	t.Run("a key where keyless was used", func(t *testing.T) {
		_, priv := keySigner(t)
		_, err := w.verify(d, sign.Policy{PublicKey: priv.Public()})
		wantVerificationError(t, err, "no valid signature")
	})
}

func TestAttachAndVerifyKey(t *testing.T) {
	w := newWorld(t)
	d := pushImage(t, w.host, "calimero/mero-kms")
	signer, priv := keySigner(t)
	if _, err := imagesign.Attach(context.Background(), d, imagesign.Options{Signer: signer, Attestations: attestations(t, d)}); err != nil {
		t.Fatalf("attach: %v", err)
	}
	v, err := w.verify(d, sign.Policy{PublicKey: priv.Public()})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if len(v.Checks) != 6 {
		t.Fatalf("checks %+v", v.Checks)
	}
	t.Run("wrong key", func(t *testing.T) {
		_, other := keySigner(t)
		_, err := w.verify(d, sign.Policy{PublicKey: other.Public()})
		wantVerificationError(t, err, "no valid signature (referrer)")
		wantVerificationError(t, err, "does not verify with the given public key")
	})
	t.Run("keyless identity where a key was used", func(t *testing.T) {
		_, err := w.verify(d, sign.Policy{Identity: &sign.Identity{SAN: run.WorkflowIdentity(), Issuer: signtest.GitHubIssuer}})
		wantVerificationError(t, err, "signed with a key")
	})
}

func TestVerifyUnsignedImage(t *testing.T) {
	w := newWorld(t)
	d := pushImage(t, w.host, "calimero/mero-kms")
	_, priv := keySigner(t)
	_, err := w.verify(d, sign.Policy{PublicKey: priv.Public()})
	wantVerificationError(t, err, "no valid signature (referrer), SBOM attestation (referrer), provenance attestation (referrer), signature (tag)")

	missing, err := name.NewDigest(d.Context().Name()+"@sha256:"+strings.Repeat("1", 64), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.verify(missing, sign.Policy{PublicKey: priv.Public()})
	wantVerificationError(t, err, "no such image")
}

// TestVerifySignedOnly: a signature without the attestations is not enough.
func TestVerifySignedOnly(t *testing.T) {
	w := newWorld(t)
	d := pushImage(t, w.host, "calimero/mero-kms")
	signer, priv := keySigner(t)
	if _, err := imagesign.Attach(context.Background(), d, imagesign.Options{Signer: signer}); err != nil {
		t.Fatal(err)
	}
	_, err := w.verify(d, sign.Policy{PublicKey: priv.Public()})
	wantVerificationError(t, err, "no valid SBOM attestation (referrer), provenance attestation (referrer), SBOM attestation (tag), provenance attestation (tag)")
}

// TestVerifyTamperedAttestation replaces the provenance statement in the .att layer (and in
// the referrer bundle) with a doctored one under the original signature.
func TestVerifyTamperedAttestation(t *testing.T) {
	for _, where := range []string{imagesign.WhereTag, imagesign.WhereReferrer} {
		t.Run(where, func(t *testing.T) {
			w := newWorld(t)
			d := pushImage(t, w.host, "calimero/mero-kms")
			signer, priv := keySigner(t)
			if _, err := imagesign.Attach(context.Background(), d, imagesign.Options{Signer: signer, Attestations: attestations(t, d)}); err != nil {
				t.Fatal(err)
			}
			if where == imagesign.WhereTag {
				tamperAtt(t, d)
			} else {
				tamperReferrer(t, d)
			}
			_, err := w.verify(d, sign.Policy{PublicKey: priv.Public()})
			wantVerificationError(t, err, "no valid provenance attestation ("+where+")")
		})
	}
}

// doctor swaps the builder in a base64 DSSE payload.
func doctor(t *testing.T, payloadB64 string) string {
	t.Helper()
	raw, err := decodeB64(payloadB64)
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	if !strings.Contains(s, run.WorkflowIdentity()) {
		return payloadB64
	}
	return encodeB64([]byte(strings.ReplaceAll(s, run.WorkflowIdentity(), "https://github.com/evil/fork/.github/workflows/x.yaml@refs/heads/main")))
}

func tamperAtt(t *testing.T, d name.Digest) {
	t.Helper()
	tag := d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1) + ".att")
	img, err := remote.Image(tag)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for i, l := range layers {
		data := readAll(t, l)
		var env map[string]any
		if err := json.Unmarshal(data, &env); err != nil {
			t.Fatal(err)
		}
		env["payload"] = doctor(t, env["payload"].(string))
		data, _ = json.Marshal(env)
		out, err = mutate.Append(out, mutate.Addendum{Layer: static.NewLayer(data, types.MediaType(imagesign.DSSEMediaType)), Annotations: m.Layers[i].Annotations})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := remote.Write(tag, out); err != nil {
		t.Fatal(err)
	}
}

// tamperReferrer replaces the provenance referrer with a doctored copy, as someone with write
// access to the registry could: the doctored manifest is pushed and the original dropped from
// the referrers (fallback tag) index.
func tamperReferrer(t *testing.T, d name.Digest) {
	t.Helper()
	fallback := d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1))
	idx, err := remote.Index(fallback)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for i, desc := range im.Manifests {
		if desc.Annotations["dev.sigstore.bundle.predicateType"] != imagesign.SLSAProvenancePredicateType {
			continue
		}
		img, err := remote.Image(d.Context().Digest(desc.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		data := readAll(t, layers[0])
		var b map[string]any
		if err := json.Unmarshal(data, &b); err != nil {
			t.Fatal(err)
		}
		env := b["dsseEnvelope"].(map[string]any)
		env["payload"] = doctor(t, env["payload"].(string))
		data, _ = json.Marshal(b)
		nl := static.NewLayer(data, types.MediaType(imagesign.BundleMediaType))
		if err := remote.WriteLayer(d.Context(), nl); err != nil {
			t.Fatal(err)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		m.Layers[0].Digest, _ = nl.Digest()
		m.Layers[0].Size = int64(len(data))
		m.Subject = nil // pushed without a subject: the index below is written by hand
		raw, _ := json.Marshal(m)
		h, size, _ := v1.SHA256(bytes.NewReader(raw))
		if err := remote.Put(d.Context().Digest(h.String()), rawManifest(raw)); err != nil {
			t.Fatal(err)
		}
		im.Manifests[i].Digest, im.Manifests[i].Size = h, size
		rawIdx, _ := json.Marshal(im)
		if err := remote.Put(fallback, rawIndex(rawIdx)); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("no provenance referrer")
}

func readAll(t *testing.T, l v1.Layer) []byte {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func decodeB64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
func encodeB64(b []byte) string          { return base64.StdEncoding.EncodeToString(b) }

type rawIndex []byte

func (m rawIndex) RawManifest() ([]byte, error)        { return m, nil }
func (m rawIndex) MediaType() (types.MediaType, error) { return types.OCIImageIndex, nil }

type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error)        { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

func referrerCount(t *testing.T, d name.Digest) int {
	t.Helper()
	idx, err := remote.Referrers(d)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	return len(im.Manifests)
}

func layerCount(t *testing.T, d name.Digest, suffix string) int {
	t.Helper()
	img, err := remote.Image(d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1) + "." + suffix))
	if err != nil {
		t.Fatal(err)
	}
	l, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return len(l)
}

// TestReferrersAPI runs against a registry with the OCI 1.1 referrers API (the other tests use
// one without it, like GHCR, where the referrers fallback tag is written).
func TestReferrersAPI(t *testing.T) {
	w := newWorld(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(true)))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	d := pushImage(t, host, "calimero/mero-kms")
	signer, priv := keySigner(t)
	if _, err := imagesign.Attach(context.Background(), d, imagesign.Options{Signer: signer, Attestations: attestations(t, d)}); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Image(d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1))); err == nil {
		t.Error("a fallback referrers tag was written although the registry has the referrers API")
	}
	if n := referrerCount(t, d); n != 3 {
		t.Fatalf("%d referrers, want 3", n)
	}
	if _, err := w.verify(d, sign.Policy{PublicKey: priv.Public()}); err != nil {
		t.Fatal(err)
	}
}

func TestAttachRefusesBadInput(t *testing.T) {
	d, err := name.NewDigest("127.0.0.1:1/x@sha256:" + strings.Repeat("0", 64))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := imagesign.Attach(context.Background(), d, imagesign.Options{}); err == nil {
		t.Fatal("attach without a signer")
	}
}
