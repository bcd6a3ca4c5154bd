package kmsproc

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/calimero-network/mero-release/pipeline/e2e"
	"github.com/calimero-network/mero-release/pipeline/kmsclient"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

// kmsBinary is the sample KMS (examples/kms/cmd/mero-kms), built once for the package's tests:
// the launcher is tested on the real executable the release ships.
var kmsBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kmsproc")
	if err != nil {
		panic(err)
	}
	kmsBinary = filepath.Join(dir, "mero-kms")
	build := exec.Command("go", "build", "-o", kmsBinary, "github.com/calimero-network/mero-release/examples/kms/cmd/mero-kms")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		panic("build the sample KMS: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// loaded is a policy_not_ready policy of kms 1.2.0 for profile p, loaded as a KMS loads it.
func loaded(t *testing.T, p release.Profile) *policy.Loaded {
	t.Helper()
	pol, err := policy.Generate("1.2.0", p, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := pol.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	lp, err := policy.LoadForKMS(data, "test", "", "1.2.0", string(p))
	if err != nil {
		t.Fatal(err)
	}
	return lp
}

func authority(t *testing.T) *tdxsim.Authority {
	t.Helper()
	auth, err := tdxsim.NewAuthority([]byte(tdxsim.DefaultSeed))
	if err != nil {
		t.Fatal(err)
	}
	return auth
}

// script writes an executable shell script standing in for a misbehaving KMS.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kms.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// gone reports whether no process with pid exists any more.
func gone(pid int) bool {
	return syscall.Kill(pid, 0) == syscall.ESRCH
}

func TestLaunchRealKMS(t *testing.T) {
	auth := authority(t)
	var logBuf bytes.Buffer
	l := &Launcher{Binary: kmsBinary, TrustedRoots: auth.RootPool(), Log: outcome.NewLogger(&logBuf),
		Env: []string{"MERO_KMS_QUOTE_SOURCE=simulator"}}
	ctx := context.Background()
	inst, err := l.Launch(ctx, loaded(t, release.DebugReadOnly), e2e.KMSDeployment{})
	if err != nil {
		t.Fatalf("launch: %v\n%s", err, logBuf.String())
	}
	if !strings.HasPrefix(inst.URL(), "http://127.0.0.1:") || l.Open() != 1 {
		t.Errorf("URL %s, %d open", inst.URL(), l.Open())
	}
	c, err := kmsclient.New(inst.URL(), kmsclient.Options{TrustedRoots: inst.TrustedRoots()})
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Health(ctx)
	if err != nil || h.KMSVersion != "1.2.0" || h.Profile != "debug-read-only" || h.PolicyStatus != policy.StatusNotReady {
		t.Fatalf("health %+v, %v", h, err)
	}
	// The process's quotes chain to the simulator authority and bind the client's nonce.
	if _, err := c.Attest(ctx, kmsclient.AttestOptions{}); err != nil {
		t.Fatalf("attest: %v", err)
	}
	pid := inst.(*instance).cmd.Process.Pid
	if err := inst.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := inst.Close(); err != nil || l.Open() != 0 {
		t.Errorf("second Close: %v, %d open", err, l.Open())
	}
	if !gone(pid) {
		t.Errorf("KMS process %d still exists after Close", pid)
	}
	if _, err := c.Health(ctx); err == nil {
		t.Error("the KMS still answers after Close")
	}
	// The KMS's own lines reach the log, attributed to its profile.
	if !strings.Contains(logBuf.String(), "[WARN] kms(debug-read-only): kms: attestation policy") {
		t.Errorf("the KMS's policy_not_ready warning is not in the log:\n%s", logBuf.String())
	}
}

func TestLaunchRefusedPolicy(t *testing.T) {
	// The launcher pins the policy's SHA-256; bytes that do not match the pin make the real
	// KMS refuse to start (exit 10), and the error says so with the KMS's own words.
	lp := loaded(t, release.Debug)
	lp.SHA256 = strings.Repeat("ab", 32)
	l := &Launcher{Binary: kmsBinary, TrustedRoots: authority(t).RootPool()}
	_, err := l.Launch(context.Background(), lp, e2e.KMSDeployment{})
	if err == nil {
		t.Fatal("a KMS whose policy does not match its pin started")
	}
	for _, want := range []string{"exited during start-up", "exit status 10", "SHA-256"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if l.Open() != 0 {
		t.Errorf("%d instances counted open after a failed launch", l.Open())
	}
}

func TestLaunchNeverHealthyIsStopped(t *testing.T) {
	// A KMS that ignores SIGTERM and never listens: the launch times out, the process group is
	// killed, nothing is left running.
	pidFile := filepath.Join(t.TempDir(), "pid")
	bin := script(t, "trap '' TERM\necho $$ > "+pidFile+"\necho starting\nsleep 60")
	l := &Launcher{Binary: bin, TrustedRoots: authority(t).RootPool(), StartTimeout: 400 * time.Millisecond, StopTimeout: 200 * time.Millisecond}
	_, err := l.Launch(context.Background(), loaded(t, release.Debug), e2e.KMSDeployment{})
	if err == nil || !strings.Contains(err.Error(), "did not answer GET /health") {
		t.Fatalf("launch error %v, want a health timeout", err)
	}
	data, rerr := os.ReadFile(pidFile)
	if rerr != nil {
		t.Fatal(rerr)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	if !gone(pid) {
		t.Errorf("process %d survived a failed launch", pid)
	}
	if l.Open() != 0 {
		t.Errorf("%d open", l.Open())
	}
}

func TestLaunchExitIsReportedWithOutput(t *testing.T) {
	bin := script(t, "echo '[ERROR] MERO_KMS_ROOT_SECRET_FILE: no such file' >&2\nexit 2")
	l := &Launcher{Binary: bin, TrustedRoots: authority(t).RootPool()}
	_, err := l.Launch(context.Background(), loaded(t, release.Debug), e2e.KMSDeployment{})
	if err == nil {
		t.Fatal("launch of a KMS that exits succeeded")
	}
	for _, want := range []string{"KMS 1.2.0 (debug)", "exit status 2", "MERO_KMS_ROOT_SECRET_FILE: no such file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestLaunchPassesOnlyTheKMSEnvironment(t *testing.T) {
	// The pipeline's secrets stay out of the KMS: the process sees PATH, the SPEC §8 variables
	// and what the launcher was told to add, nothing else.
	t.Setenv("GITHUB_TOKEN", "secret-token")
	envFile := filepath.Join(t.TempDir(), "env")
	bin := script(t, "env > "+envFile+"\nexit 3")
	l := &Launcher{Binary: bin, TrustedRoots: authority(t).RootPool(), Env: []string{"MERO_KMS_QUOTE_SOURCE=simulator"},
		InstanceEnv: func(_ context.Context, p *policy.Loaded, d e2e.KMSDeployment) ([]string, error) {
			return []string{"MERO_KMS_COMPOSE_HASH=" + d.ComposeHash + string(p.Policy.Profile[0])}, nil
		}}
	lp := loaded(t, release.LockedReadOnly)
	if _, err := l.Launch(context.Background(), lp, e2e.KMSDeployment{ComposeHash: strings.Repeat("0", 63)}); err == nil {
		t.Fatal("launch succeeded")
	}
	data, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	env := string(data)
	if strings.Contains(env, "secret-token") {
		t.Error("the caller's GITHUB_TOKEN reached the KMS process")
	}
	for _, want := range []string{
		"MERO_KMS_VERSION=1.2.0", "MERO_KMS_PROFILE=locked-read-only", "MERO_KMS_POLICY_URL=http://127.0.0.1:",
		"MERO_KMS_POLICY_SHA256=" + lp.SHA256, "MERO_KMS_LISTEN=127.0.0.1:", "MERO_KMS_QUOTE_SOURCE=simulator",
		"MERO_KMS_COMPOSE_HASH=" + strings.Repeat("0", 63) + "l",
	} {
		if !strings.Contains(env, want) {
			t.Errorf("KMS environment lacks %q:\n%s", want, env)
		}
	}
}

func TestLaunchRefusesBadInput(t *testing.T) {
	roots := authority(t).RootPool()
	lp := loaded(t, release.Debug)
	for name, tc := range map[string]struct {
		l  *Launcher
		lp *policy.Loaded
	}{
		"no binary":        {&Launcher{TrustedRoots: roots}, lp},
		"missing binary":   {&Launcher{Binary: filepath.Join(t.TempDir(), "absent"), TrustedRoots: roots}, lp},
		"no roots":         {&Launcher{Binary: kmsBinary}, lp},
		"no policy":        {&Launcher{Binary: kmsBinary, TrustedRoots: roots}, nil},
		"policy, no bytes": {&Launcher{Binary: kmsBinary, TrustedRoots: roots}, &policy.Loaded{Policy: lp.Policy}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tc.l.Launch(context.Background(), tc.lp, e2e.KMSDeployment{})
			if outcome.Code(err) != outcome.Usage {
				t.Errorf("error %v (exit %d), want a usage error", err, outcome.Code(err))
			}
		})
	}
}
