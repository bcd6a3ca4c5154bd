package flow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/go-git/go-git/v5"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/calimero-network/mero-release/pipeline/checksum"
	"github.com/calimero-network/mero-release/pipeline/dstack"
	"github.com/calimero-network/mero-release/pipeline/provenance"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// provenanceStage writes provenance.intoto.sigstore.json: the SLSA v1 provenance whose subjects
// are every content asset with its SHA-256 (plus extra subjects: the KMS profile images), with
// the builder, source repository and commit, the tag and the resolved inputs, signed as a DSSE
// envelope by the release's signer. It runs after the notes (the last content asset) and before
// checksums.sha256, which lists it.
func (r *run) provenanceStage(extra func() ([]provenance.Subject, []provenance.Dependency, error)) Stage {
	return Stage{Name: "provenance", Skip: r.unlessBuilt, Run: func(ctx context.Context) error {
		sums, err := checksum.Compute(ctx, r.assets, release.ExpectedAssets(r.cfg.Tag.Family).Content)
		if err != nil {
			return err
		}
		in := provenance.Input{Tag: r.cfg.Tag, Build: r.cfg.Build, StartedOn: r.started, FinishedOn: r.cfg.now()}
		for _, e := range sums.Entries {
			in.Subjects = append(in.Subjects, provenance.Subject{Name: e.Name, SHA256: e.SHA256})
		}
		if extra != nil {
			subjects, deps, err := extra()
			if err != nil {
				return err
			}
			in.Subjects = append(in.Subjects, subjects...)
			in.Dependencies = deps
		}
		if in.Build.Commit == "" {
			in.Build.Commit = headCommit(r.cfg.RepoDir)
		}
		bundle, err := provenance.Make(ctx, r.cfg.Signer, in)
		if err != nil {
			return err
		}
		r.provenance = &in
		r.cfg.Log.Infof("provenance: %d subjects, builder %s, commit %s", len(in.Subjects), orDefault(in.Build.BuilderID, provenance.LocalBuilder), orDefault(in.Build.Commit, "unknown"))
		return r.writeAsset(release.ProvenanceFile, bundle)
	}}
}

// headCommit is the commit HEAD names in repoDir, or "" when there is no repository.
func headCommit(repoDir string) string {
	if repoDir == "" {
		return ""
	}
	repo, err := git.PlainOpenWithOptions(repoDir, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if err != nil {
		return ""
	}
	head, err := repo.Head()
	if err != nil {
		return ""
	}
	return head.Hash().String()
}

// provenanceInputs are the KMS release's extra subjects — each profile image, from the
// kms-image-manifest.json asset — and its resolved inputs: the dstack OS image and the KMS
// binary (or the prebuilt images).
func (k *kmsRun) provenanceInputs() ([]provenance.Subject, []provenance.Dependency, error) {
	data, err := os.ReadFile(filepath.Join(k.assets, release.KMSImageManifest))
	if err != nil {
		return nil, nil, fmt.Errorf("provenance: %w", err)
	}
	var m KMSImageManifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, nil, fmt.Errorf("provenance: %s: %w", release.KMSImageManifest, err)
	}
	var subjects []provenance.Subject
	for _, p := range release.Profiles() {
		img, ok := m.Profiles[p]
		hexDigest, isSHA := strings.CutPrefix(img.Digest, "sha256:")
		if !ok || !isSHA {
			return nil, nil, fmt.Errorf("provenance: %s: profile %s has no sha256 image digest", release.KMSImageManifest, p)
		}
		name, _, _ := strings.Cut(img.Image, "@")
		subjects = append(subjects, provenance.Subject{Name: fmt.Sprintf("%s:%s-%s", name, m.Version, p), SHA256: hexDigest})
	}
	var deps []provenance.Dependency
	if img := k.product.OSImage; img != nil {
		deps = append(deps, osImageDependency(img))
	}
	if len(k.product.Images) == 0 && k.product.Binary != "" {
		sums, err := checksum.Compute(context.Background(), filepath.Dir(k.product.Binary), []string{filepath.Base(k.product.Binary)})
		if err != nil {
			return nil, nil, fmt.Errorf("provenance: KMS binary: %w", err)
		}
		deps = append(deps, provenance.Dependency{Name: "kms-binary", URI: "file:" + filepath.Base(k.product.Binary), Digest: map[string]string{"sha256": sums.Entries[0].SHA256}})
	}
	return subjects, deps, nil
}

// osImageDependency is the dstack OS image as a resolved input: the pinned file's SHA-256 when it
// is the pinned image (dstack.PinnedOSImagePath), else the SHA-256 of the image's JSON.
func osImageDependency(img *dstack.OSImage) provenance.Dependency {
	var sum [32]byte
	uri := "dstack:" + img.Name + "@" + img.DstackVersion
	if reflect.DeepEqual(img, dstack.PinnedOSImage()) {
		sum = sha256.Sum256(dstack.PinnedOSImageFile())
		uri = dstack.PinnedOSImagePath
	} else {
		js, _ := json.Marshal(img) // a struct of strings and ints: cannot fail
		sum = sha256.Sum256(js)
	}
	return provenance.Dependency{Name: "dstack-os-image", URI: uri, Digest: map[string]string{"sha256": hex.EncodeToString(sum[:])}}
}

// provenanceInputs of a node release: the pinned GCP base image.
func (n *nodeRun) provenanceInputs() ([]provenance.Subject, []provenance.Dependency, error) {
	b := n.product.BaseImage
	if b.SourceImage == "" {
		return nil, nil, nil
	}
	return nil, []provenance.Dependency{{
		Name: "gcp-base-image",
		URI:  "https://www.googleapis.com/compute/v1/projects/" + b.SourceImageProject + "/global/images/" + b.SourceImage,
	}}, nil
}

// releaseProvenancePredicate is the SLSA predicate of the provenance this run made (JSON), the
// one its images are attested with; nil when the run made none (a resumed draft).
func (r *run) releaseProvenancePredicate() ([]byte, error) {
	if r.provenance == nil {
		return nil, nil
	}
	st, err := provenance.Statement(*r.provenance)
	if err != nil {
		return nil, err
	}
	js, err := protojson.Marshal(st.GetPredicate())
	if err != nil {
		return nil, fmt.Errorf("provenance: marshal predicate: %w", err)
	}
	return js, nil
}
