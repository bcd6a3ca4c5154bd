package server

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/calimero-network/mero-release/pipeline/dstack"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/tdx"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

// Running is a started KMS: the server, its listener, and the simulated dstack VM in local mode.
type Running struct {
	// Server is the handler being served.
	Server *Server
	// Policy is the policy fetched at start-up.
	Policy *LoadedPolicy
	addr   net.Addr
	srv    *http.Server
	vm     *tdxsim.VM
	done   chan error
}

// Start loads everything the KMS needs from cfg — the attestation policy (fetched, pinned and
// checked against the version and profile), the root secret, the quote source and the trusted
// root — then listens on cfg.Listen (port 0 picks a free port) and serves in the background
// until Close. composeHash is the default for cfg.ComposeHash (examples/kms.ComposeHash). Any
// refusal happens before the listener opens.
func Start(ctx context.Context, cfg Config, composeHash string, log *outcome.Logger) (*Running, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	lp, err := FetchPolicy(ctx, nil, cfg.PolicyURL, cfg.PolicySHA256, cfg.Version, cfg.Profile)
	if err != nil {
		return nil, err
	}
	secret, dev, err := ReadRootSecret(cfg.RootSecretFile)
	if err != nil {
		return nil, err
	}
	if dev {
		log.Warnf("kms: %s is not set: deriving keys from the development root secret (local use only)", EnvRootSecretFile)
	}
	r := &Running{Policy: lp, done: make(chan error, 1)}
	var quoter Quoter
	var roots func() []byte
	switch cfg.QuoteSource {
	case QuoteSourceSimulator:
		auth, err := tdxsim.NewAuthority([]byte(tdxsim.DefaultSeed))
		if err != nil {
			return nil, err
		}
		if cfg.ComposeHash == "" {
			cfg.ComposeHash = composeHash
		}
		if b, err := hex.DecodeString(cfg.ComposeHash); err != nil || len(b) != 32 {
			return nil, outcome.UsageErrorf("%s: %q is not 64 hex characters (SHA-256)", EnvComposeHash, cfg.ComposeHash)
		}
		if r.vm, err = BootSimulatedDstack(ctx, auth, cfg.ComposeHash); err != nil {
			return nil, err
		}
		quoter = r.vm
		roots = func() []byte { return auth.RootPEM() }
	case QuoteSourceConfigFS:
		quoter = ConfigFSQuoter{}
		roots = tdx.IntelRootPEM
	case QuoteSourceDstack:
		client, err := dstack.NewGuestClient(cfg.DstackEndpoint)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvDstackEndpoint, err)
		}
		quoter = DstackQuoter{Client: client}
		roots = tdx.IntelRootPEM
	}
	rootPEM := roots()
	if cfg.TrustedRoot != "" {
		if rootPEM, err = os.ReadFile(cfg.TrustedRoot); err != nil {
			r.shutdownVM()
			return nil, outcome.UsageErrorf("%s: %v", EnvTrustedRoot, err)
		}
	}
	pool, err := tdx.RootPoolFromPEM(rootPEM)
	if err != nil {
		r.shutdownVM()
		return nil, fmt.Errorf("%s: %w", EnvTrustedRoot, err)
	}
	var tcb TCBEvaluator // nil: the simulator's fixed levels
	switch {
	case cfg.CollateralDir != "":
		if err := tdx.CheckCollateralDir(cfg.CollateralDir); err != nil {
			r.shutdownVM()
			return nil, fmt.Errorf("%s: %w", EnvCollateralDir, err)
		}
		tcb = CollateralTCB{Options: tdx.TCBOptions{Collateral: tdx.CollateralDir(cfg.CollateralDir)}}
		log.Infof("kms: TCB status of node quotes from the collateral in %s", cfg.CollateralDir)
	case cfg.QuoteSource != QuoteSourceSimulator:
		tcb = CollateralTCB{} // Intel PCS, online
		log.Infof("kms: TCB status of node quotes from Intel PCS collateral")
	}
	r.Server, err = New(Options{Policy: lp, RootSecret: secret, Quoter: quoter, TrustedRoots: pool,
		ChallengeTTL: cfg.ChallengeTTL, MaxChallenges: cfg.MaxChallenges,
		MaxChallengesPerPeer: cfg.MaxChallengesPerPeer, MaxChallengesPerSource: cfg.MaxChallengesPerSource, TCB: tcb, Log: log})
	if err != nil {
		r.shutdownVM()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		r.shutdownVM()
		return nil, fmt.Errorf("%s: %w", EnvListen, err)
	}
	r.addr = ln.Addr()
	r.srv = &http.Server{Handler: r.Server, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	go func() {
		err := r.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		r.done <- err
	}()
	status := "ready"
	if lp.Policy.NotReady() {
		status = "policy_not_ready"
		log.Warnf("kms: attestation policy %s is policy_not_ready: every key request will be logged and any MRTD/RTMR accepted", lp.Source)
	}
	log.Infof("kms %s (%s) listening on http://%s; policy %s (sha256 %s, %s); quotes from %s",
		lp.Policy.KMSVersion, lp.Policy.Profile, r.addr, lp.Source, lp.SHA256, status, cfg.QuoteSource)
	return r, nil
}

// Addr is the address the KMS listens on.
func (r *Running) Addr() net.Addr { return r.addr }

// URL is the KMS's base URL, http://host:port.
func (r *Running) URL() string { return "http://" + r.addr.String() }

// Done is closed with the serve error (nil after a clean Close) when the KMS stops serving.
func (r *Running) Done() <-chan error { return r.done }

// Close stops the KMS gracefully (in-flight requests get up to 5 s) and shuts the simulated VM
// down. It is safe to call more than once.
func (r *Running) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.srv.Shutdown(ctx)
	r.shutdownVM()
	return err
}

func (r *Running) shutdownVM() {
	if r.vm != nil {
		r.vm.Shutdown()
	}
}
