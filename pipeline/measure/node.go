package measure

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx"
	"github.com/calimero-network/mero-release/pipeline/vm"
)

// DefaultNodeConcurrency is how many VMs MeasureNode runs at once by default.
const DefaultNodeConcurrency = 3

// DefaultVMNamePrefix starts the name of every measurement VM.
const DefaultVMNamePrefix = "mero-measure"

// NodeOptions configure MeasureNode.
type NodeOptions struct {
	// Version is the node image release version (X.Y.Z[-rc.N]).
	Version string
	// TrustedRoots verify the quotes' PCK chains; nil means Intel's SGX Root CA (use the
	// simulator provider's RootPool for simulated VMs).
	TrustedRoots *x509.CertPool
	// VerifyAt is when certificate validity is checked; zero means now.
	VerifyAt time.Time
	// Source is the Record source; empty means the provider's MeasurementSource().
	Source string
	// Concurrency bounds the VMs running at once; 0 means DefaultNodeConcurrency.
	Concurrency int
	// RunID and Tag label the VMs (run-id defaults to "local").
	RunID, Tag string
	// NamePrefix starts the VM names (default DefaultVMNamePrefix).
	NamePrefix string
	// Rand supplies the nonces and VM name suffixes (default crypto/rand).
	Rand io.Reader
	// Now stamps measured_at (default time.Now).
	Now func() time.Time
	// Log receives progress lines (nil discards).
	Log *outcome.Logger
}

// sourcer is a provider that names its measurement source.
type sourcer interface{ MeasurementSource() string }

func (o *NodeOptions) defaults(p vm.Provider) error {
	if o.Source == "" {
		s, ok := p.(sourcer)
		if !ok {
			return outcome.UsageErrorf("measure node: the provider does not name its measurement source; set NodeOptions.Source")
		}
		o.Source = s.MeasurementSource()
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultNodeConcurrency
	}
	if o.RunID == "" {
		o.RunID = "local"
	}
	if o.NamePrefix == "" {
		o.NamePrefix = DefaultVMNamePrefix
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// nodeRun is one planned measurement: the VM to boot and the nonce its quote must bind.
type nodeRun struct {
	Profile release.Profile
	Image   string
	Spec    vm.Spec
}

// planRun draws the nonce and name suffix for one profile from opts.Rand.
func planRun(profile release.Profile, image string, opts *NodeOptions) (nodeRun, error) {
	var nonce [vm.NonceSize]byte
	var suffix [4]byte
	if _, err := io.ReadFull(opts.Rand, nonce[:]); err != nil {
		return nodeRun{}, fmt.Errorf("measure node %s: nonce: %w", profile, err)
	}
	if _, err := io.ReadFull(opts.Rand, suffix[:]); err != nil {
		return nodeRun{}, fmt.Errorf("measure node %s: vm name: %w", profile, err)
	}
	labels := map[string]string{vm.LabelRunID: opts.RunID}
	if opts.Tag != "" {
		labels[vm.LabelTag] = opts.Tag
	}
	name := fmt.Sprintf("%s-%s-%s", opts.NamePrefix, profile, hex.EncodeToString(suffix[:]))
	return nodeRun{Profile: profile, Image: image, Spec: vm.Spec{Name: name, Image: image, Profile: profile, Labels: labels, Nonce: nonce}}, nil
}

// MeasureNodeProfile boots one ephemeral VM from image, takes a quote bound to a fresh
// random nonce, verifies it and returns the measurement record. The VM is deleted on every
// path (vm.WithVM).
func MeasureNodeProfile(ctx context.Context, p vm.Provider, profile release.Profile, image string, opts NodeOptions) (Record, error) {
	if err := opts.defaults(p); err != nil {
		return Record{}, err
	}
	run, err := planRun(profile, image, &opts)
	if err != nil {
		return Record{}, err
	}
	return measureRun(ctx, p, run, opts)
}

// measureRun performs a planned run: create, quote, verify (signature chain, nonce binding,
// not a debug TD), record, delete.
func measureRun(ctx context.Context, p vm.Provider, run nodeRun, opts NodeOptions) (Record, error) {
	var rec Record
	opts.Log.Infof("measure node %s: booting %s from %s", run.Profile, run.Spec.Name, run.Image)
	err := vm.WithVM(ctx, p, run.Spec, func(ctx context.Context, inst vm.Instance) error {
		raw, err := inst.Quote(ctx)
		if err != nil {
			return err
		}
		q, err := tdx.ParseQuote(raw)
		if err != nil {
			return err
		}
		if err := q.Verify(tdx.VerifyOptions{TrustedRoots: opts.TrustedRoots, Now: opts.VerifyAt}); err != nil {
			return err
		}
		if err := vm.CheckReportData(q.ReportData, run.Spec.Nonce); err != nil {
			return err
		}
		if q.Debug() {
			return outcome.VerificationErrorf("the TD runs in debug mode (TD_ATTRIBUTES.DEBUG): its measurements prove nothing")
		}
		m := q.Measurements().Hex()
		rec = Record{
			MRTD: m.MRTD, RTMR0: m.RTMR0, RTMR1: m.RTMR1, RTMR2: m.RTMR2, RTMR3: m.RTMR3,
			Source:      opts.Source,
			QuoteSHA256: q.SHA256(),
			MeasuredAt:  opts.Now().UTC().Format(time.RFC3339),
			Image:       run.Image,
		}
		return rec.Validate()
	})
	if err != nil {
		opts.Log.Failf("measure node %s: %v", run.Profile, err)
		return Record{}, fmt.Errorf("measure node %s (vm %s, image %s): %w", run.Profile, run.Spec.Name, run.Image, err)
	}
	opts.Log.Passf("measure node %s: mrtd %s rtmr0 %s rtmr1 %s rtmr2 %s rtmr3 %s (quote sha256 %s)",
		run.Profile, rec.MRTD, rec.RTMR0, rec.RTMR1, rec.RTMR2, rec.RTMR3, rec.QuoteSHA256)
	return rec, nil
}

// MeasureNode measures the node image of every profile in images (profile → image, as the
// provider understands it): per profile, concurrently (at most opts.Concurrency VMs at once),
// it boots an ephemeral confidential VM, obtains a quote bound to a fresh random nonce,
// verifies it (tdx.VerifyQuote with opts.TrustedRoots, the nonce binding, not a debug TD),
// records MRTD and RTMR0–3 with the quote's SHA-256, and deletes the VM. The first failure
// cancels the other profiles and fails the stage; every VM is deleted on every path. The
// profiles must come out distinct (CheckDistinct).
func MeasureNode(ctx context.Context, provider vm.Provider, images map[release.Profile]string, opts NodeOptions) (*Published, error) {
	if provider == nil {
		return nil, outcome.UsageErrorf("measure node: no VM provider")
	}
	if _, err := release.ParseVersion(opts.Version); err != nil {
		return nil, fmt.Errorf("measure node: %w", err)
	}
	if len(images) == 0 {
		return nil, outcome.UsageErrorf("measure node: no profile to measure")
	}
	if err := opts.defaults(provider); err != nil {
		return nil, err
	}
	// Plan sequentially, in profile order, so that a deterministic Rand gives deterministic runs.
	var runs []nodeRun
	for _, prof := range slices.Sorted(maps.Keys(images)) {
		if _, err := release.ParseProfile(string(prof)); err != nil {
			return nil, fmt.Errorf("measure node: %w", err)
		}
		if images[prof] == "" {
			return nil, outcome.UsageErrorf("measure node: profile %s: empty image", prof)
		}
		run, err := planRun(prof, images[prof], &opts)
		if err != nil {
			return nil, err
		}
		runs = append(runs, run)
	}
	pub := &Published{SchemaVersion: PublishedSchemaVersion, Family: release.Node, Version: opts.Version, Profiles: map[release.Profile]Record{}}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Concurrency)
	for _, run := range runs {
		g.Go(func() error {
			rec, err := measureRun(gctx, provider, run, opts)
			if err != nil {
				return err
			}
			mu.Lock()
			pub.Profiles[run.Profile] = rec
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := CheckDistinct(pub); err != nil {
		return nil, fmt.Errorf("measure node: %w", err)
	}
	if err := pub.Validate(); err != nil {
		return nil, fmt.Errorf("measure node: %w", err)
	}
	return pub, nil
}
