// Package local runs the sample KMS locally for the pipeline: InProcessKMS is the
// e2e.KMSLauncher of local runs and tests, the KMS server on a loopback listener with its own
// quotes from a simulated dstack VM. It lives next to the KMS so that pipeline/ never imports
// the product it releases.
package local

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/calimero-network/mero-release/examples/kms"
	"github.com/calimero-network/mero-release/examples/kms/server"
	"github.com/calimero-network/mero-release/pipeline/e2e"
	"github.com/calimero-network/mero-release/pipeline/kmsproc"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

// InProcessKMS launches the sample KMS (examples/kms/server) in this process on a loopback
// listener (127.0.0.1, port 0), its own quotes coming from a simulated dstack VM. It counts
// the instances still open so that tests can prove every KMS was stopped.
type InProcessKMS struct {
	// Authority signs the KMS's quotes (the simulated dstack VM's platform).
	Authority *tdxsim.Authority
	// NodeRoots are the roots node quotes must chain to.
	NodeRoots *x509.CertPool
	// ComposeHash is extended into the KMS VM's RTMR3 when the deployment records none; empty
	// means kms.ComposeHash(kms.LocalImage).
	ComposeHash string
	// RootSecret is the key-derivation secret; empty means server.DevRootSecret.
	RootSecret []byte
	// Log receives the KMS's [WARN] lines (policy_not_ready, refusals).
	Log *outcome.Logger

	mu   sync.Mutex
	open int
}

var _ e2e.KMSLauncher = (*InProcessKMS)(nil)

// Open returns the number of launched KMS instances not yet closed.
func (l *InProcessKMS) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// Launch implements e2e.KMSLauncher.
// The KMS VM extends d.ComposeHash into RTMR3 when the release recorded one.
func (l *InProcessKMS) Launch(ctx context.Context, p *policy.Loaded, d e2e.KMSDeployment) (e2e.KMSInstance, error) {
	if l.Authority == nil || l.NodeRoots == nil {
		return nil, outcome.UsageErrorf("in-process KMS: an authority and node roots are required")
	}
	if p == nil || p.Policy == nil {
		return nil, outcome.UsageErrorf("in-process KMS: no attestation policy")
	}
	hash := d.ComposeHash
	if hash == "" {
		hash = l.ComposeHash
	}
	if hash == "" {
		h, err := kms.ComposeHash(kms.LocalImage)
		if err != nil {
			return nil, err
		}
		hash = h
	}
	secret := l.RootSecret
	if len(secret) == 0 {
		secret = []byte(server.DevRootSecret)
	}
	vm, err := server.BootSimulatedDstack(ctx, l.Authority, hash)
	if err != nil {
		return nil, fmt.Errorf("start KMS %s (%s): %w", p.Policy.KMSVersion, p.Policy.Profile, err)
	}
	srv, err := server.New(server.Options{Policy: p, RootSecret: secret, Quoter: vm, TrustedRoots: l.NodeRoots, Log: l.Log})
	if err != nil {
		vm.Shutdown()
		return nil, fmt.Errorf("start KMS %s (%s): %w", p.Policy.KMSVersion, p.Policy.Profile, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		vm.Shutdown()
		return nil, fmt.Errorf("start KMS %s (%s): %w", p.Policy.KMSVersion, p.Policy.Profile, err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	inst := &inProcess{l: l, url: "http://" + ln.Addr().String(), hs: hs, vm: vm, roots: l.Authority.RootPool(), done: make(chan struct{})}
	go func() {
		_ = hs.Serve(ln) // returns http.ErrServerClosed after Close
		close(inst.done)
	}()
	l.mu.Lock()
	l.open++
	l.mu.Unlock()
	return inst, nil
}

// inProcess is one KMS started by InProcessKMS.
type inProcess struct {
	l      *InProcessKMS
	url    string
	hs     *http.Server
	vm     *tdxsim.VM
	roots  *x509.CertPool
	done   chan struct{}
	once   sync.Once
	closed error
}

func (i *inProcess) URL() string                  { return i.url }
func (i *inProcess) TrustedRoots() *x509.CertPool { return i.roots }

// Close shuts the listener and the simulated VM down once; later calls return the first result.
func (i *inProcess) Close() error {
	i.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		i.closed = i.hs.Shutdown(ctx)
		<-i.done
		i.vm.Shutdown()
		i.l.mu.Lock()
		i.l.open--
		i.l.mu.Unlock()
	})
	return i.closed
}

// Process returns a launcher that runs the sample KMS executable (built from
// examples/kms/cmd/mero-kms, or taken from the released image) as a process on 127.0.0.1: its
// quotes come from its simulated dstack VM (MERO_KMS_QUOTE_SOURCE=simulator on the default
// simulator platform, whose root is auth's when auth is tdxsim.DefaultSeed's), and the VM
// extends the compose hash the KMS release recorded (MERO_KMS_COMPOSE_HASH). nodeRoot, when
// set, is a PEM file of the roots node quotes must chain to (MERO_KMS_TRUSTED_ROOT: Intel's for
// real TDX nodes); empty means the simulator's.
func Process(binary string, auth *tdxsim.Authority, nodeRoot string, log *outcome.Logger) *kmsproc.Launcher {
	env := []string{server.EnvQuoteSource + "=" + server.QuoteSourceSimulator}
	if nodeRoot != "" {
		env = append(env, server.EnvTrustedRoot+"="+nodeRoot)
	}
	return &kmsproc.Launcher{
		Binary:       binary,
		Env:          env,
		TrustedRoots: auth.RootPool(),
		InstanceEnv: func(_ context.Context, _ *policy.Loaded, d e2e.KMSDeployment) ([]string, error) {
			if d.ComposeHash == "" {
				return nil, nil
			}
			return []string{server.EnvComposeHash + "=" + d.ComposeHash}, nil
		},
		Log: log,
	}
}
