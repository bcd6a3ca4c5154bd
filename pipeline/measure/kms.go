package measure

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/calimero-network/mero-release/pipeline/dstack"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx"
)

// Sources of a Record.
const (
	SourceImageInspection = "image-inspection"
	SourceTDXSimulator    = "tdx-simulator"
	SourceGCPTDXVM        = "gcp-tdx-vm"
)

// Register sources of a KMS Record (Record.RegisterSources).
const (
	// RegisterSourcePinnedOS: the value is the pinned dstack OS file's (dstack.PinnedOSImagePath
	// by default, or the --os-image file).
	RegisterSourcePinnedOS = "dstack-os-file"
	// RegisterSourceComposeReplay: the value was computed by replaying dstack's RTMR3 events for
	// the compose hash.
	RegisterSourceComposeReplay = "computed-from-compose"
)

// KMSInput is one profile's KMS image and the compose that runs it.
type KMSInput struct {
	Profile release.Profile
	// Image is an OCI image layout: a directory or a (gzipped) tar archive of one.
	Image string
	// Compose is the docker compose file or dstack app-compose (YAML or JSON) that runs the
	// image, referencing it by digest.
	Compose string
}

// KMSOptions configure MeasureKMS.
type KMSOptions struct {
	// Version is the KMS release version (X.Y.Z[-rc.N]).
	Version string
	// OSImage is the dstack OS image the KMS CVM boots (dstack.PinnedOSImage by default): its
	// MRTD and RTMR0–2, as dstack publishes them, are shared by every profile.
	OSImage *dstack.OSImage
	// Dstack are the deployment inputs of the RTMR3 events (DstackBoot.Events).
	Dstack DstackBoot
	// Now stamps measured_at (default time.Now).
	Now func() time.Time
	// Log receives progress lines (nil discards).
	Log *outcome.Logger
}

// KMSMeasurement is one profile's KMS measurement and what it was computed from.
type KMSMeasurement struct {
	Record  Record
	Image   ImageInfo
	Compose *Compose
	// Events is the replayed event log: dstack's RTMR3 events (the OS's RTMR0–2 are pinned).
	Events []tdx.Event
}

// MeasureKMSProfile measures one profile by image inspection: the image digest (InspectImage),
// the normalised compose hash (ParseCompose; the compose must reference that digest), and the
// expected registers: MRTD and RTMR0–2 from the OS image's boot chain (tdxsim.Measure), RTMR3
// from replaying dstack's runtime events for the compose hash (DstackBoot.Events) with
// tdx.Replay.
func MeasureKMSProfile(ctx context.Context, in KMSInput, opts KMSOptions) (*KMSMeasurement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, err := release.ParseProfile(string(in.Profile)); err != nil {
		return nil, err
	}
	if opts.OSImage == nil {
		return nil, outcome.UsageErrorf("measure kms %s: no dstack OS image (--os-image)", in.Profile)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	img, err := InspectImage(in.Image)
	if err != nil {
		return nil, fmt.Errorf("measure kms %s: %w", in.Profile, err)
	}
	compose, err := LoadCompose(in.Compose)
	if err != nil {
		return nil, fmt.Errorf("measure kms %s: %w", in.Profile, err)
	}
	ref, err := compose.ReferenceTo(img.Digest)
	if err != nil {
		return nil, fmt.Errorf("measure kms %s: %w", in.Profile, err)
	}
	osM, err := opts.OSImage.Measurements()
	if err != nil {
		return nil, fmt.Errorf("measure kms %s: %w", in.Profile, err)
	}
	events, err := opts.Dstack.Events(compose.Hash)
	if err != nil {
		return nil, fmt.Errorf("measure kms %s: %w", in.Profile, err)
	}
	rtmrs, err := tdx.Replay(events)
	if err != nil {
		return nil, fmt.Errorf("measure kms %s: replay: %w", in.Profile, err)
	}
	osM.RTMR[3] = rtmrs[3]
	m := osM.Hex()
	rec := Record{
		MRTD: m.MRTD, RTMR0: m.RTMR0, RTMR1: m.RTMR1, RTMR2: m.RTMR2, RTMR3: m.RTMR3,
		Source:          SourceImageInspection,
		MeasuredAt:      now().UTC().Format(time.RFC3339),
		Image:           ref,
		ImageDigest:     img.Digest,
		ComposeHash:     compose.HashHex(),
		RegisterSources: KMSRegisterSources(opts.OSImage, compose.HashHex()),
	}
	if err := rec.Validate(); err != nil {
		return nil, fmt.Errorf("measure kms %s: %w", in.Profile, err)
	}
	opts.Log.Passf("measure kms %s: image %s, compose hash %s, rtmr3 %s", in.Profile, img.Digest, rec.ComposeHash, rec.RTMR3)
	return &KMSMeasurement{Record: rec, Image: img, Compose: compose, Events: events}, nil
}

// MeasureKMS measures every input (one per profile) and returns the published-mrtds.json
// content of the KMS release. The profiles must come out pairwise distinct (CheckDistinct).
func MeasureKMS(ctx context.Context, inputs []KMSInput, opts KMSOptions) (*Published, error) {
	if _, err := release.ParseVersion(opts.Version); err != nil {
		return nil, fmt.Errorf("measure kms: %w", err)
	}
	if len(inputs) == 0 {
		return nil, outcome.UsageErrorf("measure kms: no profile to measure")
	}
	p := &Published{SchemaVersion: PublishedSchemaVersion, Family: release.KMS, Version: opts.Version, Profiles: map[release.Profile]Record{}}
	seen := map[release.Profile]bool{}
	for _, in := range inputs {
		if seen[in.Profile] {
			return nil, outcome.UsageErrorf("measure kms: profile %s given twice", in.Profile)
		}
		seen[in.Profile] = true
	}
	// The profiles are measured concurrently; the first input's error (in input order) wins.
	results := make([]*KMSMeasurement, len(inputs))
	errs := make([]error, len(inputs))
	var wg sync.WaitGroup
	for i, in := range inputs {
		wg.Go(func() { results[i], errs[i] = MeasureKMSProfile(ctx, in, opts) })
	}
	wg.Wait()
	for i, in := range inputs {
		if errs[i] != nil {
			return nil, errs[i]
		}
		p.Profiles[in.Profile] = results[i].Record
	}
	if err := CheckDistinct(p); err != nil {
		return nil, fmt.Errorf("measure kms: %w", err)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("measure kms: %w", err)
	}
	return p, nil
}

// CheckDistinct checks that no two profiles share an image digest or all five registers: a
// policy must be able to tell the profiles apart (SPEC §5, §11). The error (exit 10) names
// both profiles.
func CheckDistinct(p *Published) error {
	profs := slices.Sorted(maps.Keys(p.Profiles))
	for i, a := range profs {
		for _, b := range profs[i+1:] {
			ra, rb := p.Profiles[a], p.Profiles[b]
			if ra.ImageDigest != "" && ra.ImageDigest == rb.ImageDigest {
				return outcome.VerificationErrorf("profiles %s and %s have the same image digest %s", a, b, ra.ImageDigest)
			}
			if ra.SameRegisters(rb) {
				return outcome.VerificationErrorf("profiles %s and %s have identical MRTD and RTMR0–3: their policies could not tell them apart", a, b)
			}
		}
	}
	return nil
}

// KMSRegisterSources names where each register of a KMS record comes from: MRTD and RTMR0–2
// from the dstack OS image file, RTMR3 computed from the compose.
func KMSRegisterSources(img *dstack.OSImage, composeHash string) RegisterSources {
	osSource := RegisterSourcePinnedOS + ": " + img.Describe()
	return RegisterSources{
		MRTD: osSource, RTMR0: osSource, RTMR1: osSource, RTMR2: osSource,
		RTMR3: RegisterSourceComposeReplay + ": dstack RTMR3 events for compose hash " + composeHash,
	}
}
