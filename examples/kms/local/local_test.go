package local

import (
	"context"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/examples/kms"
	"github.com/calimero-network/mero-release/examples/kms/server"
	"github.com/calimero-network/mero-release/pipeline/e2e"
	"github.com/calimero-network/mero-release/pipeline/kmsclient"
	"github.com/calimero-network/mero-release/pipeline/outcome"
	"github.com/calimero-network/mero-release/pipeline/policy"
	"github.com/calimero-network/mero-release/pipeline/release"
	"github.com/calimero-network/mero-release/pipeline/tdx/tdxsim"
)

// notReady is a policy_not_ready policy of kms 1.2.0, debug, loaded as the KMS loads it.
func notReady(t *testing.T) *policy.Loaded {
	t.Helper()
	p, err := policy.Generate("1.2.0", release.Debug, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	lp, err := policy.LoadForKMS(data, "test", "", "1.2.0", "debug")
	if err != nil {
		t.Fatal(err)
	}
	return lp
}

func TestInProcessKMS(t *testing.T) {
	auth, err := tdxsim.NewAuthority([]byte("local test"))
	if err != nil {
		t.Fatal(err)
	}
	l := &InProcessKMS{Authority: auth, NodeRoots: auth.RootPool()}
	ctx := context.Background()
	inst, err := l.Launch(ctx, notReady(t), e2e.KMSDeployment{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(inst.URL(), "http://127.0.0.1:") || l.Open() != 1 {
		t.Errorf("URL %s, %d open", inst.URL(), l.Open())
	}
	c, err := kmsclient.New(inst.URL(), kmsclient.Options{TrustedRoots: inst.TrustedRoots()})
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Health(ctx)
	if err != nil || h.KMSVersion != "1.2.0" || h.Profile != "debug" || h.PolicyStatus != policy.StatusNotReady {
		t.Fatalf("health %+v, %v", h, err)
	}
	// The KMS's quotes chain to the authority and carry the simulated dstack VM of the shipped
	// app-compose (the default compose hash).
	att, err := c.Attest(ctx, kmsclient.AttestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hash, err := kms.ComposeHash(kms.LocalImage)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := server.BootSimulatedDstack(ctx, auth, hash)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Shutdown()
	if att.Quote.Measurements() != vm.Measurements() {
		t.Error("the launched KMS's registers are not the simulated dstack VM's of the shipped app-compose")
	}
	if err := inst.Close(); err != nil {
		t.Fatal(err)
	}
	if err := inst.Close(); err != nil || l.Open() != 0 {
		t.Errorf("second Close: %v, %d open", err, l.Open())
	}
	if _, err := c.Health(ctx); err == nil {
		t.Error("the KMS still answers after Close")
	}
}

func TestInProcessKMSRefuses(t *testing.T) {
	auth, err := tdxsim.NewAuthority([]byte("local test"))
	if err != nil {
		t.Fatal(err)
	}
	lp := notReady(t)
	for _, tt := range []struct {
		name string
		l    *InProcessKMS
		code int
		want string
	}{
		{"no authority", &InProcessKMS{NodeRoots: auth.RootPool()}, outcome.Usage, "an authority and node roots are required"},
		{"no node roots", &InProcessKMS{Authority: auth}, outcome.Usage, "an authority and node roots are required"},
		{"bad compose hash", &InProcessKMS{Authority: auth, NodeRoots: auth.RootPool(), ComposeHash: "zz"}, outcome.General, "start KMS 1.2.0 (debug): simulated dstack: compose hash"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			inst, err := tt.l.Launch(context.Background(), lp, e2e.KMSDeployment{})
			if err == nil {
				_ = inst.Close()
				t.Fatal("launched")
			}
			if outcome.Code(err) != tt.code || !strings.Contains(err.Error(), tt.want) || tt.l.Open() != 0 {
				t.Errorf("err = %v (exit %d), %d open; want exit %d with %q", err, outcome.Code(err), tt.l.Open(), tt.code, tt.want)
			}
		})
	}
	l := &InProcessKMS{Authority: auth, NodeRoots: auth.RootPool()}
	for _, bad := range []*policy.Loaded{nil, {SHA256: lp.SHA256, Source: "x"}} {
		if _, err := l.Launch(context.Background(), bad, e2e.KMSDeployment{}); outcome.Code(err) != outcome.Usage || !strings.Contains(err.Error(), "no attestation policy") {
			t.Errorf("policy %+v: %v", bad, err)
		}
	}
}
