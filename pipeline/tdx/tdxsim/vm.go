package tdxsim

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/calimero-network/mero-release/pipeline/tdx"
)

// ErrStopped is returned (wrapped) by a VM that has been shut down.
var ErrStopped = errors.New("tdxsim: VM is shut down")

// VM is a booted simulated TD: its measurement registers, its event log and a quote generator
// backed by the Authority that booted it. It is safe for concurrent use.
type VM struct {
	auth    *Authority
	name    string
	profile string

	mu      sync.Mutex
	m       tdx.Measurements
	events  []tdx.Event
	stopped bool
}

// Boot measures img as a TD's firmware and boot chain would and returns the running VM, whose
// quotes this Authority signs.
func (a *Authority) Boot(ctx context.Context, img *Image) (*VM, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tdxsim: boot: %w", err)
	}
	m, events, err := Measure(img)
	if err != nil {
		return nil, fmt.Errorf("tdxsim: boot: %w", err)
	}
	return &VM{auth: a, name: img.Name, profile: img.Profile, m: m, events: events}, nil
}

// BootRegisters boots a TD whose boot chain is known only by the registers it ends with —
// an OS image pinned by its published MRTD and RTMR0–2, such as the dstack OS
// (pipeline/dstack) — and returns the running VM, whose quotes this Authority signs. RTMR3 of
// m is ignored: it starts at zero and grows with VM.ExtendRTMR3. The event log holds only the
// runtime events, since the boot events are not known.
func (a *Authority) BootRegisters(ctx context.Context, name, profile string, m tdx.Measurements) (*VM, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tdxsim: boot: %w", err)
	}
	if name == "" {
		return nil, errors.New("tdxsim: boot: empty image name")
	}
	m.RTMR[3] = [tdx.RegisterSize]byte{}
	return &VM{auth: a, name: name, profile: profile, m: m}, nil
}

// Name is the name of the image the VM booted.
func (vm *VM) Name() string { return vm.name }

// Profile is the profile of the image the VM booted.
func (vm *VM) Profile() string { return vm.profile }

// Measurements returns the current MRTD and RTMR0–3.
func (vm *VM) Measurements() tdx.Measurements {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.m
}

// EventLog returns a copy of the event log: the boot events (none for a VM of BootRegisters)
// and every runtime extension. Replaying it yields the RTMRs of Measurements and of every
// quote (RTMR3 only, for a VM of BootRegisters).
func (vm *VM) EventLog() []tdx.Event {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return append([]tdx.Event(nil), vm.events...)
}

// ExtendRTMR3 extends a runtime event into RTMR3 and appends it to the event log, as a TD's
// guest does for application measurements (dstack's compose hash, for instance). The event's
// IMR must be 3: RTMR0–2 are fixed by the boot chain.
func (vm *VM) ExtendRTMR3(ev tdx.Event) error {
	if ev.IMR != 3 {
		return fmt.Errorf("tdxsim: extend: event imr is %d, only RTMR3 is extendable at run time", ev.IMR)
	}
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if vm.stopped {
		return fmt.Errorf("tdxsim: extend RTMR3: %w", ErrStopped)
	}
	vm.m.RTMR[3] = tdx.Extend(vm.m.RTMR[3], ev.Digest)
	vm.events = append(vm.events, ev)
	return nil
}

// Quote returns a TDX v4 quote of the VM's current registers with reportData, signed through
// the Authority's chain.
func (vm *VM) Quote(reportData [64]byte) ([]byte, error) {
	vm.mu.Lock()
	m, stopped := vm.m, vm.stopped
	vm.mu.Unlock()
	if stopped {
		return nil, fmt.Errorf("tdxsim: quote: %w", ErrStopped)
	}
	body := NewBody(m, reportData)
	body.TEETCBSVN = vm.auth.platform.TEETCBSVN
	return vm.auth.SignQuote(body)
}

// Shutdown stops the VM: later Quote and ExtendRTMR3 calls fail with ErrStopped. It is
// idempotent.
func (vm *VM) Shutdown() {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	vm.stopped = true
}
