// Package agenttest runs the real mero-tee-agent as a process on 127.0.0.1 for tests, with the
// test binary re-exec pattern: a test package's TestMain calls MaybeRunAgent first; Guest
// returns a gcptest.Guest hook that starts the test binary again as the agent of each VM the
// compute fake creates, pointed at that VM's metadata server, and stops it when the VM is
// deleted. The agent process runs agent.Main — the program's own code — with a configfs-tsm
// fake (simtsm) that quotes with the TDX simulator booted from the VM's image, so its quotes
// verify against the simulator authority's root.
package agenttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"

	"github.com/calimero-network/mero-release/pipeline/agent"
	"github.com/calimero-network/mero-release/pipeline/agent/simtsm"
	"github.com/calimero-network/mero-release/pipeline/gcp"
	"github.com/calimero-network/mero-release/pipeline/gcp/gcptest"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
	"github.com/calimero-network/mero-release/pipeline/vm/vmsim"
)

// Environment of the agent process.
const (
	envImage = "MERO_TEE_AGENTTEST_IMAGE"    // tdxsim manifest the guest boots
	envSeed  = "MERO_TEE_AGENTTEST_SEED"     // simulator authority seed
	envFault = "MERO_TEE_AGENTTEST_FAULT"    // a Fault
	envMeta  = "MERO_TEE_AGENTTEST_METADATA" // metadata server root
	envProf  = "MERO_TEE_AGENTTEST_PROFILE"  // the image's profile
)

// Fault is a failure the agent process injects.
type Fault string

// The faults an agent process can inject.
const (
	// NoFault runs the agent as it is.
	NoFault Fault = ""
	// ExitAtBoot: the process exits before publishing anything (an agent that crashed).
	ExitAtBoot Fault = "exit-at-boot"
	// TSMFailsAtBoot: the TSM fails the boot quote (tdx-quote-error is published).
	TSMFailsAtBoot Fault = "tsm-fails-at-boot"
	// TSMFailsOnRequest: the boot quote works, every later quote fails.
	TSMFailsOnRequest Fault = "tsm-fails-on-request"
	// SilentOnRequest: the boot quote works, requests are never answered (the process exits).
	SilentOnRequest Fault = "silent-on-request"
)

// MaybeRunAgent runs the agent and exits when this process was started by Guest; otherwise it
// returns at once. Call it first in TestMain.
func MaybeRunAgent() {
	image := os.Getenv(envImage)
	if image == "" {
		return
	}
	os.Exit(runAgent(image, os.Getenv(envProf), os.Getenv(envSeed), Fault(os.Getenv(envFault)), os.Getenv(envMeta)))
}

func runAgent(image, profile, seed string, fault Fault, metadataURL string) int {
	if fault == ExitAtBoot {
		fmt.Fprintln(os.Stderr, "[ERROR] agenttest: injected crash at boot")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	auth, err := tdxsim.NewAuthority([]byte(seed))
	if err != nil {
		fmt.Fprintln(os.Stderr, "[ERROR] agenttest:", err)
		return 1
	}
	img, err := vmsim.LoadImage(image, profile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "[ERROR] agenttest:", err)
		return 1
	}
	booted, err := auth.Boot(ctx, img)
	if err != nil {
		fmt.Fprintln(os.Stderr, "[ERROR] agenttest:", err)
		return 1
	}
	defer booted.Shutdown()
	quotes := 0
	fail := func() error {
		quotes++
		switch {
		case fault == TSMFailsAtBoot:
			return errors.New("injected TSM failure: quote generation failed")
		case fault == TSMFailsOnRequest && quotes > 1:
			return errors.New("injected TSM failure on a request")
		case fault == SilentOnRequest && quotes > 1:
			fmt.Fprintln(os.Stderr, "[ERROR] agenttest: injected silence on a request")
			os.Exit(1)
		}
		return nil
	}
	q := agent.TSMQuoter{Client: simtsm.New(booted, fail)}
	return agent.Main(ctx, []string{"-metadata-url", metadataURL, "-poll-interval", "20ms", "-part-size", "1000"}, os.Stderr, q, "agenttest")
}

// Processes counts the agent processes Guest started and stopped.
type Processes struct {
	mu      sync.Mutex
	started int
	stopped int
	logs    bytes.Buffer
}

// Counts returns how many agent processes were started and how many were stopped.
func (p *Processes) Counts() (started, stopped int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started, p.stopped
}

// Logs returns what the agent processes wrote to stderr.
func (p *Processes) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// lockedWriter appends to the shared log under the lock.
type lockedWriter struct {
	p      *Processes
	prefix string
}

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) > 0 {
			w.p.logs.WriteString(w.prefix)
			w.p.logs.Write(line)
		}
	}
	return len(b), nil
}

// ImageFor says which simulator image manifest a VM boots: from its boot disk's source image
// (projects/P/global/images/NAME) and the mero-tee-profile metadata.
type ImageFor func(sourceImage, profile string) (manifest string, err error)

// Guest returns the compute fake's guest hook: for each created VM it starts this test binary
// as the agent (seed: the simulator authority's seed; fault: per VM, may be nil) and stops it
// (SIGTERM, then SIGKILL after a grace period) when the VM is deleted. The agents' stderr is
// logged when t fails.
func Guest(t testing.TB, seed string, image ImageFor, fault func(vmName string) Fault) (gcptest.Guest, *Processes) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	procs := &Processes{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent processes:\n%s", procs.Logs())
		}
	})
	return func(inst *computepb.Instance, metadataURL string) (func(), error) {
		profile, _ := gcptest.Metadata(inst, gcp.MetadataProfile)
		manifest, err := image(gcptest.SourceImage(inst), profile)
		if err != nil {
			return nil, err
		}
		f := NoFault
		if fault != nil {
			f = fault(inst.GetName())
		}
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), envImage+"="+manifest, envSeed+"="+seed, envFault+"="+string(f), envMeta+"="+metadataURL, envProf+"="+profile)
		cmd.Stdout = lockedWriter{procs, inst.GetName() + ": "}
		cmd.Stderr = lockedWriter{procs, inst.GetName() + ": "}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start agent: %w", err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		procs.mu.Lock()
		procs.started++
		procs.mu.Unlock()
		return func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			procs.mu.Lock()
			procs.stopped++
			procs.mu.Unlock()
		}, nil
	}, procs
}
