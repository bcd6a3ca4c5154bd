package tdxsim

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/tdx"
)

func boot(t testing.TB, a *Authority, profile string) *VM {
	t.Helper()
	vm, err := a.Boot(context.Background(), loadExample(t, profile))
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

// TestVMQuoteVerifiesAndReplays is the whole local measurement path: boot, quote, parse,
// verify against the authority's root, check the measurements and replay the event log.
func TestVMQuoteVerifiesAndReplays(t *testing.T) {
	a := newAuthority(t, DefaultSeed)
	for _, p := range exampleProfiles() {
		t.Run(p, func(t *testing.T) {
			vm := boot(t, a, p)
			if vm.Profile() != p || vm.Name() != "mero-tee-example-"+p {
				t.Errorf("vm %s/%s", vm.Name(), vm.Profile())
			}
			var rd [64]byte
			copy(rd[:], "nonce "+p)
			raw, err := vm.Quote(rd)
			if err != nil {
				t.Fatal(err)
			}
			q, err := tdx.ParseQuote(raw)
			if err != nil {
				t.Fatal(err)
			}
			if err := q.Verify(tdx.VerifyOptions{TrustedRoots: a.RootPool()}); err != nil {
				t.Fatal(err)
			}
			want, _, err := Measure(loadExample(t, p))
			if err != nil {
				t.Fatal(err)
			}
			if err := tdx.CheckMeasurements(q, want); err != nil {
				t.Fatal(err)
			}
			if q.Measurements() != vm.Measurements() || q.ReportData != rd {
				t.Errorf("quote and VM disagree")
			}
			if err := tdx.ReplayAndCheck(vm.EventLog(), q); err != nil {
				t.Fatalf("event log does not replay to the quote: %v", err)
			}
		})
	}
}

func TestExtendRTMR3(t *testing.T) {
	a := newAuthority(t, DefaultSeed)
	vm := boot(t, a, "debug")
	before := vm.Measurements()
	compose := tdx.NewEvent(3, "runtime", "compose-hash", []byte("sha256:abc"))
	if err := vm.ExtendRTMR3(compose); err != nil {
		t.Fatal(err)
	}
	after := vm.Measurements()
	if after.RTMR[3] != tdx.Extend([48]byte{}, compose.Digest) {
		t.Errorf("rtmr3 = %x", after.RTMR[3])
	}
	after.RTMR[3] = before.RTMR[3]
	if after != before {
		t.Errorf("extending RTMR3 changed another register")
	}
	raw, err := vm.Quote([64]byte{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := tdx.ParseQuote(raw)
	if err != nil {
		t.Fatal(err)
	}
	log := vm.EventLog()
	if log[len(log)-1] != compose {
		t.Errorf("runtime event not logged")
	}
	if err := tdx.ReplayAndCheck(log, q); err != nil {
		t.Fatal(err)
	}
	// The boot-time log no longer matches: RTMR3 is named.
	_, bootLog, _ := Measure(loadExample(t, "debug"))
	if err := tdx.ReplayAndCheck(bootLog, q); err == nil || !strings.HasPrefix(err.Error(), "rtmr3 mismatch") {
		t.Errorf("boot log against extended quote: %v", err)
	}
	// EventLog returns a copy.
	log[0].IMR = 3
	if vm.EventLog()[0].IMR != 0 {
		t.Errorf("EventLog exposes the VM's log")
	}
	for _, imr := range []int{0, 1, 2, 4} {
		if err := vm.ExtendRTMR3(tdx.Event{IMR: imr}); err == nil || !strings.Contains(err.Error(), "only RTMR3") {
			t.Errorf("imr %d: %v", imr, err)
		}
	}
}

func TestShutdown(t *testing.T) {
	vm := boot(t, newAuthority(t, DefaultSeed), "debug")
	vm.Shutdown()
	vm.Shutdown()
	if _, err := vm.Quote([64]byte{}); !errors.Is(err, ErrStopped) {
		t.Errorf("quote after shutdown: %v", err)
	}
	if err := vm.ExtendRTMR3(tdx.NewEvent(3, "runtime", "x", nil)); !errors.Is(err, ErrStopped) {
		t.Errorf("extend after shutdown: %v", err)
	}
}

func TestBootErrors(t *testing.T) {
	a := newAuthority(t, DefaultSeed)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Boot(ctx, loadExample(t, "debug")); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled boot: %v", err)
	}
	img := loadExample(t, "debug")
	img.Kernel = nil
	if _, err := a.Boot(context.Background(), img); err == nil || !strings.Contains(err.Error(), "kernel: empty") || outcome.Code(err) != outcome.Usage {
		t.Errorf("boot without kernel: %v", err)
	}
	if _, err := a.Boot(context.Background(), nil); err == nil {
		t.Errorf("boot of nil image succeeded")
	}
}

// TestVMConcurrentUse quotes while extending; every quote's RTMR3 is one of the states the
// extensions went through (run with -race to check the locking).
func TestVMConcurrentUse(t *testing.T) {
	a := newAuthority(t, DefaultSeed)
	vm := boot(t, a, "debug")
	const n = 8
	var wg sync.WaitGroup
	quotes := make(chan []byte, n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := vm.ExtendRTMR3(tdx.NewEvent(3, "runtime", "e", []byte{byte(i)})); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			raw, err := vm.Quote([64]byte{byte(i)})
			if err != nil {
				t.Error(err)
				return
			}
			quotes <- raw
		}()
	}
	wg.Wait()
	close(quotes)
	if got := len(vm.EventLog()); got != 6+n {
		t.Errorf("%d events, want %d", got, 6+n)
	}
	// The RTMR3 values the log passed through, from the boot value to the final one.
	states := map[[48]byte]bool{{}: true}
	var rtmr3 [48]byte
	for _, e := range vm.EventLog() {
		if e.IMR == 3 {
			rtmr3 = tdx.Extend(rtmr3, e.Digest)
			states[rtmr3] = true
		}
	}
	if rtmr3 != vm.Measurements().RTMR[3] {
		t.Errorf("log does not replay to the final RTMR3")
	}
	for raw := range quotes {
		q, err := tdx.ParseQuote(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Verify(tdx.VerifyOptions{TrustedRoots: a.RootPool()}); err != nil {
			t.Error(err)
		}
		if !states[q.RTMRs[3]] {
			t.Errorf("quote RTMR3 %x is no state of the log", q.RTMRs[3])
		}
	}
}
