package imagesign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/calimero-network/mero-release/pipeline/sign"
)

// maxAttachment bounds a bundle or envelope read from the registry (an SBOM can be large).
const maxAttachment = 64 << 20

// Signer signs what is attached: the .sig payload as a message signature, statements as
// DSSE envelopes (sign.KeySigner, sign.KeylessSigner and sign.Lazy do both).
type Signer = sign.Signer

// Options configures Attach.
type Options struct {
	// Signer signs (key or keyless).
	Signer Signer
	// Attestations are attached besides the signature (the SBOM, the provenance).
	Attestations []Attestation
	// Created is the creation annotation of the referrer manifests (default: now).
	Created time.Time
	// Remote are the registry options (authentication, transport).
	Remote []remote.Option
}

// Attached says what Attach added and what it found attached already, one entry per item:
// "referrer <predicate type>", "tag .sig", "tag .att <predicate type>".
type Attached struct {
	Digest         string
	Added, Present []string
}

// item is one statement to attach and, once signed or found, its bundle.
type item struct {
	predicateType string
	statement     []byte
	bundle        []byte
}

// Attach signs ref's digest and attaches the signature and the attestations as Sigstore-bundle
// referrers and in cosign's tag scheme. What is attached already (the same statement; the
// same .sig payload) is kept and not added again, so a re-run adds nothing.
func Attach(ctx context.Context, ref name.Digest, opts Options) (*Attached, error) {
	if opts.Signer == nil {
		return nil, fmt.Errorf("imagesign: no signer")
	}
	created := opts.Created
	if created.IsZero() {
		created = time.Now().UTC()
	}
	ropts := append([]remote.Option{remote.WithContext(ctx)}, opts.Remote...)
	subject, err := remote.Head(ref, ropts...)
	if err != nil {
		return nil, fmt.Errorf("imagesign: %s: %w", ref, err)
	}
	h := subject.Digest
	repo := ref.Context().Name()
	res := &Attached{Digest: h.String()}

	stmt, err := statement(repo, h, SignPredicateType, nil)
	if err != nil {
		return nil, err
	}
	items := []*item{{predicateType: SignPredicateType, statement: stmt}}
	for _, a := range opts.Attestations {
		stmt, err := statement(repo, h, a.PredicateType, a.Predicate)
		if err != nil {
			return nil, err
		}
		items = append(items, &item{predicateType: a.PredicateType, statement: stmt})
	}

	// 1. Sigstore bundles as OCI 1.1 referrers.
	existing, err := referrerBundles(ref, ropts)
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		key := "referrer " + it.predicateType
		if b, ok := existing[payloadKey(it.statement)]; ok {
			it.bundle = b
			res.Present = append(res.Present, key)
			continue
		}
		if it.bundle, err = opts.Signer.SignDSSE(ctx, InTotoPayloadType, it.statement); err != nil {
			return nil, fmt.Errorf("imagesign: sign %s statement: %w", it.predicateType, err)
		}
		if err := writeReferrer(ref, subject, it, created, ropts); err != nil {
			return nil, err
		}
		res.Added = append(res.Added, key)
	}

	// 2. cosign's tag scheme: sha256-<hex>.sig and sha256-<hex>.att.
	added, err := attachSig(ctx, ref, h, opts.Signer, ropts)
	if err != nil {
		return nil, err
	}
	if added {
		res.Added = append(res.Added, "tag .sig")
	} else {
		res.Present = append(res.Present, "tag .sig")
	}
	addedAtt, presentAtt, err := attachAtt(ref, h, items[1:], ropts)
	if err != nil {
		return nil, err
	}
	res.Added = append(res.Added, addedAtt...)
	res.Present = append(res.Present, presentAtt...)
	return res, nil
}

// payloadKey identifies a statement by its bytes.
func payloadKey(payload []byte) [32]byte { return sha256.Sum256(payload) }

// tagFor is cosign's tag of a digest's signatures (suffix "sig") or attestations ("att").
func tagFor(ref name.Digest, h v1.Hash, suffix string) name.Tag {
	return ref.Context().Tag(fmt.Sprintf("%s-%s.%s", h.Algorithm, h.Hex, suffix))
}

// isNotFound reports a registry 404.
func isNotFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}

// referrerBundle is one Sigstore bundle referrer of a digest, or why it could not be read.
type referrerBundle struct {
	digest v1.Hash
	bundle []byte
	err    error
}

// listReferrerBundles fetches the Sigstore bundles attached to ref as referrers (through the
// referrers API or its fallback tag).
func listReferrerBundles(ref name.Digest, ropts []remote.Option) ([]referrerBundle, error) {
	idx, err := remote.Referrers(ref, ropts...)
	if err != nil {
		return nil, fmt.Errorf("imagesign: referrers of %s: %w", ref, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("imagesign: referrers of %s: %w", ref, err)
	}
	var out []referrerBundle
	for _, d := range im.Manifests {
		// Registries differ in what they list as the artifact type (some give the config's
		// media type), so each referrer's manifest says whether it is a bundle.
		if d.ArtifactType != "" && d.ArtifactType != BundleMediaType && d.ArtifactType != emptyConfigMediaType {
			continue
		}
		data, ok, err := referrerContent(ref.Context().Digest(d.Digest.String()), ropts)
		if ok || err != nil {
			out = append(out, referrerBundle{digest: d.Digest, bundle: data, err: err})
		}
	}
	return out, nil
}

// referrerContent reads the one bundle layer of a referrer manifest; ok is false for a
// referrer that is not a Sigstore bundle.
func referrerContent(ref name.Digest, ropts []remote.Option) (data []byte, ok bool, err error) {
	img, err := remote.Image(ref, ropts...)
	if err != nil {
		return nil, false, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, false, err
	}
	if len(m.Layers) != 1 || !strings.HasPrefix(string(m.Layers[0].MediaType), "application/vnd.dev.sigstore.bundle") {
		return nil, false, nil
	}
	l, err := img.LayerByDigest(m.Layers[0].Digest)
	if err != nil {
		return nil, false, err
	}
	data, err = readLayer(l)
	return data, err == nil, err
}

// referrerBundles maps the statement of each DSSE bundle referrer of ref to its bundle.
func referrerBundles(ref name.Digest, ropts []remote.Option) (map[[32]byte][]byte, error) {
	list, err := listReferrerBundles(ref, ropts)
	if err != nil {
		return nil, err
	}
	out := map[[32]byte][]byte{}
	for _, r := range list {
		if r.err != nil {
			continue // unreadable: not counted as attached, so it is attached again
		}
		b, err := parseBundle(r.bundle)
		if err != nil || b.GetDsseEnvelope() == nil {
			continue // not ours to judge here; verification reports it
		}
		out[payloadKey(b.GetDsseEnvelope().GetPayload())] = r.bundle
	}
	return out, nil
}

// readLayer reads a layer's (uncompressed) content, bounded.
func readLayer(l v1.Layer) ([]byte, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxAttachment+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxAttachment {
		return nil, fmt.Errorf("layer is larger than %d bytes", maxAttachment)
	}
	return data, nil
}

// rawManifest is a manifest pushed as it is.
type rawManifest struct {
	raw []byte
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// writeReferrer pushes it.bundle as a referrer of ref, as cosign's
// WriteAttestationNewBundleFormat does: the empty config, one bundle layer, the subject.
func writeReferrer(ref name.Digest, subject *v1.Descriptor, it *item, created time.Time, ropts []remote.Option) error {
	config := static.NewLayer([]byte("{}"), emptyConfigMediaType)
	layer := static.NewLayer(it.bundle, BundleMediaType)
	for _, l := range []v1.Layer{config, layer} {
		if err := remote.WriteLayer(ref.Context(), l, ropts...); err != nil {
			return fmt.Errorf("imagesign: upload %s bundle: %w", it.predicateType, err)
		}
	}
	cd, _ := config.Digest()
	ld, _ := layer.Digest()
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  BundleMediaType,
		Config:        v1.Descriptor{MediaType: emptyConfigMediaType, ArtifactType: BundleMediaType, Digest: cd, Size: 2},
		Layers:        []v1.Descriptor{{MediaType: BundleMediaType, Digest: ld, Size: int64(len(it.bundle))}},
		Subject:       &v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations: map[string]string{
			annCreated:       created.UTC().Format(time.RFC3339),
			annBundleContent: "dsse-envelope",
			annBundlePredTyp: it.predicateType,
		},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("imagesign: referrer manifest: %w", err)
	}
	md, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if err := remote.Put(ref.Context().Digest(md.String()), rawManifest{raw}, ropts...); err != nil {
		return fmt.Errorf("imagesign: push %s referrer: %w", it.predicateType, err)
	}
	return nil
}

// tagImage returns the image at a cosign tag, or an empty one when the tag does not exist.
func tagImage(t name.Tag, ropts []remote.Option) (v1.Image, bool, error) {
	img, err := remote.Image(t, ropts...)
	switch {
	case isNotFound(err):
		return mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON), false, nil
	case err != nil:
		return nil, false, fmt.Errorf("imagesign: %s: %w", t, err)
	}
	return img, true, nil
}

// attachSig adds the signed simple-signing payload of the digest to the .sig tag, unless a
// layer with that payload is there already.
func attachSig(ctx context.Context, ref name.Digest, h v1.Hash, signer Signer, ropts []remote.Option) (bool, error) {
	payload, err := simpleSigningPayload(ref.Context().Name(), h)
	if err != nil {
		return false, err
	}
	t := tagFor(ref, h, "sig")
	img, _, err := tagImage(t, ropts)
	if err != nil {
		return false, err
	}
	want, _, err := v1.SHA256(bytes.NewReader(payload))
	if err != nil {
		return false, err
	}
	m, err := img.Manifest()
	if err != nil {
		return false, fmt.Errorf("imagesign: %s: %w", t, err)
	}
	for _, l := range m.Layers {
		if l.Digest == want {
			return false, nil
		}
	}
	bj, err := signer.Sign(ctx, payload)
	if err != nil {
		return false, fmt.Errorf("imagesign: sign %s: %w", ref, err)
	}
	b, err := parseBundle(bj)
	if err != nil {
		return false, err
	}
	ann, err := legacyAnnotations(b)
	if err != nil {
		return false, err
	}
	ann[annSignature] = base64.StdEncoding.EncodeToString(b.GetMessageSignature().GetSignature())
	img, err = mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(payload, SimpleSigningMediaType), Annotations: ann})
	if err != nil {
		return false, fmt.Errorf("imagesign: %s: %w", t, err)
	}
	if err := remote.Write(t, img, ropts...); err != nil {
		return false, fmt.Errorf("imagesign: push %s: %w", t, err)
	}
	return true, nil
}

// attachAtt adds each statement's DSSE envelope to the .att tag, unless a layer with the same
// statement is there already.
func attachAtt(ref name.Digest, h v1.Hash, items []*item, ropts []remote.Option) (added, present []string, err error) {
	t := tagFor(ref, h, "att")
	img, _, err := tagImage(t, ropts)
	if err != nil {
		return nil, nil, err
	}
	have := map[[32]byte]bool{}
	layers, err := img.Layers()
	if err != nil {
		return nil, nil, fmt.Errorf("imagesign: %s: %w", t, err)
	}
	for _, l := range layers {
		data, err := readLayer(l)
		if err != nil {
			return nil, nil, fmt.Errorf("imagesign: %s: %w", t, err)
		}
		if env, err := parseEnvelope(data); err == nil {
			have[payloadKey(env.GetPayload())] = true
		}
	}
	var adds []mutate.Addendum
	for _, it := range items {
		key := "tag .att " + it.predicateType
		if have[payloadKey(it.statement)] {
			present = append(present, key)
			continue
		}
		b, err := parseBundle(it.bundle)
		if err != nil {
			return nil, nil, err
		}
		env, err := envelopeJSON(b)
		if err != nil {
			return nil, nil, err
		}
		ann, err := legacyAnnotations(b)
		if err != nil {
			return nil, nil, err
		}
		ann[annSignature] = ""
		ann[annPredicateType] = it.predicateType
		adds = append(adds, mutate.Addendum{Layer: static.NewLayer(env, DSSEMediaType), Annotations: ann})
		added = append(added, key)
	}
	if len(adds) == 0 {
		return nil, present, nil
	}
	if img, err = mutate.Append(img, adds...); err != nil {
		return nil, nil, fmt.Errorf("imagesign: %s: %w", t, err)
	}
	if err := remote.Write(t, img, ropts...); err != nil {
		return nil, nil, fmt.Errorf("imagesign: push %s: %w", t, err)
	}
	return added, present, nil
}
