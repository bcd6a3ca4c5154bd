// Package kmsproc launches a KMS executable as a local process for E2E: the released KMS
// binary (taken from the image the pipeline built), not a copy of its code, listening on
// 127.0.0.1 and configured only through the SPEC §8 environment. Each instance fetches its
// attestation policy over HTTP from a loopback server, pinned by SHA-256, exactly as a
// deployed KMS fetches MERO_KMS_POLICY_URL at start-up.
//
// A Launcher is an e2e.KMSLauncher; every instance it starts is stopped (SIGTERM, then
// SIGKILL after a grace period) by Close, and Open counts those still running.
package kmsproc

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/calimero-network/mero-release/pipeline/e2e"
	"github.com/calimero-network/mero-release/pipeline/kmsclient"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
)

// EnvListen is the listen-address variable of a KMS (the sample KMS's MERO_KMS_LISTEN).
const EnvListen = "MERO_KMS_LISTEN"

// Defaults of a Launcher.
const (
	DefaultStartTimeout = 20 * time.Second
	DefaultStopTimeout  = 5 * time.Second
	// startAttempts bounds the retries when the chosen port was taken before the KMS bound it.
	startAttempts = 3
	// tailLines is how much of a failed KMS's output an error quotes.
	tailLines = 12
)

// Launcher starts KMS processes. The zero value is not usable: Binary and TrustedRoots are
// required.
type Launcher struct {
	// Binary is the KMS executable.
	Binary string
	// Env is extra environment for every instance (NAME=value), e.g. MERO_KMS_QUOTE_SOURCE.
	// The process gets no other variable of the caller's environment but PATH, so that no
	// token or secret of the pipeline leaks into the KMS.
	Env []string
	// InstanceEnv, when set, adds environment for one instance, e.g. the sample KMS's
	// MERO_KMS_COMPOSE_HASH from the deployment the KMS release recorded.
	InstanceEnv func(ctx context.Context, p *policy.Loaded, d e2e.KMSDeployment) ([]string, error)
	// TrustedRoots are the roots the KMS's own quotes chain to.
	TrustedRoots *x509.CertPool
	// StartTimeout bounds the wait for GET /health (default DefaultStartTimeout); StopTimeout
	// is the grace period between SIGTERM and SIGKILL (default DefaultStopTimeout).
	StartTimeout, StopTimeout time.Duration
	// Log receives the launcher's lines and the KMS's own output, prefixed with its profile.
	Log *outcome.Logger
	// Output, when set, receives the KMS's raw output instead of Log.
	Output io.Writer

	mu   sync.Mutex
	open int
}

var _ e2e.KMSLauncher = (*Launcher)(nil)

// Open returns the number of launched KMS processes not yet stopped.
func (l *Launcher) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// Launch starts the KMS with policy p and returns once its GET /health answers with p's
// version and profile. A KMS that exits or does not become healthy in time is stopped and
// its exit code and last output lines are in the error.
func (l *Launcher) Launch(ctx context.Context, p *policy.Loaded, d e2e.KMSDeployment) (e2e.KMSInstance, error) {
	switch {
	case l.Binary == "":
		return nil, outcome.UsageErrorf("KMS process: no KMS binary")
	case l.TrustedRoots == nil:
		return nil, outcome.UsageErrorf("KMS process: no trusted roots for the KMS's quotes")
	case p == nil || p.Policy == nil || len(p.Data) == 0:
		return nil, outcome.UsageErrorf("KMS process: no attestation policy")
	}
	name := fmt.Sprintf("KMS %s (%s)", p.Policy.KMSVersion, p.Policy.Profile)
	if _, err := os.Stat(l.Binary); err != nil {
		return nil, outcome.UsageErrorf("start %s: %v", name, err)
	}
	var extra []string
	if l.InstanceEnv != nil {
		var err error
		if extra, err = l.InstanceEnv(ctx, p, d); err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
	}
	ps, err := servePolicy(p)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	var lastErr error
	for attempt := 0; attempt < startAttempts; attempt++ {
		inst, err := l.start(ctx, p, ps, extra)
		if err == nil {
			l.mu.Lock()
			l.open++
			l.mu.Unlock()
			return inst, nil
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) || ctx.Err() != nil {
			break
		}
	}
	ps.close()
	return nil, fmt.Errorf("start %s: %w", name, lastErr)
}

// errPortTaken marks a start that failed because another process bound the chosen port first.
var errPortTaken = errors.New("listen port taken")

func (l *Launcher) start(ctx context.Context, p *policy.Loaded, ps *policyServer, extra []string) (*instance, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(l.Binary)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		policy.EnvKMSVersion + "=" + p.Policy.KMSVersion,
		policy.EnvKMSProfile + "=" + string(p.Policy.Profile),
		policy.EnvPolicyURL + "=" + ps.url,
		policy.EnvPolicySHA256 + "=" + p.SHA256,
		EnvListen + "=" + addr,
	}, append(append([]string(nil), l.Env...), extra...)...)
	out := &tail{max: tailLines, forward: l.forwarder(string(p.Policy.Profile))}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", l.Binary, err)
	}
	inst := &instance{l: l, cmd: cmd, url: "http://" + addr, ps: ps, out: out, exited: make(chan struct{})}
	go func() {
		inst.waitErr = cmd.Wait()
		out.flush()
		close(inst.exited)
	}()
	if err := inst.waitHealthy(ctx, p, l.startTimeout()); err != nil {
		inst.stop()
		if strings.Contains(out.String(), "address already in use") {
			return nil, fmt.Errorf("%w: %v", errPortTaken, err)
		}
		return nil, err
	}
	l.Log.Infof("KMS %s (%s): process %d of %s on %s", p.Policy.KMSVersion, p.Policy.Profile, cmd.Process.Pid, l.Binary, inst.url)
	return inst, nil
}

func (l *Launcher) startTimeout() time.Duration {
	if l.StartTimeout > 0 {
		return l.StartTimeout
	}
	return DefaultStartTimeout
}

func (l *Launcher) stopTimeout() time.Duration {
	if l.StopTimeout > 0 {
		return l.StopTimeout
	}
	return DefaultStopTimeout
}

// forwarder returns where one instance's output lines go.
func (l *Launcher) forwarder(profile string) func(string) {
	if l.Output != nil {
		return func(line string) { fmt.Fprintf(l.Output, "  kms(%s) %s\n", profile, line) }
	}
	if l.Log == nil {
		return nil
	}
	return func(line string) {
		// The KMS's own SPEC §9 lines keep their level; anything else is information.
		for _, lv := range []outcome.Level{outcome.LevelWarn, outcome.LevelError, outcome.LevelInfo} {
			if rest, ok := strings.CutPrefix(line, "["+string(lv)+"] "); ok {
				l.Log.Logf(lv, "kms(%s): %s", profile, rest)
				return
			}
		}
		l.Log.Infof("kms(%s): %s", profile, line)
	}
}

// instance is one running KMS process.
type instance struct {
	l       *Launcher
	cmd     *exec.Cmd
	url     string
	ps      *policyServer
	out     *tail
	exited  chan struct{}
	waitErr error
	once    sync.Once
	closed  error
}

func (i *instance) URL() string                  { return i.url }
func (i *instance) TrustedRoots() *x509.CertPool { return i.l.TrustedRoots }

// Close stops the KMS once (SIGTERM, SIGKILL after the grace period) and the policy server;
// a KMS that had already died, or that exits non-zero on SIGTERM, is an error naming its exit
// and last output. Later calls return the first result.
func (i *instance) Close() error {
	i.once.Do(func() {
		select {
		case <-i.exited:
			i.closed = fmt.Errorf("KMS process %d exited before it was stopped: %s", i.cmd.Process.Pid, i.exitDetails())
			i.ps.close()
		default:
			if err := i.stop(); err != nil {
				i.closed = err
			}
		}
		i.l.mu.Lock()
		i.l.open--
		i.l.mu.Unlock()
	})
	return i.closed
}

// stop terminates the process group and the policy server and waits for the process.
func (i *instance) stop() error {
	defer i.ps.close()
	select {
	case <-i.exited:
		return nil
	default:
	}
	_ = syscall.Kill(-i.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-i.exited:
	case <-time.After(i.l.stopTimeout()):
		_ = syscall.Kill(-i.cmd.Process.Pid, syscall.SIGKILL)
		<-i.exited
		return fmt.Errorf("KMS process %d ignored SIGTERM for %s and was killed", i.cmd.Process.Pid, i.l.stopTimeout())
	}
	if i.waitErr != nil {
		return fmt.Errorf("KMS process %d: stopped with %s", i.cmd.Process.Pid, i.exitDetails())
	}
	return nil
}

// exitDetails describes how the process ended and what it printed last.
func (i *instance) exitDetails() string {
	status := "exit code 0"
	var ee *exec.ExitError
	switch {
	case errors.As(i.waitErr, &ee):
		status = ee.ProcessState.String()
	case i.waitErr != nil:
		status = i.waitErr.Error()
	}
	if t := strings.TrimSpace(i.out.String()); t != "" {
		return status + "; last output:\n" + t
	}
	return status + " (no output)"
}

// waitHealthy polls GET /health until it answers with p's version and profile, the process
// exits, ctx ends or timeout passes.
func (i *instance) waitHealthy(ctx context.Context, p *policy.Loaded, timeout time.Duration) error {
	client, err := kmsclient.New(i.url, kmsclient.Options{TrustedRoots: i.l.TrustedRoots})
	if err != nil {
		return err
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		h, err := client.Health(hctx)
		cancel()
		if err == nil {
			if h.KMSVersion != p.Policy.KMSVersion || h.Profile != string(p.Policy.Profile) {
				return outcome.VerificationErrorf("the KMS on %s reports version %q profile %q, want %q %q", i.url, h.KMSVersion, h.Profile, p.Policy.KMSVersion, p.Policy.Profile)
			}
			return nil
		}
		select {
		case <-i.exited:
			return fmt.Errorf("the KMS exited during start-up: %s", i.exitDetails())
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("the KMS did not answer GET /health on %s within %s (last error: %v)", i.url, timeout, err)
		case <-tick.C:
		}
	}
}

// freePort asks the kernel for a free loopback port. The KMS binds it right after; a lost
// race shows as errPortTaken and the launch is retried on another port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("choose a loopback port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		return 0, fmt.Errorf("choose a loopback port: %w", err)
	}
	return port, nil
}

// policyServer serves one policy's bytes on 127.0.0.1 for the KMS's start-up fetch.
type policyServer struct {
	url  string
	srv  *http.Server
	once sync.Once
}

func servePolicy(p *policy.Loaded) (*policyServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("policy server: %w", err)
	}
	path := "/" + p.Policy.Profile.PolicyFile()
	data := bytes.Clone(p.Data)
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+path, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(data)
	})
	ps := &policyServer{url: "http://" + ln.Addr().String() + path, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	go func() { _ = ps.srv.Serve(ln) }()
	return ps, nil
}

func (ps *policyServer) close() {
	ps.once.Do(func() { _ = ps.srv.Close() })
}

// tail keeps the last lines a process wrote and forwards each complete line.
type tail struct {
	mu      sync.Mutex
	max     int
	lines   []string
	partial []byte
	forward func(string)
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, b...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		t.add(string(t.partial[:i]))
		t.partial = t.partial[i+1:]
	}
	return len(b), nil
}

func (t *tail) add(line string) {
	line = strings.TrimRight(line, "\r")
	if t.forward != nil {
		t.forward(line)
	}
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

// flush emits a last line without a newline.
func (t *tail) flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.partial) > 0 {
		t.add(string(t.partial))
		t.partial = nil
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 0 {
		return ""
	}
	return strings.Join(t.lines, "\n") + "\n"
}
