package imagesign

import (
	"fmt"
	"slices"
	"strings"
	"time"

	provv1 "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intotov1 "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// BuildType is the SLSA build type of images built and pushed by mero-release.
const BuildType = "https://github.com/calimero-network/mero-release/image-build/v1"

// LocalBuilder is the builder ID of runs outside CI (a laptop).
const LocalBuilder = "local"

// ProvenanceInput is what a release knows about how an image was built.
type ProvenanceInput struct {
	// Builder identifies the build platform: the workflow URI in CI (see BuilderFromEnv),
	// LocalBuilder otherwise (the default).
	Builder string
	// Tag is the release tag; Image the image name (repository) and Profile its profile.
	Tag, Image, Profile string
	// SourceRepository and SourceCommit are the source the release was made from (optional).
	SourceRepository, SourceCommit string
	// Inputs are resolved inputs (base image, builder image, binary…): name → "sha256:<hex>".
	Inputs map[string]string
	// InvocationID is the CI run (optional); Created the build time (SOURCE_DATE_EPOCH).
	InvocationID string
	Created      time.Time
}

// Provenance renders a SLSA provenance v1 predicate (JSON) for an image from what the
// release knows, with the in-toto provenance types; the result is validated.
func Provenance(in ProvenanceInput) ([]byte, error) {
	builder := in.Builder
	if builder == "" {
		builder = LocalBuilder
	}
	ext, err := structpb.NewStruct(map[string]any{"tag": in.Tag, "image": in.Image, "profile": in.Profile})
	if err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	var deps []*intotov1.ResourceDescriptor
	if in.SourceRepository != "" || in.SourceCommit != "" {
		d := &intotov1.ResourceDescriptor{Uri: in.SourceRepository, Name: "source"}
		if in.SourceCommit != "" {
			d.Digest = map[string]string{"gitCommit": in.SourceCommit}
		}
		deps = append(deps, d)
	}
	for name, dg := range in.Inputs {
		alg, hex, ok := strings.Cut(dg, ":")
		if !ok {
			return nil, fmt.Errorf("provenance: input %s digest %q is not ALG:HEX", name, dg)
		}
		deps = append(deps, &intotov1.ResourceDescriptor{Name: name, Digest: map[string]string{alg: hex}})
	}
	// The source first, then the inputs by name: the same inputs give the same predicate.
	slices.SortFunc(deps, func(a, b *intotov1.ResourceDescriptor) int {
		if (a.GetName() == "source") != (b.GetName() == "source") {
			if a.GetName() == "source" {
				return -1
			}
			return 1
		}
		return strings.Compare(a.GetName(), b.GetName())
	})
	p := &provv1.Provenance{
		BuildDefinition: &provv1.BuildDefinition{BuildType: BuildType, ExternalParameters: ext, ResolvedDependencies: deps},
		RunDetails: &provv1.RunDetails{
			Builder:  &provv1.Builder{Id: builder},
			Metadata: &provv1.BuildMetadata{InvocationId: in.InvocationID},
		},
	}
	if !in.Created.IsZero() {
		p.RunDetails.Metadata.StartedOn = timestamppb.New(in.Created)
		p.RunDetails.Metadata.FinishedOn = timestamppb.New(in.Created)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	out, err := protojson.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	return out, nil
}

// BuilderFromEnv returns the builder ID of a GitHub Actions run from its environment
// (GITHUB_SERVER_URL/GITHUB_WORKFLOW_REF: https://github.com/OWNER/REPO/.github/workflows/X.yaml@REF),
// or LocalBuilder outside Actions.
func BuilderFromEnv(getenv func(string) string) string {
	server, ref := getenv("GITHUB_SERVER_URL"), getenv("GITHUB_WORKFLOW_REF")
	if server == "" || ref == "" {
		return LocalBuilder
	}
	return strings.TrimRight(server, "/") + "/" + ref
}
