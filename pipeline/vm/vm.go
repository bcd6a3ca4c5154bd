// Package vm is the interface between the measurement and E2E stages and whatever runs an
// ephemeral confidential VM: a GCP Confidential VM (TDX) in CI (package gcp) or the TDX
// simulator on a laptop (package vm/vmsim). It also holds the guaranteed-cleanup helper
// WithVM and the sweeper that deletes leftover VMs.
//
// The contract every Provider keeps:
//   - Create boots a VM from Spec.Image for Spec.Profile, labels it (Spec.Labels plus the
//     ephemeral labels below) and hands Spec.Nonce to the guest. It returns once the VM is
//     running. When it returns an error, it has already deleted whatever it created (or it
//     returns the Instance together with the error so that the caller deletes it).
//   - Instance.Quote returns a TDX quote produced inside the VM whose 64-byte REPORTDATA is
//     ReportDataFor(Spec.Nonce): the nonce itself, byte for byte.
//   - Delete is idempotent: deleting a VM that is already gone succeeds.
//   - List returns the VMs whose labels include every key/value of the selector.
package vm

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/calimero-network/mero-release/pipeline/internal/lazyre"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
)

// NonceSize is the size of the nonce bound into a VM's quote: the whole TDX REPORTDATA field.
const NonceSize = 64

// Labels every provider puts on the VMs it creates; the sweeper selects on LabelManaged.
const (
	// LabelManaged marks a VM as created by mero-release; its value is ManagedEphemeral.
	LabelManaged = "mero-release"
	// ManagedEphemeral is the value of LabelManaged for VMs that must not outlive their stage.
	ManagedEphemeral = "ephemeral"
	// LabelProfile carries the profile the VM's image was built for.
	LabelProfile = "profile"
	// LabelCreatedAt carries the creation time in Unix seconds (decimal).
	LabelCreatedAt = "created-at"
	// LabelRunID carries the CI run that created the VM (GitHub run id, or "local").
	LabelRunID = "run-id"
	// LabelTag carries the release tag being measured or tested.
	LabelTag = "tag"
)

// EphemeralSelector is the label selector of every VM mero-release creates.
func EphemeralSelector() map[string]string {
	return map[string]string{LabelManaged: ManagedEphemeral}
}

// Provider creates, deletes and lists ephemeral confidential VMs.
type Provider interface {
	// Create boots a VM as spec describes and returns it once it runs. On error nothing is
	// left behind, unless a non-nil Instance is returned with the error (then the caller
	// must delete it; WithVM does).
	Create(ctx context.Context, spec Spec) (Instance, error)
	// Delete deletes the VM called name; a VM that does not exist is not an error.
	Delete(ctx context.Context, name string) error
	// List returns the VMs carrying every label of labelSelector (all VMs for an empty one).
	List(ctx context.Context, labelSelector map[string]string) ([]Info, error)
}

// Spec describes a VM to create.
type Spec struct {
	// Name is the VM name: 1–63 characters, lower-case letters, digits and '-', starting with
	// a letter and not ending with '-' (the GCE instance name rule).
	Name string
	// Image is what to boot: a GCP image (NAME or projects/P/global/images/NAME) or, for the
	// simulator, a node-image manifest or directory.
	Image string
	// Profile is the profile the image was built for.
	Profile release.Profile
	// Labels are extra labels (run id, tag, …); providers add the ephemeral labels.
	Labels map[string]string
	// Nonce is bound into the VM's quote (see ReportDataFor).
	Nonce [NonceSize]byte
}

var nameRE = lazyre.New(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)

// ValidateName checks a VM name against the GCE instance name rule (RFC 1035 label).
func ValidateName(name string) error {
	if !nameRE().MatchString(name) {
		return outcome.UsageErrorf("vm name %q: want 1–63 lower-case letters, digits or '-', starting with a letter and not ending with '-'", name)
	}
	return nil
}

// Validate checks the spec's name, image and profile.
func (s Spec) Validate() error {
	if err := ValidateName(s.Name); err != nil {
		return err
	}
	if s.Image == "" {
		return outcome.UsageErrorf("vm %s: image: empty", s.Name)
	}
	if _, err := release.ParseProfile(string(s.Profile)); err != nil {
		return fmt.Errorf("vm %s: %w", s.Name, err)
	}
	return nil
}

// Instance is a running VM.
type Instance interface {
	// Name is the VM's name (Spec.Name).
	Name() string
	// Quote returns a TDX quote produced inside the VM whose REPORTDATA is
	// ReportDataFor(Spec.Nonce).
	Quote(ctx context.Context) ([]byte, error)
}

// Info describes an existing VM, as List reports it.
type Info struct {
	Name    string            `json:"name"`
	Labels  map[string]string `json:"labels,omitempty"`
	Status  string            `json:"status,omitempty"`
	Created time.Time         `json:"created"`
}

// ReportDataFor is the REPORTDATA a VM's quote must carry for nonce: the 64 nonce bytes
// unchanged. The GCP boot agent and the simulator both follow this rule.
func ReportDataFor(nonce [NonceSize]byte) [64]byte { return nonce }

// CheckReportData checks, in constant time, that reportData binds nonce; the error (exit 10)
// shows both values.
func CheckReportData(reportData [64]byte, nonce [NonceSize]byte) error {
	want := ReportDataFor(nonce)
	if subtle.ConstantTimeCompare(reportData[:], want[:]) != 1 {
		return outcome.VerificationErrorf("quote report data %s does not bind the nonce %s",
			hex.EncodeToString(reportData[:]), hex.EncodeToString(want[:]))
	}
	return nil
}
