// Package vmsim is the local vm.Provider: it boots node-image descriptions (tdxsim manifests,
// as under examples/node-image/) in the TDX simulator, so that the node measurement stage
// and the E2E run with real quote bytes and real RTMR arithmetic on a machine without TDX.
package vmsim

import (
	"context"
	"crypto/x509"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
	"github.com/calimero-network/mero-release/pipeline/vm"
)

// Source is the measure.Record source of measurements taken with this provider.
const Source = "tdx-simulator"

// Provider boots simulated TDX VMs whose quotes its Authority signs. It is safe for
// concurrent use.
type Provider struct {
	auth *tdxsim.Authority
	now  func() time.Time

	mu  sync.Mutex
	vms map[string]*entry
}

type entry struct {
	vm      *tdxsim.VM
	info    vm.Info
	nonce   [vm.NonceSize]byte
	deleted bool
}

// Option configures a Provider.
type Option func(*Provider)

// WithClock sets the clock that stamps creation times (default time.Now).
func WithClock(now func() time.Time) Option { return func(p *Provider) { p.now = now } }

// New returns a provider whose VMs' quotes are signed by auth.
func New(auth *tdxsim.Authority, opts ...Option) *Provider {
	p := &Provider{auth: auth, now: time.Now, vms: map[string]*entry{}}
	for _, o := range opts {
		o(p)
	}
	return p
}

// NewDefault returns a provider backed by the authority of tdxsim.DefaultSeed, the same one
// the CLI and the local pipeline use, so that its root (RootPEM) is stable.
func NewDefault(opts ...Option) (*Provider, error) {
	auth, err := tdxsim.NewAuthority([]byte(tdxsim.DefaultSeed))
	if err != nil {
		return nil, fmt.Errorf("simulator authority: %w", err)
	}
	return New(auth, opts...), nil
}

// MeasurementSource is the Record source of quotes from this provider ("tdx-simulator").
func (p *Provider) MeasurementSource() string { return Source }

// RootPool is the trusted root of this provider's quotes.
func (p *Provider) RootPool() *x509.CertPool { return p.auth.RootPool() }

// RootPEM is the provider's root certificate in PEM form (a --trusted-root file).
func (p *Provider) RootPEM() []byte { return p.auth.RootPEM() }

// LoadImage resolves a Spec.Image for profile: a manifest file, or a directory holding
// PROFILE.json (tdxsim.LoadImage). The image's profile must be the one asked for.
func LoadImage(image, profile string) (*tdxsim.Image, error) {
	st, err := os.Stat(image)
	if err != nil {
		return nil, outcome.UsageErrorf("node image %s: %v", image, err)
	}
	if st.IsDir() {
		return tdxsim.LoadImage(image, profile)
	}
	img, err := tdxsim.LoadManifest(image)
	if err != nil {
		return nil, err
	}
	if img.Profile != profile {
		return nil, outcome.UsageErrorf("node image %s: profile is %q, want %q", image, img.Profile, profile)
	}
	return img, nil
}

// Create loads the image description named by spec.Image, boots it and returns the running
// VM. A name already in use is an error.
func (p *Provider) Create(ctx context.Context, spec vm.Spec) (vm.Instance, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	img, err := LoadImage(spec.Image, string(spec.Profile))
	if err != nil {
		return nil, err
	}
	booted, err := p.auth.Boot(ctx, img)
	if err != nil {
		return nil, fmt.Errorf("boot %s: %w", spec.Name, err)
	}
	labels := maps.Clone(spec.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	created := p.now().UTC()
	labels[vm.LabelManaged] = vm.ManagedEphemeral
	labels[vm.LabelProfile] = string(spec.Profile)
	labels[vm.LabelCreatedAt] = strconv.FormatInt(created.Unix(), 10)

	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.vms[spec.Name]; ok && !e.deleted {
		booted.Shutdown()
		return nil, fmt.Errorf("create %s: a vm with this name already exists", spec.Name)
	}
	e := &entry{vm: booted, nonce: spec.Nonce, info: vm.Info{Name: spec.Name, Labels: labels, Status: "RUNNING", Created: created}}
	p.vms[spec.Name] = e
	return &instance{p: p, name: spec.Name, e: e}, nil
}

// Delete shuts the VM down and forgets it; an unknown name is not an error.
func (p *Provider) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.vms[name]; ok {
		e.vm.Shutdown()
		e.deleted = true
		delete(p.vms, name)
	}
	return nil
}

// List returns the running VMs whose labels match labelSelector, sorted by name.
func (p *Provider) List(ctx context.Context, labelSelector map[string]string) ([]vm.Info, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []vm.Info
	for _, name := range slices.Sorted(maps.Keys(p.vms)) {
		in := p.vms[name].info
		if vm.Matches(in.Labels, labelSelector) {
			in.Labels = maps.Clone(in.Labels)
			out = append(out, in)
		}
	}
	return out, nil
}

// Running returns the names of the VMs not yet deleted, sorted.
func (p *Provider) Running() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Sorted(maps.Keys(p.vms))
}

// Booted returns the simulated VM called name (for tests and the E2E, which extend RTMR3 or
// read the event log), or nil.
func (p *Provider) Booted(name string) *tdxsim.VM {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.vms[name]; ok {
		return e.vm
	}
	return nil
}

type instance struct {
	p    *Provider
	name string
	e    *entry
}

func (i *instance) Name() string { return i.name }

// Quote returns a quote of the VM's current registers with REPORTDATA = the spec's nonce.
func (i *instance) Quote(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("quote %s: %w", i.name, err)
	}
	q, err := i.e.vm.Quote(vm.ReportDataFor(i.e.nonce))
	if err != nil {
		return nil, fmt.Errorf("quote %s: %w", i.name, err)
	}
	return q, nil
}
