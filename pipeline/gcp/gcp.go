package gcp

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	compute "cloud.google.com/go/compute/apiv1"
	"cloud.google.com/go/compute/apiv1/computepb"
	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/calimero-network/mero-release/pipeline/gcp/guestapi"
	"github.com/calimero-network/mero-release/pipeline/internal/ctxio"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/vm"
)

// Source is the measure.Record source of measurements taken on GCP Confidential VMs.
const Source = "gcp-tdx-vm"

// Defaults of Config (SPEC §11: node releases are measured on c3-standard-4 TDX VMs).
const (
	DefaultMachineType    = "c3-standard-4"
	DefaultMinCPUPlatform = "Intel Sapphire Rapids"
	DefaultDiskType       = "pd-balanced"
	DefaultNetwork        = "global/networks/default"
	DefaultBootTimeout    = 10 * time.Minute
	DefaultQuoteTimeout   = 10 * time.Minute
	DefaultOpTimeout      = 10 * time.Minute
	DefaultPollInterval   = 5 * time.Second
	DefaultDeleteAttempts = 5
)

// Guest-attribute and metadata names of the agent contract (package guestapi; see the
// package comment).
const (
	GuestAttributeNamespace = guestapi.Namespace
	QuoteKey                = guestapi.QuoteKey
	QuotePartsKey           = guestapi.QuotePartsKey
	QuoteErrorKey           = guestapi.QuoteErrorKey
	MetadataNonce           = guestapi.MetadataNonce
	MetadataProfile         = guestapi.MetadataProfile
	MetadataGuestAttributes = guestapi.MetadataGuestAttributes
	MetadataQuoteRequest    = guestapi.MetadataQuoteRequest
)

// Config configures a Provider. Project and Zone are required; every other field has a default.
type Config struct {
	Project string
	Zone    string
	// MachineType, MinCPUPlatform, DiskType, Network and Subnetwork shape the VM.
	MachineType    string
	MinCPUPlatform string
	DiskType       string
	DiskSizeGB     int64
	Network        string
	Subnetwork     string
	// BootTimeout bounds the wait for RUNNING; QuoteTimeout the wait for the quote;
	// OperationTimeout each insert/delete operation.
	BootTimeout      time.Duration
	QuoteTimeout     time.Duration
	OperationTimeout time.Duration
	// PollInterval is the pause between polls of the instance and its guest attributes, and
	// the first pause between delete attempts (doubling, at most a minute).
	PollInterval time.Duration
	// DeleteAttempts is how often Delete tries before giving up.
	DeleteAttempts int
	// Now stamps the created-at label (default time.Now).
	Now func() time.Time
	// Log receives progress lines (nil discards).
	Log *outcome.Logger
}

func (c *Config) defaults() error {
	if c.Project == "" || strings.ContainsAny(c.Project, "/ ") {
		return outcome.UsageErrorf("gcp: project %q: want a project id (GCP_PROJECT_ID)", c.Project)
	}
	if c.Zone == "" || strings.ContainsAny(c.Zone, "/ ") {
		return outcome.UsageErrorf("gcp: zone %q: want a TDX-capable zone such as us-central1-a (GCP_ZONE)", c.Zone)
	}
	set := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	set(&c.MachineType, DefaultMachineType)
	set(&c.MinCPUPlatform, DefaultMinCPUPlatform)
	set(&c.DiskType, DefaultDiskType)
	set(&c.Network, DefaultNetwork)
	setD := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	setD(&c.BootTimeout, DefaultBootTimeout)
	setD(&c.QuoteTimeout, DefaultQuoteTimeout)
	setD(&c.OperationTimeout, DefaultOpTimeout)
	setD(&c.PollInterval, DefaultPollInterval)
	if c.DeleteAttempts <= 0 {
		c.DeleteAttempts = DefaultDeleteAttempts
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Provider creates and deletes TDX Confidential VMs in one project and zone. It is safe for
// concurrent use. Close it when done.
type Provider struct {
	cfg       Config
	instances *compute.InstancesClient
}

// New returns a provider; opts are client options (CredentialsOption in production,
// option.WithEndpoint + option.WithoutAuthentication in tests).
func New(ctx context.Context, cfg Config, opts ...option.ClientOption) (*Provider, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	c, err := compute.NewInstancesRESTClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gcp: compute client: %w", err)
	}
	return &Provider{cfg: cfg, instances: c}, nil
}

// Close releases the client's connections.
func (p *Provider) Close() error { return p.instances.Close() }

// Config returns the provider's configuration with its defaults filled in.
func (p *Provider) Config() Config { return p.cfg }

// MeasurementSource is the Record source of quotes from this provider ("gcp-tdx-vm").
func (p *Provider) MeasurementSource() string { return Source }

// ImagePath turns a Spec.Image into the boot disk's source image: a bare image name becomes
// projects/PROJECT/global/images/NAME; "global/images/NAME" gets the project prefix; a full
// "projects/…" path or https URL is kept.
func ImagePath(project, image string) (string, error) {
	switch {
	case strings.HasPrefix(image, "projects/") || strings.HasPrefix(image, "https://"):
		return image, nil
	case strings.HasPrefix(image, "global/images/"):
		return "projects/" + project + "/" + image, nil
	}
	if err := vm.ValidateName(image); err != nil {
		return "", outcome.UsageErrorf("gcp image %q: want NAME, global/images/NAME or projects/P/global/images/NAME", image)
	}
	return "projects/" + project + "/global/images/" + image, nil
}

// instanceResource is the insert request body for spec.
func (p *Provider) instanceResource(spec vm.Spec, labels map[string]string) (*computepb.Instance, error) {
	image, err := ImagePath(p.cfg.Project, spec.Image)
	if err != nil {
		return nil, err
	}
	zone := p.cfg.Zone
	disk := &computepb.AttachedDiskInitializeParams{
		SourceImage: &image,
		DiskType:    ptr("zones/" + zone + "/diskTypes/" + p.cfg.DiskType),
	}
	if p.cfg.DiskSizeGB > 0 {
		disk.DiskSizeGb = &p.cfg.DiskSizeGB
	}
	nic := &computepb.NetworkInterface{Network: ptr(p.cfg.Network)}
	if p.cfg.Subnetwork != "" {
		nic.Subnetwork = ptr(p.cfg.Subnetwork)
	}
	return &computepb.Instance{
		Name:           ptr(spec.Name),
		Description:    ptr("mero-release ephemeral measurement VM (" + string(spec.Profile) + "); deleted after use"),
		MachineType:    ptr("zones/" + zone + "/machineTypes/" + p.cfg.MachineType),
		MinCpuPlatform: ptr(p.cfg.MinCPUPlatform),
		ConfidentialInstanceConfig: &computepb.ConfidentialInstanceConfig{
			ConfidentialInstanceType: ptr(computepb.ConfidentialInstanceConfig_TDX.String()),
		},
		Scheduling: &computepb.Scheduling{
			OnHostMaintenance: ptr(computepb.Scheduling_TERMINATE.String()),
			AutomaticRestart:  ptr(false),
		},
		Disks: []*computepb.AttachedDisk{{
			Boot:             ptr(true),
			AutoDelete:       ptr(true),
			Type:             ptr(computepb.AttachedDisk_PERSISTENT.String()),
			InitializeParams: disk,
		}},
		NetworkInterfaces: []*computepb.NetworkInterface{nic},
		Labels:            labels,
		Metadata: &computepb.Metadata{Items: []*computepb.Items{
			{Key: ptr(MetadataGuestAttributes), Value: ptr("TRUE")},
			{Key: ptr(MetadataNonce), Value: ptr(hex.EncodeToString(spec.Nonce[:]))},
			{Key: ptr(MetadataProfile), Value: ptr(string(spec.Profile))},
		}},
	}, nil
}

// Create inserts the TDX VM spec describes and waits until it runs. After the insert was
// accepted, any failure deletes the VM before Create returns.
func (p *Provider) Create(ctx context.Context, spec vm.Spec) (vm.Instance, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	labels, err := Labels(spec.Labels, spec.Profile, p.cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("vm %s: %w", spec.Name, err)
	}
	res, err := p.instanceResource(spec, labels)
	if err != nil {
		return nil, err
	}
	p.cfg.Log.Infof("gcp: creating TDX VM %s (%s, image %s) in %s/%s", spec.Name, p.cfg.MachineType, res.GetDisks()[0].GetInitializeParams().GetSourceImage(), p.cfg.Project, p.cfg.Zone)
	op, err := p.instances.Insert(ctx, &computepb.InsertInstanceRequest{Project: p.cfg.Project, Zone: p.cfg.Zone, InstanceResource: res})
	if err != nil {
		err = fmt.Errorf("gcp: insert instance %s: %w", spec.Name, err)
		if isAPIError(err) {
			return nil, err // refused by the API: nothing was created (and a 409 means the name is someone else's)
		}
		// The request may have reached the API before the transport failed: delete to be sure.
		return nil, p.cleanup(ctx, spec.Name, err)
	}
	if err := p.waitOp(ctx, op, "insert instance "+spec.Name); err != nil {
		return nil, p.cleanup(ctx, spec.Name, err)
	}
	if err := p.waitRunning(ctx, spec.Name); err != nil {
		return nil, p.cleanup(ctx, spec.Name, err)
	}
	p.cfg.Log.Infof("gcp: VM %s is RUNNING", spec.Name)
	return &instance{p: p, name: spec.Name}, nil
}

// cleanup deletes name on a detached, bounded context after a failed create and returns cause
// joined with any deletion error.
func (p *Provider) cleanup(ctx context.Context, name string, cause error) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), vm.CleanupTimeout)
	defer cancel()
	if err := p.Delete(dctx, name); err != nil {
		return errors.Join(cause, fmt.Errorf("gcp: delete %s after failed create (it may be left behind; `mero-release gcp sweep` removes it): %w", name, err))
	}
	return cause
}

// waitOp waits for op (bounded by OperationTimeout) and returns its error, if any.
func (p *Provider) waitOp(ctx context.Context, op *compute.Operation, what string) error {
	wctx, cancel := context.WithTimeout(ctx, p.cfg.OperationTimeout)
	defer cancel()
	if err := op.Wait(wctx); err != nil {
		return fmt.Errorf("gcp: %s: wait for operation %s: %w", what, op.Name(), err)
	}
	if e := op.Proto().GetError(); e != nil && len(e.GetErrors()) > 0 {
		var msgs []string
		for _, x := range e.GetErrors() {
			msgs = append(msgs, x.GetCode()+": "+x.GetMessage())
		}
		return &opError{what: what, op: op.Name(), msg: strings.Join(msgs, "; "), notFound: allNotFound(e.GetErrors())}
	}
	return nil
}

// opError is an operation that completed with errors.
type opError struct {
	what, op, msg string
	notFound      bool
}

func (e *opError) Error() string {
	return fmt.Sprintf("gcp: %s: operation %s failed: %s", e.what, e.op, e.msg)
}

func allNotFound(errs []*computepb.Errors) bool {
	for _, e := range errs {
		if e.GetCode() != "RESOURCE_NOT_FOUND" {
			return false
		}
	}
	return len(errs) > 0
}

// terminalStatus reports the statuses in which a VM will not reach RUNNING by itself.
func terminalStatus(s string) bool {
	switch s {
	case computepb.Instance_STOPPING.String(), computepb.Instance_STOPPED.String(), computepb.Instance_TERMINATED.String(),
		computepb.Instance_SUSPENDING.String(), computepb.Instance_SUSPENDED.String():
		return true
	}
	return false
}

// waitRunning polls the instance until it is RUNNING, fails in a terminal status, or times out.
func (p *Provider) waitRunning(ctx context.Context, name string) error {
	wctx, cancel := context.WithTimeout(ctx, p.cfg.BootTimeout)
	defer cancel()
	last := "unknown"
	for {
		inst, err := p.instances.Get(wctx, &computepb.GetInstanceRequest{Project: p.cfg.Project, Zone: p.cfg.Zone, Instance: name})
		switch {
		case err == nil:
			last = inst.GetStatus()
			if last == computepb.Instance_RUNNING.String() {
				return nil
			}
			if terminalStatus(last) {
				return fmt.Errorf("gcp: vm %s is %s, not RUNNING: %s", name, last, inst.GetStatusMessage())
			}
		case wctx.Err() == nil && !isAPIError(err):
			// transport hiccup: keep polling until the deadline
		case wctx.Err() == nil && isNotFound(err):
			return fmt.Errorf("gcp: vm %s disappeared while booting: %w", name, err)
		case wctx.Err() == nil:
			return fmt.Errorf("gcp: get vm %s: %w", name, err)
		}
		if err := ctxio.Sleep(wctx, p.cfg.PollInterval); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("gcp: wait for vm %s to run (status %s): %w", name, last, ctx.Err())
			}
			return fmt.Errorf("gcp: vm %s not RUNNING within %s (status %s)", name, p.cfg.BootTimeout, last)
		}
	}
}

// Delete deletes the VM, retrying failures up to DeleteAttempts times with a doubling pause;
// a VM that does not exist counts as deleted.
func (p *Provider) Delete(ctx context.Context, name string) error {
	pause := p.cfg.PollInterval
	var last error
	for attempt := 1; attempt <= p.cfg.DeleteAttempts; attempt++ {
		last = p.deleteOnce(ctx, name)
		if last == nil {
			p.cfg.Log.Infof("gcp: deleted VM %s", name)
			return nil
		}
		if ctx.Err() != nil || attempt == p.cfg.DeleteAttempts {
			break
		}
		p.cfg.Log.Warnf("gcp: delete %s (attempt %d of %d): %v", name, attempt, p.cfg.DeleteAttempts, last)
		if err := ctxio.Sleep(ctx, pause); err != nil {
			break
		}
		pause = min(2*pause, time.Minute)
	}
	return fmt.Errorf("gcp: delete vm %s: %w", name, last)
}

func (p *Provider) deleteOnce(ctx context.Context, name string) error {
	op, err := p.instances.Delete(ctx, &computepb.DeleteInstanceRequest{Project: p.cfg.Project, Zone: p.cfg.Zone, Instance: name})
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return err
	}
	if err := p.waitOp(ctx, op, "delete instance "+name); err != nil {
		var oe *opError
		if errors.As(err, &oe) && oe.notFound {
			return nil
		}
		return err
	}
	return nil
}

// List returns the zone's VMs carrying every label of labelSelector.
func (p *Provider) List(ctx context.Context, labelSelector map[string]string) ([]vm.Info, error) {
	filter, err := Filter(labelSelector)
	if err != nil {
		return nil, err
	}
	req := &computepb.ListInstancesRequest{Project: p.cfg.Project, Zone: p.cfg.Zone}
	if filter != "" {
		req.Filter = &filter
	}
	var out []vm.Info
	for inst, err := range p.instances.List(ctx, req).All() {
		if err != nil {
			return nil, fmt.Errorf("gcp: list instances in %s/%s: %w", p.cfg.Project, p.cfg.Zone, err)
		}
		if !vm.Matches(inst.GetLabels(), labelSelector) {
			continue
		}
		out = append(out, vm.Info{Name: inst.GetName(), Labels: inst.GetLabels(), Status: inst.GetStatus(), Created: created(inst)})
	}
	return out, nil
}

// created is the instance's creation time: creationTimestamp, else the created-at label.
func created(inst *computepb.Instance) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, inst.GetCreationTimestamp()); err == nil {
		return t.UTC()
	}
	if t, ok := parseUnix(inst.GetLabels()[vm.LabelCreatedAt]); ok {
		return t
	}
	return time.Time{}
}

func isAPIError(err error) bool {
	var ae *apierror.APIError
	var ge *googleapi.Error
	return errors.As(err, &ae) || errors.As(err, &ge)
}

func isNotFound(err error) bool {
	var ae *apierror.APIError
	if errors.As(err, &ae) && ae.HTTPCode() == http.StatusNotFound {
		return true
	}
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusNotFound
}

func ptr[T any](v T) *T { return &v }
