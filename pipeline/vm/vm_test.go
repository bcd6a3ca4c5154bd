package vm_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/vm"
)

// recorder is an in-memory provider that records calls and injects failures.
type recorder struct {
	mu        sync.Mutex
	live      map[string]vm.Info
	creates   int
	deletes   int
	createErr error // returned by Create, with no instance
	partial   bool  // Create returns the instance together with createErr
	deleteErr map[string]error
	deleteCtx []error // ctx.Err() seen by each Delete
	listed    []vm.Info
	ignoreSel bool // List returns everything, as a careless provider might
}

func newRecorder() *recorder {
	return &recorder{live: map[string]vm.Info{}, deleteErr: map[string]error{}}
}

type inst struct{ name string }

func (i inst) Name() string                          { return i.name }
func (i inst) Quote(context.Context) ([]byte, error) { return []byte("quote"), nil }

func (r *recorder) Create(_ context.Context, spec vm.Spec) (vm.Instance, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.createErr != nil && !r.partial {
		return nil, r.createErr
	}
	r.creates++
	r.live[spec.Name] = vm.Info{Name: spec.Name, Labels: spec.Labels}
	return inst{spec.Name}, r.createErr
}

func (r *recorder) Delete(ctx context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deleteCtx = append(r.deleteCtx, ctx.Err())
	if err := r.deleteErr[name]; err != nil {
		return err
	}
	if _, ok := r.live[name]; ok {
		r.deletes++
		delete(r.live, name)
	}
	return nil
}

func (r *recorder) List(_ context.Context, sel map[string]string) ([]vm.Info, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []vm.Info
	for _, in := range r.listed {
		if r.ignoreSel || vm.Matches(in.Labels, sel) {
			out = append(out, in)
		}
	}
	return out, nil
}

func spec(name string) vm.Spec {
	return vm.Spec{Name: name, Image: "img", Profile: release.Debug}
}

func assertClean(t *testing.T, r *recorder) {
	t.Helper()
	if r.creates != r.deletes || len(r.live) != 0 {
		t.Fatalf("creates %d, deletes %d, live %v: a VM was left behind", r.creates, r.deletes, slices.Collect(maps.Keys(r.live)))
	}
}

func TestWithVMDeletesOnEveryPath(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		fn      func(context.Context, vm.Instance) error
		wantErr error
	}{
		{"success", func(context.Context, vm.Instance) error { return nil }, nil},
		{"error", func(context.Context, vm.Instance) error { return boom }, boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorder()
			var got string
			err := vm.WithVM(context.Background(), r, spec("vm-a"), func(ctx context.Context, i vm.Instance) error {
				got = i.Name()
				return tt.fn(ctx, i)
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != "vm-a" {
				t.Fatalf("fn saw instance %q", got)
			}
			if r.creates != 1 {
				t.Fatalf("creates = %d", r.creates)
			}
			assertClean(t, r)
		})
	}
}

func TestWithVMPanicDeletesAndRepanics(t *testing.T) {
	r := newRecorder()
	defer func() {
		if p := recover(); p != "kaboom" {
			t.Fatalf("recovered %v, want the original panic", p)
		}
		assertClean(t, r)
	}()
	_ = vm.WithVM(context.Background(), r, spec("vm-p"), func(context.Context, vm.Instance) error { panic("kaboom") })
	t.Fatal("WithVM returned instead of re-panicking")
}

func TestWithVMCancelledContextDeletesOnFreshContext(t *testing.T) {
	r := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	err := vm.WithVM(ctx, r, spec("vm-c"), func(ctx context.Context, _ vm.Instance) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if len(r.deleteCtx) != 1 || r.deleteCtx[0] != nil {
		t.Fatalf("delete contexts %v: want one live context", r.deleteCtx)
	}
	assertClean(t, r)
}

func TestWithVMCreateFailure(t *testing.T) {
	t.Run("nothing created", func(t *testing.T) {
		r := newRecorder()
		r.createErr = errors.New("quota exceeded")
		called := false
		err := vm.WithVM(context.Background(), r, spec("vm-f"), func(context.Context, vm.Instance) error { called = true; return nil })
		if err == nil || !strings.Contains(err.Error(), "create vm vm-f: quota exceeded") {
			t.Fatalf("err = %v", err)
		}
		if called || len(r.deleteCtx) != 0 {
			t.Fatalf("fn called %v, deletes attempted %d: a failed create with no instance must not delete by name", called, len(r.deleteCtx))
		}
		assertClean(t, r)
	})
	t.Run("partial create is deleted", func(t *testing.T) {
		r := newRecorder()
		r.createErr, r.partial = errors.New("never RUNNING"), true
		called := false
		err := vm.WithVM(context.Background(), r, spec("vm-g"), func(context.Context, vm.Instance) error { called = true; return nil })
		if err == nil || !strings.Contains(err.Error(), "never RUNNING") || called {
			t.Fatalf("err = %v, fn called %v", err, called)
		}
		assertClean(t, r)
	})
}

func TestWithVMDeleteFailureIsReported(t *testing.T) {
	r := newRecorder()
	r.deleteErr["vm-d"] = errors.New("backend unavailable")
	fnErr := errors.New("fn failed")
	err := vm.WithVM(context.Background(), r, spec("vm-d"), func(context.Context, vm.Instance) error { return fnErr })
	if !errors.Is(err, fnErr) || !strings.Contains(err.Error(), "delete vm vm-d") || !strings.Contains(err.Error(), "sweep") {
		t.Fatalf("err = %v: want both the fn error and the delete failure naming the VM", err)
	}
}

func TestWithVMRejectsBadSpec(t *testing.T) {
	r := newRecorder()
	for _, s := range []vm.Spec{
		{Name: "Bad_Name", Image: "i", Profile: release.Debug},
		{Name: "ok", Image: "", Profile: release.Debug},
		{Name: "ok", Image: "i", Profile: "prod"},
		{Name: "ends-", Image: "i", Profile: release.Debug},
		{Name: strings.Repeat("a", 64), Image: "i", Profile: release.Debug},
	} {
		err := vm.WithVM(context.Background(), r, s, func(context.Context, vm.Instance) error { return nil })
		if outcome.Code(err) != outcome.Usage {
			t.Errorf("spec %+v: err = %v, want a usage error", s, err)
		}
	}
	if err := vm.WithVM(context.Background(), nil, spec("x"), nil); outcome.Code(err) != outcome.Usage {
		t.Errorf("nil provider: err = %v", err)
	}
	if r.creates != 0 {
		t.Fatalf("created %d VMs for invalid specs", r.creates)
	}
}

func TestCheckReportData(t *testing.T) {
	var nonce [64]byte
	copy(nonce[:], "nonce")
	if err := vm.CheckReportData(vm.ReportDataFor(nonce), nonce); err != nil {
		t.Fatal(err)
	}
	other := nonce
	other[63] ^= 1
	err := vm.CheckReportData(other, nonce)
	if outcome.Code(err) != outcome.VerificationFailed || !strings.Contains(err.Error(), "does not bind the nonce") {
		t.Fatalf("err = %v", err)
	}
}

func TestSweep(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	eph := func(name string, age time.Duration) vm.Info {
		in := vm.Info{Name: name, Labels: map[string]string{vm.LabelManaged: vm.ManagedEphemeral}}
		if age >= 0 {
			in.Created = now.Add(-age)
		}
		return in
	}
	r := newRecorder()
	r.listed = []vm.Info{
		eph("old-b", 30*time.Hour),
		eph("old-a", 25*time.Hour),
		eph("young", 2*time.Hour),
		eph("unknown-age", -1),
		eph("exactly-cutoff", 24*time.Hour),
		{Name: "foreign", Labels: map[string]string{"team": "x"}, Created: now.Add(-100 * time.Hour)},
	}
	for _, in := range r.listed {
		r.live[in.Name] = in
		r.creates++
	}
	r.ignoreSel = true
	var logBuf strings.Builder
	rep, err := vm.Sweep(context.Background(), r, vm.SweepOptions{Now: now, Log: outcome.NewLogger(&logBuf)})
	if err != nil {
		t.Fatal(err)
	}
	names := func(in []vm.Info) []string {
		var s []string
		for _, i := range in {
			s = append(s, i.Name)
		}
		return s
	}
	if got := names(rep.Deleted); !slices.Equal(got, []string{"old-a", "old-b"}) {
		t.Fatalf("deleted %v", got)
	}
	if got := names(rep.Kept); !slices.Equal(got, []string{"exactly-cutoff", "unknown-age", "young"}) {
		t.Fatalf("kept %v", got)
	}
	if _, ok := r.live["foreign"]; !ok {
		t.Fatal("a VM without the ephemeral label was deleted")
	}
	if !rep.Cutoff.Equal(now.Add(-24 * time.Hour)) {
		t.Fatalf("cutoff %s", rep.Cutoff)
	}
	if !strings.Contains(logBuf.String(), "[PASS] sweep: deleted old-a") {
		t.Fatalf("log:\n%s", logBuf.String())
	}
}

func TestSweepDryRunAndFailures(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	r := newRecorder()
	for _, n := range []string{"a", "b", "c"} {
		in := vm.Info{Name: n, Labels: vm.EphemeralSelector(), Created: now.Add(-48 * time.Hour)}
		r.listed = append(r.listed, in)
		r.live[n] = in
	}
	rep, err := vm.Sweep(context.Background(), r, vm.SweepOptions{Now: now, OlderThan: time.Hour, DryRun: true})
	if err != nil || len(rep.Deleted) != 3 || len(r.live) != 3 || !rep.DryRun {
		t.Fatalf("dry run: err %v, report %+v, live %d", err, rep, len(r.live))
	}
	r.deleteErr["b"] = fmt.Errorf("permission denied")
	rep, err = vm.Sweep(context.Background(), r, vm.SweepOptions{Now: now, OlderThan: time.Hour})
	if err == nil || !strings.Contains(err.Error(), "delete b: permission denied") || outcome.Code(err) != outcome.General {
		t.Fatalf("err = %v", err)
	}
	if len(rep.Deleted) != 2 || len(rep.Failed) != 1 || rep.Failed[0].Name != "b" {
		t.Fatalf("report %+v", rep)
	}
	if _, err := vm.Sweep(context.Background(), r, vm.SweepOptions{OlderThan: -time.Hour}); outcome.Code(err) != outcome.Usage {
		t.Fatalf("negative age: %v", err)
	}
	if _, err := vm.Sweep(context.Background(), nil, vm.SweepOptions{}); outcome.Code(err) != outcome.Usage {
		t.Fatalf("nil provider: %v", err)
	}
}
