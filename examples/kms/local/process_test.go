package local_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calimero-network/mero-release/examples/kms/local"
	"github.com/calimero-network/mero-release/examples/kms/local/e2etest"
	"github.com/calimero-network/mero-release/pipeline/e2e"
	"github.com/calimero-network/mero-release/pipeline/measure"
	"github.com/calimero-network/mero-release/pipeline/outcome"
)

// buildKMS builds the sample KMS executable the release ships.
func buildKMS(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mero-kms")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/mero-kms")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the KMS: %v\n%s", err, out)
	}
	return bin
}

// TestE2EWithTheKMSProcess runs the node suite and every guardrail against the KMS executable
// started as processes (one per policy), their quotes checked against the KMS release's
// published measurements: the released binary, not this package's copy of its code.
func TestE2EWithTheKMSProcess(t *testing.T) {
	bin := buildKMS(t)
	w := e2etest.New(t)
	old := w.AddNode(t, "1.1.0", nil)
	w.AddKMS(t, "1.1.0", e2etest.Policies(t, "1.1.0", old))
	n := w.AddNode(t, "1.2.0", nil)
	w.AddKMS(t, "1.2.0", e2etest.Policies(t, "1.2.0", old, n))
	var logBuf bytes.Buffer
	log := outcome.NewLogger(&logBuf)
	launcher := local.Process(bin, w.Authority, "", log)
	o := w.Options("1.2.0", "1.2.0", e2etest.Catalog(t, [2]string{"1.2.0", "1.2.0"}, [2]string{"1.2.0", "1.1.0"}), log)
	o.KMS, o.CheckKMSMeasurements = launcher, true
	rep, err := e2e.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Passed {
		t.Fatalf("E2E failed: %v\n%s", rep.Err(), logBuf.String())
	}
	for _, c := range rep.Checks {
		if c.Status != e2e.Pass {
			t.Errorf("check %s: %s (%s)", c.ID, c.Status, c.Details)
		}
	}
	if launcher.Open() != 0 {
		t.Errorf("%d KMS processes left running", launcher.Open())
	}
	if !strings.Contains(logBuf.String(), "process ") || !strings.Contains(logBuf.String(), "[PASS]") {
		t.Errorf("the log does not show KMS processes:\n%s", logBuf.String())
	}
}

// TestE2EWithTheKMSProcessCatchesAWrongDeployment: a KMS release whose published RTMR3 is not
// what its recorded app-compose boots to fails the KMS attestation of the node suite.
func TestE2EWithTheKMSProcessCatchesAWrongDeployment(t *testing.T) {
	bin := buildKMS(t)
	w := e2etest.New(t)
	n := w.AddNode(t, "1.2.0", nil)
	w.AddKMS(t, "1.2.0", e2etest.Policies(t, "1.2.0", n), func(p *measure.Published) {
		for prof, r := range p.Profiles {
			r.RTMR3 = strings.Repeat("0f", 48)
			p.Profiles[prof] = r
		}
	})
	launcher := local.Process(bin, w.Authority, "", nil)
	o := w.Options("1.2.0", "1.2.0", nil, nil)
	o.KMS, o.CheckKMSMeasurements = launcher, true
	rep, err := e2e.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var suite *e2e.Check
	for i := range rep.Checks {
		if rep.Checks[i].ID == e2e.CheckNodeSuite {
			suite = &rep.Checks[i]
		}
	}
	if rep.Passed || suite == nil || suite.Status != e2e.Fail || suite.Cases[0].Step != e2e.StepAttest || !strings.Contains(suite.Cases[0].Details, "rtmr3") {
		t.Errorf("want the node suite to fail at KMS attestation on rtmr3, got %+v", suite)
	}
	if launcher.Open() != 0 {
		t.Errorf("%d KMS processes left running", launcher.Open())
	}
}
