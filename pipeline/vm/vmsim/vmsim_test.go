package vmsim_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
	"github.com/calimero-network/mero-release/pipeline/vm"
	"github.com/calimero-network/mero-release/pipeline/vm/vmsim"
)

const imageDir = "../../../examples/node-image"

func newProvider(t *testing.T) *vmsim.Provider {
	t.Helper()
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	p, err := vmsim.NewDefault(vmsim.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCreateQuoteBindsNonceAndVerifies(t *testing.T) {
	p := newProvider(t)
	for _, prof := range release.Profiles() {
		var nonce [64]byte
		copy(nonce[:], "nonce for "+string(prof))
		image := imageDir // directory form
		if prof == release.Debug {
			image = filepath.Join(imageDir, "debug.json") // manifest form
		}
		s := vm.Spec{Name: "m-" + string(prof), Image: image, Profile: prof, Nonce: nonce, Labels: map[string]string{vm.LabelRunID: "42"}}
		err := vm.WithVM(context.Background(), p, s, func(ctx context.Context, inst vm.Instance) error {
			raw, err := inst.Quote(ctx)
			if err != nil {
				return err
			}
			q, err := tdx.ParseQuote(raw)
			if err != nil {
				return err
			}
			if err := q.Verify(tdx.VerifyOptions{TrustedRoots: p.RootPool()}); err != nil {
				return err
			}
			if err := vm.CheckReportData(q.ReportData, nonce); err != nil {
				return err
			}
			img, err := vmsim.LoadImage(imageDir, string(prof))
			if err != nil {
				return err
			}
			want, _, err := tdxsim.Measure(img)
			if err != nil {
				return err
			}
			return tdx.CheckMeasurements(q, want)
		})
		if err != nil {
			t.Fatalf("%s: %v", prof, err)
		}
	}
	if r := p.Running(); len(r) != 0 {
		t.Fatalf("left running: %v", r)
	}
}

func TestLabelsListAndDelete(t *testing.T) {
	p := newProvider(t)
	ctx := context.Background()
	inst, err := p.Create(ctx, vm.Spec{Name: "a", Image: imageDir, Profile: release.Debug, Labels: map[string]string{vm.LabelTag: "t"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Create(ctx, vm.Spec{Name: "a", Image: imageDir, Profile: release.Debug}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate name: %v", err)
	}
	infos, err := p.List(ctx, vm.EphemeralSelector())
	if err != nil || len(infos) != 1 {
		t.Fatalf("list: %v %v", infos, err)
	}
	l := infos[0].Labels
	if l[vm.LabelManaged] != vm.ManagedEphemeral || l[vm.LabelProfile] != "debug" || l[vm.LabelTag] != "t" || l[vm.LabelCreatedAt] != "1795600800" {
		t.Fatalf("labels %v", l)
	}
	if infos, _ := p.List(ctx, map[string]string{vm.LabelTag: "other"}); len(infos) != 0 {
		t.Fatalf("selector ignored: %v", infos)
	}
	if p.Booted("a") == nil {
		t.Fatal("Booted(a) = nil")
	}
	if err := p.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := p.Delete(ctx, "a"); err != nil {
		t.Fatalf("second delete: %v (must be idempotent)", err)
	}
	if _, err := inst.Quote(ctx); !errors.Is(err, tdxsim.ErrStopped) {
		t.Fatalf("quote after delete: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.Delete(cctx, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("delete on cancelled ctx: %v", err)
	}
	if _, err := p.List(cctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("list on cancelled ctx: %v", err)
	}
}

func TestCreateErrors(t *testing.T) {
	p := newProvider(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "debug.json")
	if err := os.WriteFile(bad, []byte(`{"schema_version":"1"`), 0o644); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		spec vm.Spec
		want string
		code int
	}{
		{"missing image", context.Background(), vm.Spec{Name: "x", Image: filepath.Join(dir, "nope"), Profile: release.Debug}, "no such file", outcome.Usage},
		{"profile mismatch", context.Background(), vm.Spec{Name: "x", Image: filepath.Join(imageDir, "debug.json"), Profile: release.LockedReadOnly}, `profile is "debug", want "locked-read-only"`, outcome.Usage},
		{"malformed manifest", context.Background(), vm.Spec{Name: "x", Image: bad, Profile: release.Debug}, "node image manifest", outcome.Usage},
		{"bad name", context.Background(), vm.Spec{Name: "X", Image: imageDir, Profile: release.Debug}, "vm name", outcome.Usage},
		{"cancelled", cancelled, vm.Spec{Name: "x", Image: imageDir, Profile: release.Debug}, "context canceled", outcome.General},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst, err := p.Create(tt.ctx, tt.spec)
			if inst != nil || err == nil || !strings.Contains(err.Error(), tt.want) || outcome.Code(err) != tt.code {
				t.Fatalf("inst %v, err %v (code %d), want %q code %d", inst, err, outcome.Code(err), tt.want, tt.code)
			}
		})
	}
	if r := p.Running(); !slices.Equal(r, nil) {
		t.Fatalf("failed creates left %v", r)
	}
}
