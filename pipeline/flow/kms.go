package flow

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	"golang.org/x/sync/errgroup"

	"github.com/calimero-network/mero-release/pipeline/e2e"
	"github.com/calimero-network/mero-release/pipeline/imagesign"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/ociimage"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sbom"
	"github.com/calimero-network/mero-release/pipeline/store"
)

// KMSImage is one profile's built KMS image, as recorded in kms-image-manifest.json.
type KMSImage struct {
	// Image is the reference deployments use, pinned by digest.
	Image string `json:"image"`
	// Digest is the image manifest digest.
	Digest string `json:"digest"`
	// ComposeHash is the dstack compose hash of the app-compose that runs Image.
	ComposeHash string `json:"compose_hash"`
	// archive and compose are local build outputs (not recorded).
	archive, compose string
}

// KMSImageManifest is kms-image-manifest.json.
type KMSImageManifest struct {
	SchemaVersion string                       `json:"schema_version"`
	Version       string                       `json:"version"`
	Profiles      map[release.Profile]KMSImage `json:"profiles"`
}

// ReleaseKMS runs the KMS pipeline (SPEC §3): version sync → draft → counterpart → build the image
// per profile (or take the prebuilt ones) → policies → measurements → SBOM → notes → provenance →
// checksums → sign → stage → audit (staged) → [push the digests, for a KMS launcher that pulls
// images] → E2E → dependency guard (the pair E2E just proved counts) → push the images (when a
// registry is set) → publish → audit → catalog.
// Nothing reaches the registry or cfg.Store before the staged release passed its audit and (for stable and
// hotfix releases) E2E — with one exception: when E2E deploys the images where they are pulled
// from the registry (e2e.ImagePuller: Phala CVMs), the audited images are pushed by digest,
// untagged, before E2E; their tags still come only after it. A published release is never
// modified and a re-run only re-audits it; a re-run after a failed publish completes the draft
// that run left, as it is.
func ReleaseKMS(ctx context.Context, cfg Config, product KMSProduct) (*Report, error) {
	if cfg.Tag.Family != release.KMS {
		return nil, outcome.UsageErrorf("release-kms: %s is not a mero-kms tag", cfg.Tag)
	}
	if product.AppCompose == nil || product.OSImage == nil {
		return nil, outcome.UsageErrorf("release-kms: the KMS product needs an app-compose renderer and a dstack OS image")
	}
	if pullsImages(cfg.KMSLauncher) && product.Registry == "" && !cfg.SkipE2E {
		return nil, outcome.UsageErrorf("release-kms: E2E deploys the KMS images where they are pulled from a registry (the Phala KMS provider): give the registry to push them to")
	}
	r, err := newRun(&cfg)
	if err != nil {
		return nil, err
	}
	k := &kmsRun{run: r, product: product, images: map[release.Profile]KMSImage{}, policies: map[release.Profile]*policy.Policy{}, signImages: true}
	return r.execute(ctx, []Stage{
		r.versionStage(),
		r.draftStage(),
		r.counterpartStage(),
		k.buildStage(),
		k.policyStage(),
		k.measureStage(),
		k.sbomStage(),
		r.vulnStage(),
		r.notesStage(),
		r.provenanceStage(k.provenanceInputs),
		r.checksumStage(),
		r.signStage(),
		r.stageStage(),
		r.stagedAuditStage(),
		k.pushDigestsStage(),
		r.e2eStage(),
		r.dependencyStage(func() map[release.Profile]*policy.Policy { return k.policies }),
		k.pushStage(),
		r.publishStage(),
		r.auditStage("audit", func() store.Store { return cfg.Store }),
		r.catalogStage(),
	})
}

type kmsRun struct {
	*run
	product  KMSProduct
	mu       sync.Mutex
	images   map[release.Profile]KMSImage
	policies map[release.Profile]*policy.Policy

	// signImages signs and attests each pushed image (release-kms, after audit and E2E; not the
	// explicit build-and-push of BuildKMSImages, which precedes any release).
	signImages bool

	layerOnce sync.Once // the binary's layer, built once for the three profile images
	layer     ociimage.Layer
	layerErr  error
}

// buildStage builds the three profile images concurrently (or takes the prebuilt ones), writes
// them as OCI archives and renders each profile's app-compose pinned by digest. Deployments
// reference Registry/ImageName@digest when a registry is set; nothing is pushed here (see
// pushStage).
func (k *kmsRun) buildStage() Stage {
	return Stage{Name: "build-images", Skip: k.unlessBuilt, Run: func(ctx context.Context) error {
		build := k.buildFromBinary
		if len(k.product.Images) > 0 {
			build = k.takePrebuilt
		} else if k.product.Binary == "" {
			return outcome.UsageErrorf("build-images: give the KMS binary or prebuilt profile images")
		}
		name := orDefault(k.product.ImageName, "mero-kms")
		g, _ := errgroup.WithContext(ctx)
		for _, p := range release.Profiles() {
			g.Go(func() error {
				archive, digest, err := build(p, name)
				if err != nil {
					return err
				}
				ref := release.LocalImageRef(name, digest)
				if k.product.Registry != "" {
					ref = strings.TrimRight(k.product.Registry, "/") + "/" + name + "@" + digest
				}
				compose, err := k.product.AppCompose(ref)
				if err != nil {
					return fmt.Errorf("%s app-compose: %w", p, err)
				}
				composePath := filepath.Join(k.imageDir, fmt.Sprintf("app-compose-%s.json", p))
				if err := os.WriteFile(composePath, compose, 0o644); err != nil {
					return fmt.Errorf("%s app-compose: %w", p, err)
				}
				k.mu.Lock()
				k.images[p] = KMSImage{Image: ref, Digest: digest, archive: archive, compose: composePath}
				k.mu.Unlock()
				k.cfg.Log.Infof("%s image %s (%s)", p, digest, archive)
				return nil
			})
		}
		return g.Wait()
	}}
}

// buildFromBinary builds profile p's image around the KMS binary (reproducibly: the same
// binary and Created give the same digest) and writes it as an OCI archive.
func (k *kmsRun) buildFromBinary(p release.Profile, name string) (archive, digest string, err error) {
	layer, err := k.binaryLayer()
	if err != nil {
		return "", "", err
	}
	binPath := orDefault(k.product.BinaryPath, "/usr/local/bin/mero-kms")
	version := k.cfg.Tag.Version.String()
	img, err := ociimage.Build(ociimage.Spec{
		Layer:      layer,
		Entrypoint: []string{binPath},
		Env:        []string{"MERO_KMS_PROFILE=" + string(p), "MERO_KMS_VERSION=" + version},
		Labels: map[string]string{
			"org.opencontainers.image.title":    name,
			"org.opencontainers.image.version":  version,
			"network.calimero.mero-kms.profile": string(p),
		},
		Created: k.cfg.Created,
	})
	if err != nil {
		return "", "", fmt.Errorf("build %s image: %w", p, err)
	}
	if digest, err = ociimage.Digest(img); err != nil {
		return "", "", err
	}
	archive = filepath.Join(k.imageDir, fmt.Sprintf("%s-%s.oci.tar", name, p))
	if err := ociimage.WriteOCIArchive(img, fmt.Sprintf("%s:%s-%s", name, version, p), archive); err != nil {
		return "", "", err
	}
	return archive, digest, nil
}

// binaryLayer is the image layer holding the KMS binary: read, archived and hashed once and
// shared by the three profile images (same layer digest), which differ only in their config.
func (k *kmsRun) binaryLayer() (ociimage.Layer, error) {
	k.layerOnce.Do(func() {
		bin, err := os.ReadFile(k.product.Binary)
		if err != nil {
			k.layerErr = outcome.UsageErrorf("KMS binary: %v", err)
			return
		}
		binPath := orDefault(k.product.BinaryPath, "/usr/local/bin/mero-kms")
		k.layer, k.layerErr = ociimage.NewLayer([]ociimage.File{{Path: binPath, Content: bin, Mode: 0o755}}, k.cfg.Created)
	})
	return k.layer, k.layerErr
}

// takePrebuilt checks profile p's prebuilt OCI archive — whole (every blob verified), and, when
// the image declares MERO_KMS_PROFILE or MERO_KMS_VERSION, declaring this profile and version —
// copies it into the work directory where built images go (WORK/<tag>/images/NAME-<p>.oci.tar)
// and returns the copy and its digest.
func (k *kmsRun) takePrebuilt(p release.Profile, name string) (archive, digest string, err error) {
	src, ok := k.product.Images[p]
	if !ok {
		return "", "", outcome.UsageErrorf("prebuilt KMS images: no image for profile %s", p)
	}
	archive = filepath.Join(k.imageDir, fmt.Sprintf("%s-%s.oci.tar", name, p))
	if err := copyFile(src, archive); err != nil {
		return "", "", fmt.Errorf("%s image: %w", p, err)
	}
	info, err := measure.InspectImage(archive)
	if err != nil {
		return "", "", fmt.Errorf("%s image: %w", p, err)
	}
	want := map[string]string{"MERO_KMS_PROFILE": string(p), "MERO_KMS_VERSION": k.cfg.Tag.Version.String()}
	for _, kv := range info.Env {
		name, value, _ := strings.Cut(kv, "=")
		if w, ok := want[name]; ok && value != w {
			return "", "", outcome.VerificationErrorf("%s image %s sets %s=%s, want %s: an image of another profile or version", p, archive, name, value, w)
		}
	}
	return archive, info.Digest, nil
}

// pushStage pushes each profile's image to the registry (GHCR) after the staged release passed
// its audit and E2E and before it is published, so a refused release pushes nothing; the
// registry must then hold exactly the digest that was measured and recorded. Right after its
// push, each digest is signed and attested with the release's signer where cosign looks
// (pipeline/imagesign): a signature, the SBOM and a provenance attestation; what a re-run finds
// attached already is not added again.
func (k *kmsRun) pushStage() Stage {
	return Stage{
		Name: "push-images",
		Skip: func() string {
			if s := k.unlessBuilt(); s != "" {
				return s
			}
			if k.product.Registry == "" {
				return "no registry configured: the images stay local OCI archives"
			}
			return ""
		},
		Run: func(ctx context.Context) error {
			name := orDefault(k.product.ImageName, "mero-kms")
			version := k.cfg.Tag.Version.String()
			var att *imageAttestation
			if k.signImages {
				var err error
				if att, err = k.imageAttestation(); err != nil {
					return err
				}
			}
			g, gctx := errgroup.WithContext(ctx)
			for _, p := range release.Profiles() {
				img := k.images[p]
				g.Go(func() error {
					tag := fmt.Sprintf("%s/%s:%s-%s", strings.TrimRight(k.product.Registry, "/"), name, version, p)
					pushed, err := ociimage.PushArchive(gctx, img.archive, tag, k.product.RegistryUser, k.product.RegistryToken)
					if err != nil {
						return err
					}
					if pushed != img.Image {
						return outcome.VerificationErrorf("%s: pushed %s but the release records %s", p, pushed, img.Image)
					}
					k.cfg.Log.Infof("pushed %s as %s", tag, pushed)
					if att == nil {
						return nil
					}
					return k.signImage(gctx, p, pushed, att)
				})
			}
			return g.Wait()
		},
	}
}

// pullsImages says whether launcher's KMS instances pull the release's images from the
// registry (e2e.ImagePuller), so E2E needs them pushed first.
func pullsImages(launcher e2e.KMSLauncher) bool {
	p, ok := launcher.(e2e.ImagePuller)
	return ok && p.PullsImages()
}

// pushDigestsStage pushes each profile's audited image to the registry by digest, untagged,
// when E2E deploys it where it is pulled from there (a Phala CVM pulls the image the release's
// app-compose pins): the compose hash the release measured names Registry/ImageName@digest, so
// no other reference can stand in. Tags are pushed only after E2E (pushStage).
func (k *kmsRun) pushDigestsStage() Stage {
	return Stage{
		Name: "push-digests",
		Skip: func() string {
			switch {
			case k.unlessBuilt() != "":
				return k.unlessBuilt()
			case k.cfg.SkipE2E:
				return "E2E is turned off for this run"
			case !pullsImages(k.cfg.KMSLauncher):
				return "E2E runs the KMS locally: nothing to pull"
			}
			return ""
		},
		Run: func(ctx context.Context) error {
			g, gctx := errgroup.WithContext(ctx)
			for _, p := range release.Profiles() {
				img := k.images[p]
				g.Go(func() error {
					pushed, err := ociimage.PushArchive(gctx, img.archive, img.Image, k.product.RegistryUser, k.product.RegistryToken)
					if err != nil {
						return err
					}
					if pushed != img.Image {
						return outcome.VerificationErrorf("%s: pushed %s but the release records %s", p, pushed, img.Image)
					}
					k.cfg.Log.Infof("pushed %s by digest (untagged) for E2E to pull", pushed)
					return nil
				})
			}
			return g.Wait()
		},
	}
}

// imageAttestation is what every pushed image is signed and attested with.
type imageAttestation struct {
	signer imagesign.Signer
	sbom   []byte
}

// imageAttestation gathers the signer and the release's SBOM.
func (k *kmsRun) imageAttestation() (*imageAttestation, error) {
	doc, err := os.ReadFile(filepath.Join(k.assets, release.SBOMFile))
	if err != nil {
		return nil, fmt.Errorf("push-images: the SBOM attested on the images: %w", err)
	}
	return &imageAttestation{signer: k.cfg.Signer, sbom: doc}, nil
}

// signImage signs and attests profile p's pushed image (REGISTRY/NAME@sha256:…) with the
// release's signer: the SBOM and the release's provenance (whose subjects list the image's
// digest).
func (k *kmsRun) signImage(ctx context.Context, p release.Profile, pushed string, att *imageAttestation) error {
	ref, err := name.NewDigest(pushed)
	if err != nil {
		return fmt.Errorf("%s: sign image: %w", p, err)
	}
	if k.provenance == nil {
		return fmt.Errorf("%s: this run made no release provenance to attest the image with", p)
	}
	prov, err := k.releaseProvenancePredicate()
	if err != nil {
		return fmt.Errorf("%s: provenance: %w", p, err)
	}
	got, err := imagesign.Attach(ctx, ref, imagesign.Options{
		Signer: att.signer,
		Attestations: []imagesign.Attestation{
			{PredicateType: imagesign.SPDXPredicateType, Predicate: att.sbom},
			{PredicateType: imagesign.SLSAProvenancePredicateType, Predicate: prov},
		},
		Created: k.cfg.Created,
		Remote:  ociimage.RemoteOptions(ctx, k.product.RegistryUser, k.product.RegistryToken),
	})
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	k.cfg.Log.Infof("%s: signed and attested %s (added %d, already there %d)", p, pushed, len(got.Added), len(got.Present))
	return nil
}

// policyStage generates one attestation policy per profile from the counterpart node release's
// measurements; with no counterpart they are policy_not_ready, which only an rc may publish.
// When the draft of an earlier run was adopted, its policies are loaded and checked instead.
func (k *kmsRun) policyStage() Stage {
	return Stage{Name: "policies", Skip: k.unlessPublished, Run: func(ctx context.Context) error {
		var nodes []*measure.Published
		if k.counterpart != nil && !k.resumed {
			p, err := readPublishedFrom(ctx, k.cfg.Store, *k.counterpart, k.cfg.Audit)
			if err != nil {
				return fmt.Errorf("counterpart measurements: %w", err)
			}
			nodes = append(nodes, p)
		}
		tcb := k.product.TCBStatus
		if len(tcb) == 0 {
			tcb = policy.DefaultTCBStatus()
		}
		for _, p := range release.Profiles() {
			var pol *policy.Policy
			var err error
			if k.resumed {
				pol, err = policy.LoadFile(filepath.Join(k.assets, p.PolicyFile()))
			} else {
				pol, err = policy.Generate(k.cfg.Tag.Version.String(), p, nodes, tcb)
			}
			if err != nil {
				return err
			}
			if err := policy.Validate(pol, policy.ValidateOptions{RequireReady: !k.rules.PolicyNotReadyAllowed}); err != nil {
				return fmt.Errorf("%s: %w", p.PolicyFile(), err)
			}
			if pol.NotReady() {
				k.cfg.Log.Warnf("%s is policy_not_ready (allowed for a %s release)", p.PolicyFile(), k.class)
			}
			if !k.resumed {
				data, err := pol.Marshal()
				if err != nil {
					return err
				}
				if err := k.writeAsset(p.PolicyFile(), data); err != nil {
					return err
				}
			}
			k.policies[p] = pol
		}
		return policy.ValidateSet(k.policies)
	}}
}

// measureStage measures each profile's image by inspection (digest, compose hash, RTMR3 replay).
func (k *kmsRun) measureStage() Stage {
	return Stage{Name: "measure", Skip: k.unlessBuilt, Run: func(ctx context.Context) error {
		var inputs []measure.KMSInput
		for _, p := range release.Profiles() {
			img := k.images[p]
			inputs = append(inputs, measure.KMSInput{Profile: p, Image: img.archive, Compose: img.compose})
		}
		pub, err := measure.MeasureKMS(ctx, inputs, measure.KMSOptions{
			Version: k.cfg.Tag.Version.String(), OSImage: k.product.OSImage, Dstack: k.product.Dstack, Now: k.cfg.now, Log: k.cfg.Log,
		})
		if err != nil {
			return err
		}
		if err := measure.CheckDistinct(pub); err != nil {
			return err
		}
		manifest := KMSImageManifest{SchemaVersion: "1", Version: k.cfg.Tag.Version.String(), Profiles: map[release.Profile]KMSImage{}}
		for _, p := range release.Profiles() {
			img := k.images[p]
			img.ComposeHash = pub.Profiles[p].ComposeHash
			manifest.Profiles[p] = img
		}
		data, err := json.MarshalIndent(manifest, "", "  ")
		if err != nil {
			return fmt.Errorf("kms image manifest: %w", err)
		}
		if err := k.writeAsset(release.KMSImageManifest, append(data, '\n')); err != nil {
			return err
		}
		return k.measurementsAsset(pub)
	}}
}

// sbomStage generates the SPDX SBOM of the production (locked-read-only) image.
func (k *kmsRun) sbomStage() Stage {
	return Stage{Name: "sbom", Skip: k.unlessBuilt, Run: func(ctx context.Context) error {
		doc, err := sbom.Generate(ctx, sbom.Input{
			Path: k.images[release.LockedReadOnly].archive, Kind: sbom.OCIArchive,
			Name: orDefault(k.product.ImageName, "mero-kms"), Version: k.cfg.Tag.Version.String(), Created: k.cfg.Created,
		})
		if err != nil {
			return err
		}
		return k.writeAsset(release.SBOMFile, doc)
	}}
}

// copyFile copies src to dst (mode 0644).
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return outcome.UsageErrorf("%v", err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
