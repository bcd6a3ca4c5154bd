package vm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// CleanupTimeout bounds the deletion WithVM performs after fn: it runs on a fresh context
// (the caller's values, none of its cancellation) so that a cancelled run still deletes.
const CleanupTimeout = 5 * time.Minute

// WithVM creates the VM spec describes, runs fn with it and deletes it on every path: fn
// succeeding, failing or panicking, and ctx being cancelled (the deletion then runs on a
// fresh context bounded by CleanupTimeout). A failed deletion is reported together with
// fn's error and names the VM so that an operator (or Sweep) can remove it. A panic in fn is
// re-raised after the deletion.
func WithVM(ctx context.Context, p Provider, spec Spec, fn func(ctx context.Context, inst Instance) error) (err error) {
	if p == nil {
		return outcome.UsageErrorf("vm %s: no provider", spec.Name)
	}
	if err := spec.Validate(); err != nil {
		return err
	}
	inst, createErr := p.Create(ctx, spec)
	if inst == nil {
		if createErr == nil {
			createErr = fmt.Errorf("provider returned no instance")
		}
		return fmt.Errorf("create vm %s: %w", spec.Name, createErr)
	}
	defer func() {
		r := recover()
		if delErr := deleteDetached(ctx, p, spec.Name); delErr != nil {
			err = errors.Join(err, delErr)
		}
		if r != nil {
			panic(r)
		}
	}()
	if createErr != nil {
		return fmt.Errorf("create vm %s: %w", spec.Name, createErr)
	}
	return fn(ctx, inst)
}

// deleteDetached deletes name on a context that keeps ctx's values but not its cancellation,
// bounded by CleanupTimeout.
func deleteDetached(ctx context.Context, p Provider, name string) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CleanupTimeout)
	defer cancel()
	if err := p.Delete(dctx, name); err != nil {
		return fmt.Errorf("delete vm %s (it may be left behind; `mero-release gcp sweep` removes it): %w", name, err)
	}
	return nil
}

// DefaultSweepAge is the age after which Sweep deletes an ephemeral VM (SPEC §11).
const DefaultSweepAge = 24 * time.Hour

// SweepOptions configure Sweep.
type SweepOptions struct {
	// OlderThan is the minimum age of a VM to delete; zero means DefaultSweepAge.
	OlderThan time.Duration
	// Now is the current time; zero means time.Now().
	Now time.Time
	// DryRun lists what would be deleted without deleting it.
	DryRun bool
	// Log receives one line per VM (nil discards).
	Log *outcome.Logger
}

// SweepFailure is a VM Sweep could not delete.
type SweepFailure struct {
	Info
	Error string `json:"error"`
}

// SweepReport is what Sweep found and did. Every list is sorted by name.
type SweepReport struct {
	// Cutoff is the creation time before which VMs were deleted.
	Cutoff time.Time `json:"cutoff"`
	// Deleted are the VMs deleted (or, in a dry run, that would have been).
	Deleted []Info `json:"deleted"`
	// Kept are the ephemeral VMs younger than the cutoff, or whose creation time is unknown.
	Kept []Info `json:"kept"`
	// Failed are the VMs whose deletion failed.
	Failed []SweepFailure `json:"failed"`
	// DryRun says nothing was deleted.
	DryRun bool `json:"dry_run"`
}

// Sweep deletes the ephemeral VMs (label mero-release=ephemeral) created before
// Now−OlderThan and reports what it deleted, kept and failed to delete. It tries every VM;
// the error (exit 1) lists the failures. A VM without a known creation time is kept.
func Sweep(ctx context.Context, p Provider, opts SweepOptions) (*SweepReport, error) {
	if p == nil {
		return nil, outcome.UsageErrorf("sweep: no provider")
	}
	age := opts.OlderThan
	if age == 0 {
		age = DefaultSweepAge
	}
	if age < 0 {
		return nil, outcome.UsageErrorf("sweep: older-than %s is negative", age)
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	rep := &SweepReport{Cutoff: now.Add(-age).UTC(), Deleted: []Info{}, Kept: []Info{}, Failed: []SweepFailure{}, DryRun: opts.DryRun}
	infos, err := p.List(ctx, EphemeralSelector())
	if err != nil {
		return nil, fmt.Errorf("sweep: list ephemeral vms: %w", err)
	}
	infos = slices.Clone(infos)
	slices.SortFunc(infos, func(a, b Info) int { return strings.Compare(a.Name, b.Name) })
	var errs []error
	for _, in := range infos {
		if !matches(in.Labels, EphemeralSelector()) {
			continue // a provider that ignored the selector: never touch foreign VMs
		}
		if in.Created.IsZero() || !in.Created.Before(rep.Cutoff) {
			rep.Kept = append(rep.Kept, in)
			continue
		}
		if opts.DryRun {
			opts.Log.Infof("sweep: would delete %s (created %s)", in.Name, in.Created.UTC().Format(time.RFC3339))
			rep.Deleted = append(rep.Deleted, in)
			continue
		}
		if err := p.Delete(ctx, in.Name); err != nil {
			opts.Log.Failf("sweep: delete %s: %v", in.Name, err)
			rep.Failed = append(rep.Failed, SweepFailure{Info: in, Error: err.Error()})
			errs = append(errs, fmt.Errorf("delete %s: %w", in.Name, err))
			continue
		}
		opts.Log.Passf("sweep: deleted %s (created %s)", in.Name, in.Created.UTC().Format(time.RFC3339))
		rep.Deleted = append(rep.Deleted, in)
	}
	if len(errs) > 0 {
		return rep, fmt.Errorf("sweep: %d of %d vms not deleted: %w", len(errs), len(rep.Failed)+len(rep.Deleted), errors.Join(errs...))
	}
	return rep, nil
}

// Matches reports whether labels carry every key/value of selector: the rule List follows.
func Matches(labels, selector map[string]string) bool { return matches(labels, selector) }

func matches(labels, selector map[string]string) bool {
	for _, k := range slices.Sorted(maps.Keys(selector)) {
		if v, ok := labels[k]; !ok || v != selector[k] {
			return false
		}
	}
	return true
}
