// Package provenance makes and checks the SLSA v1 provenance of a release: one in-toto
// Statement (github.com/in-toto/attestation types) whose subjects are the release's content
// assets (and, for the KMS, its profile images) with their SHA-256, and whose predicate names
// the builder, the source repository and commit, the tag and the resolved inputs. It is signed
// as a DSSE envelope in a Sigstore bundle by the release's signer (pipeline/sign), the form
// `cosign verify-blob-attestation --new-bundle-format` reads.
package provenance

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/sign"
)

// PredicateType is the SLSA provenance v1 predicate type (cosign's --type slsaprovenance1).
const PredicateType = "https://slsa.dev/provenance/v1"

// BuildType identifies how mero-release builds a release; externalParameters then hold the
// tag, family, version, repository and ref.
const BuildType = "https://github.com/calimero-network/mero-release/release/v1"

// LocalBuilder is the builder id of a run outside CI (a laptop).
const LocalBuilder = "local"

// Build says who built a release and from what: the parts of the provenance that do not come
// from the release's assets. The CLI fills it from the GitHub Actions environment.
type Build struct {
	// BuilderID is the builder: in GitHub Actions the workflow ref
	// (https://github.com/OWNER/REPO/.github/workflows/FILE@REF), else LocalBuilder.
	BuilderID string
	// Repository is the source repository URL (https://github.com/OWNER/REPO); may be empty locally.
	Repository string
	// Commit is the source commit (hex SHA-1 or SHA-256); may be empty when unknown.
	Commit string
	// InvocationID identifies the run (the GitHub Actions run URL); optional.
	InvocationID string
	// Dependencies are the builder's own inputs known to the caller (builder image digests).
	Dependencies []Dependency
}

// Subject is an artifact the provenance covers: its name and SHA-256 (hex).
type Subject struct {
	Name   string
	SHA256 string
}

// Dependency is a resolved input of the build: a name, a URI and/or digests (algorithm → hex;
// "gitCommit" for a commit).
type Dependency struct {
	Name   string
	URI    string
	Digest map[string]string
}

// Input is everything a release's provenance states.
type Input struct {
	Tag   release.Tag
	Build Build
	// Subjects are the content assets and images, with their SHA-256.
	Subjects []Subject
	// Dependencies are the resolved inputs: base image, dstack OS image, builder images.
	Dependencies []Dependency
	// StartedOn and FinishedOn bound the run (zero: not stated).
	StartedOn, FinishedOn time.Time
}

// Statement builds the in-toto Statement of a release's provenance and validates it.
func Statement(in Input) (*intoto.Statement, error) {
	if len(in.Subjects) == 0 {
		return nil, outcome.UsageErrorf("provenance of %s: no subjects", in.Tag)
	}
	builder := in.Build.BuilderID
	if builder == "" {
		builder = LocalBuilder
	}
	st := &intoto.Statement{Type: intoto.StatementTypeUri, PredicateType: PredicateType}
	for _, s := range in.Subjects {
		if _, err := hex.DecodeString(s.SHA256); err != nil || len(s.SHA256) != 64 {
			return nil, outcome.UsageErrorf("provenance of %s: subject %s: %q is not a SHA-256", in.Tag, s.Name, s.SHA256)
		}
		st.Subject = append(st.Subject, &intoto.ResourceDescriptor{Name: s.Name, Digest: map[string]string{"sha256": strings.ToLower(s.SHA256)}})
	}
	ref := "refs/tags/" + in.Tag.String()
	ext := map[string]any{
		"tag": in.Tag.String(), "family": string(in.Tag.Family), "version": in.Tag.Version.String(), "ref": ref,
	}
	if in.Build.Repository != "" {
		ext["repository"] = in.Build.Repository
	}
	extStruct, err := structpb.NewStruct(ext)
	if err != nil {
		return nil, fmt.Errorf("provenance: external parameters: %w", err)
	}
	var deps []*intoto.ResourceDescriptor
	if in.Build.Repository != "" || in.Build.Commit != "" {
		src := &intoto.ResourceDescriptor{Name: "source"}
		if in.Build.Repository != "" {
			src.Uri = "git+" + in.Build.Repository + "@" + ref
		}
		if in.Build.Commit != "" {
			src.Digest = map[string]string{"gitCommit": in.Build.Commit}
		}
		deps = append(deps, src)
	}
	for _, d := range append(slices.Clone(in.Dependencies), in.Build.Dependencies...) {
		deps = append(deps, &intoto.ResourceDescriptor{Name: d.Name, Uri: d.URI, Digest: d.Digest})
	}
	pred := &slsa.Provenance{
		BuildDefinition: &slsa.BuildDefinition{BuildType: BuildType, ExternalParameters: extStruct, ResolvedDependencies: deps},
		RunDetails:      &slsa.RunDetails{Builder: &slsa.Builder{Id: builder}},
	}
	if md := metadata(in); md != nil {
		pred.RunDetails.Metadata = md
	}
	if err := pred.Validate(); err != nil {
		return nil, outcome.UsageErrorf("provenance of %s: %v", in.Tag, err)
	}
	if st.Predicate, err = toStruct(pred); err != nil {
		return nil, err
	}
	if err := st.Validate(); err != nil {
		return nil, outcome.UsageErrorf("provenance of %s: %v", in.Tag, err)
	}
	return st, nil
}

func metadata(in Input) *slsa.BuildMetadata {
	md := &slsa.BuildMetadata{InvocationId: in.Build.InvocationID}
	if !in.StartedOn.IsZero() {
		md.StartedOn = timestamppb.New(in.StartedOn)
	}
	if !in.FinishedOn.IsZero() {
		md.FinishedOn = timestamppb.New(in.FinishedOn)
	}
	if md.InvocationId == "" && md.StartedOn == nil && md.FinishedOn == nil {
		return nil
	}
	return md
}

// toStruct converts the predicate to the Statement's Struct through its JSON.
func toStruct(p *slsa.Provenance) (*structpb.Struct, error) {
	js, err := protojson.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("provenance: marshal predicate: %w", err)
	}
	s := &structpb.Struct{}
	if err := protojson.Unmarshal(js, s); err != nil {
		return nil, fmt.Errorf("provenance: predicate: %w", err)
	}
	return s, nil
}

// Marshal renders a Statement as the DSSE payload (JSON).
func Marshal(st *intoto.Statement) ([]byte, error) {
	js, err := protojson.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("provenance: marshal statement: %w", err)
	}
	return js, nil
}

// Make builds the provenance Statement and signs it as a DSSE envelope (payload type
// application/vnd.in-toto+json) with signer; it returns the Sigstore bundle JSON, the asset.
func Make(ctx context.Context, signer sign.Signer, in Input) ([]byte, error) {
	st, err := Statement(in)
	if err != nil {
		return nil, err
	}
	payload, err := Marshal(st)
	if err != nil {
		return nil, err
	}
	b, err := signer.SignDSSE(ctx, sign.InTotoPayloadType, payload)
	if err != nil {
		return nil, fmt.Errorf("sign provenance of %s: %w", in.Tag, err)
	}
	return b, nil
}

// Attestation is a verified in-toto attestation: its Statement and who signed it.
type Attestation struct {
	Statement *intoto.Statement
	Signer    *sign.DSSEResult
}

// Verify checks an attestation bundle (signature, signer by policy, payload type
// application/vnd.in-toto+json) and parses its in-toto Statement. Failures are verification
// errors (exit 10); a bad policy is a usage error.
func Verify(ctx context.Context, v *sign.Verifier, bundleJSON []byte, policy sign.Policy) (*Attestation, error) {
	b, err := sign.ParseDSSEBundle(bundleJSON)
	if err != nil {
		return nil, err
	}
	return VerifyBundle(ctx, v, b, policy)
}

// VerifyBundle is Verify for a bundle parsed with sign.ParseDSSEBundle.
func VerifyBundle(ctx context.Context, v *sign.Verifier, b *sign.Bundle, policy sign.Policy) (*Attestation, error) {
	res, err := v.VerifyDSSEBundle(ctx, b, sign.InTotoPayloadType, policy)
	if err != nil {
		return nil, err
	}
	st := &intoto.Statement{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(res.Payload, st); err != nil {
		return nil, outcome.VerificationErrorf("the signed payload is not an in-toto statement: %v", err)
	}
	if err := st.Validate(); err != nil {
		return nil, outcome.VerificationErrorf("the signed in-toto statement is invalid: %v", err)
	}
	return &Attestation{Statement: st, Signer: res}, nil
}

// CheckFile checks that a file with this SHA-256 (hex) is a subject of the attestation: some
// subject has that digest. name (the file's path) is for messages; when a subject of the same
// base name has another digest, the error says so.
func (a *Attestation) CheckFile(name, sha256Hex string) error {
	sha256Hex = strings.ToLower(sha256Hex)
	var sameName []string
	for _, s := range a.Statement.GetSubject() {
		d := strings.ToLower(s.GetDigest()["sha256"])
		if d == sha256Hex {
			return nil
		}
		if s.GetName() == path.Base(name) || s.GetName() == name {
			sameName = append(sameName, d)
		}
	}
	if len(sameName) > 0 {
		return outcome.VerificationErrorf("%s: digest mismatch: the attestation's subject %s has sha256 %s, the file is sha256 %s",
			name, path.Base(name), strings.Join(sameName, ", "), sha256Hex)
	}
	return outcome.VerificationErrorf("%s (sha256 %s) is not a subject of the attestation", name, sha256Hex)
}

// Provenance returns the SLSA v1 predicate; another predicate type is a verification error.
func (a *Attestation) Provenance() (*slsa.Provenance, error) {
	if got := a.Statement.GetPredicateType(); got != PredicateType {
		return nil, outcome.VerificationErrorf("predicate type is %q, want SLSA provenance %q", got, PredicateType)
	}
	js, err := protojson.Marshal(a.Statement.GetPredicate())
	if err != nil {
		return nil, outcome.VerificationErrorf("provenance predicate: %v", err)
	}
	p := &slsa.Provenance{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(js, p); err != nil {
		return nil, outcome.VerificationErrorf("provenance predicate: %v", err)
	}
	if err := p.Validate(); err != nil {
		return nil, outcome.VerificationErrorf("provenance predicate: %v", err)
	}
	return p, nil
}

// CheckRelease checks that the attestation is the provenance of the release tag — SLSA v1, its
// external parameters name tag — and covers every content asset: content maps each asset's
// name to its SHA-256 (hex), and each must be a subject of that name with that digest. Every
// problem is listed, joined, as verification errors.
func (a *Attestation) CheckRelease(tag release.Tag, content map[string]string) error {
	p, err := a.Provenance()
	if err != nil {
		return err
	}
	var errs []error
	if got := p.GetBuildDefinition().GetExternalParameters().GetFields()["tag"].GetStringValue(); got != tag.String() {
		errs = append(errs, outcome.VerificationErrorf("the provenance names tag %q, but the release is %s (the provenance of another release?)", got, tag))
	}
	subjects := map[string]string{}
	for _, s := range a.Statement.GetSubject() {
		subjects[s.GetName()] = strings.ToLower(s.GetDigest()["sha256"])
	}
	for _, name := range slices.Sorted(maps.Keys(content)) {
		want := strings.ToLower(content[name])
		got, ok := subjects[name]
		switch {
		case !ok:
			errs = append(errs, outcome.VerificationErrorf("%s is not a subject of the provenance", name))
		case got != want:
			errs = append(errs, outcome.VerificationErrorf("%s: the provenance states sha256 %s, the asset is sha256 %s", name, got, want))
		}
	}
	return errors.Join(errs...)
}
